"""Every bound the exporter puts on input it does not control, in one place.

Provider answers, the config file, HTTP requests to the exporter and WebSocket messages
all come from outside; each has a bound here, enforced where the input is read, with a
clear outcome or error when it is reached. docs/limits.md lists them with what happens
at each; tests/unit/test_limits.py checks that the two agree.
"""

from __future__ import annotations

KIB = 1024
MIB = 1024 * KIB

# ---------------------------------------------------------------- provider answers
# Decoded bytes of one answer, per endpoint (`max_body_bytes`): the default, and the most
# a config may allow (bodies are held in memory while they are checked).
BODY_BYTES_DEFAULT = 1 * MIB
BODY_BYTES_MAX = 64 * MIB
# Nesting of a JSON payload: orjson refuses deeper documents, and the standard parser
# (the fallback for NaN and huge integers) would hit Python's recursion limit.
PAYLOAD_JSON_DEPTH = 1024
# Redirects one attempt follows, all within the configured origin (scheme, host, port):
# keys never go to another origin, so a redirect there is not followed at all.
REDIRECT_HOPS = 5
# Characters of a human-readable detail (logs, the API), secrets redacted before.
DETAIL_CHARS = 160

# ---------------------------------------------------------------- the config file
CONFIG_FILE_BYTES = 4 * MIB  # the shipped registry is ~100 KiB
CONFIG_NESTING = 64  # mappings and lists inside each other; the registry needs ~10
CONFIG_INT_DIGITS = 100  # Python refuses to convert integers past 4,300 digits
CONFIG_ERRORS_SHOWN = 100  # error lines reported; the rest is counted in one last line
CONFIG_EXTENDS_DEPTH = 8  # files in an `extends:` chain (a user's file over the shipped one is 2)
CONFIG_INTERVAL_MAX = 7 * 86400.0  # interval, and so timeout, jitter and slow_threshold
CONFIG_DURATION_MAX = 31 * 86400.0  # every other duration: max_age, budget per, quota window, reset_timeout
CONFIG_JSON_NODES = 10_000  # values in one endpoint's `json` body (YAML aliases can multiply them)
CONFIG_JSON_DEPTH = 32  # nesting of one endpoint's `json` body

# ---------------------------------------------------------------- the HTTP server (every route)
# A request line (method, path and query) and one header line; aiohttp's parser answers
# 400 past them (its defaults, and Apache's LimitRequestLine: kept, now stated).
HTTP_REQUEST_LINE_BYTES = 8190
HTTP_HEADER_BYTES = 8190
HTTP_HEADERS = 128  # header lines in one request
# Seconds a client may take to send a whole request head (request line and headers),
# counted from the connection, or from the first byte of a later request on a kept-alive
# connection: a client that sends a byte at a time (slowloris) is cut off here.
HTTP_HEAD_SECONDS = 10.0
# Seconds an idle kept-alive connection stays open (aiohttp's default is an hour; 75 s is
# nginx's and `web.run_app`'s, longer than a 60 s scrape interval so scrapes reuse it).
HTTP_KEEPALIVE_SECONDS = 75.0
# Seconds the server goes on reading (and dropping) a body its handler left unread, after
# the answer, before it closes the connection (aiohttp's default, stated).
HTTP_LINGER_SECONDS = 10.0

# ---------------------------------------------------------------- the JSON API
API_BODY_BYTES = 16 * KIB  # a request body (the two POST routes take a small object)
API_BODY_SECONDS = 10.0  # to receive that body once the head is in (a body sent a byte at a time)
API_JSON_DEPTH = 32  # nesting of a request body or a WebSocket message
API_PAGE_MAX = 100_000
API_STRING_CHARS = 200  # a query string parameter
WS_MESSAGE_BYTES = 64 * KIB  # a message from a WebSocket client

# ---------------------------------------------------------------- market-data feeds (exporter/feeds/)
# One frame from a venue: aiohttp closes the connection with 1009 past it (a WebSocket
# reader cannot skip a frame), counted as an `error` reconnect. OKX's 400-level book
# snapshot is ~40 KiB; Binance's diff-depth bursts stay well under this.
FEED_MESSAGE_BYTES = 1 * MIB
FEED_SUBSCRIBE_MESSAGES = 32  # subscribe messages sent per connection
FEED_SUBSCRIBE_BYTES = 16 * KIB  # one subscribe message, serialized
FEED_SYMBOLS = 64  # symbols whose latest price a feed keeps; later symbols are ignored
FEED_STREAMS = 256  # sequence streams (channel x symbol) one feed tracks; later ones are not checked
FEED_ITEMS_PER_MESSAGE = 1000  # trades or book entries read from one message; the rest are ignored
FEEDS_MAX = 256  # feeds in one feeds file: one connection each

# ---------------------------------------------------------------- incidents (exporter/incidents/, docs/incidents.md)
# One Alertmanager notification: a grouped storm of 1000 alerts with their annotations is
# about 1 MiB. alertmanager.yml's incident receiver sets max_alerts below the count bound.
INCIDENT_WEBHOOK_BYTES = 4 * MIB
INCIDENT_WEBHOOK_ALERTS = 2000  # alerts in one notification
INCIDENT_LABELS = 64  # labels, or annotations, of one alert
INCIDENT_LABEL_CHARS = 4000  # one label or annotation value (a description can be long); names: API_STRING_CHARS
INCIDENT_EVENTS = 1000  # timeline events kept per incident; later changes are counted, not recorded
INCIDENT_ALERTS = 5000  # alerts tracked per incident
INCIDENT_LLM_ANSWER_BYTES = 64 * KIB  # an OpenAI-compatible answer read back
INCIDENT_PROMPT_CHARS = 200_000  # the most a prompt may be, whatever the token budget says
