"""The fairness survey of a model-backed run: each principal's deals rated 1-7 by the tier's model.

After a run, every principal of a model-backed tier is asked, through that tier's
model and the same machinery as trading (the run's ``ModelPolicy``: client,
retries, rate limits, pricing and the run's cassette), how fair each of their
deals was from their own point of view, given the deal's facts (item, price,
their limit or reserve, the reference value). The answer is one ``rate_deals``
tool call validated by pydantic; a malformed answer gets its error back and one
repair attempt, then that principal's unanswered deals are recorded as missing
(counted). Ratings are appended to the run's ``fairness.jsonl`` with source
``"model"`` in a fixed order; deal sides that already have a person's or a
model's answer are not asked again. A replayed run answers from the cassette,
so it asks nothing over the network and writes the same ratings.

Tokens, cost and faults of the survey go into ``summary.json`` under
``survey``. Offline tiers are not asked: the analysis keeps simulating their
ratings. The ``market.after_run`` entry point ``fairness`` runs this before the
``report`` plugin (entry points run sorted by name), on a run folder or on each
run of a sweep folder; ``python -m agents.llm.survey RUN_DIR`` surveys a finished
run after the fact (asking again only what is still unanswered; a recorded
question is answered from the run's cassette, so the same answer comes back).
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agents.llm.agent import Account, ModelPolicy, ReplayMiss, Reply, Tier, model_policy
from agents.llm.apis import MODEL_BACKENDS
from agents.llm.constrained import unbounded
from agents.llm.local_backend import LocalApi
from agents.llm.prompts import CUT_OFF_TEXT
from agents.llm.tools import parse_arguments
from market.backends import AgentFailure, BackendContext, BackendError, Policy, build_policy
from market.money import format_money, parse_money
from market.ratings import FAIRNESS_FILE, FairnessRating, Score
from running.runfolder import RunFolder
from running.runner import RunResult

SURVEY_TOOL = "rate_deals"
ASKED_COMMENT = 500
"""The longest comment the model is asked for (stored as a ``FairnessRating``, which holds up to ``MAX_COMMENT``);
part of every recorded survey request's tool schema, so changing it would make recorded surveys miss."""
_DEALS = re.compile(r"<deals>\s*(.*?)\s*</deals>", re.S)

SYSTEM = """\
You are {name}, one of the people in an online marketplace at an office. This week an AI agent bought and \
sold things on your behalf, within limits you gave it: the most you would pay for what you wanted, and the least \
you would accept for what you sold. The week is over and you are asked, in a short survey, how fair each of your \
deals was to you. Answer as {name}, from your own point of view only, with the `{tool}` tool."""

QUESTION = """\
Here are the deals your agent closed for you. For each one: how fair was it to you, from 1 (very unfair) to \
7 (very fair)? Weigh the price against your limit (the most you would pay, or the least you would sell for) and \
against the item's reference value. Give exactly one rating per deal_id and a short comment.
<deals>
{deals}
</deals>"""

REPAIR = f"That answer could not be read (see the error). Call `{SURVEY_TOOL}` again with one rating per deal_id."


# --- the question and the answer (pure) ---------------------------------------------------------------------


@dataclass(frozen=True)
class DealSide:
    """One principal's side of one deal: what they are asked to rate (money in cents)."""

    market: str
    deal_id: str
    participant_id: str
    name: str
    tier: str
    side: Literal["buyer", "seller"]
    item: str
    price: int
    limit: int | None  # the buyer's most-they-would-pay (None: not on their wants), the seller's reserve
    value: int  # the item's reference value

    def facts(self) -> dict[str, Any]:
        """The deal as the principal is shown it."""
        return {
            "deal_id": self.deal_id, "you_were": self.side, "item": self.item, "price": format_money(self.price),
            ("most_you_would_pay" if self.side == "buyer" else "least_you_would_accept"):
                format_money(self.limit) if self.limit is not None else None,
            "reference_value": format_money(self.value),
        }


