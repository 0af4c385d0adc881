"""Command-line flags of the incident service, shared by `run`, `demo` (in-process) and
`incidents` (standalone): one definition, one way to turn them into settings."""

from __future__ import annotations

import argparse
import os

from .llm import LlmSettings
from .service import IncidentSettings
from .store import MEMORY

DEFAULT_PORT = 7862


def add_flags(p: argparse.ArgumentParser, default_db: str) -> None:
    g = p.add_argument_group("incidents", "Alertmanager notifications grouped into incidents and explained (docs/incidents.md)")
    g.add_argument(
        "--incidents.db",
        dest="incidents_db",
        default=os.environ.get("INCIDENTS_DB", default_db),
        metavar="PATH",
        help=f"SQLite file the incidents live in (WAL; survives restarts); {MEMORY} keeps them in memory (env INCIDENTS_DB; default {default_db})",
    )
    g.add_argument(
        "--incidents.retention-days",
        dest="incidents_retention_days",
        type=float,
        default=90.0,
        help="resolved incidents older than this are deleted (default 90)",
    )
    g.add_argument(
        "--incidents.retention-count", dest="incidents_retention_count", type=int, default=10_000, help="at most this many incidents are kept (default 10000)"
    )
    g.add_argument(
        "--incidents.settle",
        dest="incidents_settle",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="wait this long after an incident opens before explaining it, so a storm's late alerts are explained (and summarized) together (default 10)",
    )
    g.add_argument(
        "--llm.base-url",
        dest="llm_base_url",
        default=os.environ.get("LLM_BASE_URL"),
        help="OpenAI-compatible API base, with /v1 (env LLM_BASE_URL; default: no LLM)",
    )
    g.add_argument("--llm.model", dest="llm_model", default=os.environ.get("LLM_MODEL", "gpt-4o-mini"), help="model name (env LLM_MODEL; default gpt-4o-mini)")
    g.add_argument(
        "--llm.key-file", dest="llm_key_file", default=os.environ.get("LLM_KEY_FILE"), metavar="FILE", help="file holding the API key (env LLM_KEY_FILE)"
    )
    g.add_argument(
        "--llm.timeout", dest="llm_timeout", type=float, default=20.0, metavar="SECONDS", help="whole-call timeout; then the rule text stands (default 20)"
    )
    g.add_argument("--llm.max-tokens", dest="llm_max_tokens", type=int, default=300, help="the answer's token budget (default 300)")
    g.add_argument(
        "--llm.prompt-tokens", dest="llm_prompt_tokens", type=int, default=3000, help="the prompt's token budget; facts are cut to fit (default 3000)"
    )
    g.add_argument(
        "--slack.webhook-url-file",
        dest="slack_url_file",
        default=os.environ.get("SLACK_INCIDENTS_WEBHOOK_URL_FILE"),
        metavar="FILE",
        help="file holding a Slack incoming-webhook URL: a follow-up with each incident's explanation (env SLACK_INCIDENTS_WEBHOOK_URL_FILE)",
    )


def settings_from(args: argparse.Namespace) -> IncidentSettings:
    """ValueError naming the flag for a bad value."""
    if args.incidents_retention_days <= 0 or args.incidents_retention_count < 1:
        raise ValueError("--incidents.retention-days and --incidents.retention-count must be positive")
    if args.incidents_settle < 0 or args.llm_timeout <= 0 or args.llm_max_tokens < 1 or args.llm_prompt_tokens < 100:
        raise ValueError("--incidents.settle must be >= 0, --llm.timeout > 0, --llm.max-tokens >= 1, --llm.prompt-tokens >= 100")
    llm = None
    if args.llm_base_url:
        if not args.llm_base_url.startswith(("http://", "https://")):
            raise ValueError(f"--llm.base-url: an http(s) URL, e.g. https://api.openai.com/v1, got {args.llm_base_url[:60]!r}")
        llm = LlmSettings(args.llm_base_url, args.llm_model, args.llm_key_file, args.llm_timeout, args.llm_max_tokens, args.llm_prompt_tokens)
    return IncidentSettings(
        db=args.incidents_db,
        retention_days=args.incidents_retention_days,
        retention_count=args.incidents_retention_count,
        settle_seconds=args.incidents_settle,
        llm=llm,
        slack_url_file=args.slack_url_file,
    )
