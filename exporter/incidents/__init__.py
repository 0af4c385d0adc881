"""The incident service (docs/incidents.md): Alertmanager notifications grouped into
incidents, stored in SQLite, explained from rules (and, when configured, by an LLM)."""
