"""WebSocket market-data feeds: one long-lived connection per configured feed, judged on
silence, sequence gaps, event-time lag, reconnects and frozen prices (docs/feeds.md).

config.py (feeds.yaml) -> runner.py (one task per feed) -> venues.py (per-venue rules)
and sequence.py (pure checks) -> state.py (the feeds' store) -> metrics.py (/metrics),
web/api/feeds.py (/api/feeds, /ws/market_data). Started, stopped and reloaded by the
composition root (app.py): by default in a child process (process.py starts worker.py,
which runs the runners; wire.py carries configs down and snapshots up to the
exporter's mirror store), or in the exporter's loop with `--feeds.in-process`.
"""
