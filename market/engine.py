"""The engine: simulated time (SimPy) inside a Mesa model.

Traders are ``mesa.Agent``s. Each wakes on its own cadence within working
hours, and after a modelled reaction delay when something addressed to it
arrives. Wake times fall on ticks; all traders due at the same tick decide
as one batch (every policy is asked before any action is applied), then
their actions are applied in a seeded order. Randomness comes from
generators keyed by (seed, market, trader, step), so a rerun of the same
scenario gives the same events, byte for byte.
"""

from __future__ import annotations

import gc
import queue
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

import mesa
import msgspec
import simpy

from market import exchange
from market.actions import Action
from market.arrivals import arrivals
from market.backends import AgentFailure, FatalPolicyError, Policy, decide_all
from market.clock import DAY, HOUR
from market.domain import OfferStatus, Participant
from market.events import (
    ActionRejected,
    AgentFailed,
    DealClosed,
    Event,
    MarketOpened,
    MessageSent,
    OfferEnded,
    OfferMade,
    ParticipantJoined,
    RejectionCode,
)
from market.hourly import columns as hourly_columns
from market.hourly import hourly_row
from market.observation import Decision, Observation, observe
from market.randomness import STREAMS
from market.scenario import Scenario, assign_tiers
from market.state import MarketState

Entry = tuple[str, Event]
_participant = attrgetter("participant_id")
Sink = Callable[[Sequence[Entry]], None]


@contextmanager
def _rare_collections() -> Iterator[None]:
    """Collect garbage rarely while the engine builds up its markets' state (opening them, running them).

    A week creates millions of small, long-lived objects; frequent full collections would rescan them
    all, at a cost growing with the market. What exists already is frozen out of every collection, the
    thresholds are raised, and both are put back afterwards (what was frozen can be collected again).
    """
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


class Trader(mesa.Agent):
    """One participant's agent in one market."""

    def __init__(
        self, model: MarketModel, market: Market, participant_id: str, tier: str, policy: Policy | None
    ) -> None:
        super().__init__(model)
        self.market = market
        self.participant_id = participant_id
        self.tier = tier
        self.policy = policy
        self.steps = 0
        self.next_wake: int | None = None
        self.news: list[Event] = []
        self.items_from: dict[str, int] = {}  # when each item is put up for sale (empty: all from the start)
        self._streams = model.streams
        self._key = f"{model.scenario.seed}:{market.name}:{participant_id}:"  # what every key of its draws starts with

    def observe(self, at: int) -> Observation:
        """What this trader sees at ``at``: its market's state through :func:`market.observation.observe`, with the
        news since its last turn (handed over once: the inbox is emptied)."""
        news, self.news = self.news, []
        shown = self.policy.listings_per_want if self.policy else Policy.listings_per_want
        state, market = self.market.state, self.market.name
        return observe(state, market, self.participant_id, self.tier, at, self.steps, news, shown, self.items_from)

    def uniform(self, purpose: str, a: float, b: float) -> float:
        """A number in [a, b) drawn for this trader's ``step`` and ``purpose`` alone (key parts joined by ``:``)."""
        return self._streams.uniform(f"{self._key}{self.steps}:{purpose}", a, b)


@dataclass
class Market:
    """One market's runtime: its exchange state and its traders."""

    name: str
    state: MarketState = field(default_factory=MarketState)
    traders: dict[str, Trader] = field(default_factory=dict)
    tiers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Join:
    """A request to add a participant mid-run, queued like a person's action."""

    person: Participant
    policy: Policy | None


class StopRun(Exception):
    """Raised inside the clock to end a run early (the ledger stays consistent)."""


