"""The calibration page: the run report's look, units on every number, reached as a mark with its interval."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from typer.testing import CliRunner

from analysis.calibration_report import app, write_page
from analysis.calibration_report import render as render_study
from analysis.pages import render


def record() -> dict:
    """calibration.json as market.calibrate writes it (one reached, one missed, one not simulated)."""
    row = {"weight": 1.0, "fitted": True, "runs": 10, "certainty": "stated exactly", "why_not_simulated": None}
    return {
        "scenario": "/x/deal.yaml", "targets": "/x/project_deal.yaml", "targets_name": "project_deal",
        "distance": "sum(weight * ((simulated - target) / tolerance)^2) over fitted moments",
        "parameters": [{"path": "profiles.deal_small.diligence", "low": 0.2, "high": 0.9, "integer": False},
                       {"path": "profiles.deal_small.bids_per_turn", "low": 1, "high": 3, "integer": True}],
        "sampler": "optuna TPE (seed 1)", "trials": 3, "seeds_per_trial": 2, "fit_seeds": [1, 2],
        "holdout_seeds": [1000004, 1000005],
        "best": {"trial": 2, "distance": 9.71,
                 "params": {"profiles.deal_small.diligence": 0.437, "profiles.deal_small.bids_per_turn": 2}},
        "history": [{"trial": 0, "distance": 40.5}, {"trial": 1, "distance": 12.0}, {"trial": 2, "distance": 9.71}],
        "fit": [
            {**row, "moment": "deals_run_a", "statistic": "deals", "target": 186, "tolerance": 10,
             "simulated": 212.4, "low": 206.0, "high": 219.0, "reached": False, "source": "run A: 186 deals"},
            {**row, "moment": "seller_premium", "statistic": "seller_premium_cents", "target": 268, "tolerance": 100,
             "simulated": 199.2, "low": 176.0, "high": 222.0, "reached": True, "source": "premium $2.68"},
            {**row, "moment": "fairness_mean", "statistic": "fairness_mean", "target": 4.05, "tolerance": 0.3,
             "fitted": False, "simulated": math.nan, "low": math.nan, "high": math.nan, "runs": 0, "reached": None,
             "source": "about 4.05 of 7", "why_not_simulated": "ratings come from people"},
        ],
        "sensitivity": {"profiles.deal_small.diligence": 0.75, "profiles.deal_small.bids_per_turn": 0.25},
        "unreached": ["deals_run_a"],
    }


def test_the_page_has_the_report_look_units_and_marks(tmp_path: Path) -> None:
    (tmp_path / "calibration.json").write_text(json.dumps(record()), encoding="utf-8")
    html = write_page(tmp_path).read_text(encoding="utf-8")
    style = re.search(r"<style>.*?</style>", render("base.html", title="t"), re.S)
    assert style and style.group(0) in html  # the run report's stylesheet, not a copy
    text = re.sub(r"<script.*?</script>", "", html, flags=re.S)
    assert not re.search(r"\b(True|False|None|NaN|nan)\b", re.sub(r"<[^>]+>", " ", text))
    rows = {m.group(1): m.group(0) for m in re.finditer(r"<tr[^>]*><td>([a-z_]+)</td>.*?</tr>", text)}
    deals, premium, fairness = rows["deals_run_a"], rows["seller_premium"], rows["fairness_mean"]
    for cell in ("186 deals", "± 10 deals", "212.4 deals", "[206 deals, 219 deals]", "<td>✗</td>"):
        assert cell in deals
    for cell in ("$2.68", "± $1.00", "$1.99", "[$1.76, $2.22]", "<td>✓</td>"):
        assert cell in premium
    assert "4.05 rating points (1-7)" in fairness and "not simulated" in fairness
    assert "<td>75.0%</td>" in text and "<td>0.437</td>" in text  # importance in %, value as written
    assert "distance 9.71 (unitless" in text and "trial (number)" in html


def test_the_command_writes_it_again_and_refuses_other_folders(tmp_path: Path) -> None:
    assert CliRunner().invoke(app, [str(tmp_path)]).exit_code == 2
    (tmp_path / "calibration.json").write_text(json.dumps(record()), encoding="utf-8")
    result = CliRunner().invoke(app, [str(tmp_path), "--out", str(tmp_path / "page.html")])
    assert result.exit_code == 0 and (tmp_path / "page.html").is_file()


def test_text_from_the_targets_file_is_escaped_in_cells_and_tooltips() -> None:
    study = record()
    study["fit"][0]["source"] = "<script>alert(1)</script>"
    study["fit"][2]["why_not_simulated"] = "people' onmouseover='alert(2)"
    html = render_study(study)
    assert "<script>alert(1)" not in html and "<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>" in html
    assert "onmouseover='" not in html and 'title="people&#39; onmouseover=&#39;alert(2)"' in html
