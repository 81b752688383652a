"""People joining the week from Slack: their participant, their agent as their autonomy says, their
first listings; after a restart each one's agent (or none, if they trade by hand) is given back.
"""

from __future__ import annotations

import re
from concurrent.futures import Future

from market import exchange
from market.actions import ListItem
from market.backends import Policy
from market.domain import Item, Participant, Want
from market.events import Event, ParticipantJoined
from market.mandate import Mandate
from market.scenario import CatalogEntry, Scenario, newcomer_budget, newcomer_tier
from running.live import LiveMarket
from slackbot.approving import Approvals
from slackbot.desk import Notify
from slackbot.escape import cut
from slackbot.interview import Interviews
from slackbot.store import Person, Store


def participant_id(user_id: str) -> str:
    """The participant id of a Slack user (``s-`` and their id's letters and digits, lowercase)."""
    return "s-" + re.sub(r"[^a-z0-9]", "", user_id.lower())


class People:
    """Who joined from Slack, and the agent each one trades with."""

    def __init__(self, run: LiveMarket, store: Store, interviews: Interviews, approvals: Approvals,
                 scenario: Scenario, catalog: list[CatalogEntry], market: str) -> None:
        self.run = run
        self.store = store
        self.interviews = interviews
        self.approvals = approvals
        self.scenario = scenario
        self.catalog = catalog
        self.market = market

    def agent_for(self, person: Person, tier: str) -> Policy | None:
        """``person``'s agent: none when they trade by hand, their tier's agent, held for approval on "approve"."""
        if person.autonomy == "manual":
            return None
        agent = self.run.agent(tier)
        return self.approvals.hold(person, agent) if person.autonomy == "approve" else agent

    def follow(self, seq: int, market: str, event: Event, replay: bool) -> None:
        """A follower of the live run: a person who joined from Slack before a restart gets their agent back."""
        if replay and isinstance(event, ParticipantJoined):
            joined = event.participant
            person = self.store.person_by_participant(market, joined.id)
            if person is not None:
                self.run.set_policy(market, joined.id, self.agent_for(person, joined.tier))

    def join(self, user_id: str, name: str, form: Mandate, done: Notify) -> str | None:
        """Add a Slack user with their agent; ``done`` hears the outcome. Returns a refusal or None."""
        if self.store.person(user_id):
            return "You have already joined this week's market."
        pid = participant_id(user_id)
        tier = newcomer_tier(self.scenario, self.scenario.market(self.market), pid)
        person = build_person(pid, name, form, self.catalog, self.scenario, tier)
        record = Person(user_id, self.market, pid, form.autonomy)
        # written before the join is queued, so the agent's first turn already reads them
        interviewed = self.interviews.write_instructions(user_id, pid, name, form)
        future = self.run.join(self.market, person, self.agent_for(record, tier))

        def joined(f: Future[exchange.Outcome]) -> None:
            outcome = f.result()
            if isinstance(outcome, exchange.Rejection):
                if interviewed:
                    self.interviews.withdraw(pid)
                done(f"Could not join: {outcome.reason}")
                return
            if interviewed:
                self.interviews.joined(user_id)
            self.store.add_person(record)
            if form.autonomy == "manual":
                for item, line in zip(person.items, form.sells, strict=True):
                    self.run.submit(self.market, pid, ListItem(item_id=item.id, ask=line.ask))
            done(f"You joined market {self.market} as {name} ({form.autonomy}).")

        future.add_done_callback(joined)
        return None


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "thing"


def _match(title: str, catalog: list[CatalogEntry]) -> CatalogEntry | None:
    key = title.lower().strip()
    for entry in catalog:
        if key in (entry.title.lower(), entry.kind):
            return entry
    return next((e for e in catalog if key and (key in e.title.lower() or e.title.lower() in key)), None)


def build_person(pid: str, name: str, form: Mandate, catalog: list[CatalogEntry], scenario: Scenario,
                 tier: str) -> Participant:
    """The participant a mandate describes: items at their asks, wants matched to the catalog's kinds, the
    scenario's budget for a newcomer."""
    items, reserves = [], {}
    for n, line in enumerate(form.sells, start=1):
        entry = _match(line.title, catalog)
        item = Item(id=f"{pid}-i{n}", kind=entry.kind if entry else _slug(line.title), title=line.title,
                    category=entry.category if entry else "other", value=line.ask)
        items.append(item)
        reserves[item.id] = line.least
    wants = []
    for line in form.wants:
        entry = _match(line.title, catalog)
        wants.append(Want(kind=entry.kind if entry else _slug(line.title),
                          title=entry.title if entry else line.title, max_price=line.max_price))
    return Participant(id=pid, name=cut(name, 80), budget=newcomer_budget(scenario), items=tuple(items),
                       wants=tuple(wants), reserves=reserves, style=form.style, tier=tier)
