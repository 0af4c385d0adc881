"""Keeping secrets out of every string that leaves the process."""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import Any

MASK = "***"
MIN_SECRET = 4  # shorter values would mask ordinary words (settings refuse shorter API tokens)


class Redactor:
    """Replaces every known secret value in a text.

    Secrets come in groups with their own lifetimes: the providers' keys (`config`, swapped
    on every reload) and the API's tokens (`api_tokens`, read once at start-up). Updating
    one group leaves the others alone."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._groups: dict[str, frozenset[str]] = {}
        self._secrets: tuple[str, ...] = ()
        self.update(secrets)

    def update(self, secrets: Iterable[str], group: str = "config") -> None:
        """Replace the secrets of `group`."""
        self._groups[group] = frozenset(s for s in secrets if len(s) >= MIN_SECRET)
        # Longest first, so a key that contains another is masked whole.
        self._secrets = tuple(sorted(frozenset().union(*self._groups.values()), key=len, reverse=True))

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
