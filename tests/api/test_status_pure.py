"""The status page's and badges' pure parts (issue 16): SVG renderers, thresholds, the
in-memory uptime book, incident selection, and the page renderer's escaping."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest

from exporter.model import Category, Maintenance, MaintenanceState, ProviderStatus
from exporter.web.api.status_page import (
    RECENT_INCIDENTS,
    IncidentBrief,
    PageView,
    ProviderLine,
    overall,
    render_page,
    select_incidents,
)
from exporter.web.api.svg import (
    Color,
    badge,
    format_latency,
    format_uptime,
    latency_color,
    sparkline,
    status_color,
    text_width,
    uptime_color,
    xml_text,
)
from exporter.web.api.uptime import (
    NO_HISTORY,
    SPARK_POINTS,
    ProviderHistory,
    StatusHistory,
    Uptime,
    UptimeBook,
    Window,
    by_provider,
    spark_by_provider,
    uptime_expr,
)

SVG_NS = "{http://www.w3.org/2000/svg}"
T0 = 1_800_000_000.0  # a bucket boundary of every ring (divisible by 3600)


def parse_svg(text: str) -> ET.Element:
    root = ET.fromstring(text)
    assert root.tag == f"{SVG_NS}svg"
    return root


# ---------------------------------------------------------------- badges


@pytest.mark.parametrize(("label", "message"), [("binance", "online"), ("uptime 7d", "99.95%"), ("a&b <c>", 'q"uote\x00\x07'), ("", "")])
def test_badge_is_valid_svg_with_its_size(label: str, message: str) -> None:
    root = parse_svg(badge(label, message, Color.GREEN))
    width = int(root.attrib["width"])
    assert root.attrib["height"] == "20"
    assert root.attrib["viewBox"] == f"0 0 {width} 20"
    assert width >= 24  # both halves keep their padding
    texts = [t.text or "" for t in root.iter(f"{SVG_NS}text")]
    clean = xml_text(label)  # the control characters are gone, the rest kept
    assert texts.count(label.replace("\x00", "").replace("\x07", "")) == 2 or clean == ""
    assert root.find(f"{SVG_NS}title") is not None


def test_badge_width_follows_the_text() -> None:
    short = int(parse_svg(badge("x", "ok", Color.GREEN)).attrib["width"])
    long = int(parse_svg(badge("x", "a much longer message", Color.GREEN)).attrib["width"])
    assert long - short == pytest.approx(text_width("a much longer message") - text_width("ok"), abs=2)
    assert text_width("mmm") > text_width("iii")


@pytest.mark.parametrize(
    ("ratio", "color", "text"),
    [
        (None, Color.GREY, "no data"),
        (1.0, Color.BRIGHTGREEN, "100%"),
        (0.99996, Color.BRIGHTGREEN, "99.99%"),  # truncated: never 100 % with a failure in it
        (0.995, Color.GREEN, "99.50%"),
        (0.97, Color.YELLOW, "97.00%"),
        (0.91, Color.ORANGE, "91.00%"),
        (0.5, Color.RED, "50.00%"),
    ],
)
def test_uptime_thresholds(ratio: float | None, color: Color, text: str) -> None:
    assert uptime_color(ratio) is color
    assert format_uptime(ratio) == text


@pytest.mark.parametrize(
    ("seconds", "color", "text"),
    [
        (None, Color.GREY, "no data"),
        (0.1, Color.BRIGHTGREEN, "100 ms"),
        (0.3, Color.GREEN, "300 ms"),
        (0.8, Color.YELLOW, "800 ms"),
        (1.5, Color.ORANGE, "1500 ms"),
        (12.0, Color.RED, "12.0 s"),
    ],
)
def test_latency_thresholds(seconds: float | None, color: Color, text: str) -> None:
    assert latency_color(seconds) is color
    assert format_latency(seconds) == text


@pytest.mark.parametrize(
    ("status", "maintenance", "color"),
    [
        (ProviderStatus.ONLINE, False, Color.BRIGHTGREEN),
        (ProviderStatus.DEGRADED, False, Color.YELLOW),
        (ProviderStatus.OFFLINE, False, Color.RED),
        (ProviderStatus.UNKNOWN, False, Color.GREY),
        (ProviderStatus.DISABLED, False, Color.GREY),
        (ProviderStatus.OFFLINE, True, Color.BLUE),
    ],
)
def test_status_colors(status: ProviderStatus, maintenance: bool, color: Color) -> None:
    assert status_color(status, maintenance) is color


# ---------------------------------------------------------------- sparkline


def test_sparkline_lines_gaps_and_dots() -> None:
    root = parse_svg(sparkline([1.0, 2.0, None, 3.0, None, 0.5, 0.5], "x <latency>"))
    lines = root.findall(f"{SVG_NS}polyline")
    dots = root.findall(f"{SVG_NS}circle")
    assert [len(p.attrib["points"].split()) for p in lines] == [2, 2]  # 1-2, then 0.5-0.5
    assert len(dots) == 1  # the lone 3.0
    ys = [float(pt.split(",")[1]) for p in lines for pt in p.attrib["points"].split()]
    assert max(ys) <= 28 and min(ys) >= 0
    assert float(dots[0].attrib["cy"]) == pytest.approx(2.0)  # the highest value sits at the top
    assert root.attrib["aria-label"] == "x <latency>"


def test_sparkline_without_data_is_an_empty_frame() -> None:
    root = parse_svg(sparkline([None] * 5, "none"))
    assert not root.findall(f"{SVG_NS}polyline") and not root.findall(f"{SVG_NS}circle")
    assert root.find(f"{SVG_NS}line") is not None


def test_sparkline_flat_series_is_drawn_mid_height() -> None:
    root = parse_svg(sparkline([0.2, 0.2, 0.2], "flat"))
    ys = {pt.split(",")[1] for pt in root.find(f"{SVG_NS}polyline").attrib["points"].split()}  # type: ignore[union-attr]
    assert ys == {"14.0"}


# ---------------------------------------------------------------- the memory book


def test_book_uptime_and_latency_over_windows() -> None:
    book = UptimeBook()
    # 8 days: one failure in each of the first two days, a probe per hour otherwise fine.
    for h in range(8 * 24):
        book.add("p", T0 + h * 3600, ok=h not in (1, 30), latency=0.1 if h < 7 * 24 else 0.3)
    now = T0 + (8 * 24 - 1) * 3600 + 60
    hist = book.history("p", now)
    assert hist.uptime[Window.DAY] == Uptime(1.0, 24 * 3600)
    week = hist.uptime[Window.WEEK]
    assert week.ratio == pytest.approx(167 / 168)  # hour 30 is in, hour 1 is over 7 d old
    assert hist.latency == pytest.approx(0.3)
    assert len(hist.spark) == SPARK_POINTS
    assert hist.spark[-1] == pytest.approx(0.3)
    assert hist.spark.count(None) == SPARK_POINTS // 2  # one probe an hour: every other half-hour is empty


def test_book_counts_failures_and_knows_its_coverage() -> None:
    book = UptimeBook()
    for i in range(10):
        book.add("p", T0 + i * 60, ok=i != 3, latency=None if i == 3 else 0.2)
    hist = book.history("p", T0 + 600)
    assert hist.uptime[Window.DAY].ratio == pytest.approx(0.9)
    assert hist.uptime[Window.DAY].covered == 600
    assert hist.uptime[Window.WEEK].covered == 600
    assert hist.latency == pytest.approx(0.2)


def test_book_forgets_old_buckets_and_late_results() -> None:
    book = UptimeBook()
    book.add("p", T0, ok=False, latency=1.0)
    book.add("p", T0 + 2 * 24 * 3600, ok=True, latency=0.1)  # two days on: the day window has only this
    book.add("p", T0 + 3600, ok=False, latency=9.0)  # a straggler older than the 24 h ring: never read there
    now = T0 + 2 * 24 * 3600 + 1
    hist = book.history("p", now)
    assert hist.uptime[Window.DAY].ratio == 1.0
    assert hist.latency == pytest.approx(0.1)
    assert hist.uptime[Window.WEEK].ratio == pytest.approx(1 / 3)


def test_book_is_bounded_by_the_config() -> None:
    book = UptimeBook()
    book.add("a", T0, ok=True, latency=0.1)
    book.add("b", T0, ok=True, latency=0.1)
    book.retain(["a"])
    assert list(book.books) == ["a"]
    assert book.history("b", T0) is NO_HISTORY


# ---------------------------------------------------------------- Prometheus answers


def test_prometheus_vectors_by_provider() -> None:
    vector = [
        {"metric": {"provider": "a"}, "value": [1, "0.99"]},
        {"metric": {"provider": "b"}, "value": [1, "NaN"]},  # 0/0: no probe counted
        {"metric": {}, "value": [1, "1"]},
        "junk",
        {"metric": {"provider": "c"}, "value": [1]},
    ]
    assert by_provider(vector) == {"a": 0.99}  # type: ignore[arg-type]
    matrix = [{"metric": {"provider": "a"}, "values": [[100, "0.1"], [300, "0.3"], [400, "+Inf"]]}]
    assert spark_by_provider(matrix, [100, 200, 300, 400]) == {"a": (0.1, None, 0.3, None)}


def test_uptime_expr_names_the_contract_metrics() -> None:
    expr = uptime_expr(Window.WEEK)
    assert "crypto_api_probes_total" in expr and "[7d]" in expr and "crypto_api_up" in expr and 'outcome!="budget_exhausted"' in expr


# ---------------------------------------------------------------- incidents


def brief(id: str, status: str, started: float, resolved: float | None = None) -> IncidentBrief:
    return {"id": id, "title": id, "status": status, "severity": "warning", "started_at": started, "resolved_at": resolved, "providers": [], "explanation": ""}  # type: ignore[typeddict-item]


def test_incidents_open_first_then_recently_resolved() -> None:
    now = T0
    got = select_incidents(
        [
            brief("old", "resolved", now - 2 * RECENT_INCIDENTS, now - 2 * RECENT_INCIDENTS),
            brief("r1", "resolved", now - 500, now - 100),
            brief("o1", "open", now - 900),
            brief("o2", "open", now - 60),
            brief("r2", "resolved", now - 900, now - 800),
        ],
        now,
    )
    assert [b["id"] for b in got] == ["o2", "o1", "r1", "r2"]


# ---------------------------------------------------------------- the page


class Collect(HTMLParser):
    """Tags and text of a rendered page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def line(name: str, status: ProviderStatus, maintenance: bool = False, category: Category = Category.EXCHANGES) -> ProviderLine:
    report = Maintenance(MaintenanceState.ONGOING, T0 - 60, T0 + 3600, "upgrade <b>now</b>") if maintenance else None
    return ProviderLine(name, category, status, report, maintenance, ProviderHistory({w: Uptime(0.999, w.seconds) for w in Window}, 0.2, (0.1, 0.2) * 24))