@dataclass
class FaultCount:
    """One tier's turns and failed turns in this run, and its last turns for the circuit breaker."""

    window: int
    turns: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    recent: deque[bool] = field(init=False)

    def __post_init__(self) -> None:
        self.recent = deque(maxlen=self.window)

    def add(self, failure: AgentFailure | None) -> None:
        """Count one turn of the tier, failed when ``failure`` is given (by its kind)."""
        self.turns += 1
        self.recent.append(failure is not None)
        if failure is not None:
            self.kinds[failure.kind] += 1

    @property
    def failed(self) -> int:
        """The tier's failed turns so far, of every kind."""
        return sum(self.kinds.values())

    def as_dict(self) -> dict[str, object]:
        """Turns, failed turns and failures by kind, as summary.json holds them."""
        return {"turns": self.turns, "failed": self.failed, "kinds": dict(sorted(self.kinds.items()))}


class MarketModel(mesa.Model):
    """All markets of one run on one simulated clock.

    ``sink`` receives every batch of new events (the ledger's ``append_many``).
    ``history`` restores the markets from recorded events instead of opening
    them (a live week coming back after a restart); ``env`` may be a
    ``simpy.rt.RealtimeEnvironment`` for a live week on a real-time clock.
    ``policy_for(market, participant)`` picks a restored participant's policy
    (None for a person acting alone); by default their tier's policy.
    """

    def __init__(
        self,
        scenario: Scenario,
        participants: Sequence[Participant],
        policies: dict[str, Policy],
        sink: Sink,
        on_batch: Callable[[MarketModel, int], None] | None = None,
        *,
        env: simpy.Environment | None = None,
        history: Sequence[Entry] | None = None,
        policy_for: Callable[[str, Participant], Policy | None] | None = None,
    ) -> None:
        super().__init__(seed=scenario.seed)
        self.scenario = scenario
        self.streams = STREAMS[scenario.streams]
        self.env = env or simpy.Environment(initial_time=max((e.at for _, e in history or ()), default=0))
        self.sink = sink
        self.on_batch = on_batch
        self.policies = policies
        self.policy_for = policy_for or (lambda _market, person: policies.get(person.tier))
        self.stop_requested: str | None = None
        self.stop_cause: str | None = None
        self.stopped: str | None = None  # the reason, once a stop ended the clock before the scenario's end
        self.faults = {tier: FaultCount(scenario.failures.window) for tier in scenario.tiers}
        self.tick = scenario.timing.tick_minutes * 60
        self._hours = (scenario.working_hours.start * HOUR, scenario.working_hours.end * HOUR)  # of each day
        self._end = scenario.duration
        self.markets: list[Market] = []
        self._due: dict[int, list[Trader]] = {}
        self._submitted: queue.Queue[tuple[str, str, Action | _Join, Future[exchange.Outcome]]] = queue.Queue()
        self.datacollector = mesa.DataCollector(tables={"hourly": hourly_columns(list(scenario.tiers))})
        with _rare_collections():  # thousands of traders' state is as many objects as a day of trading
            self._populate(participants, history)
        self.env.process(self._collect_hourly())

    def _populate(self, participants: Sequence[Participant], history: Sequence[Entry] | None) -> None:
        """Open the markets (or restore them from ``history``) and schedule every trader's first wake."""
        if history is None:
            self._open(participants)
        else:
            self._restore(history)
        first = max(self.now, self.scenario.working_hours.start * HOUR)
        coming = arrivals(self.scenario, list(participants))  # the scenario's people only, not live joiners
        for market in self.markets:
            for trader in market.traders.values():
                come = coming.get(trader.participant_id)
                if come is not None:
                    trader.items_from = come.items
                self._schedule_first(trader, first if come is None else max(first, come.at))

    def _open(self, participants: Sequence[Participant]) -> None:
        opening: list[Entry] = []
        ids = [p.id for p in participants]
        for spec in self.scenario.markets:
            market = Market(name=spec.name, tiers=assign_tiers(self.scenario, spec, ids))
            events: list[Event] = [MarketOpened(at=0, rules=self.scenario.rules)]
            for person in participants:
                tier = market.tiers[person.id]
                events.append(ParticipantJoined(at=0, participant=msgspec.structs.replace(person, tier=tier)))
                market.traders[person.id] = Trader(self, market, person.id, tier, self.policies[tier])
            for event in events:
                market.state.evolve(event)
            opening += [(market.name, e) for e in events]
            self.markets.append(market)
        self.sink(opening)

    def _restore(self, history: Sequence[Entry]) -> None:
        by_name = {spec.name: Market(name=spec.name) for spec in self.scenario.markets}
        for name, event in history:
            market = by_name.setdefault(name, Market(name=name))
            market.state.evolve(event)
            if isinstance(event, ParticipantJoined):
                person = event.participant
                market.tiers[person.id] = person.tier
                policy = self.policy_for(name, person)
                market.traders[person.id] = Trader(self, market, person.id, person.tier, policy)
        self.markets = list(by_name.values())

    def _schedule_first(self, trader: Trader, after: int) -> None:
        if trader.policy is not None:
            start = trader.uniform(f"start:{after}", 0, self.scenario.timing.wake_every_minutes.max * 60)
            self._schedule(trader, after + int(start))

    # --- live: people joining and acting between turns ----------------------
    def market(self, name: str) -> Market:
        """The market called ``name``; raises ``StopIteration`` when the run has none."""
        return next(m for m in self.markets if m.name == name)

    def join(self, market_name: str, person: Participant, policy: Policy | None) -> Future[exchange.Outcome]:
        """Add a participant mid-run (thread-safe); ``policy=None`` means a person acts alone."""
        return self._enqueue(market_name, person.id, _Join(person, policy))

    def submit(self, market_name: str, participant_id: str, action: Action) -> Future[exchange.Outcome]:
        """Queue a person's action (thread-safe); it is applied at the next tick under the same rules."""
        return self._enqueue(market_name, participant_id, action)

    def _enqueue(self, market_name: str, participant_id: str, action: Action | _Join) -> Future[exchange.Outcome]:
        future: Future[exchange.Outcome] = Future()
        self._submitted.put((market_name, participant_id, action, future))
        return future

    def start_live(self) -> None:
        """Apply submitted actions every tick, even when no trader is due."""

        def drain_every_tick():  # type: ignore[no-untyped-def]
            while True:
                yield self.env.timeout(self.tick - self.now % self.tick or self.tick)
                self._drain(self.now)

        self.env.process(drain_every_tick())

    def apply_submitted(self) -> None:
        """Apply the joins and actions queued so far, now (a live run's last tick)."""
        self._drain(self.now)

    def _drain(self, at: int) -> None:
        entries: list[Entry] = []
        while True:
            try:
                market_name, pid, action, future = self._submitted.get_nowait()
            except queue.Empty:
                break
            market = self.market(market_name)
            if isinstance(action, _Join):
                person, policy = action.person, action.policy
                outcome: exchange.Outcome
                if pid in market.state.participants:
                    outcome = exchange.Rejection(
                        code=RejectionCode.ALREADY_JOINED, reason=f"{pid} has already joined market {market_name}."
                    )
                else:
                    outcome = [ParticipantJoined(at=at, participant=person)]
                    market.tiers[pid] = person.tier
                    trader = Trader(self, market, pid, person.tier, policy)
                    market.traders[pid] = trader
                    self._record(market, outcome[0], entries)
                    self._schedule_first(trader, at)
            else:
                outcome = exchange.decide(market.state, pid, action, at)
                for event in [] if isinstance(outcome, exchange.Rejection) else outcome:
                    self._record(market, event, entries)
            future.set_result(outcome)
        self.sink(entries)

    # --- running -----------------------------------------------------------
    def run(self, until: int | None = None) -> None:
        """Advance the clock to ``until`` (default: the scenario's end)."""
        with _rare_collections():
            try:
                self.env.run(until=min(until or self.scenario.duration, self.scenario.duration))
            except StopRun as stop:
                self.stopped = str(stop)
        self.running = False

    def stop(self, reason: str, cause: str = "requested") -> None:
        """Ask the run to end before the next batch; ``cause`` is a short code
        (``interrupted``, ``fatal``, ``circuit_breaker``, ``max_cost``, ``requested``). The first request wins."""
        if self.stop_requested is None:
            self.stop_requested, self.stop_cause = reason, cause

    @property
    def now(self) -> int:
        """Simulated seconds since the week opened."""
        return int(self.env.now)

    # --- scheduling ----------------------------------------------------------
    def _working(self, at: int) -> int | None:
        """The first tick at or after ``at`` within working hours, or None past the end."""
        at = -(-at // self.tick) * self.tick
        day, second = divmod(at, DAY)
        start, end = self._hours
        if second < start:
            at = day * DAY + start
        elif second >= end:
            at = (day + 1) * DAY + start
        return at if at < self._end else None

    @staticmethod
    def _wakes_by(trader: Trader, due: int | None) -> bool:
        """Whether ``trader`` wakes by ``due`` anyway (None: the week is over, so it need not)."""
        return due is None or (trader.next_wake is not None and trader.next_wake <= due)

    def _schedule(self, trader: Trader, at: int) -> None:
        """Wake ``trader`` at the first working tick at or after ``at``, unless it wakes by then anyway."""
        due = self._working(at)
        if self._wakes_by(trader, due):
            return
        trader.next_wake = due
        if due not in self._due:
            self._due[due] = []
            self.env.process(self._batch_at(due))
        self._due[due].append(trader)

    def _batch_at(self, at: int):  # type: ignore[no-untyped-def]
        yield self.env.timeout(at - self.env.now)
        self._batch(at)

    # --- one batch -----------------------------------------------------------
    def _batch(self, at: int) -> None:
        if self.stop_requested:
            raise StopRun(self.stop_requested)
        self._drain(at)
        entries: list[Entry] = []
        for market in self.markets:
            for event in exchange.expire(market.state, at):
                self._record(market, event, entries)
        # a trader rescheduled earlier and back again can stand twice in a list: once is enough
        due = [t for t in dict.fromkeys(self._due.pop(at)) if t.next_wake == at and t.policy is not None]
        try:
            decisions = decide_all([(t.policy, t.observe(at)) for t in due])  # type: ignore[misc]
        except FatalPolicyError as fatal:
            # no decision of this batch is applied: the ledger stays a prefix of the uninterrupted run
            self.sink(entries)
            self.stop(fatal.reason, cause="fatal")
            raise StopRun(fatal.reason) from None
        by_trader = dict(zip(map(id, due), decisions, strict=True))
        turns: dict[str, list[Trader]] = {}
        for trader in due:
            turns.setdefault(trader.market.name, []).append(trader)
        for market in self.markets:
            mine = sorted(turns.get(market.name, ()), key=_participant)
            if len(mine) > 1:  # (one trader or none: no order to draw)
                self.streams.shuffle(f"{self.scenario.seed}:{market.name}:order:{at}", mine)
            for trader in mine:
                answer = by_trader[id(trader)]
                if isinstance(answer, AgentFailure):  # costs this trader its turn: it passes
                    self._record(market, AgentFailed(
                        at=at, actor=trader.participant_id, tier=trader.tier,
                        kind=answer.kind[:64], reason=answer.reason[:500]), entries)
                    continue
                for action in answer.actions:
                    outcome = exchange.decide(market.state, trader.participant_id, action, at)
                    if isinstance(outcome, exchange.Rejection):
                        outcome = [ActionRejected(
                            at=at, actor=trader.participant_id,
                            action=action, code=outcome.code, reason=outcome.reason,
                        )]
                    for event in outcome:
                        self._record(market, event, entries)
        self._count_faults(due, by_trader)
        cadence = self.scenario.timing.wake_every_minutes
        for trader in due:
            trader.steps += 1
            trader.next_wake = None
            self._schedule(trader, at + int(trader.uniform("wake", cadence.min, cadence.max) * 60))
        self.sink(entries)
        if self.on_batch:
            self.on_batch(self, at)

    def _count_faults(self, due: list[Trader], answers: dict[int, Decision | AgentFailure]) -> None:
        """Count each tier's turns and failures; trip the circuit breaker when a tier's share passes the limit."""
        for trader in due:
            answer = answers[id(trader)]
            faults = self.faults.get(trader.tier)
            if faults is None:  # a tier that joined mid-run
                faults = self.faults[trader.tier] = FaultCount(self.scenario.failures.window)
            faults.add(answer if isinstance(answer, AgentFailure) else None)
        limits = self.scenario.failures
        for tier, faults in self.faults.items():
            failed = sum(faults.recent)
            if failed > limits.max_share * limits.window:
                self.stop(
                    f"circuit breaker: tier {tier} failed {failed} of its last {len(faults.recent)} turns "
                    f"(the limit is {limits.max_share:.0%} of {limits.window}; see `failures:` in scenario.yaml)",
                    cause="circuit_breaker",
                )
                return

    def fault_counts(self) -> dict[str, dict[str, object]]:
        """Turns and failed turns per tier so far (for summary.json)."""
        return {tier: faults.as_dict() for tier, faults in sorted(self.faults.items())}

    def _record(self, market: Market, event: Event, entries: list[Entry]) -> None:
        market.state.evolve(event)
        entries.append((market.name, event))
        heard = _HEARD_BY.get(type(event))
        addressee = None if heard is None else heard(market.state, event)
        if addressee is not None:
            pid, about = addressee
            trader = market.traders[pid]
            trader.news.append(event)
            if about is not None and trader.policy is not None:  # a person reads their news in Slack
                self._react(trader, event, about)

    def _react(self, trader: Trader, event: Event, about: str) -> None:
        """Wake ``trader`` after its reaction delay to ``event`` (its generator keyed by ``about``)."""
        delay = self.scenario.timing.reaction_minutes
        if self._wakes_by(trader, self._working(event.at + int(delay.min * 60))):
            return  # no delay drawn could wake it sooner than it wakes anyway
        drawn = trader.uniform(f"react:{event.type}:{about}", delay.min, delay.max)
        self._schedule(trader, event.at + int(drawn * 60))

    # --- data collection -----------------------------------------------------
    def _collect_hourly(self):  # type: ignore[no-untyped-def]
        # each hour's row (market.hourly) is taken in its last second: after every event of the hour (events
        # fall on whole-minute ticks), before any at the next hour's first second, and within the run's end
        hour = self.now // HOUR
        while (hour + 1) * HOUR <= self.scenario.duration:
            hour += 1
            yield self.env.timeout(hour * HOUR - 1 - self.now)
            for market in self.markets:
                self.datacollector.add_table_row("hourly", hourly_row(market.name, hour, market.state,
                                                                      self.scenario.tiers))


# Who should hear of an event, with what wakes them to react (the key of their reaction delay: an
# offer's id, a message's sender, "" for a rejection), or None if they only hear of it; found by the
# event's class. An event no one hears of has no entry.
_Addressee = tuple[str, str | None] | None


def _offer_made(state: MarketState, event: OfferMade) -> _Addressee:
    return event.offer.recipient, event.offer.id


def _offer_ended(state: MarketState, event: OfferEnded) -> _Addressee:
    offer, status = state.offers[event.offer_id], event.status
    if status is OfferStatus.WITHDRAWN:
        return offer.recipient, None
    if status is OfferStatus.COUNTERED:
        return None  # the counter-offer itself reaches them
    return offer.proposer, "" if status is OfferStatus.REJECTED else None


def _deal_closed(state: MarketState, event: DealClosed) -> _Addressee:
    return state.offers[event.deal.offer_id].proposer, None


def _message_sent(state: MarketState, event: MessageSent) -> _Addressee:
    message = event.message
    to = message.to or state.listings[message.listing_id].seller
    return None if to == message.sender else (to, message.sender)


def _action_rejected(state: MarketState, event: ActionRejected) -> _Addressee:
    return event.actor, None


_HEARD_BY: Mapping[type, Callable[[MarketState, Any], _Addressee]] = {  # (a dict: looked up for every event)
    OfferMade: _offer_made, OfferEnded: _offer_ended, DealClosed: _deal_closed,
    MessageSent: _message_sent, ActionRejected: _action_rejected,
}
