"""The watch page in real headless Chromium: a replayed run, and a run the engine is running."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from market.ledger import Ledger
from running import runner
from running.runfolder import RunFolder
from tests.conftest import needs_browser
from watch.controls import SPEEDS, Controls
from watch.live import LiveServer
from watch.replay import LedgerWatch
from watch.server import WatchServer

pytestmark = pytest.mark.slow
CLOCK = "document.querySelector('#clock').textContent"


@contextmanager
def opened(browser: object, url: str) -> Iterator[tuple[object, list[str]]]:
    """A page at ``url`` and the console errors it logs (closed before the server stops)."""
    page = browser.new_page(viewport={"width": 1400, "height": 1100})  # type: ignore[attr-defined]
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    try:
        yield page, errors
    finally:
        page.close()


@needs_browser
def test_replayed_run_clock_deals_pause_and_market_switch(smoke_run: RunFolder, browser: object,
                                                           artifacts: Path) -> None:
    controls = Controls(market="", speed=SPEEDS["1 h/s"], paused=True)
    watch = LedgerWatch(smoke_run, controls)
    server = WatchServer(watch.hub, controls).start()
    watch.start()
    try:
        with opened(browser, server.url) as (page, errors):
            page.wait_for_function(f"{CLOCK} === 'day 1 · 00:00'")
            assert page.inner_text("#status") == "paused"
            assert page.inner_text("#n-participants") == "8"
            page.click("#step")  # to the first batch of the day
            page.wait_for_function(f"{CLOCK}.startsWith('day 1 · 09')")
            page.click("#resume")
            page.wait_for_selector("#deals tbody tr", timeout=20_000)
            first = page.inner_text("#deals tbody tr")
            assert "$" in first and ("frontier" in first or "small" in first)
            page.click("#pause")
            page.wait_for_function("document.querySelector('#status').textContent === 'paused'")
            held = page.inner_text("#clock")
            time.sleep(1.5)
            assert page.inner_text("#clock") == held, "pause stops the clock"
            assert held > "day 1 · 09:00"

            page.click("#deals tbody tr")  # the deal's listing: its haggling, ending in the sale
            listing = page.get_attribute("#deals tbody tr", "data-listing")
            page.wait_for_function(f"document.querySelector('#thread-title').textContent.startsWith('{listing}:')")
            assert "sold for $" in page.inner_text("#thread")

            page.wait_for_function("document.body.dataset.figures.startsWith('A/')")
            assert page.evaluate("document.getElementById('fig-activity').data[0].name") == "market A"
            page.select_option("#market", "B")
            page.wait_for_function("document.body.dataset.figures.startsWith('B/')")
            assert page.evaluate("document.getElementById('fig-activity').data[0].name") == "market B"
            assert page.inner_text("#clock") == held, "switching market does not move the clock"
            tiers = page.evaluate("document.getElementById('fig-tiers').data.map(t => t.name)")
            assert set(tiers) == {"frontier"}, "market B is all frontier"

            page.select_option("#speed", "max")
            page.click("#resume")
            page.wait_for_function("document.querySelector('#status').textContent === 'complete'")
            with Ledger(smoke_run.ledger) as ledger:
                deals_b = ledger.replay("B").deals
            assert page.inner_text("#n-deals") == str(len(deals_b))
            page.screenshot(path=str(artifacts / "replay.png"), full_page=True)
            assert errors == []
    finally:
        watch.stop()
        server.stop()


@needs_browser
def test_live_run_paused_stepped_and_resumed_in_the_page(two_markets: Path, smoke_run: RunFolder, tmp_path: Path,
                                                          browser: object, artifacts: Path) -> None:
    live = LiveServer(paused=True)
    out = tmp_path / "live"
    folder = RunFolder.create(tmp_path, "live", exact=out)
    prepared = runner.plan(two_markets, run_dir=out)
    results: list[runner.RunResult] = []
    engine = threading.Thread(target=lambda: results.append(runner.start(
        prepared, folder, on_batch=live.watch.chain(None, "live"), after_run=False)))
    try:
        with opened(browser, live.url) as (page, errors):
            engine.start()
            page.wait_for_function(f"{CLOCK}.startsWith('day 1 · 09')")
            assert page.inner_text("#status") == "paused"
            before = page.inner_text("#clock")
            page.click("#step")
            page.wait_for_function(f"{CLOCK} !== '{before}'")
            page.click("#resume")
            engine.join(timeout=60)
            live.watch.finish("complete")
            page.wait_for_function("document.querySelector('#status').textContent === 'complete'")
            assert int(page.inner_text("#n-deals")) == results[0].summary.markets[0].deals
            page.screenshot(path=str(artifacts / "live.png"), full_page=True)
            assert errors == []
    finally:
        live.controls.apply({"action": "resume"})
        engine.join(timeout=60)
        live.close()
    with Ledger(folder.ledger) as watched, Ledger(smoke_run.ledger) as plain:
        assert list(watched.export_lines()) == list(plain.export_lines()), "watching changed the run"


def test_the_page_is_its_package_files_put_together() -> None:
    """HTML, CSS and JavaScript are files in ``watch/static`` (package data), inlined into one document."""
    import tomllib
    from fnmatch import fnmatch
    from importlib import resources

    from watch.page import page_html

    static = resources.files("watch") / "static"
    html = page_html().decode("utf-8")
    for name in ("page.css", "page.js"):
        assert (static / name).read_text(encoding="utf-8").strip() in html
    assert "/*PAGE_CSS*/" not in html and "/*PAGE_JS*/" not in html and "/*PLOTLY_JS*/" not in html
    assert html.count("<script") == html.count("</script>") == 2
    root = Path(__file__).resolve().parents[2]
    globs = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"][
        "package-data"]["watch"]
    files = [p.name for p in (root / "watch" / "static").iterdir()]
    assert files and all(any(fnmatch(f"static/{f}", g) for g in globs) for f in files), "package-data misses a file"
