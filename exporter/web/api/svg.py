"""Pure SVG renderers for the status page and the badges (issue 16): a shields-like flat
badge, a latency sparkline, and the thresholds that color them.

No I/O, no state: text in, SVG text out, so tests parse the output with an XML parser.
Every text that reaches the SVG goes through `xml_text` (escaped, control characters
dropped: XML 1.0 forbids them even as references)."""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from enum import StrEnum

from ...model import ProviderStatus

# XML 1.0 allows tab, LF, CR and everything from U+0020 on (minus surrogates and U+FFFE/F).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
BADGE_HEIGHT = 20
BADGE_PAD = 6  # px left and right of each half's text, as shields' flat style
FONT = "Verdana,Geneva,DejaVu Sans,sans-serif"


class Color(StrEnum):
    """shields.io's named colors (badge-maker's palette), so badges look at home next to theirs."""

    BRIGHTGREEN = "#4c1"
    GREEN = "#97ca00"
    YELLOW = "#dfb317"
    ORANGE = "#fe7d37"
    RED = "#e05d44"
    BLUE = "#007ec6"
    GREY = "#9f9f9f"
    LABEL = "#555"


def xml_text(text: str) -> str:
    """`text` safe inside an XML (or HTML) element or a quoted attribute."""
    return html.escape(_NOT_XML.sub("", text), quote=True)


# Advance widths of Verdana 11px (the font shields measures with), rounded to 0.5 px; a
# character not listed counts as a lower-case letter. An estimate: a badge a pixel too
# wide or narrow still reads well; a real font measure would need the font file.
_WIDTHS: dict[str, float] = {
    **dict.fromkeys("iljI.,:;!|'", 3.5),
    **dict.fromkeys("frt()[]{}/\\ -", 4.5),
    **dict.fromkeys("abcdeghknopqsuvxyz0123456789_$#?", 7.0),
    **dict.fromkeys("ABCDEFGHJKLNOPQRSTUVXYZ&", 7.5),
    **dict.fromkeys("mwMW%@", 10.5),
}
_DEFAULT_WIDTH = 7.0


def text_width(text: str) -> float:
    """Estimated width in px of `text` in Verdana 11px."""
    return sum(_WIDTHS.get(ch, _DEFAULT_WIDTH) for ch in text)


def badge(label: str, message: str, color: str) -> str:
    """A shields-like flat badge: `label` on grey, `message` on `color`. Valid standalone
    SVG with width, height and viewBox, a <title> and aria-label for screen readers."""
    label_w = math.ceil(text_width(label)) + 2 * BADGE_PAD
    msg_w = math.ceil(text_width(message)) + 2 * BADGE_PAD
    width = label_w + msg_w
    alt = xml_text(f"{label}: {message}")
    lab, msg = xml_text(label), xml_text(message)
    lx, mx = label_w / 2, label_w + msg_w / 2
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{BADGE_HEIGHT}" viewBox="0 0 {width} {BADGE_HEIGHT}" role="img" aria-label="{alt}">'
        f"<title>{alt}</title>"
        '<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>'
        f'<clipPath id="r"><rect width="{width}" height="{BADGE_HEIGHT}" rx="3" fill="#fff"/></clipPath>'
        f'<g clip-path="url(#r)"><rect width="{label_w}" height="{BADGE_HEIGHT}" fill="{Color.LABEL}"/>'
        f'<rect x="{label_w}" width="{msg_w}" height="{BADGE_HEIGHT}" fill="{xml_text(color)}"/>'
        f'<rect width="{width}" height="{BADGE_HEIGHT}" fill="url(#s)"/></g>'
        f'<g fill="#fff" text-anchor="middle" font-family="{FONT}" font-size="11">'
        f'<text x="{lx:g}" y="15" fill="#010101" fill-opacity=".3">{lab}</text><text x="{lx:g}" y="14">{lab}</text>'
        f'<text x="{mx:g}" y="15" fill="#010101" fill-opacity=".3">{msg}</text><text x="{mx:g}" y="14">{msg}</text></g></svg>'
    )