class Rating(BaseModel):
    """One deal's rating, as the model gives it."""

    # this docstring is the tool schema's description, part of every recorded request: it stays as recorded;
    # each answer is stored as a market.ratings.FairnessRating
    model_config = ConfigDict(extra="forbid", strict=True)

    deal_id: str = Field(min_length=1)
    rating: Score = Field(description="1 very unfair ... 7 very fair, from your point of view")
    comment: str = Field("", max_length=ASKED_COMMENT, description="one short sentence")


def tool_schema() -> dict[str, Any]:
    """The JSON schema of the ``rate_deals`` arguments (from :class:`Rating`)."""
    item = Rating.model_json_schema()
    item.pop("title", None)
    return {"type": "object", "properties": {"ratings": {"type": "array", "items": item}},
            "required": ["ratings"], "additionalProperties": False}


def sides_of(deals: Sequence[dict[str, Any]], names: dict[tuple[str, str], str], tiers: set[str]) -> list[DealSide]:
    """Every deal side whose principal's tier is in ``tiers``, ordered by market, participant, deal.

    ``deals`` are rows of ``analysis.load_run(...).deals`` (with ``buyer_value``, ``seller_reserve``, ``value``).
    """
    out = []
    for d in deals:
        for side, pid, tier in (("buyer", d["buyer"], d["buyer_tier"]), ("seller", d["seller"], d["seller_tier"])):
            if tier not in tiers:
                continue
            limit = (d["buyer_value"] or None) if side == "buyer" else d["seller_reserve"]
            out.append(DealSide(
                market=d["market"], deal_id=d["deal_id"], participant_id=pid, name=names.get((d["market"], pid), pid),
                tier=tier, side=side, item=f"{d['title']} ({d['condition']})" if d.get("condition") else d["title"],
                price=d["price"], limit=limit, value=d["value"]))
    return sorted(out, key=lambda s: (s.market, s.participant_id, s.deal_id))


def question(sides: Sequence[DealSide]) -> str:
    """The survey question for one principal's deals (the facts as JSON between ``<deals>`` tags)."""
    return QUESTION.format(deals="\n".join(json.dumps(s.facts(), ensure_ascii=False) for s in sides))


def deals_in(text: str) -> list[dict[str, Any]]:
    """The deal facts a survey question carries (for a test server), money back in cents."""
    match = _DEALS.search(text)
    if match is None:
        return []
    out = []
    for line in match.group(1).splitlines():
        facts = json.loads(line)
        for key in ("price", "most_you_would_pay", "least_you_would_accept", "reference_value"):
            if facts.get(key) is not None:
                facts[key] = parse_money(facts[key])
        out.append(facts)
    return out


def read_answer(arguments: Any, deal_ids: Sequence[str]) -> list[Rating]:
    """The ratings in a ``rate_deals`` call, one per asked deal; ``ValueError`` says what is wrong."""
    if isinstance(arguments, str):
        arguments = parse_arguments(SURVEY_TOOL, arguments)  # ToolCallError / HostileJson are ValueErrors
    if not isinstance(arguments, dict) or not isinstance(arguments.get("ratings"), list):
        raise ValueError("expected an object with a `ratings` list")
    ratings = []
    for i, raw in enumerate(arguments["ratings"]):
        try:
            ratings.append(Rating.model_validate(raw))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ValueError(f"ratings[{i}].{where}: {first['msg']}") from None
    got = [r.deal_id for r in ratings]
    missing = [d for d in deal_ids if d not in got]
    extra = sorted({d for d in got if d not in deal_ids} | {d for d in got if got.count(d) > 1})
    if missing or extra:
        raise ValueError(
            "one rating per deal_id: " + "; ".join(
                p for p in (f"missing {', '.join(missing)}" if missing else "",
                            f"unknown or repeated {', '.join(extra)}" if extra else "") if p))
    return sorted(ratings, key=lambda r: list(deal_ids).index(r.deal_id))


