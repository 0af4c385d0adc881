"""API keys of one provider, rotated when the provider rejects one."""

from __future__ import annotations

from .config import ApiKey, Auth


class KeyRing:
    """Uses the first key not known to be invalid; a rejected key is marked invalid and
    the next one takes over. When every key is invalid, keep trying them in turn (a key
    may be re-enabled upstream); a success marks the key valid again.

    Knows every env var the provider names: one that is not set is not a usable key."""

    def __init__(self, env_names: tuple[str, ...], keys: tuple[ApiKey, ...]) -> None:
        self.env_names = env_names
        self.keys = keys  # the env vars that are set, in configured order
        self._valid: dict[str, bool] = {k.env: True for k in keys}
        self._cursor = 0

    @classmethod
    def for_auth(cls, auth: Auth) -> KeyRing:
        return cls(auth.env, auth.keys)

    def carried_to(self, auth: Auth) -> KeyRing:
        """The ring for a reloaded `auth`: what was learnt about a key holds while its env
        var keeps the same value; a new or changed value is valid until rejected."""
        ring = KeyRing.for_auth(auth)
        before = {k.env: k.value for k in self.keys}
        for key in ring.keys:
            if before.get(key.env) == key.value:
                ring._valid[key.env] = self._valid[key.env]
        current = self.current()
        for i, key in enumerate(ring.keys):
            if current is not None and (key.env, key.value) == (current.env, current.value):
                ring._cursor = i  # keep using the key in use
        return ring

    def validity(self) -> dict[str, bool]:
        """Every configured env var name: True when set and not rejected."""
        return {env: self._valid.get(env, False) for env in self.env_names}

    def current(self) -> ApiKey | None:
        if not self.keys:
            return None
        for i in range(len(self.keys)):
            key = self.keys[(self._cursor + i) % len(self.keys)]
            if self._valid[key.env]:
                return key
        return self.keys[self._cursor % len(self.keys)]

    def reject(self, key: ApiKey) -> ApiKey | None:
        """Mark `key` invalid; the next valid key to try, or None when none is left."""
        self._valid[key.env] = False
        self._cursor = (self.keys.index(key) + 1) % len(self.keys)
        nxt = self.current()
        return nxt if nxt is not None and self._valid[nxt.env] else None

    def accept(self, key: ApiKey) -> None:
        self._valid[key.env] = True

    def record(self, env: str, valid: bool) -> None:
        """What an on-demand key test learnt (env vars that are not set stay invalid)."""
        if env in self._valid:
            self._valid[env] = valid

    def is_valid(self, env: str) -> bool:
        return self._valid.get(env, False)
