"""Which configured providers an exporter probes: one pure function from a loaded
config, the command line's choice and the keys found in the environment (already read
into each provider's `auth.keys` by the loader) to the plan it runs.

For each provider of the file, in order:

1. **Selected?** `--providers`/`--categories` (or, without them, the file's `select:`)
   name the providers to run, by name or category (either way in). A provider left out
   is not part of the plan at all: no probe, no series, no row in the JSON API, as if
   the file did not list it. Without any selection, every provider is selected.
2. **Forced?** `--enable`/`--disable` (or, without them, the provider's `enabled:`)
   turn it on or off whatever its keys.
3. **Otherwise automatic**: a provider that needs a key (auth, not `optional`) and has
   none of its env vars set is *disabled*: configured, shown (status `disabled`, in
   `crypto_api_provider_info` and `/api/providers`), never probed, never counted down.
   Keyless providers, optional-key ones and those with a key run.

Names and categories the command line gives are checked against the file: a mistake is
a ConfigError naming it and listing the valid values, never an empty exporter.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from .config import Config, ConfigError, Disabled, Provider, Selection, unknown_name
from .model import Category, DisabledReason


@dataclass(frozen=True)
class Choice:
    """What the command line asks for; empty tuples: the flag was not given."""

    providers: tuple[str, ...] = ()  # --providers
    categories: tuple[str, ...] = ()  # --categories (checked here, so the message is ours)
    enable: tuple[str, ...] = ()  # --enable: probed even without a key
    disable: tuple[str, ...] = ()  # --disable: never probed


def select(config: Config, choice: Choice = Choice()) -> Config:
    """The plan: `providers` are probed, `disabled` are configured but not probed,
    `not_selected` names the providers the selection left out. Raises ConfigError for a
    name or category of `choice` that the file does not have."""
    selection = _selection(config, choice)
    selected = [p for p in config.providers if selection.picks(p)]
    forced = _forced(choice, config, {p.name for p in selected})
    running: list[Provider] = []
    disabled: list[Disabled] = []
    warnings = list(config.warnings)
    for p in selected:
        on = forced.get(p.name, p.enabled)
        missing = p.auth.requires_key and not p.auth.keys
        if on is False:
            disabled.append(Disabled(p, DisabledReason.FLAG if p.name in forced else DisabledReason.CONFIG))
        elif on is None and missing:
            disabled.append(Disabled(p, DisabledReason.NO_KEY))
        else:
            if missing:
                how = "--enable" if p.name in forced else "enabled: true"
                warnings.append(
                    f"providers[{p.name}].auth.env: none of {', '.join(p.auth.env)} is set; {how} probes it anyway, and its probes will fail with auth_error"
                )
            running.append(p)
    left_out = tuple(p.name for p in config.providers if not selection.picks(p))
    return replace(config, providers=tuple(running), disabled=tuple(disabled), not_selected=left_out, warnings=tuple(warnings))


def _selection(config: Config, choice: Choice) -> Selection:
    """The command line's selection, checked; else the file's (checked at load)."""
    if not choice.providers and not choice.categories:
        return config.select
    errors = _unknown("--providers", "provider", choice.providers, (p.name for p in config.providers))
    errors += _unknown("--categories", "category", choice.categories, (c.value for c in Category))
    if errors:
        raise ConfigError(errors)
    return Selection(choice.providers, tuple(Category(c) for c in choice.categories))


def _forced(choice: Choice, config: Config, selected: set[str]) -> dict[str, bool]:
    """--enable and --disable by provider name; each name must be a selected provider."""
    errors = [f"--enable and --disable both name {name!r}: pick one" for name in sorted(set(choice.enable) & set(choice.disable))]
    every = [p.name for p in config.providers]
    for flag, names in (("--enable", choice.enable), ("--disable", choice.disable)):
        for name in names:
            if name not in every:
                errors.append(f"{flag}: {unknown_name('provider', name, every)}")
            elif name not in selected:
                errors.append(f"{flag}: {name!r} is not among the selected providers; selected: {', '.join(sorted(selected)) or 'none'}")
    if errors:
        raise ConfigError(errors)
    return {**dict.fromkeys(choice.enable, True), **dict.fromkeys(choice.disable, False)}


def _unknown(flag: str, what: str, given: Iterable[str], known: Iterable[str]) -> list[str]:
    valid = list(known)
    return [f"{flag}: {unknown_name(what, name, valid)}" for name in given if name not in valid]


def why(disabled: Disabled) -> str:
    """Why a provider is not probed and how to change it, for check-config and the log."""
    env = disabled.provider.auth.env
    if disabled.reason is DisabledReason.NO_KEY:
        return f"it needs a key and none is set: set {' or '.join(env)} to probe it"
    if disabled.reason is DisabledReason.CONFIG:
        return "enabled: false in the file"
    return "--disable on the command line"
