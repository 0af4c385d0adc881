"""Write docs/providers.md from the shipped providers.yaml.

    python -m tools.providers_md            # rewrite docs/providers.md
    python -m tools.providers_md --check    # exit 1 when the committed file is out of date

The table's facts come from the loaded registry (endpoints, auth, quota headers, body
error rules, freshness); source and confidence come from the two comment lines above
each provider, which the loader ignores:

    # source: <URL or client-library file>[, <more>] · confidence: V|P|U
    # unconfirmed: <what no source confirmed>
    # checked: <what was looked for, for a fact that was in doubt>
    - name: <provider>

tests/unit/test_providers_md.py fails when the committed file differs from this output.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from exporter.config import DEFAULT_FILE, AuthType, Config, Endpoint, Provider, load_config
from exporter.model import Category, Outcome
from exporter.selection import select

OUTPUT = Path(__file__).resolve().parent.parent / "docs" / "providers.md"
CONFIDENCE = {"V": "confirmed", "P": "partly confirmed", "U": "unconfirmed"}

_PROVIDER = re.compile(r"^  - name: (?P<name>[a-z][a-z0-9_]*)\s*$")
_COMMENT = re.compile(r"^  #\s?(?P<text>.*)$")
_SOURCE = re.compile(r"^source:\s*(?P<sources>.+?)\s*·\s*confidence:\s*(?P<confidence>[VPU])\s*$")
_UNCONFIRMED = re.compile(r"^unconfirmed:\s*(?P<text>.+?)\s*$")
_CHECKED = re.compile(r"^checked:\s*(?P<text>.+?)\s*$")


@dataclass(frozen=True)
class Provenance:
    sources: tuple[str, ...]
    confidence: str
    unconfirmed: str = ""
    checked: str = ""


def read_provenance(text: str) -> dict[str, Provenance]:
    """Provider name -> its source/confidence comment, for every provider that has one."""
    out: dict[str, Provenance] = {}
    comments: list[str] = []
    for line in text.splitlines():
        if (m := _COMMENT.match(line)) is not None:
            comments.append(m["text"].strip())
            continue
        if (m := _PROVIDER.match(line)) is not None:
            found = _provenance(comments)
            if found is not None:
                out[m["name"]] = found
        comments = []
    return out


def _provenance(comments: list[str]) -> Provenance | None:
    source = next((m for c in comments if (m := _SOURCE.match(c)) is not None), None)
    if source is None:
        return None
    unconfirmed = next((m["text"] for c in comments if (m := _UNCONFIRMED.match(c)) is not None), "")
    checked = next((m["text"] for c in comments if (m := _CHECKED.match(c)) is not None), "")
    return Provenance(_split_sources(source["sources"]), source["confidence"], unconfirmed, checked)


def _split_sources(text: str) -> tuple[str, ...]:
    """Comma-separated, but a comma inside parentheses belongs to its source."""
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return tuple(p.strip() for p in parts if p.strip())


# ---------------------------------------------------------------- cells


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _endpoints(p: Provider) -> str:
    rows = []
    for ep in p.endpoints:
        where = ep.path or "/"
        if ep.params:
            where += "?" + "&".join(f"{k}={v}" for k, v in ep.params.items())
        if ep.method.value != "GET":
            rpc = ep.json.get("method") if isinstance(ep.json, dict) else None
            where = f"{ep.method.value} {where}" + (f" `{rpc}`" if rpc else "")
        if ep.chain is not None:  # chain heads (docs/chains.md): the chain, and the node's own host
            host = f" {ep.url.split('://', 1)[1].split('/', 1)[0]}" if ep.url else ""
            where = f"chain_head {ep.chain.name} ({ep.chain.protocol.value}){host}"
        rows.append(f"`{ep.name}` {where} every {_duration(ep.interval)}")
    return "<br>".join(_cell(r) for r in rows)


def _auth(p: Provider) -> str:
    a = p.auth
    if a.type is AuthType.NONE:
        return "none"
    where = {AuthType.QUERY: f"query `{a.name}`", AuthType.HEADER: f"header `{a.name}`", AuthType.PATH: "key in the URL path"}[a.type]
    if a.prefix:
        where += f" `{a.prefix.strip()} …`"
    env = ", ".join(f"`{e}`" for e in a.env)
    return f"{where} from {env}" + (" (optional)" if a.optional else ", **key needed**")


def _quota(p: Provider) -> str:
    parts = []
    for q in p.quota_headers:
        headers = [h for h in (q.limit, q.remaining, q.used, q.reset) if h]
        parts.append(f"{q.scope}: " + ", ".join(f"`{h}`" for h in headers))
    if p.budget is not None:
        parts.append(f"budget {p.budget.requests}/{_duration(p.budget.per)}")
    return "<br>".join(parts) or "—"


def _union(endpoints: Iterable[Endpoint]) -> tuple[list[tuple[int, Outcome]], list[Outcome]]:
    statuses: dict[int, Outcome] = {}
    outcomes: list[Outcome] = []
    for ep in endpoints:
        statuses.update(ep.status_outcomes)
        for rule in ep.error_rules:
            if rule.outcome not in outcomes:
                outcomes.append(rule.outcome)
    return sorted(statuses.items()), outcomes


def _errors(p: Provider) -> str:
    statuses, outcomes = _union(p.endpoints)
    parts = []
    if outcomes:
        ruled = sum(1 for ep in p.endpoints if ep.error_rules)
        scope = "every endpoint" if ruled == len(p.endpoints) else f"{ruled} of {len(p.endpoints)} endpoints"
        parts.append(", ".join(f"`{o.value}`" for o in outcomes) + f" ({scope})")
    if statuses:
        parts.append("HTTP " + ", ".join(f"{code}→`{o.value}`" for code, o in statuses))
    return "<br>".join(parts) or "—"


def _freshness(p: Provider) -> str:
    rows = [f"`{ep.name}`: `{ep.freshness.path.source}` ({ep.freshness.unit.value}, {_duration(ep.freshness.max_age)})" for ep in p.endpoints if ep.freshness]
    return "<br>".join(_cell(r) for r in rows) or "—"


def _source(prov: Provenance | None, p: Provider) -> str:
    if prov is None:
        return p.docs_url or "—"
    links = []
    for s in prov.sources:
        url = s.split(" ", 1)[0]
        label = s.removeprefix("https://")
        links.append(f"[{_cell(label)}]({url})" if url.startswith("https://") else _cell(s))
    return "<br>".join(links)


# ---------------------------------------------------------------- page


def render(config: Config, provenance: dict[str, Provenance]) -> str:
    providers = list(config.providers)
    endpoints = sum(1 for p in providers for ep in p.endpoints if ep.chain is None)
    heads = sum(1 for p in providers for ep in p.endpoints if ep.chain is not None)
    order = list(dict.fromkeys(p.category for p in providers)) + [c for c in Category if c not in {p.category for p in providers}]
    per_category = {c: [p for p in providers if p.category is c] for c in order}
    marks = {m: sum(1 for p in providers if (pv := provenance.get(p.name)) and pv.confidence == m) for m in CONFIDENCE}
    # What `run` does with no key set (exporter/selection.py): the rest is disabled.
    keyless = {p.name for p in select(config.with_providers(tuple(replace(p, auth=replace(p.auth, keys=())) for p in providers))).providers}
    optional = sum(1 for p in providers if p.name in keyless and p.auth.env)
    out = [
        "# Shipped providers",
        "",
        "<!-- Generated by `python -m tools.providers_md` from providers.yaml: do not edit. -->",
        "",
        f"The shipped `providers.yaml` probes **{len(providers)} providers**: **{endpoints} HTTP endpoints** and **{heads} chain heads** in "
        f"{len(per_category)} categories. Each provider carries the source its facts were checked against and a "
        "confidence mark: **V** the endpoints, auth and error/limit facts are confirmed in the cited source, "
        "**P** partly (what is not is listed under *Unconfirmed facts*), **U** nothing could be confirmed. "
        f"Today: {marks['V']} V, {marks['P']} P, {marks['U']} U.",
        "",
        f"With no key set, {len(keyless)} providers run ({optional} of them without their optional key) and "
        f"{len(providers) - len(keyless)} are disabled: their auth column says **key needed**; they are listed and never "
        "probed until one of their key vars is set (docs/configuration.md, *Which providers run*).",
        "",
        "Columns: the endpoints with their path and interval; how the key is sent; the provider's quota "
        "headers (`scope`: headers) and the exporter's own budget; the outcomes the body error rules can "
        "assign and the HTTP codes mapped to an outcome; the freshness path (unit, max age).",
        "",
        "| category | providers | run with no key |",
        "|---|---|---|",
    ]
    for c, members in per_category.items():
        runs = sum(1 for p in members if p.name in keyless)
        out.append(f"| {c.value} | {len(members)}: " + ", ".join(p.name for p in members) + f" | {runs} |")
    for c, members in per_category.items():
        out += [
            "",
            f"## {c.value}",
            "",
            "| provider | endpoints | auth | quota headers | body error rules | freshness | source | confidence |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for p in members:
            prov = provenance.get(p.name)
            mark = prov.confidence if prov else "?"
            out.append(
                f"| **{p.name}**<br>{_cell(p.description)} | {_endpoints(p)} | {_cell(_auth(p))} | {_quota(p)} | {_errors(p)} | "
                f"{_freshness(p)} | {_source(prov, p)} | {mark} |"
            )
    out += ["", "## Facts in doubt that were checked", "", "What was looked for, and found or not (from the `checked:` comments).", ""]
    for p in providers:
        prov = provenance.get(p.name)
        if prov and prov.checked:
            out.append(f"- **{p.name}** ({prov.confidence}): {prov.checked}")
    out += ["", "## Unconfirmed facts", "", "What no source confirmed, by provider (from the `unconfirmed:` comments).", ""]
    for p in providers:
        prov = provenance.get(p.name)
        if prov and prov.unconfirmed:
            out.append(f"- **{p.name}** ({prov.confidence}): {prov.unconfirmed}")
    return "\n".join(out) + "\n"


def generate(path: Path = DEFAULT_FILE) -> str:
    return render(load_config(path, env={}), read_provenance(path.read_text()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 when docs/providers.md is out of date")
    args = parser.parse_args(argv)
    text = generate()
    if args.check:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            sys.stderr.write(f"{OUTPUT} is out of date: run python -m tools.providers_md\n")
            return 1
        return 0
    OUTPUT.write_text(text)
    sys.stderr.write(f"wrote {OUTPUT}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