def test_page_escapes_every_outside_text() -> None:
    hostile = brief("i<1>", "open", T0 - 60)
    hostile["title"] = "<script>alert(1)</script>"
    hostile["explanation"] = '<img src="http://example.com/x">\nline two'
    hostile["severity"] = "<b>critical</b>"
    hostile["providers"] = ["<svg onload=alert(1)>"]
    view = PageView(T0, [line("okx", ProviderStatus.ONLINE, maintenance=True)], [], StatusHistory("memory", {}), [hostile], None, T0 - 3600)
    page = render_page(view)
    parsed = Collect()
    parsed.feed(page)
    assert "script" not in parsed.tags and "img" not in parsed.tags and "b" not in parsed.tags
    text = "".join(parsed.text)
    assert "<script>alert(1)</script>" in text and '<img src="http://example.com/x">' in text and "upgrade <b>now</b>" in text
    assert "http://example.com" not in page.replace("&quot;http://example.com/x&quot;", "")  # only as text


def test_an_incidents_providers_link_to_their_rows() -> None:
    incident = brief("7", "open", T0 - 60)
    incident["providers"] = ["okx", "kraken"]
    view = PageView(T0, [line("okx", ProviderStatus.OFFLINE), line("kraken", ProviderStatus.OFFLINE)], [], StatusHistory("memory", {}), [incident])
    page = render_page(view)
    for name in ("okx", "kraken"):
        assert f'<a href="#p-{name}">{name}</a>' in page and f'id="p-{name}"' in page