def request_for(api: str, tier: Tier, system: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """A survey request in ``api``'s wire format, the ``rate_deals`` tool forced."""
    description = "Rate each of your deals from 1 (very unfair) to 7 (very fair), one entry per deal_id."
    if api == "anthropic":
        return {
            "model": tier.model, "max_tokens": tier.settings.max_tokens,
            "system": [{"type": "text", "text": system}],
            "tools": [{"name": SURVEY_TOOL, "description": description, "input_schema": tool_schema()}],
            "tool_choice": {"type": "tool", "name": SURVEY_TOOL},
            "messages": messages,
        }
    # a local server's grammar cannot hold the schema's length bounds (see constrained.unbounded)
    schema = unbounded(tool_schema()) if api == LocalApi.name else tool_schema()
    return {
        "model": tier.model, "max_tokens": tier.settings.max_tokens,
        "messages": [{"role": "system", "content": system}, *messages],
        "tools": [{"type": "function", "function": {
            "name": SURVEY_TOOL, "description": description, "parameters": schema}}],
        "tool_choice": {"type": "function", "function": {"name": SURVEY_TOOL}},
    }


# --- asking (through the run's ModelPolicy) ---------------------------------------------------------------------


@dataclass(frozen=True)
class Principal:
    """Who is asked (the ``Asker`` of the calls: cassette entries and replay misses name them)."""

    market: str
    trader: str
    tier: str
    step: int = -1  # after the run


@dataclass
class Outcome:
    """The answers of one principal: ratings by deal id, or the deals left missing and why."""

    principal: Principal
    ratings: list[Rating]
    missing: list[str]
    reason: str = ""


async def ask(policy: ModelPolicy, sides: Sequence[DealSide], account: Account) -> Outcome:
    """Ask one principal about their deals: one call, and one repair attempt if the answer cannot be read."""
    first = sides[0]
    who = Principal(first.market, first.participant_id, first.tier)
    tier = policy.tiers[first.tier]
    ids = [s.deal_id for s in sides]
    system = SYSTEM.format(name=first.name, tool=SURVEY_TOOL)
    messages = tier.api.user([], question(sides))
    try:
        reply = await policy.call(tier, who, request_for(tier.api.name, tier, system, messages), "survey", account)
        if reply is None:
            return Outcome(who, [], ids, "gave_up")
        ratings, error, results = _answer(reply, ids)
        if error is None:
            return Outcome(who, ratings, [])
        account.faults["malformed_answers"] += 1
        account.faults["repair_attempts"] += 1
        messages = [*messages, reply.assistant, *tier.api.user(results, REPAIR)]
        repaired = await policy.call(tier, who, request_for(tier.api.name, tier, system, messages), "survey repair",
                                      account)
        if repaired is None:
            return Outcome(who, [], ids, "gave_up")
        ratings, error, _ = _answer(repaired, ids)
        if error is None:
            account.faults["repaired"] += 1
            return Outcome(who, ratings, [])
        account.faults["malformed_answers"] += 1
        return Outcome(who, [], ids, "malformed")
    except ReplayMiss:
        account.faults["not_recorded"] += 1
        return Outcome(who, [], ids, "not_recorded")
    except AgentFailure as failure:  # refused or unreadable: this principal's ratings are missing
        account.failures[failure.kind] += 1
        return Outcome(who, [], ids, failure.kind)


def _answer(reply: Reply, ids: list[str]) -> tuple[list[Rating], str | None, list[tuple[str, str, bool]]]:
    """(ratings, the error if unreadable, tool results to send back with a repair)."""
    calls = [c for c in reply.calls if c.name == SURVEY_TOOL]
    if reply.stop == "max_tokens":  # a cut-off answer is not read, however it looks
        return [], CUT_OFF_TEXT, [(c.id, CUT_OFF_TEXT, True) for c in reply.calls]
    if reply.stop == "refusal" or not calls:
        error = "error: no `rate_deals` call"
        return [], error, [(c.id, error, True) for c in reply.calls]
    try:
        ratings = read_answer(calls[0].arguments, ids)
    except ValueError as exc:
        error = f"error: {exc}"
        return [], error, [(c.id, error if c is calls[0] else "ignored", True) for c in reply.calls]
    return ratings, None, []


def rated(path: Path) -> set[tuple[str, str, str]]:
    """(market, deal, participant) already answered by a person or a model in ``fairness.jsonl``."""
    if not path.is_file():
        return set()
    out = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            r = json.loads(line)
            if r.get("source") in ("person", "model"):
                out.add((r["market"], r["deal_id"], r["participant_id"]))
    return out


@dataclass
class Survey:
    """What a survey did: ratings written, deal sides left missing, and the accounts of its calls."""

    asked: int
    rated: int
    missing: list[dict[str, str]]
    accounts: dict[str, Account]

    def as_dict(self) -> dict[str, Any]:
        """The survey as JSON-ready figures: counts, the missing deal sides, the total account and each tier's."""
        total = Account.total(self.accounts.values())
        return {"principals_asked": self.asked, "rated": self.rated, "missing": len(self.missing),
                "missing_deal_sides": self.missing, "total": total.as_dict(),
                "tiers": {t: a.as_dict() for t, a in sorted(self.accounts.items())}}


def unanswered(run_dir: Path, tiers: Sequence[str]) -> dict[tuple[str, str], list[DealSide]]:
    """Deal sides of ``tiers``' principals with no person's or model's rating yet, by (market, principal)."""
    from analysis.load import load_run  # the analysis reads the run folder; imported only when a survey runs

    data = load_run(run_dir)
    names = {(m, p): n for m, p, n in data.participants.select("market", "participant_id", "name").iter_rows()}
    done = rated(run_dir / FAIRNESS_FILE)
    groups: dict[tuple[str, str], list[DealSide]] = {}
    for s in sides_of(data.deals.to_dicts(), names, set(tiers)):
        if (s.market, s.deal_id, s.participant_id) not in done:
            groups.setdefault((s.market, s.participant_id), []).append(s)
    return groups


def survey_run(run_dir: Path, policy: ModelPolicy, groups: dict[tuple[str, str], list[DealSide]]) -> Survey:
    """Ask each principal in ``groups`` (concurrently) through ``policy``; append to ``fairness.jsonl``."""
    out = run_dir / FAIRNESS_FILE
    accounts = {t: Account() for t in sorted({g[0].tier for g in groups.values()})}

    async def everyone() -> list[Outcome]:
        # every question runs to its end (an answer in flight is received and recorded) before an
        # account-level error is raised
        done = await asyncio.gather(*(ask(policy, g, accounts[g[0].tier]) for g in groups.values()),
                                    return_exceptions=True)
        errors = [d for d in done if isinstance(d, BaseException)]
        if errors:
            raise errors[0]
        return done  # type: ignore[return-value]

    outcomes = policy.run(everyone()) if groups else []
    lines, missing = [], []
    for outcome in outcomes:  # in the groups' (sorted) order, whatever order the answers came in
        p = outcome.principal
        for r in outcome.ratings:
            lines.append(FairnessRating(market=p.market, deal_id=r.deal_id, participant_id=p.trader,
                                        rating=r.rating, source="model", comment=r.comment).line())
        missing += [{"market": p.market, "deal_id": d, "participant_id": p.trader, "reason": outcome.reason}
                    for d in outcome.missing]
    if lines:
        with out.open("a", encoding="utf-8") as handle:
            handle.writelines(lines)
    return Survey(asked=len(groups), rated=len(lines), missing=missing, accounts=accounts)


def model_tiers(run_dir: Path) -> list[str]:
    """The tiers of the run in ``run_dir`` that ran on a model backend (``MODEL_BACKENDS``), from its scenario.yaml."""
    scenario = RunFolder(run_dir).read_scenario()
    return [t for t, s in (scenario.get("tiers") or {}).items() if (s or {}).get("backend") in MODEL_BACKENDS]


def policy_for(run_dir: Path, policies: Iterable[Policy] = ()) -> tuple[ModelPolicy, bool]:
    """The run's own open policy (among ``policies``, the run's), else one built from the folder; and whether
    it was built here (then the caller closes it)."""
    live = model_policy(policies)
    if live is not None:
        return live, False
    from market.scenario import load_scenario

    scenario, _ = load_scenario(run_dir / "scenario.yaml")
    context = BackendContext(scenario=scenario, run_dir=run_dir, options={})
    policy: ModelPolicy | None = None
    for tier in model_tiers(run_dir):
        built = build_policy(tier, scenario.tiers[tier], context)
        policy = built if isinstance(built, ModelPolicy) else policy
    if policy is None:
        raise BackendError(f"{run_dir}: no tier ran on a model backend")
    policy.open_run(run_dir)
    return policy, True


def survey(run_dir: Path | str, policies: Iterable[Policy] = ()) -> Survey | None:
    """Survey the finished run in ``run_dir`` (None when no tier ran on a model) and record it in summary.json.

    ``policies`` are the run's own, still open (the after-run step): the survey asks through its
    ``ModelPolicy`` (same clients, limits and cassette); without one, a policy is built from the folder.
    """
    run_dir = Path(run_dir)
    tiers = model_tiers(run_dir)
    if not tiers:
        return None
    groups = unanswered(run_dir, tiers)
    if not groups:  # everyone has answered: nothing to ask, nothing to record
        return Survey(asked=0, rated=0, missing=[], accounts={})
    policy, own = policy_for(run_dir, policies)
    try:
        result = survey_run(run_dir, policy, groups)
    finally:
        if own:
            policy.close()
    folder = RunFolder(run_dir)
    summary = folder.read_summary()
    if summary is None:  # the run's own summary is written before its after-run steps: none means none to add to
        raise BackendError(f"{folder.summary}: no summary.json to record the survey in")
    section = result.as_dict()
    previous = dict(summary.survey or {})
    if previous:  # surveyed before (e.g. again after the fact): that survey's figures are kept beside this one's
        section["earlier"] = [*previous.pop("earlier", []), previous]
    summary.with_sections({"survey": section}).write(folder.summary)
    return result


def after_run(result: RunResult) -> None:
    """The ``market.after_run`` plugin ``fairness``: survey a model-backed run before the report is written.

    ``result`` is the finished run: its folder and its still-open policies (the survey asks through the
    run's own ``ModelPolicy``), or a sweep's (each of its runs is surveyed with a policy built from its
    folder). Offline runs are left alone; a failure is a warning, never an error (the run itself is
    complete and recorded).
    """
    from analysis.load import expand_runs

    path, policies = result.folder.path, list(result.policies.values())
    try:
        runs = expand_runs([path])
    except ValueError:  # not a run or sweep folder: the report plugin says so
        return
    for run_dir in runs:
        try:
            done = survey(run_dir, policies if run_dir == path else [])
        except Exception as exc:  # only the model's ratings are missing; the analysis simulates them
            print(f"warning: no model fairness ratings for {run_dir} ({type(exc).__name__}: {exc}); "
                  f"see `python -m agents.llm.survey {run_dir}`", file=sys.stderr)
            continue
        if done is not None and done.missing:
            reasons = Counter(m["reason"] for m in done.missing)
            print(f"fairness survey of {run_dir}: {len(done.missing)} deal side(s) without a model rating "
                  f"({', '.join(f'{k} {v}' for k, v in sorted(reasons.items()))})", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m agents.llm.survey RUN_DIR``: ask a finished run's model-backed principals (needs its keys)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m agents.llm.survey RUN_DIR", file=sys.stderr)
        return 2
    try:
        result = survey(args[0])
    except (BackendError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if result is None:
        print("no tier of this run ran on a model backend; nothing to ask")
        return 0
    cost = result.as_dict()["total"]["cost_usd"]
    print(f"asked {result.asked} principals: {result.rated} ratings, {len(result.missing)} missing, ${cost:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
