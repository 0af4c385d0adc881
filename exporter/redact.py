"""Keeping secrets out of every string that leaves the process."""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import Any

MASK = "***"
_MIN_SECRET = 4  # shorter values would mask ordinary words


class Redactor:
    """Replaces every known secret value in a text. The set is swapped on reload."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: tuple[str, ...] = ()
        self.update(secrets)

    def update(self, secrets: Iterable[str]) -> None:
        # Longest first, so a key that contains another is masked whole.
        self._secrets = tuple(sorted({s for s in secrets if len(s) >= _MIN_SECRET}, key=len, reverse=True))

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def processor(self, _logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        """A structlog processor: the last line of defence for log events."""
        if not self._secrets:
            return event
        for k, v in event.items():
            if isinstance(v, str):
                event[k] = self.redact(v)
            elif not isinstance(v, (int, float, bool, type(None))):
                text = str(v)
                if self.redact(text) != text:
                    event[k] = self.redact(text)
        return event


def mask(value: str) -> str:
    """A key shown to a human: its last 4 characters at most, never the whole."""
    if len(value) <= 8:
        return MASK
    return f"{MASK}{value[-4:]}"
