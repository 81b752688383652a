"""Hosting a live week: the engine on a real-time clock, people joining and acting from Slack.

The run folder, the ledger and the engine thread are ``running.live.LiveRun``'s;
the host follows its events (history first, then each batch as it is written
to the ledger) into the renderer and the outbox, and talks to it only through
``LiveRun.join`` and ``submit``, which queue actions applied at the next tick
under the exchange's rules. Restarting with the same run folder restores the week
from the ledger (``history``); people who joined from Slack get their agent
(or none, if they trade by hand) back from the bot's own table.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from slack_sdk import WebClient

from agents.interview import interviewed_path, write_interviewed
from agents.llm.interviewer import Interviewer, InterviewFailed, interviewer_for
from agents.llm.interviewer import instructions as interview_instructions
from market import exchange
from market.actions import Accept, Action, Counter, ListItem, MakeOffer, SendMessage, parse_action
from market.backends import Policy
from market.domain import Deal, Item, Participant, Want
from market.engine import MarketModel
from market.events import DealClosed, MessageSent, OfferMade
from market.mandate import Mandate
from market.money import MoneyError, parse_money
from market.observation import Observation
from market.scenario import CatalogEntry, Scenario, newcomer_budget, newcomer_tier
from market.state import MarketState
from running.live import LiveRun
from slackbot import blocks
from slackbot.approvals import SETTLED, ApprovalPolicy, approval_id, target
from slackbot.escape import cut, inline, safe
from slackbot.poster import Poster
from slackbot.render import Post, Renderer, listing_key
from slackbot.store import Approval, OutboxRow, Person, Store
from slackbot.webapi import WebApi

log = logging.getLogger("slackbot.host")
Notify = Callable[[str], None]


def participant_id(user_id: str) -> str:
    return "s-" + re.sub(r"[^a-z0-9]", "", user_id.lower())


class Host:
    """The Slack side of one live week: people, approvals, rendering and the outbox around a ``LiveRun``."""

    def __init__(
        self, scenario_path: Path | str, client: WebClient, *, out: Path | None = None, speed: float = 1.0,
        pace: float = 1.0, admins: Sequence[str] = (), backoff: float = 1.0,
        interviewer: Interviewer | None = None,
    ) -> None:
        self.client = client
        self.speed = speed
        self.run = LiveRun(scenario_path, out=out, speed=speed)  # the run folder, ledger and engine thread
        self.folder, self.scenario, self.catalog = self.run.folder, self.run.scenario, self.run.catalog
        self.policies = self.run.policies
        self.market_name = self.scenario.slack.join_market or self.scenario.markets[0].name
        self.admins = tuple(dict.fromkeys([*self.scenario.slack.admins, *admins]))
        self.store = Store(self.folder.path)
        if self.store.get("state") == "settled":
            self.store.drop_unsent("approval")  # before the outbox starts: no question goes out after settlement
        self.api = WebApi(client, backoff=backoff)
        self._alerted: set[str] = set()
        self.poster = Poster(self.api, self.store, pace=pace, prefix=self.scenario.slack.channel_prefix,
                             report=self._alert).start()
        self._echoes: dict[tuple[str, str, str, str], tuple[str, str]] = {}  # a person's own thread replies
        self.renderer = Renderer(show_tiers=self.scenario.slack.show_tiers)
        self.lock = threading.RLock()  # guards the renderer's view of the markets
        self._approvers: dict[tuple[str, str], ApprovalPolicy] = {}
        self.running, self.finished = self.run.running, self.run.finished
        self.run.follow(self._follow)
        self.run.start(prepare=self._restore_people)
        if self.store.get("state") == "running":
            self.run.resume()  # it was running when the bot stopped
        if interviewer is None and self.scenario.slack.interviewer:
            interviewer = interviewer_for(self.scenario.slack.interviewer)
        self.interviewer = interviewer
        if self.store.get("state") == "settled":
            self._settle_approvals()  # stopped during settlement: finish it (what was done is not redone)
        else:
            self._ask_again(lost_only=True)  # questions that never reached their person

    @property
    def error(self) -> BaseException | None:
        """Why the engine stopped, if it failed."""
        return self.run.error

    def _follow(self, seq: int, market: str, event: Any, replay: bool) -> None:
        with self.lock:
            self._publish(seq, market, event, replay)

    def _publish(self, seq: int, market: str, event: Any, replay: bool = False) -> None:
        if isinstance(event, MessageSent):
            m = event.message
            echo = self._echoes.pop((market, m.sender, m.listing_id, m.text), None)
            if echo is not None:  # the person's own reply in the thread is this message's post
                self.store.record_post(f"{market}:{seq}", *echo)
        for post in self.renderer.feed(seq, market, event):
            if not (replay and self.store.posted(post.key)):
                self.poster.submit(post)
        state = self.renderer.state(market)
        if isinstance(event, OfferMade):
            person = self.store.person_by_participant(market, event.offer.recipient)
            if person and person.autonomy == "manual":
                names = (_name(state, event.offer.proposer), _name(state, event.offer.recipient))
                self.dm(person.user_id, f"dm:{market}:{seq}", blocks.offer(event.offer, *names, buttons=True))
        elif isinstance(event, DealClosed):
            for pid in (event.deal.buyer, event.deal.seller):
                person = self.store.person_by_participant(market, pid)
                if person:
                    item = state.items[event.deal.item_id]
                    msg = blocks.deal(event.deal, item, _name(state, event.deal.seller), _name(state, event.deal.buyer))
                    self.dm(person.user_id, f"dm:{market}:{seq}:{pid}", msg)

    def _restore_people(self, model: MarketModel) -> None:
        for person in self.store.people():
            trader = model.market(person.market).traders.get(person.participant_id)
            if trader is not None:
                trader.policy = self._policy_for(person, trader.tier)

    def _policy_for(self, person: Person, tier: str) -> Policy | None:
        if person.autonomy == "manual":
            return None
        policy = self.policies[tier]
        if person.autonomy == "approve":
            wrapped = ApprovalPolicy(policy, self, person.market, person.participant_id)
            self._approvers[(person.market, person.participant_id)] = wrapped
            return wrapped
        return policy

    # --- posting -------------------------------------------------------------------------------------
    def dm(self, user_id: str, key: str, msg: blocks.Msg) -> None:
        self.poster.submit(Post(key=key, market=f"@{user_id}", msg=msg))

    def _alert(self, key: str, error: str, fix: str) -> None:
        """A message Slack refused for good: the admins hear it once per kind of error."""
        if key.startswith("alert:") or error in self._alerted:
            return
        self._alerted.add(error)
        for admin in self.admins:
            self.dm(admin, f"alert:{error}:{admin}", blocks.notice(
                f"A message ({key}) could not be delivered: {error}. To fix: {fix}. "
                "Then `/deal admin resend` sends what failed."))

    # --- the interview ---------------------------------------------------------------------------------
    def _interview(self, user_id: str) -> dict[str, Any] | None:
        raw = self.store.get(f"interview:{user_id}")
        return json.loads(raw) if raw else None

    def _save_interview(self, user_id: str, state: dict[str, Any]) -> None:
        self.store.put(f"interview:{user_id}", json.dumps(state))

    def interview_stage(self, user_id: str) -> str | None:
        """None (no interview), "asking", "confirm" (a mandate to confirm), "failed" or "done"."""
        state = self._interview(user_id)
        return str(state["stage"]) if state else None

    def interviewing(self, user_id: str) -> bool:
        """True while a person is answering the interviewer's questions in their DM."""
        state = self._interview(user_id)
        return bool(state and state["stage"] == "asking")

    def start_interview(self, user_id: str) -> str:
        """Open the interview in the person's DM (its first question); what to tell them now."""
        assert self.interviewer is not None
        if self.person(user_id):
            return "You have already joined this week's market."
        state = self._interview(user_id)
        if state and state["stage"] == "asking":
            return "Your interview is open in your DM with me: answer the last question there."
        try:
            question = self.interviewer.next_question([])
        except InterviewFailed as exc:
            log.warning("interview for %s: %s", user_id, exc)
            return "The interviewer is not available right now. " + FORM_NOTE
        self._save_interview(user_id, {"stage": "asking", "transcript": [], "question": question})
        self.dm(user_id, f"interview:{user_id}:q0:{len(self.store.keys_like(f'interview:{user_id}'))}",
                blocks.notice(question or ""))
        return "I have sent you a few questions in a DM: your answers become your agent's instructions."

    def interview_answer(self, user_id: str, text: str) -> None:
        """The person answered in their DM: the next question, or the mandate to confirm."""
        assert self.interviewer is not None
        state = self._interview(user_id)
        if not state or state["stage"] != "asking":
            return
        transcript = [*state["transcript"], [state["question"], text.strip()[:2000]]]
        n = len(transcript)
        try:
            question = self.interviewer.next_question([tuple(t) for t in transcript])  # type: ignore[misc]
            if question:
                self._save_interview(user_id, {"stage": "asking", "transcript": transcript, "question": question})
                self.dm(user_id, f"interview:{user_id}:q{n}", blocks.notice(question))
                return
            mandate = self.interviewer.extract([tuple(t) for t in transcript])  # type: ignore[misc]
        except InterviewFailed as exc:
            log.warning("interview for %s: %s", user_id, exc)
            self._save_interview(user_id, {"stage": "failed", "transcript": transcript})
            self.dm(user_id, f"interview:{user_id}:failed", blocks.notice(
                "Sorry, I could not turn your answers into a mandate. " + FORM_NOTE))
            return
        self._save_interview(user_id, {"stage": "confirm", "transcript": transcript,
                                       "mandate": mandate.model_dump(mode="json")})
        self.dm(user_id, f"interview:{user_id}:mandate", blocks.mandate(mandate))

    def interview_form(self, user_id: str) -> Mandate | None:
        """The mandate the interview extracted, to confirm or correct in the join form."""
        state = self._interview(user_id)
        if not state or state["stage"] != "confirm":
            return None
        return Mandate.model_validate(state["mandate"])

    def _write_instructions(self, user_id: str, pid: str, name: str, form: Mandate) -> bool:
        """Write the agent's instructions from the person's interview (if they had one) where their
        agent reads them (``instructions/<pid>.interview.md``); True when written."""
        state = self._interview(user_id)
        if not state or not state.get("transcript"):
            return False
        write_interviewed(self.folder.path, pid, interview_instructions(
            name, [tuple(t) for t in state["transcript"]], form))  # type: ignore[misc]
        return True

    # --- haggling in threads ------------------------------------------------------------------------
    def thread_reply(self, user_id: str, channel: str, thread_ts: str, ts: str, text: str) -> None:
        """A person's reply in a listing's thread: a message in that listing's conversation.

        Their agent's counterparts read it in their observation; a person trading by hand who
        names a price gets a one-click offer button (shown to them only). Replies in threads that
        are not a listing's are someone else's conversation and left alone.
        """
        key = self.store.post_key(channel, thread_ts)
        listing = listing_of(key) if key else None
        if key is None or listing is None:
            return
        market, lid = listing
        refusal = self._haggle(user_id, market, lid, channel, ts, text)
        if refusal:
            self.poster.submit(Post(key=f"refusal:{channel}:{ts}", market=market, msg=blocks.notice(refusal),
                                    thread=key, ephemeral=user_id))

    def _haggle(self, user_id: str, market: str, lid: str, channel: str, ts: str, text: str) -> str | None:
        person = self.person(user_id)
        if person is None or person.market != market:
            return "Join the market first (`/deal join`) to haggle in its threads."
        text = text.strip()[:2000]
        if not text:
            return None
        with self.lock:
            state = self.renderer.state(market)
            lst = state.listings.get(lid)
            title = state.items[lst.item_id].title if lst else "this item"
        if lst is None or lst.status != "open":
            return "That listing is closed: your message was not passed on."
        echo = (market, person.participant_id, lid, text)
        self._echoes[echo] = (channel, ts)
        def answered(result: str) -> None:
            if result.startswith("Not done"):  # refused by the exchange at the tick: no echo will come
                self._echoes.pop(echo, None)
                self.poster.submit(Post(key=f"refusal:{channel}:{ts}", market=market, msg=blocks.notice(result),
                                        thread=listing_key(market, lid), ephemeral=user_id))

        refusal = self._submit(person, SendMessage(listing_id=lid, text=text), answered)
        if refusal:
            self._echoes.pop(echo, None)
            return refusal
        amount = price_in(text)
        if person.autonomy == "manual" and amount is not None and lst.seller != person.participant_id:
            self.poster.submit(Post(key=f"price:{channel}:{ts}", market=market,
                                    msg=blocks.offer_button(lid, title, amount),
                                    thread=listing_key(market, lid), ephemeral=user_id))
        return None

    def say(self, channel: str, key: str, msg: blocks.Msg) -> None:
        """Post into a conversation the bot was written in (a DM), by its channel id."""
        self.poster.submit(Post(key=key, market=f"#{channel}", msg=msg))

    def market_view(self, user_id: str) -> blocks.Msg:
        """The open listings a person could buy, with offer buttons (``/deal market``, App Home)."""
        person = self.person(user_id)
        market = person.market if person else self.market_name
        me = person.participant_id if person else None
        with self.lock:
            state = self.renderer.state(market)
            rows = [(lst, state.items[lst.item_id], _name(state, lst.seller)) for lst in state.listings.values()
                    if lst.status == "open" and lst.seller != me]
        return blocks.market(market, rows, buttons=person is not None)

    # --- what people do -----------------------------------------------------------------------------
    def state(self) -> MarketState:
        return self.renderer.state(self.market_name)

    def person(self, user_id: str) -> Person | None:
        return self.store.person(user_id)

    def join(self, user_id: str, name: str, form: Mandate, done: Notify) -> str | None:
        """Add a Slack user with their agent; ``done`` hears the outcome. Returns a refusal or None."""
        if self.person(user_id):
            return "You have already joined this week's market."
        pid = participant_id(user_id)
        tier = newcomer_tier(self.scenario, self.scenario.market(self.market_name), pid)
        person = build_person(pid, name, form, self.catalog, self.scenario, tier)
        record = Person(user_id, self.market_name, pid, form.autonomy)
        # written before the join is queued, so the agent's first turn already reads them
        interviewed = self._write_instructions(user_id, pid, name, form)
        future = self.run.join(self.market_name, person, self._policy_for(record, tier))

        def joined(f: Future[exchange.Outcome]) -> None:
            outcome = f.result()
            if isinstance(outcome, exchange.Rejection):
                if interviewed:
                    interviewed_path(self.folder.path, pid).unlink(missing_ok=True)
                done(f"Could not join: {outcome.reason}")
                return
            if interviewed:
                state = self._interview(user_id) or {}
                self._save_interview(user_id, {"stage": "done", "transcript": state.get("transcript", [])})
            self.store.add_person(record)
            if form.autonomy == "manual":
                for item, line in zip(person.items, form.sells, strict=True):
                    self.run.submit(self.market_name, pid, ListItem(item_id=item.id, ask=line.ask))
            done(f"You joined market {self.market_name} as {name} ({form.autonomy}).")

        future.add_done_callback(joined)
        return None

    def submit(self, user_id: str, action: Action, done: Notify) -> str | None:
        """Queue a person's action; ``done`` hears the exchange's answer. Returns a refusal or None."""
        person = self.person(user_id)
        if person is None:
            return "You have not joined yet: type `/deal join`."
        return self._submit(person, action, done)

    def _submit(self, person: Person, action: Action, done: Notify, approval: str | None = None) -> str | None:
        if self.finished.is_set() or self.store.get("state") == "settled":
            if approval:
                self.store.approval_result(approval, "refused: the week is over")
            return "The week is over: nothing more can be done in this market."
        future = self.run.submit(person.market, person.participant_id, action)

        def answered(f: Future[exchange.Outcome]) -> None:
            outcome = f.result()
            if isinstance(outcome, exchange.Rejection):
                result, text = f"refused: {outcome.reason}", f"Not done: {outcome.reason}"
            else:
                made = [e.deal.id for e in outcome if isinstance(e, DealClosed)]
                made += [e.offer.id for e in outcome if isinstance(e, OfferMade)]
                result, text = ",".join(made), f"Done: {action.type.replace('_', ' ')}."
            if approval:
                self.store.approval_result(approval, result)
            done(text)

        future.add_done_callback(answered)
        return None

    def status(self, user_id: str) -> blocks.Msg | None:
        person = self.person(user_id)
        if person is None:
            return None
        with self.lock:
            state = self.renderer.state(person.market)
            pid = person.participant_id
            holdings = state.holdings(pid)
            mine = [(state.listings[lid], state.items[state.listings[lid].item_id])
                    for lid in state.listings_by_seller.get(pid, {}) if state.listings[lid].status == "open"]
            threads = [state.offers[o] for o in state.open_offers_by_party.get(pid, {})]
            names = {p: q.name for p, q in state.participants.items()}
            return blocks.status(names.get(pid, pid), person.market, state.balance.get(pid, 0),
                                 state.escrow.get(pid, 0), holdings, mine, threads, names)

    # --- approvals ------------------------------------------------------------------------------------
    def request_approval(self, market: str, pid: str, action: Action, obs: Observation) -> None:
        """Hold an agent's committing action and DM its principal Approve / Decline (once per action)."""
        person = self.store.person_by_participant(market, pid)
        if person is None or self._over():
            return
        approval = Approval(approval_id(market, pid, action), market, pid, target(action), "pending",
                            action.model_dump_json())
        if not self.store.add_approval(approval):
            return  # asked already, or a question about the same offer or listing is still open
        with self.lock:
            question = _question(self.renderer.state(market), approval.id, action)
        self.dm(person.user_id, f"approval:{approval.id}", question)

    def decide_approval(self, user_id: str, approval_id: str, approve: bool, done: Notify) -> str | None:
        approval = self.store.approval(approval_id)
        person = self.person(user_id)
        if approval is None or person is None or person.participant_id != approval.participant_id:
            return "That approval is not yours."
        if not self.store.decide_approval(approval_id, "approved" if approve else "declined"):
            if approval.result.startswith(SETTLED):
                return "The week is over: this was declined when the week was settled, and your agent did not do it."
            return "You already answered this one."
        action = parse_action(approval.action) if approval.action else Accept(offer_id=approval.target)
        if not approve:
            policy = self._approvers.get((approval.market, approval.participant_id))
            if policy is not None:
                policy.declined(action, self.run.now)
            done("Declined: your agent will not do that, and hears so at its next turn.")
            return None
        return self._submit(person, action, done, approval=approval.id)

    def _over(self) -> bool:
        """True once the week ended (its clock ran out or stopped) or was settled: nothing is asked any more."""
        return self.finished.is_set() or self.store.get("state") == "settled"

    def _settle_approvals(self) -> list[str]:
        """Decline every approval still open (never answered, or its question never reached the person),
        recorded in the approvals table with why; the person and the admins are told. Safe to repeat:
        a restart during settlement finishes it, and the messages' keys keep them from going twice.
        Lines for the admins, one per declined approval."""
        self.store.drop_unsent("approval")  # a question still queued would ask after the week
        for approval in self.store.approvals():
            if approval.state != "pending":
                continue
            keys = self.store.keys_like(f"approval:{approval.id}")
            if any(self.store.posted(k) for k in keys):
                why = "never answered"
            else:
                errors = sorted({row.error for k in keys if (row := self.store.outbox_row(k)) and row.error})
                why = "its question could not be delivered" + (f" ({', '.join(errors)})" if errors else "")
            self.store.resolve_approval(approval.id, "declined", f"{SETTLED}: {why}")  # False: answered meanwhile
        lines = []
        for approval in self.store.approvals():
            if approval.state != "declined" or not approval.result.startswith(SETTLED):
                continue
            person = self.store.person_by_participant(approval.market, approval.participant_id)
            why = approval.result.removeprefix(SETTLED).lstrip(": ")
            who = f"<@{person.user_id}>" if person else inline(approval.participant_id, 40)
            lines.append(f"• `{inline(approval.id, 120)}` for {who}: {safe(why, 200)}")
            if person is None:
                continue
            action = parse_action(approval.action) if approval.action else Accept(offer_id=approval.target)
            with self.lock:
                title = _title(self.renderer.state(approval.market), action)
            reached = why == "never answered"
            reason = ("the week was settled before you answered" if reached else
                      "the week was settled, and the question never reached you") + ": your agent did not do it"
            self.dm(person.user_id, f"settled:{approval.id}", blocks.approval_done(False, title, reason))
        if lines:
            text = "\n".join([f"Settlement declined *{len(lines)}* approvals still open:", *lines[:30]])
            if len(lines) > 30:
                text += f"\n… and {len(lines) - 30} more."
            for admin in self.admins:
                self.dm(admin, f"settled:approvals:{admin}:{len(lines)}", blocks.trusted(text))  # again if more
        return lines

    def _ask_again(self, lost_only: bool) -> int:
        """DM pending approval questions again: all of them, or only those never delivered (none once the
        week is over)."""
        asked = 0
        if self._over():
            return asked
        for approval in self.store.approvals():
            if approval.state != "pending":
                continue
            person = self.store.person_by_participant(approval.market, approval.participant_id)
            if person is None:
                continue
            keys = [k for k in self.store.keys_like(f"approval:{approval.id}")]
            if lost_only and any(self.store.posted(k) or (self.store.outbox_row(k) or _NONE).state == "pending"
                                 for k in keys):
                continue
            action = parse_action(approval.action) if approval.action else Accept(offer_id=approval.target)
            with self.lock:
                question = _question(self.renderer.state(approval.market), approval.id, action)
            self.dm(person.user_id, f"approval:{approval.id}:ask{len(keys) + 1}", question)
            asked += 1
        return asked

    # --- admin ----------------------------------------------------------------------------------------
    def pending(self) -> str:
        """What waits: approvals nobody answered, messages not yet delivered or refused by Slack."""
        waiting = [a for a in self.store.approvals() if a.state == "pending"]
        queued = self.store.outbox("pending")
        failed = self.store.outbox("failed")
        lines = [f"*{len(waiting)}* approvals waiting for an answer:"]
        for a in waiting[:20]:
            person = self.store.person_by_participant(a.market, a.participant_id)
            lines.append(f"• `{a.id}` for {'<@' + person.user_id + '>' if person else a.participant_id}")
        lines.append(f"*{len(queued)}* messages queued, *{len(failed)}* refused by Slack:")
        for row in failed[:20]:
            lines.append(f"• `{row.key}`: {row.error}")
        if failed or waiting:
            lines.append("`/deal admin resend` asks the approvals again and resends what was refused.")
        return "\n".join(lines)

    def resend(self) -> str:
        """Ask every pending approval again and queue every refused message again."""
        again = self.poster.resend_failed()
        asked = self._ask_again(lost_only=False)
        return f"Asked {asked} approvals again; {again} refused messages queued again."

    def start(self) -> str:
        if self.store.get("state") == "settled":
            return "The week is settled; it cannot start again."
        self.store.put("state", "running")
        self.run.resume()
        return f"The week is running at {self.speed:g}x."

    def pause(self) -> str:
        self.run.pause()
        self.store.put("state", "paused")
        return "Paused: the clock stands still; actions queue until resume."

    def settle(self) -> str:
        """End the week: stop the clock, decline the approvals still open (their people and the admins
        are told), DM each person their settlement (once)."""
        self.store.put("state", "settled")
        self.run.finish(30)
        self.poster.flush(60)
        declined = self._settle_approvals()
        sent = 0
        with self.lock:
            for person in self.store.people():
                state = self.renderer.state(person.market)
                pid = person.participant_id
                mine = [d for d in state.deals if pid in (d.buyer, d.seller)]
                bought = [(state.items[d.item_id].title, d.price) for d in mine if d.buyer == pid]
                sold = [(state.items[d.item_id].title, d.price) for d in mine if d.seller == pid]
                net = state.balance.get(pid, 0) - state.participants[pid].budget
                name = _name(state, pid)
                self.dm(person.user_id, f"settle:{person.market}:{pid}",
                        blocks.settlement(name, person.market, bought, sold, net))
                sent += 1
        for post in self.renderer.finish():
            self.poster.submit(post)
        if declined:
            return (f"Settled: {sent} settlement messages on their way; {len(declined)} approvals still open were "
                    "declined (their people and the admins are told).")
        return f"Settled: {sent} settlement messages on their way."

    def export(self) -> str:
        target = self.folder.path / "ledger.jsonl"
        lines = self.run.export()
        target.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        return f"Exported {len(lines)} events to {target.name} in the run folder."

    def deals_of(self, user_id: str) -> list[tuple[Deal, str]]:
        person = self.person(user_id)
        if person is None:
            return []
        with self.lock:
            state = self.renderer.state(person.market)
            return [(d, state.items[d.item_id].title) for d in state.deals
                    if person.participant_id in (d.buyer, d.seller)]

    def close(self, flush: float = 10) -> None:
        """Stop the engine (the ledger has every event), send what can go in ``flush`` seconds;
        the rest stays in the outbox for the next start."""
        self.run.close(30)
        self.poster.flush(flush)
        self.poster.stop()
        self.store.close()