def test_page_shows_categories_disabled_apart_and_the_source() -> None:
    view = PageView(
        T0,
        [line("kraken", ProviderStatus.OFFLINE), line("etherscan", ProviderStatus.ONLINE, category=Category.EXPLORERS)],
        [("coinpaprika", None)],
        StatusHistory("prometheus", {}, None),
        [],
    )
    page = render_page(view)
    assert page.index('id="c-explorers"') < page.index('id="c-exchanges"')  # Category's order, as /api/categories
    assert 'data-disabled="coinpaprika"' in page and 'data-provider="coinpaprika"' not in page
    assert "No incidents recorded." in page
    assert "from Prometheus" in page
    assert "99.90%" in page and "200 ms" in page
    assert "<meta name='viewport'" in page


def test_page_shows_a_prometheus_warning() -> None:
    view = PageView(T0, [], [], StatusHistory("memory", {}, "Prometheus answered HTTP 500; <memory>"), [], "incidents are unavailable right now")
    page = render_page(view)
    assert "Prometheus answered HTTP 500; &lt;memory&gt;" in page
    assert "incidents are unavailable right now" in page


@pytest.mark.parametrize(
    ("statuses", "maintenance", "kind", "sentence"),
    [
        ([], [], "idle", "No provider is monitored"),
        ([ProviderStatus.ONLINE] * 3, [], "ok", "All systems operational"),
        ([ProviderStatus.UNKNOWN] * 2, [], "idle", "Waiting for the first probes"),
        ([ProviderStatus.ONLINE, ProviderStatus.DEGRADED], [], "warn", "Degraded service: 1 provider impaired"),
        ([ProviderStatus.OFFLINE, ProviderStatus.OFFLINE], [], "bad", "Major outage: 2 providers down"),
        ([ProviderStatus.OFFLINE, ProviderStatus.ONLINE, ProviderStatus.DEGRADED], [], "bad", "Partial outage: 1 provider down, 1 degraded"),
        ([ProviderStatus.OFFLINE, ProviderStatus.ONLINE], [0], "info", "Maintenance: 1 provider"),  # down, but announced
    ],
)
def test_overall_banner(statuses: list[ProviderStatus], maintenance: list[int], kind: str, sentence: str) -> None:
    lines = [line(f"p{i}", s, maintenance=i in maintenance) for i, s in enumerate(statuses)]
    assert overall(lines) == (kind, sentence)


def test_no_history_is_drawn_as_no_data() -> None:
    view = PageView(T0, [ProviderLine("x", Category.NEWS, ProviderStatus.UNKNOWN, None, False, NO_HISTORY)], [], StatusHistory("memory", {}), [])
    page = render_page(view)
    assert page.count("no data") == 3  # 24 h, 7 d, latency
