"""The fairness survey on model backends: principals of model-backed tiers rate their deals through the real SDKs."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from agents.llm.agent import Tier
from agents.llm.apis import APIS, MODEL_BACKENDS
from agents.llm.pricing import lookup
from agents.llm.survey import DealSide, deals_in, model_tiers, question, read_answer, request_for, sides_of, survey
from analysis import fairness, load_run
from analysis.report import analyse
from market.scenario import TierSettings
from running import runner
from running.runfolder import RunFolder
from tests.llm.conftest import FAST, SMOKE, export, run_model, summary
from tests.llm.conftest import model_tiers as fake_model_tiers
from tests.llm.fakes import FakeModelServer


def _lines(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "fairness.jsonl").read_text().splitlines()]


def _expected(run_dir: Path, tiers: set[str]) -> dict[tuple[str, str, str], int]:
    """Each model-backed deal side and the rating the fake's rule gives it, from the ledger's facts."""
    data = load_run(run_dir)
    names = dict.fromkeys(zip(data.participants["market"], data.participants["participant_id"], strict=True), "x")
    out = {}
    for side in sides_of(data.deals.to_dicts(), names, tiers):
        facts = deals_in(question([side]))[0]
        out[(side.market, side.deal_id, side.participant_id)] = FakeModelServer.rate(facts)[0]
    return out


def test_answers_are_validated_one_rating_per_deal() -> None:
    ids = ["D1", "D2"]
    good = {"ratings": [{"deal_id": "D2", "rating": 3}, {"deal_id": "D1", "rating": 7, "comment": "fine"}]}
    assert [(r.deal_id, r.rating) for r in read_answer(good, ids)] == [("D1", 7), ("D2", 3)]
    assert read_answer(json.dumps(good), ids) == read_answer(good, ids)
    for bad, why in [
        ('{"ratings": [', "not valid JSON"),
        ({"ratings": [{"deal_id": "D1", "rating": "6 out of 7"}, {"deal_id": "D2", "rating": 4}]}, "rating"),
        ({"ratings": [{"deal_id": "D1", "rating": 8}, {"deal_id": "D2", "rating": 4}]}, "less than or equal to 7"),
        ({"ratings": [{"deal_id": "D1", "rating": 5}]}, "missing D2"),
        ({"ratings": [{"deal_id": "D1", "rating": 5}, {"deal_id": "D1", "rating": 5}]}, "repeated D1"),
        ([5, 6], "`ratings` list"),
    ]:
        with pytest.raises(ValueError, match=why):
            read_answer(bad, ids)


def test_only_model_backed_principals_are_asked_with_their_own_limits() -> None:
    deal = {"market": "A", "deal_id": "D1", "buyer": "p1", "seller": "p2", "buyer_tier": "frontier",
            "seller_tier": "small", "buyer_value": 0, "seller_reserve": 1500, "price": 2000, "value": 2500,
            "title": "Kettle", "condition": "used"}
    asked = sides_of([deal, {**deal, "deal_id": "D2", "buyer_value": 3000}], {("A", "p1"): "Ada"}, {"frontier"})
    assert [(s.deal_id, s.side, s.limit) for s in asked] == [("D1", "buyer", None), ("D2", "buyer", 3000)]
    text = question(asked)
    assert '"most_you_would_pay": "$30.00"' in text and "least_you_would_accept" not in text
    assert DealSide("A", "D3", "p2", "Bo", "small", "seller", "Kettle", 2000, 1500, 2500).facts()[
        "least_you_would_accept"] == "$15.00"


def test_every_model_backend_is_asked_local_too(tmp_path: Path) -> None:
    assert {"anthropic", "openai", "local", "replay"} == MODEL_BACKENDS  # one place: agents.llm.apis
    tiers = {"a": "anthropic", "o": "openai", "l": "local", "r": "replay", "off": "offline", "x": "pkg.mod:factory"}
    (tmp_path / "scenario.yaml").write_text(
        "tiers:\n" + "".join(f"  {t}: {{backend: {b!r}, model: m}}\n" for t, b in tiers.items()), encoding="utf-8")
    assert model_tiers(tmp_path) == ["a", "o", "l", "r"]
    (tmp_path / "scenario.yaml").write_text("tiers:\n  off: {backend: offline}\n", encoding="utf-8")
    assert survey(tmp_path) is None  # nobody to ask: the analysis simulates the ratings


def test_a_local_survey_request_drops_the_bounds_llama_cpp_cannot_hold() -> None:
    price = lookup("smollm2-135m")
    assert price is not None
    tier = Tier("l", TierSettings(backend="local", model="smollm2-135m"), APIS["local"](), "smollm2-135m", price)
    body = json.dumps(request_for("local", tier, "system", [{"role": "user", "content": "q"}]))
    assert '"rate_deals"' in body and "maxLength" not in body
    assert "maxLength" in json.dumps(request_for("openai", tier, "system", []))  # a remote model gets the full schema


@pytest.mark.slow
def test_model_ratings_recorded_then_replayed_with_the_server_stopped(fake_server, tmp_path: Path) -> None:
    server = fake_server("anthropic")
    tiers = {"frontier": fake_model_tiers(server)["frontier"]}  # the small tier stays offline (simulated ratings)
    prepared = runner.plan(SMOKE, tiers=tiers, options=FAST)
    # both runs in folders of one name: the simulated ratings the report adds are seeded by the run's id
    rec = RunFolder.create(tmp_path, "x", exact=tmp_path / "rec" / "run")
    assert runner.start(prepared, rec, after_run=True).complete  # after-run plugins: survey, then report

    expected = _expected(rec.path, {"frontier"})
    assert expected, "the smoke day closed no deal with a frontier principal"
    lines = _lines(rec.path)
    model = {(r["market"], r["deal_id"], r["participant_id"]): r["rating"] for r in lines if r["source"] == "model"}
    assert model == expected  # every frontier deal side, rated from the facts the request carried
    simulated = {(r["market"], r["deal_id"], r["participant_id"]) for r in lines if r["source"] == "simulated"}
    assert not simulated & set(model)  # the survey ran before the report filled in simulated ratings
    asked = summary(rec.path)["survey"]
    principals = {k[2] for k in expected}
    assert asked["principals_asked"] == len(principals) and asked["rated"] == len(expected)
    assert asked["total"]["calls"] == len(principals) and asked["total"]["cost_nanocents"] > 0
    assert asked["total"]["input_tokens"] > 0 and asked["missing"] == 0

    # the report sets the model's ratings against surplus
    a = analyse(load_run(rec.path))
    frontier = a.fairness.filter(pl.col("tier") == "frontier")
    assert frontier["model"].sum() == len(expected) and frontier["people"].sum() == 0
    rated = a.rated.filter(pl.col("source") == "model")
    assert rated.height == len(expected) and rated.select(pl.corr("rating", "surplus", method="spearman")).item() > 0
    html = (rec.path / "report.html").read_text()
    assert "against actual surplus" in html and f"{len(expected)} model" in html

    server.stop()  # no network from here on
    replay = runner.plan(SMOKE, tiers={"frontier": {"backend": "replay"}},
                         options={**FAST, "cassette": str(rec.cassette)})
    again = RunFolder.create(tmp_path, "x", exact=tmp_path / "replay" / "run")
    assert runner.start(replay, again, after_run=True).complete
    assert export(again.path) == export(rec.path)
    assert (again.path / "fairness.jsonl").read_bytes() == (rec.path / "fairness.jsonl").read_bytes()
    replayed = summary(again.path)["survey"]["total"]
    assert replayed["replayed_calls"] == replayed["calls"] == len(principals) and replayed["spent_usd"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("api", ["anthropic", "openai"])
def test_a_malformed_answer_is_repaired_once_then_counted_missing(fake_server, tmp_path: Path, api: str) -> None:
    server = fake_server(api, survey_faults={"stubborn": 3, "malformed": 2})
    run = tmp_path / "run"
    assert run_model(run, {"frontier": fake_model_tiers(server, api)["frontier"]}).complete  # no after-run plugins
    expected = _expected(run, {"frontier"})
    result = survey(run)  # after the fact: a policy built from the run folder
    assert result is not None
    sent = server.survey_faults_sent
    assert sent.get("malformed", 0) > 0 and sent.get("stubborn", 0) > 0
    faults = summary(run)["survey"]["total"]["faults"]
    assert faults["repaired"] == sent["malformed"]
    assert faults["repair_attempts"] == sent["malformed"] + sent["stubborn"]
    missing = {(m["market"], m["deal_id"], m["participant_id"]) for m in result.missing}
    assert {m["reason"] for m in result.missing} == {"malformed"}
    assert len({k[2] for k in missing}) == sent["stubborn"]
    model = {(r["market"], r["deal_id"], r["participant_id"]): r["rating"] for r in _lines(run)}
    assert set(model) == set(expected) - missing and all(model[k] == expected[k] for k in model)
    assert fairness.read_ratings(run).height == len(model)  # the analysis reads every line

    before = (run / "fairness.jsonl").read_bytes()
    again = survey(run)  # asked again: the missing principals only, answered (the same) from the run's cassette
    assert again is not None and again.asked == sent["stubborn"] and len(again.missing) == len(missing)
    total = summary(run)["survey"]["total"]
    assert total["replayed_calls"] == total["calls"] > 0 and total["spent_usd"] == 0
    assert (run / "fairness.jsonl").read_bytes() == before and summary(run)["survey"]["earlier"][0]["rated"] > 0
