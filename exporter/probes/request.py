"""Building HTTP requests for an endpoint: URL, query, headers, the key where the
provider's auth puts it, and the proxy from the environment. Pure, and cached."""

from __future__ import annotations

import functools
import urllib.request
from dataclasses import dataclass

import orjson
import yarl

from ..config import ApiKey, AuthType, Endpoint, Provider

USER_AGENT = "crypto-api-exporter/0.1 (+https://github.com/crypto-api-exporter)"


@dataclass(frozen=True, slots=True)
class PreparedRequest:
    url: yarl.URL
    headers: dict[str, str]
    body: bytes | None


class RequestCache:
    """Each endpoint's request, built once per key rather than on every probe (encoding
    the URL and query is a good part of a keep-alive probe's CPU). An entry belongs to
    one Endpoint object: after a reload the new object gets a new entry."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str, str | None], tuple[Endpoint, Provider, PreparedRequest]] = {}

    def get(self, provider: Provider, endpoint: Endpoint, key: ApiKey | None) -> PreparedRequest:
        ident = (provider.name, endpoint.name, key.env if key else None)
        hit = self._entries.get(ident)
        if hit is not None and hit[0] is endpoint and hit[1] is provider:
            return hit[2]
        url, params, headers = build_request(provider, endpoint, key)
        if endpoint.json is not None:
            headers.setdefault("Content-Type", "application/json")
        body = orjson.dumps(endpoint.json) if endpoint.json is not None else None
        prepared = PreparedRequest(yarl.URL(url).update_query(params) if params else yarl.URL(url), headers, body)
        self._entries[ident] = (endpoint, provider, prepared)
        return prepared


@functools.lru_cache(maxsize=4096)
def env_proxy(base_url: str) -> str | None:
    """The proxy HTTP(S)_PROXY / NO_PROXY name for a base URL.

    Looked up once per base URL: aiohttp's trust_env would look it up on every
    request, in a thread, which costs more than the rest of a keep-alive probe."""
    scheme, _, rest = base_url.partition("://")
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    if urllib.request.proxy_bypass_environment(host):  # type: ignore[attr-defined]  # public since 3.x, not in typeshed
        return None
    return urllib.request.getproxies_environment().get(scheme)


def build_request(provider: Provider, endpoint: Endpoint, key: ApiKey | None, url: str | None = None) -> tuple[str, dict[str, str], dict[str, str]]:
    """URL, query params and headers for one attempt, with the key where auth puts it.
    `url` replaces base_url + path (a chain_head endpoint's own URL, plus a sub-path)."""
    url = provider.base_url + endpoint.path if url is None else url
    params = dict(endpoint.params)
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **endpoint.headers}
    auth = provider.auth
    secret = auth.prefix + key.value if key else ""
    if auth.type is AuthType.PATH:
        url = url.replace("{key}", key.value if key else "")
    elif key and auth.type is AuthType.QUERY:
        params[auth.name] = secret
    elif key and auth.type is AuthType.HEADER:
        headers[auth.name] = secret
    return url, params, headers
