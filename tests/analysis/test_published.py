"""Published against simulated: a run of a scenario naming a targets file shows each published figure beside
the simulated one, in the terminal and first in the report; a scenario without targets shows none."""

from __future__ import annotations

import math
import shutil
from html.parser import HTMLParser
from pathlib import Path

import yaml

from analysis.load import load_runs
from analysis.moments import run_moments
from analysis.report import analyse, summary_text
from market.scenario import load_scenario
from market.targets import PUBLISHED_FILE, TARGETS_FILE, compare, read_published, read_targets
from studies.factors import apply, write_resolved
from tests.conftest import SCENARIOS, run_cli

TARGETS = SCENARIOS / "targets" / "project_deal.yaml"


class Tables(HTMLParser):
    """Every table's rows (cell texts) by the table's class, and the order of the h2 headings."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.headings: list[str] = []
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._h2 = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._table = dict(attrs).get("class") or f"table{len(self.tables)}"
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "h2":
            self._h2 = True
            self.headings.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None
        elif tag == "h2":
            self._h2 = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._h2:
            self.headings[-1] += data


def small_deal(tmp_path: Path) -> Path:
    """deal.yaml made small (16 people, two days, the same four markets), naming the published targets.

    Two days: in the calibrated week items arrive up to 1.55 days after their person, and one day leaves no
    item sold by both tiers (too few pairs for the bootstrap); two leave about 15."""
    scenario, catalog = load_scenario(SCENARIOS / "deal.yaml")
    small = apply(scenario, catalog, {"days": 2, "participants.generate.count": 16}, "test")
    path = write_resolved(small, SCENARIOS / "catalog.csv", tmp_path / "mini")
    shutil.copyfile(TARGETS, path.parent / "published.yaml")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    path.write_text(yaml.safe_dump({**data, "targets": "published.yaml"}, sort_keys=False), encoding="utf-8")
    return path


def parse(report: Path) -> Tables:
    tables = Tables()
    tables.feed(report.read_text(encoding="utf-8"))
    return tables


def test_a_run_naming_targets_compares_them_in_the_terminal_and_first_in_the_report(tmp_path: Path) -> None:
    out = run_cli(small_deal(tmp_path), "--out", tmp_path / "run")
    assert out.returncode == 0, out.stderr
    run = tmp_path / "run"
    assert (run / TARGETS_FILE).read_bytes() == TARGETS.read_bytes()  # the run folder holds what it compared with
    assert "published (project_deal) against simulated" in out.stdout
    assert "Against the published figures (project_deal):" in out.stdout
    published = read_published(run)
    assert published is not None
    rows = {r.moment: r for r in published.rows}
    assert list(rows) == [m.name for m in read_targets(TARGETS).moments]
    # the same moments the calibration fits, from the calibration's code
    simulated = run_moments(run, read_targets(TARGETS).moments)
    for name, value in simulated.items():
        assert rows[name].simulated == value or (math.isnan(value) and rows[name].simulated is None)
    assert rows["fairness_mean"].verdict() == "not simulated" and rows["style_effect"].inside is None
    assert rows["deals_run_a"].interval == "point" and rows["deals_run_a"].low is None
    assert rows["seller_premium"].interval == "bootstrap"
    assert rows["seller_premium"].low is not None and rows["seller_premium"].high is not None
    assert rows["seller_premium"].se is not None and rows["seller_premium"].rule.startswith("z = ")
    assert rows["same_item_premium"].interval == "regression" and rows["same_item_premium"].rule == ""
    # 16 people in a day close far fewer than the published week: a reader is told it is not reproduced
    assert rows["deals_all_runs"].inside is False
    line = next(line for line in out.stdout.splitlines() if line.strip().startswith("deals_all_runs"))
    assert "782 ± 55 deals (tolerance)" in line and "NOT reproduced" in line

    page = parse(run / "report.html")
    assert page.headings[0] == "Published against simulated"
    table = page.tables["published"]
    assert table[0][:5] == ["figure", "published", "simulated", "simulated 95% interval",
                            "inside the published uncertainty?"]
    by_name = {r[0]: r for r in table[1:]}
    assert set(by_name) == set(rows)
    assert by_name["deals_all_runs"][1] == "782 ± 55 deals (tolerance)"
    assert by_name["deals_all_runs"][2] == rows["deals_all_runs"].show(rows["deals_all_runs"].simulated)
    assert by_name["deals_all_runs"][4] == "NOT reproduced"
    assert by_name["fairness_mean"][4].startswith("not simulated: ")
    assert "(bootstrap over paired units)" in by_name["seller_premium"][3]
    assert by_name["deals_run_a"][3] == "none (one run: a point value)"
    text = (run / "report.html").read_text(encoding="utf-8")
    assert "NOT reproduced: " in text and "deals_all_runs (published 782 deals" in text


def test_a_run_without_targets_shows_no_comparison(tmp_path: Path, smoke: Path) -> None:
    out = run_cli(smoke, "--out", tmp_path / "run")
    assert out.returncode == 0, out.stderr
    assert "against simulated" not in out.stdout and "published" not in out.stdout.lower()
    assert not (tmp_path / "run" / PUBLISHED_FILE).exists() and not (tmp_path / "run" / TARGETS_FILE).exists()
    page = parse(tmp_path / "run" / "report.html")
    assert "published" not in page.tables and "Published against simulated" not in page.headings


def test_a_missing_targets_file_is_bad_input_naming_the_field(tmp_path: Path) -> None:
    path = small_deal(tmp_path)
    (path.parent / "published.yaml").unlink()
    out = run_cli(path, "--out", tmp_path / "run")
    assert out.returncode == 2
    assert "targets: no targets file at" in out.stderr and not (tmp_path / "run").exists()


def test_a_published_standard_error_decides_by_z() -> None:
    moment = read_targets(TARGETS).moments[1].model_copy(update={"se": 10.0})  # deals_run_a, 186
    assert compare(moment, 200.0).inside is True and compare(moment, 200.0).rule.startswith("z = 1.40")
    assert compare(moment, 210.0).inside is False  # z = 2.4
    assert compare(moment, 210.0, 190.0, 230.0, "replications", 8, 10.0).inside is True  # z = 24 / sqrt(200) = 1.7


def test_labels_per_tier_columns_and_one_market(tmp_path: Path, smoke: Path) -> None:
    out = run_cli(smoke, "--out", tmp_path / "run", "--quiet")
    assert out.returncode == 0, out.stderr
    text = (tmp_path / "run" / "report.html").read_text(encoding="utf-8")
    assert "sold above value ($)" in text and "bought below value ($)" in text and "seller premium ($)" not in text
    analysis = analyse(load_runs([tmp_path / "run"]))
    sentence = next(line for line in summary_text(analysis) if line.startswith("Allocative efficiency"))
    assert analysis.efficiency.height == 1
    assert "in the one market" in sentence and "ranged from" not in sentence
