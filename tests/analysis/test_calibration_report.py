"""The calibration page: the run report's look, units on every number, inside as a mark with the z that decided,
the settings fitted or fixed, and the ablation table."""

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
    """calibration.json as market.calibrate writes it (one inside, one missed, one not simulated; an ablation)."""
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
            {**row, "moment": "deals_run_a", "statistic": "deals", "target": 186, "tolerance": 10, "se": None,
             "published_low": 176, "published_high": 196, "fit_mean": 210.0, "simulated": 212.4, "low": 206.0,
             "high": 219.0, "inside": False, "rule": "beyond the declared tolerance", "source": "run A: 186 deals"},
            {**row, "moment": "seller_premium", "statistic": "seller_premium_cents", "target": 268, "tolerance": 100,
             "se": 123.5, "published_low": 26.0, "published_high": 510.0, "fit_mean": 205.0, "simulated": 199.2,
             "low": 176.0, "high": 222.0, "inside": True, "rule": "z = 0.55", "source": "premium $2.68"},
            {**row, "moment": "fairness_mean", "statistic": "fairness_mean", "target": 4.05, "tolerance": 0.3,
             "se": None, "published_low": 3.75, "published_high": 4.35, "fit_mean": None,
             "fitted": False, "simulated": math.nan, "low": math.nan, "high": math.nan, "runs": 0, "inside": None,
             "rule": "", "source": "about 4.05 of 7", "why_not_simulated": "ratings come from people"},
        ],
        "settings": [
            {"profile": "deal_small", "setting": "diligence", "meaning": "how often it follows up an opportunity",
             "status": "fitted", "fitted": ["profiles.deal_small.diligence"], "fixed": {}},
            {"profile": "deal_small", "setting": "counters", "meaning": "whether it counters an offer it does not take",
             "status": "fixed", "fitted": [], "fixed": {"profiles.deal_small.counters": "a declared difference"}},
        ],
        "ablation": {
            "seeds": "the 2 held-out seeds (1000004..1000005)", "seed_count": 2, "note": "each row sets one",
            "baseline": {"seller_premium": {"mean": 199.2, "low": 176.0, "high": 222.0, "runs": 2}},
            "rows": [{"name": "counters", "meaning": "whether it counters an offer it does not take",
                      "small": False, "frontier": True, "set": {"profiles.deal_small.counters": True},
                      "gaps": {"seller_premium": {"statistic": "seller_premium_cents", "mean": 120.0, "low": 100.0,
                                                  "high": 140.0, "runs": 2, "change": -79.2, "change_low": -90.0,
                                                  "change_high": -69.0, "paired_runs": 2}}}],
        },
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
    for cell in ("186 deals", "tolerance ± 10 deals", "[176 deals, 196 deals]", "212.4 deals",
                 "[206 deals, 219 deals]", "<td>✗ beyond the declared tolerance</td>", "<td>210 deals</td>"):
        assert cell in deals
    for cell in ("$2.68", "SE $1.24", "[$0.26, $5.10]", "$1.99", "[$1.76, $2.22]", "<td>✓ z = 0.55</td>"):
        assert cell in premium
    assert "4.05 rating points (1-7)" in fairness and "not simulated" in fairness
    assert "<td>75.0%</td>" in text and "<td>0.437</td>" in text  # importance in %, value as written
    assert "distance 9.71 (unitless" in text and "trial (number)" in html
    assert "a declared difference" in text and "fitted: profiles.deal_small.diligence" in text  # every setting
    ablation = text[text.index("What drives each tier gap"):]
    for cell in ("counters: whether it counters", "<td>no</td><td>yes</td>", "$1.20 [$1.00, $1.40]; -$0.79 "
                 "[-$0.90, -$0.69]", "$1.99 [$1.76, $2.22]", "the 2 held-out seeds"):
        assert cell in ablation


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