_NONE = OutboxRow("", "", None, False, None, "", state="none")
_PRICE = re.compile(r"\$\s?(\d{1,7}(?:,\d{3})*(?:\.\d{1,2})?)|\b(\d{1,7}(?:\.\d{1,2})?)\s?(?:dollars|bucks)\b",
                    re.IGNORECASE)


def price_in(text: str) -> int | None:
    """The first amount a message names ("I'd do $12", "12.50 dollars") in cents, exactly; or None."""
    match = _PRICE.search(text)
    if match is None:
        return None
    try:
        amount = parse_money("$" + (match.group(1) or match.group(2)).replace(",", ""))
    except MoneyError:
        return None
    return amount if amount > 0 else None


def listing_of(key: str) -> tuple[str, str] | None:
    """(market, listing id) of a listing's post key, or None for any other post."""
    market, sep, lid = key.partition(":listing:")
    return (market, lid) if sep and market and lid else None


FORM_NOTE = "Type `/deal join` to join with the form instead."


def _name(state: MarketState, pid: str) -> str:
    person = state.participants.get(pid)
    return person.name if person else pid


def _title(state: MarketState, action: Action) -> str:
    """The title of the item a held action is about, from what the state still knows."""
    offer = state.offers.get(getattr(action, "offer_id", ""))
    listing = state.listings.get(offer.listing_id if offer else getattr(action, "listing_id", ""))
    item = state.items.get(listing.item_id) if listing else None
    return item.title if item else "an item"


def _question(state: MarketState, approval: str, action: Action) -> blocks.Msg:
    """The approval DM for ``action``, from what the state still knows (the exchange judges it later)."""
    offer = state.offers.get(getattr(action, "offer_id", ""))
    listing = state.listings.get(offer.listing_id if offer else getattr(action, "listing_id", ""))
    item = state.items.get(listing.item_id) if listing else None
    title = item.title if item else "an item"
    if isinstance(action, MakeOffer):
        seller = _name(state, listing.seller) if listing else "the seller"
        return blocks.approval_request(approval, action.type, action.amount, title, seller, action.listing_id)
    who = _name(state, offer.proposer) if offer else "the other side"
    previous = offer.amount if offer else None
    amount = action.amount if isinstance(action, Counter) else (previous or 0)
    return blocks.approval_request(approval, action.type, amount, title, who, target(action), previous)


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
