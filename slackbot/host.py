"""Hosting a live week in Slack: the live run and the parts around it, each with one job.

The run folder, the ledger and the engine thread are ``running.live.LiveRun``'s; the parts use
it only through its port (``LiveMarket``: follow, join, submit, set a person's policy) and its
clock. The parts, in the market's words:

- ``Courier`` (courier.py): every message out, through the outbox; the admins' alerts.
- ``Board`` (board.py): the week's events rendered into channels and DMs; what a person sees.
- ``Interviews`` (interview.py): the join interview in a DM, its transcript for the agent.
- ``Desk`` (desk.py): a person's actions and thread replies to the exchange, the answer back.
- ``Approvals`` (approving.py): asking, answering, asking again and settling approvals.
- ``People`` (people.py): joining, and each person's agent as their autonomy says.
- ``Week`` (week.py): the clock and settlement, export, what waits.

Restarting with the same run folder restores the week from the ledger; people who joined from
Slack get their agent (or none, if they trade by hand) back from the bot's own table.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from slack_sdk import WebClient

from agents.llm.interviewer import Interviewer, interviewer_for
from market.state import MarketState
from running.live import LiveRun
from slackbot import blocks
from slackbot.approving import Approvals
from slackbot.board import Board
from slackbot.courier import Courier
from slackbot.desk import Desk, price_in
from slackbot.interview import Interviews
from slackbot.people import People, participant_id
from slackbot.store import Person, Store
from slackbot.webapi import WebApi
from slackbot.week import Week

__all__ = ["Host", "participant_id", "price_in"]


class Host:
    """One live week in Slack: builds the live run and the parts, starts the week where it was, stops it."""

    def __init__(
        self, scenario_path: Path | str, client: WebClient, *, out: Path | None = None, speed: float = 1.0,
        pace: float = 1.0, admins: Sequence[str] = (), backoff: float = 1.0,
        interviewer: Interviewer | None = None,
    ) -> None:
        self.run = LiveRun(scenario_path, out=out, speed=speed)  # the run folder, ledger and engine thread
        self.folder, self.scenario, self.catalog = self.run.folder, self.run.scenario, self.run.catalog
        self.market_name = self.scenario.slack.join_market or self.scenario.markets[0].name
        self.admins = tuple(dict.fromkeys([*self.scenario.slack.admins, *admins]))
        self.running, self.finished = self.run.running, self.run.finished
        self.store = Store(self.folder.path)
        if self.store.get("state") == "settled":
            self.store.drop_unsent("approval")  # before the outbox starts: no question goes out after settlement
        self.api = WebApi(client, backoff=backoff)
        self.courier = Courier(self.api, self.store, pace=pace, prefix=self.scenario.slack.channel_prefix,
                               admins=self.admins)
        self.poster = self.courier.poster
        self.board = Board(self.store, self.courier, show_tiers=self.scenario.slack.show_tiers)
        self.lock = self.board.lock
        if interviewer is None and self.scenario.slack.interviewer:
            interviewer = interviewer_for(self.scenario.slack.interviewer)
        self.interviews = Interviews(self.store, self.courier, self.folder.path, interviewer)
        self.desk = Desk(self.run, self.store, self.board, self.courier, self.finished)
        self.approvals = Approvals(self.run, self.store, self.board, self.courier, self.desk)
        self.people = People(self.run, self.store, self.interviews, self.approvals, self.scenario, self.catalog,
                             self.market_name)
        self.week = Week(self.run, self.store, self.board, self.courier, self.approvals, speed)
        self.run.follow(self.board.follow)
        self.run.follow(self.people.follow)  # gives restored people their agents before the clock moves
        self.run.start()
        self.week.pick_up()

    @property
    def error(self) -> BaseException | None:
        """Why the engine stopped, if it failed."""
        return self.run.error

    def person(self, user_id: str) -> Person | None:
        """The person a Slack user is in this week, if they joined."""
        return self.store.person(user_id)

    def state(self) -> MarketState:
        """The join market's state as the board shows it (read under ``lock``)."""
        return self.board.state(self.market_name)

    def dm(self, user_id: str, key: str, msg: blocks.Msg) -> None:
        """Queue a direct message (see ``Courier.dm``)."""
        self.courier.dm(user_id, key, msg)

    def market_view(self, user_id: str) -> blocks.Msg:
        """The open listings a person could buy, with offer buttons (``/deal market``, App Home)."""
        person = self.person(user_id)
        market = person.market if person else self.market_name
        return self.board.market_view(market, person.participant_id if person else None, buttons=person is not None)

    def close(self, flush: float = 10) -> None:
        """Stop the engine (the ledger has every event), send what can go in ``flush`` seconds;
        the rest stays in the outbox for the next start."""
        self.run.close(30)
        self.poster.flush(flush)
        self.poster.stop()
        self.store.close()
