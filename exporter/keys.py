"""API keys of one provider, rotated when the provider rejects one, and re-tested."""

from __future__ import annotations

import math

from .config import ApiKey, Auth


class KeyRing:
    """Uses the first key not known to be invalid; a rejected key is marked invalid and
    the next one takes over. A rejected key rests for `retest_after` seconds, then one
    probe tries it again (a key fixed or re-enabled upstream comes back by itself, and
    `crypto_api_key_valid` with it); a success marks it valid, a rejection starts
    another rest. When every key is invalid, keep trying them in turn.

    Knows every env var the provider names: one that is not set is not a usable key.
    Times are monotonic seconds passed in by the caller, so tests advance a clock."""

    def __init__(self, env_names: tuple[str, ...], keys: tuple[ApiKey, ...], retest_after: float = math.inf) -> None:
        self.env_names = env_names
        self.keys = keys  # the env vars that are set, in configured order
        self.retest_after = retest_after
        self._valid: dict[str, bool] = {k.env: True for k in keys}
        self._retest_at: dict[str, float] = {}  # a rejected key's next trial
        self._cursor = 0

    @classmethod
    def for_auth(cls, auth: Auth) -> KeyRing:
        return cls(auth.env, auth.keys, auth.retest_after)

    def carried_to(self, auth: Auth) -> KeyRing:
        """The ring for a reloaded `auth`: what was learnt about a key holds while its env
        var keeps the same value; a new or changed value is valid until rejected."""
        ring = KeyRing.for_auth(auth)
        before = {k.env: k.value for k in self.keys}
        for key in ring.keys:
            if before.get(key.env) == key.value:
                ring._valid[key.env] = self._valid[key.env]
                if key.env in self._retest_at:
                    ring._retest_at[key.env] = self._retest_at[key.env]
        current = self._preferred()
        for i, key in enumerate(ring.keys):
            if current is not None and (key.env, key.value) == (current.env, current.value):
                ring._cursor = i  # keep using the key in use
        return ring

    def validity(self) -> dict[str, bool]:
        """Every configured env var name: True when set and not rejected."""
        return {env: self._valid.get(env, False) for env in self.env_names}

    def set_validity(self) -> dict[str, bool]:
        """The env vars that are set, in configured order: True unless rejected."""
        return {k.env: self._valid[k.env] for k in self.keys}

    def current(self, now: float = -math.inf) -> ApiKey | None:
        """The key for the next attempt: a rejected key whose rest is over (once per
        rest), else the first valid one."""
        for key in self.keys:
            if not self._valid[key.env] and self._retest_at.get(key.env, math.inf) <= now:
                self._retest_at[key.env] = now + self.retest_after  # one trial per rest
                return key
        return self._preferred()

    def _preferred(self) -> ApiKey | None:
        if not self.keys:
            return None
        for i in range(len(self.keys)):
            key = self.keys[(self._cursor + i) % len(self.keys)]
            if self._valid[key.env]:
                return key
        return self.keys[self._cursor % len(self.keys)]

    def reject(self, key: ApiKey, now: float = -math.inf) -> ApiKey | None:
        """Mark `key` invalid until a trial after its rest; the next valid key to try, or
        None when none is left."""
        self._valid[key.env] = False
        self._retest_at[key.env] = now + self.retest_after
        self._cursor = (self.keys.index(key) + 1) % len(self.keys)
        nxt = self._preferred()
        return nxt if nxt is not None and self._valid[nxt.env] else None

    def accept(self, key: ApiKey) -> None:
        self._valid[key.env] = True
        self._retest_at.pop(key.env, None)

    def record(self, env: str, valid: bool, now: float = -math.inf) -> None:
        """What an on-demand key test learnt (env vars that are not set stay invalid)."""
        if env not in self._valid:
            return
        self._valid[env] = valid
        if valid:
            self._retest_at.pop(env, None)
        else:
            self._retest_at[env] = now + self.retest_after

    def is_valid(self, env: str) -> bool:
        return self._valid.get(env, False)
