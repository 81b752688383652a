"""The report: written after every run, numbers from the data, renders in headless Chromium offline."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest
from markupsafe import escape
from typer.testing import CliRunner

from analysis import load_run
from analysis.report import analyse, app, render, summary_text, write_report
from market.money import format_money
from tests.conftest import needs_browser


def test_every_run_writes_its_report(smoke_run: Path) -> None:
    text = (smoke_run / "report.html").read_text()
    external = re.findall(r"<script[^>]*\bsrc=", text)
    plots = len(re.findall(r"Plotly\.newPlot", text))
    inlined = len(text) > 1_000_000
    assert external == [] and inlined  # plotly.js is inlined, nothing is fetched
    assert plots == text.count('class="figure"') >= 5


def test_summary_numbers_come_from_the_data(pairs_run: Path) -> None:
    data = load_run(pairs_run)
    a = analyse(data)
    first = summary_text(a)[0]
    assert f"closed {data.deals.height} deals" in first
    assert format_money(int(data.deals["price"].sum())) in first
    seller = a.headline[0]
    assert format_money(round(seller.value)) in summary_text(a)[1]
    eff = a.efficiency["efficiency"]
    assert f"{eff.mean():.1%}" in summary_text(a)[-1]


def test_cli_writes_to_out(pairs_run: Path, tmp_path: Path) -> None:
    target = tmp_path / "r.html"
    result = CliRunner().invoke(app, [str(pairs_run), "--out", str(target)])
    assert result.exit_code == 0, result.output
    assert f"report: {target}" in result.output
    assert target.stat().st_size > 1_000_000  # plotly.js inlined
    bad = CliRunner().invoke(app, [str(tmp_path)])
    assert bad.exit_code == 2 and "not a run folder" in bad.output


@pytest.mark.slow
@needs_browser
def test_report_renders_in_headless_chromium_without_network(
        pairs_run: Path, tmp_path: Path, browser: object) -> None:
    report = write_report([pairs_run], tmp_path / "report.html")
    expected = report.read_text().count('class="figure"')
    errors: list[str] = []
    outside: list[str] = []
    page = browser.new_page()  # type: ignore[attr-defined]
    try:
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

        def only_files(route):  # type: ignore[no-untyped-def]
            if route.request.url.startswith("file:"):
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        page.route("**/*", only_files)
        page.goto(report.as_uri())
        page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {expected}",
                               timeout=30_000)
        plotted = page.evaluate("document.querySelectorAll('.js-plotly-plot').length")
        traces = page.evaluate("Array.from(document.querySelectorAll('.js-plotly-plot')).map(d => d.data.length)")
        heading = page.text_content("h1")
    finally:
        page.close()
    assert errors == [] and outside == []
    assert plotted == expected >= 7
    assert all(n > 0 for n in traces)
    assert heading is not None and "pairs" in heading


def test_single_tier_run_reports_without_tier_effects(smoke_run: Path) -> None:
    data = load_run(smoke_run)
    one = data.participants.with_columns(tier=pl.lit("frontier"))
    from dataclasses import replace

    a = analyse(replace(data, participants=one, deals=data.deals.with_columns(
        seller_tier=pl.lit("frontier"), buyer_tier=pl.lit("frontier"))))
    assert a.contrast is None
    assert any("Only one tier" in line for line in summary_text(a))


HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def test_names_from_a_scenario_are_escaped_in_the_report(pairs_run: Path) -> None:
    """A market, tier and scenario named with markup reach the page as text: tables, captions, headings, lines."""
    from dataclasses import fields, replace

    data = load_run(pairs_run)
    market, tier = data.participants["market"][0], data.tiers[0]
    renamed = {}
    for f in fields(data):
        frame = getattr(data, f.name)
        if isinstance(frame, pl.DataFrame):
            renamed[f.name] = frame.with_columns(
                pl.col(c).replace({market: f"{HOSTILE}market", tier: f"{HOSTILE}tier"})
                for c in frame.columns if c in ("market", "tier", "seller_tier", "buyer_tier"))
    scenario = {**data.scenario, "name": f"{HOSTILE}scenario",
                "markets": [{**m, "name": f"{HOSTILE}market" if m["name"] == market else m["name"]}
                            for m in data.scenario["markets"]]}
    hostile = replace(data, name=f"{HOSTILE}scenario", scenario=scenario,
                      tiers=[f"{HOSTILE}tier" if t == tier else t for t in data.tiers], **renamed)
    page = render(analyse(hostile))
    assert HOSTILE not in page and "<img" not in page and 'alert("x")' not in page  # not as markup anywhere
    text = re.sub(r"<script.*?</script>", "", page, flags=re.S)
    escaped = str(escape(HOSTILE))
    assert f"<h1>Market report: {escaped}scenario</h1>" in text and f"<title>Market report: {escaped}scenario" in text
    assert f"<td>{escaped}market</td>" in text and f"<td>{escaped}tier</td>" in text  # table cells
    assert f"<caption>Headline tier effects: {escaped}tier minus" in text  # a caption
    assert f"scenario “{escaped}scenario”" in text  # a summary paragraph
