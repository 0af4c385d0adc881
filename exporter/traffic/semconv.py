"""OpenTelemetry HTTP server semantic conventions, as Prometheus spells them.

Source: https://opentelemetry.io/docs/specs/semconv/http/http-metrics/ (HTTP server:
`http.server.request.duration` histogram, unit s, stable; `http.server.active_requests`
updowncounter, unit {request}; `http.server.request.body.size` and
`http.server.response.body.size` histograms, unit By). The OTel-to-Prometheus naming
turns dots into underscores and appends the unit (`_seconds`, `_bytes`); attributes
`http.request.method`, `http.route`, `http.response.status_code` become
`http_request_method`, `http_route`, `http_response_status_code`.
"""

from __future__ import annotations

from typing import Final

DURATION: Final = "http_server_request_duration_seconds"
ACTIVE: Final = "http_server_active_requests"
REQUEST_BODY: Final = "http_server_request_body_size_bytes"
RESPONSE_BODY: Final = "http_server_response_body_size_bytes"
# Not semantic conventions (OTel has none for these): this package's own, same prefix.
RATE_LIMITED: Final = "http_server_rate_limited_requests_total"
DROPPED: Final = "http_server_traffic_records_dropped_total"

METHOD: Final = "http_request_method"
ROUTE: Final = "http_route"
STATUS: Final = "http_response_status_code"
LABELS: Final = (METHOD, ROUTE, STATUS)

# http.request.method's well-known values; anything else is recorded as `_OTHER`
# (semconv: "instrumentations SHOULD ... set http.request.method to _OTHER"), so a
# client sending `FOO` cannot create a series.
KNOWN_METHODS: Final = frozenset({"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"})
OTHER_METHOD: Final = "_OTHER"

# http.route is the framework's template. A request no route matched has no template;
# semconv leaves the attribute out, which in Prometheus is the empty label value: one
# series for every unmatched path, whatever the path.
UNMATCHED_ROUTE: Final = ""

# The explicit bucket boundaries semconv advises for http.server.request.duration.
DURATION_BUCKETS: Final = (0.0, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
# semconv advises none for body sizes: decades from 100 B to 10 MB.
SIZE_BUCKETS: Final = (100.0, 1_000.0, 10_000.0, 100_000.0, 1_000_000.0, 10_000_000.0)


def method_label(method: str) -> str:
    return method if method in KNOWN_METHODS else OTHER_METHOD
