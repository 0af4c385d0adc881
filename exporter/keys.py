"""API keys of one provider, rotated when the provider rejects one."""

from __future__ import annotations

from .config import ApiKey


class KeyRing:
    """Uses the first key not known to be invalid; a rejected key is marked invalid and
    the next one takes over. When every key is invalid, keep trying them in turn (a key
    may be re-enabled upstream); a success marks the key valid again."""

    def __init__(self, keys: tuple[ApiKey, ...]) -> None:
        self.keys = keys
        self.valid: dict[str, bool] = {k.env: True for k in keys}
        self._cursor = 0

    def current(self) -> ApiKey | None:
        if not self.keys:
            return None
        for i in range(len(self.keys)):
            key = self.keys[(self._cursor + i) % len(self.keys)]
            if self.valid[key.env]:
                return key
        return self.keys[self._cursor % len(self.keys)]

    def reject(self, key: ApiKey) -> ApiKey | None:
        """Mark `key` invalid; the next valid key to try, or None when none is left."""
        self.valid[key.env] = False
        self._cursor = (self.keys.index(key) + 1) % len(self.keys)
        nxt = self.current()
        return nxt if nxt is not None and self.valid[nxt.env] else None

    def accept(self, key: ApiKey) -> None:
        self.valid[key.env] = True
