"""Reloads and the choice of providers: an `enabled:` or `select:` edit, a key file that
appears or goes, or an extended file that changes all apply on reload without a
restart; each change is logged once; a wrong name keeps the running config."""

from __future__ import annotations

import textwrap
from pathlib import Path

import structlog

from exporter.app import Exporter, file_loader
from exporter.selection import Choice

BASE = """\
providers:
  - name: free
    category: exchanges
    base_url: https://free.test
    endpoints: [{name: ping}]
  - name: paid
    category: explorers
    base_url: https://paid.test
    auth: {type: query, name: apikey, env: PAID_KEY}
    endpoints: [{name: ping}, {name: gas}]
"""


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def plan(exporter: Exporter) -> tuple[list[str], dict[str, str], list[str]]:
    """(probed providers, disabled ones with their reason, scheduled jobs)."""
    config = exporter.config
    return (
        [p.name for p in config.providers],
        {d.name: d.reason.value for d in config.disabled},
        sorted(f"{j.provider}/{j.endpoint}" for j in exporter.jobs()),
    )


def reload(exporter: Exporter) -> tuple[list[str], list[dict[str, object]]]:
    with structlog.testing.capture_logs() as events:
        errors = exporter.reload()
    return errors, [e for e in events if e["event"] in ("provider_disabled", "provider_enabled")]


def test_enabled_and_a_key_file_apply_on_reload_and_each_change_is_logged_once(tmp_path: Path) -> None:
    write(tmp_path / "base.yml", BASE)
    user = write(tmp_path / "user.yml", "extends: base.yml\n")
    key_file = tmp_path / "paid.key"
    env = {"PAID_KEY_FILE": str(key_file)}  # the Docker-secret way: the file may appear later
    with structlog.testing.capture_logs() as events:
        exporter = Exporter(file_loader(str(user), env), process_metrics=False)
    assert plan(exporter) == (["free"], {"paid": "no_key"}, [])
    started = [e for e in events if e["event"] == "provider_disabled"]
    assert started == [
        {
            "event": "provider_disabled",
            "log_level": "info",
            "provider": "paid",
            "category": "explorers",
            "reason": "no_key",
            "env": ["PAID_KEY"],
            "detail": "it needs a key and none is set: set PAID_KEY to probe it",
        }
    ]
    exporter.scheduler.apply(exporter.config)  # as start() does

    # Nothing changed: nothing said.
    assert reload(exporter) == ([], [])

    # The key file appears: the provider runs, with jobs for its endpoints.
    key_file.write_text("a-key-value\n")
    errors, logged = reload(exporter)
    assert errors == [] and [(e["event"], e["provider"]) for e in logged] == [("provider_enabled", "paid")]
    assert plan(exporter) == (["free", "paid"], {}, ["free/ping", "paid/gas", "paid/ping"])
    assert "a-key-value" not in repr(logged)

    # enabled: false in the user's file turns it off again, whatever the key.
    write(user, "extends: base.yml\nproviders:\n  - {name: paid, enabled: false}\n")
    errors, logged = reload(exporter)
    assert errors == [] and [(e["event"], e["provider"], e["reason"]) for e in logged] == [("provider_disabled", "paid", "config")]
    assert plan(exporter) == (["free"], {"paid": "config"}, ["free/ping"])

    # enabled: true with the key gone: probed anyway (auth_error is then deserved).
    key_file.unlink()
    write(user, "extends: base.yml\nproviders:\n  - {name: paid, enabled: true}\n")
    errors, logged = reload(exporter)
    assert errors == [] and [(e["event"], e["provider"]) for e in logged] == [("provider_enabled", "paid")]
    assert plan(exporter)[0] == ["free", "paid"]

    # select: in the file narrows to one category; the other is not configured at all.
    write(user, "extends: base.yml\nselect: {categories: [explorers]}\n")
    errors, logged = reload(exporter)
    assert errors == [] and [(e["event"], e["provider"]) for e in logged] == [("provider_disabled", "paid")]
    assert plan(exporter) == ([], {"paid": "no_key"}, [])
    assert exporter.config.not_selected == ("free",) and set(exporter.state.providers) == set()

    # A wrong name keeps the running config, and says where the mistake is.
    write(user, "extends: base.yml\nselect: {providers: [piad]}\n")
    errors, logged = reload(exporter)
    assert errors == [f"{user}: select.providers[0]: unknown provider 'piad' (did you mean 'paid'?); known: free, paid"]
    assert logged == [] and plan(exporter) == ([], {"paid": "no_key"}, [])


def test_the_command_lines_choice_holds_across_reloads(tmp_path: Path) -> None:
    base = write(tmp_path / "base.yml", BASE)
    exporter = Exporter(file_loader(str(base), {"PAID_KEY": "k"}, Choice(disable=("free",))), process_metrics=False)
    assert plan(exporter)[:2] == (["paid"], {"free": "flag"})
    write(base, BASE.replace("name: free", "name: free\n    enabled: true"))
    assert reload(exporter) == ([], [])  # --disable wins over the file's enabled: true
    assert plan(exporter)[:2] == (["paid"], {"free": "flag"})
