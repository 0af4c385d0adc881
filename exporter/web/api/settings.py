"""Settings of the JSON API shim, read once from the environment.

A bad value stops the process with a `ConfigError` naming the variable, like a bad
providers.yaml does."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ...config import ConfigError
from ...redact import MIN_SECRET

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


@dataclass(frozen=True)
class ApiSettings:
    """`API_TOKENS`, `ALLOWED_IPS`, `CORS_ORIGINS`, `PROTECT_METRICS`, `PROMETHEUS_URL`,
    `PUBLIC_STATUS`, `GRAFANA_URL`.

    Tokens never appear in `repr` (and so in no log line or error)."""

    tokens: tuple[str, ...] = field(default=(), repr=False)
    allowed_ips: tuple[IPNetwork, ...] = ()
    cors_origins: tuple[str, ...] = ()
    protect_metrics: bool = False
    prometheus_url: str | None = None
    # ---- status page and badges (issue 16; docs/status-page.md)
    # Off by default: /status and /badge/* are then guarded as /api/* is (open while
    # API_TOKENS and ALLOWED_IPS are unset), so setting API_TOKENS never leaves a page
    # listing every provider open by surprise. True: open to anyone who reaches the port.
    public_status: bool = False
    grafana_url: str | None = None  # linked from `/`
    # ---- end status page

    @property
    def auth_enabled(self) -> bool:
        return bool(self.tokens)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ApiSettings:
        errors: list[str] = []
        raw_tokens = env.get("API_TOKENS", "")
        tokens = tuple(t.strip() for t in raw_tokens.split(",") if t.strip())
        if raw_tokens and not tokens:
            # Set, but to nothing usable (`,` or blanks): someone meant to protect the API.
            # Starting open would be the one silent failure here. Empty means unset.
            errors.append(f"API_TOKENS: set to {raw_tokens!r}, which holds no token: list tokens separated by commas, or unset it to leave the API open")
        short = [t for t in tokens if len(t) < MIN_SECRET]
        if short:
            # The redactor leaves values this short alone (they would mask ordinary words),
            # so such a token could reach a log line.
            errors.append(f"API_TOKENS: {len(short)} token(s) shorter than {MIN_SECRET} characters; use long random tokens")
        networks: list[IPNetwork] = []
        for item in split_list(env.get("ALLOWED_IPS", "")):
            try:
                networks.append(parse_network(item))
            except ValueError:
                errors.append(f"ALLOWED_IPS: {item!r} is not an IP address or CIDR (e.g. 10.0.0.0/8, 127.0.0.1, ::1)")
        origins = []
        for origin in split_list(env.get("CORS_ORIGINS", "")):
            if origin != "*" and not origin.startswith(("http://", "https://")):
                errors.append(f"CORS_ORIGINS: {origin!r} must be * or an origin like https://dashboard.example.com")
            origins.append(origin.rstrip("/"))
        protect = env.get("PROTECT_METRICS", "").strip().lower()
        if protect not in _TRUE | _FALSE:
            errors.append(f"PROTECT_METRICS: {env['PROTECT_METRICS']!r} must be true or false")
        elif protect in _TRUE and not tokens:
            errors.append("PROTECT_METRICS: needs API_TOKENS (the tokens that may read /metrics)")
        prom = env.get("PROMETHEUS_URL", "").strip() or None
        if prom is not None and not prom.startswith(("http://", "https://")):
            errors.append(f"PROMETHEUS_URL: {prom!r} must be an http(s) URL like http://prometheus:9090")
        public = env.get("PUBLIC_STATUS", "").strip().lower()
        if public not in _TRUE | _FALSE:
            errors.append(f"PUBLIC_STATUS: {env['PUBLIC_STATUS']!r} must be true or false")
        grafana = env.get("GRAFANA_URL", "").strip() or None
        if grafana is not None and not grafana.startswith(("http://", "https://")):
            errors.append(f"GRAFANA_URL: {grafana!r} must be an http(s) URL like http://grafana:3000")
        elif grafana is not None and "@" in urlsplit(grafana).netloc:
            # The landing page shows the link to anyone: no user or password in it.
            errors.append("GRAFANA_URL: must not carry credentials (user:password@); Grafana asks for them itself")
        if errors:
            raise ConfigError(errors)
        return cls(
            tokens=tokens,
            allowed_ips=tuple(networks),
            cors_origins=tuple(origins),
            protect_metrics=protect in _TRUE,
            prometheus_url=prom.rstrip("/") if prom else None,
            public_status=public in _TRUE,
            grafana_url=grafana.rstrip("/") if grafana else None,
        )


def split_list(text: str) -> list[str]:
    return [x.strip() for x in text.replace(";", ",").split(",") if x.strip()]


def parse_network(text: str) -> IPNetwork:
    """`10.0.0.0/8`, `127.0.0.1` (a /32) or `::1` (a /128); ValueError otherwise."""
    return ipaddress.ip_network(text, strict=False)