# ---------------------------------------------------------------- thresholds


def status_color(status: ProviderStatus, maintenance: bool = False) -> Color:
    if maintenance:
        return Color.BLUE
    return {
        ProviderStatus.ONLINE: Color.BRIGHTGREEN,
        ProviderStatus.DEGRADED: Color.YELLOW,
        ProviderStatus.OFFLINE: Color.RED,
    }.get(status, Color.GREY)


# (lowest percent, color), best first: 99.9 % is "three nines", 99 % a bad day's worth.
UPTIME_STEPS: tuple[tuple[float, Color], ...] = ((99.9, Color.BRIGHTGREEN), (99.0, Color.GREEN), (95.0, Color.YELLOW), (90.0, Color.ORANGE))
# (highest milliseconds, color), fastest first.
LATENCY_STEPS: tuple[tuple[float, Color], ...] = ((250, Color.BRIGHTGREEN), (500, Color.GREEN), (1000, Color.YELLOW), (2000, Color.ORANGE))


def uptime_color(ratio: float | None) -> Color:
    if ratio is None:
        return Color.GREY
    pct = 100 * ratio
    return next((color for low, color in UPTIME_STEPS if pct >= low), Color.RED)


def latency_color(seconds: float | None) -> Color:
    if seconds is None:
        return Color.GREY
    millis = 1000 * seconds
    return next((color for high, color in LATENCY_STEPS if millis < high), Color.RED)


def format_uptime(ratio: float | None) -> str:
    """`99.95%`; truncated, not rounded: 99.996 % is not 100 % (a failed probe happened)."""
    if ratio is None:
        return "no data"
    if ratio >= 1:
        return "100%"
    return f"{math.floor(max(ratio, 0.0) * 10000) / 100:.2f}%"


def format_latency(seconds: float | None) -> str:
    if seconds is None:
        return "no data"
    millis = 1000 * seconds
    return f"{millis:.0f} ms" if millis < 10_000 else f"{seconds:.1f} s"


# ---------------------------------------------------------------- sparkline

SPARK_WIDTH = 120
SPARK_HEIGHT = 28
_SPARK_PAD = 2.0


def sparkline(values: Sequence[float | None], label: str, width: int = SPARK_WIDTH, height: int = SPARK_HEIGHT) -> str:
    """Inline SVG of `values` (oldest first, evenly spaced; None is a gap). The y axis
    spans the values' own min to max, so a change shows; `label` becomes the accessible
    name. A lone point between gaps is a dot; no data at all is an empty frame."""
    known = [v for v in values if v is not None and math.isfinite(v)]
    head = (
        f'<svg class="spark" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{xml_text(label)}"><title>{xml_text(label)}</title>'
    )
    if not known:
        return head + f'<line x1="0" y1="{height - 1}" x2="{width}" y2="{height - 1}" stroke="currentColor" stroke-opacity=".3" stroke-dasharray="2 3"/></svg>'
    lo, hi = min(known), max(known)
    span = hi - lo
    n = len(values)
    step = (width - 2 * _SPARK_PAD) / max(n - 1, 1)

    def y(v: float) -> float:
        if span == 0:
            return height / 2
        return _SPARK_PAD + (height - 2 * _SPARK_PAD) * (1 - (v - lo) / span)

    parts: list[str] = []
    run: list[tuple[float, float]] = []
    for i, v in enumerate([*values, None]):  # a trailing gap flushes the last run
        if v is not None and math.isfinite(v):
            run.append((_SPARK_PAD + i * step if n > 1 else width / 2, y(v)))
            continue
        if len(run) == 1:
            parts.append(f'<circle cx="{run[0][0]:.1f}" cy="{run[0][1]:.1f}" r="1.5" fill="currentColor"/>')
        elif run:
            points = " ".join(f"{x:.1f},{yy:.1f}" for x, yy in run)
            parts.append(f'<polyline points="{points}" fill="none" stroke="currentColor" stroke-width="1.5" stroke-linejoin="round"/>')
        run = []
    return head + "".join(parts) + "</svg>"
