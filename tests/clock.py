"""An event loop on virtual time, so tests advance a clock instead of sleeping.

The loop's clock stands still while anything is ready to run; once every task waits on
a timer, it jumps straight to the earliest one. `await asyncio.sleep(30)` then takes no
real time and ends exactly 30 s later, and a timer planned for t=10.0 runs with
`loop.time() == 10.0`, however busy the machine. `block()` moves the clock without
running anything, as a callback that holds the loop would.

Hand-rolled rather than `looptime` (PyPI): a few lines and no dependency. Jumps land on
the timer's own float, not on `now + timeout` (which can be an ulp off), so tests compare
times with ==. It is for tests without real sockets: I/O already there is served, but
time never waits for more.
"""

from __future__ import annotations

import asyncio
import functools
import selectors
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec

# The wall clock when the loop's clock reads 0. An integer below 2**31, so that wall
# times of binary-exact loop times (10.0, 0.5) are exact too.
WALL_AT_ZERO = 1_700_000_000.0

_P = ParamSpec("_P")


class _Selector(selectors.DefaultSelector):
    """Never waits: where the loop would wait for a timer, the clock jumps to it."""

    def __init__(self, on_idle: Callable[[], None]) -> None:
        super().__init__()
        self._on_idle = on_idle

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        events = super().select(0)
        if events or (timeout is not None and timeout <= 0):
            return events
        if timeout is None:  # no timer at all: only another thread can wake the loop
            return super().select(None)
        self._on_idle()
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        super().__init__(_Selector(self._jump_to_next_timer))

    def time(self) -> float:
        return self._now

    def wall(self) -> float:
        """A wall clock in step with the loop's: what `time.time()` would read."""
        return WALL_AT_ZERO + self._now

    def block(self, seconds: float) -> None:
        """Let `seconds` pass with nothing run, like `time.sleep()` on the loop."""
        self._now += seconds

    def _jump_to_next_timer(self) -> None:
        # The loop asked to wait for its earliest timer (the heap's head, cancelled ones
        # already popped) and nothing else is pending: be there at once.
        scheduled: list[asyncio.TimerHandle] = self._scheduled  # type: ignore[attr-defined]
        self._now = max(self._now, scheduled[0].when())


def virtual_loop() -> VirtualTimeLoop:
    """The running loop of a `@virtual_time` test."""
    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualTimeLoop), "not a @virtual_time test"
    return loop


def virtual_time(test: Callable[_P, Coroutine[Any, Any, None]]) -> Callable[_P, None]:
    """Run an async test on its own VirtualTimeLoop (clock at 0.0) instead of
    pytest-asyncio's loop. Sync fixtures only: async ones would run on the other loop."""

    @functools.wraps(test)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> None:
        with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
            runner.run(test(*args, **kwargs))

    return run


class SetClock:
    """A wall clock that stands still until a test sets it: pass it where code takes a
    `clock=time.time`."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
