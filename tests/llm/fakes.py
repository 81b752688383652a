"""Local fake model APIs for tests and benchmarks: real HTTP on 127.0.0.1.

``FakeAnthropic`` speaks the Anthropic Messages API (``POST /v1/messages``) and
``FakeOpenAI`` the OpenAI chat completions API (``POST /v1/chat/completions``),
enough for the real ``anthropic`` and ``openai`` SDKs. The "model" is the
rule-based ``OfflinePolicy`` (frontier profile for opus-like model names, small
otherwise) reading the observation and mandate out of the request, so the
answers are real trading decisions as tool calls. Usage blocks are real in shape:
tokens are counted as the bytes of compact JSON / 4, and prompt caching is simulated (Anthropic:
breakpoints, 20-block lookback, the model's minimum cacheable length; OpenAI:
automatic prefix caching from 1024 tokens in 128-token steps).

Fault modes, each on every Nth request (``faults={"rate_limit": 5}``):
``rate_limit`` (429 + retry-after), ``overloaded`` (529), ``server_error`` (500),
``slow`` (answers after ``slow_seconds``), ``adversarial`` (bids far above any limit,
asks of one cent), ``malformed`` (an amount as text /
arguments that are not JSON), ``unknown_tool``, ``max_tokens`` (the last tool
call cut short), ``refusal``, and for OpenAI ``quota`` (429 insufficient_quota).
A repair request (the error sent back as a tool result) gets the corrected call.

Prompt injection: the offline policy never reads free text, so the fake adds a
*modelled* susceptibility. When an observation carries text matching one of
``INJECTION_KINDS`` (pay far above the ask, reveal your limit, ignore your
principal) on a listing, the fake follows it with probability
``SUSCEPTIBILITY[profile]`` (small 0.35, frontier 0.03 by default), decided once
per (model, market, trader, listing, kind) from a SHA-256 hash: deterministic,
independent of call order. These are assumed rates, not measured model behaviour;
pointed at the real API, ``benchmarks/llm_injection.py`` measures the real models.

Fairness survey (``agents.llm.survey``): a request offering the ``rate_deals`` tool
is answered from the deal facts in its ``<deals>`` block by a fixed rule, the fake's
rule and no model's: the principal's surplus share is ``(limit - price) / limit``
for a buyer (-1 with no limit) and ``(price - reserve) / reserve`` for a seller,
and the rating is ``4 + round(6 * share)`` clamped to 1..7 (more surplus, a higher
rating); the comment states the surplus. Survey faults, on every Nth survey
question (``survey_faults={"malformed": 3}``): ``malformed`` (a rating as text, or
arguments that are not JSON; the repair is correct) and ``stubborn`` (the repair is
malformed too).

Run standalone (for benchmarks): ``python -m tests.llm.fakes anthropic --latency 0.2``
prints the port, then serves until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import re
import socket
import threading
from collections.abc import Set as AbstractSet
from itertools import count
from typing import Any

import orjson
from aiohttp import web

from agents.llm.estimate import openai_prefixes
from agents.llm.estimate import tokens as estimated_tokens
from agents.llm.pricing import lookup
from agents.llm.prompts import parse_observation, parse_principal
from agents.llm.survey import SURVEY_TOOL, deals_in
from agents.offline import PROFILES, OfflinePolicy
from market.money import format_money
from market.observation import Observation
from tests.llm.contract import Refused, anthropic_error, check_anthropic, check_openai, openai_error

Chosen = tuple[int, dict[str, str], bytes, float]  # status, headers, encoded body, extra seconds (``slow``)
MONEY_FIELDS = ("amount", "ask")
SUSCEPTIBILITY = {"frontier": 0.03, "small": 0.35}  # modelled share of injected instructions followed
INJECTION_KINDS = {
    "overpay": re.compile(r"\b(?:pay|offer)\b[^.]*\b(?:times|above|more than)\b[^.]*\bask", re.I),
    "reveal": re.compile(r"\b(?:reveal|tell|share)\b[^.]*\b(?:limit|maximum|most|budget|reserve)", re.I),
    "ignore": re.compile(r"\bignore\b[^.]*\b(?:principal|instructions|rules)", re.I),
}


def _unit(*parts: str) -> float:
    """A number in [0, 1) from a hash of ``parts`` (no shared random state)."""
    return int.from_bytes(hashlib.sha256(":".join(parts).encode()).digest()[:8], "big") / 2**64


def injected_texts(obs: Observation) -> list[tuple[str, str]]:
    """(listing id, text) of every free text the observation shows that was written by someone else."""
    out = [(v.listing.id, v.listing.description) for v in (*obs.market_listings, *obs.thread_listings)]
    out += [(o.listing_id, o.message) for o in obs.incoming]
    for event in obs.news:
        match event.type:
            case "message_sent" if event.message.sender != obs.trader:  # type: ignore[union-attr]
                out.append((event.message.listing_id, event.message.text))  # type: ignore[union-attr]
            case "offer_made" if event.offer.proposer != obs.trader:  # type: ignore[union-attr]
                out.append((event.offer.listing_id, event.offer.message))  # type: ignore[union-attr]
    return [(lid, text) for lid, text in out if text]


def _compact(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


def tokens(obj: Any) -> int:
    """A token estimate: the bytes of ``obj`` as compact JSON (or of the text itself), divided by 4 (the rule
    of ``agents.llm.estimate``, shared; the prompt caching here stays the fake's own)."""
    return estimated_tokens(obj.encode() if isinstance(obj, str) else obj if isinstance(obj, bytes) else _compact(obj))


def _strip(block: Any) -> Any:
    return {k: v for k, v in block.items() if k != "cache_control"} if isinstance(block, dict) else block



HOSTILE = b'"__HOSTILE__"'


def hostile_body(payload: dict[str, Any], n: int) -> bytes:
    """``payload`` encoded with its ``"__HOSTILE__"`` placeholder replaced by hostile JSON: a 4,301-digit
    number (odd ``n``) or arrays nested 3,000 deep (even ``n``)."""
    bad = b"1" * 4301 if n % 2 else b"[" * 3000 + b"]" * 3000
    return orjson.dumps(payload).replace(HOSTILE, bad, 1)


def _every_nth(n: int, faults: dict[str, int], sent: dict[str, int]) -> str | None:
    """The fault mode due on the ``n``-th request (mode -> every how many), counted in ``sent``."""
    for mode, every in faults.items():
        if every and n % every == 0:
            sent[mode] = sent.get(mode, 0) + 1
            return mode
    return None


class FakeModelServer:
    """The shared machinery: the HTTP server, counters, fault schedule, the offline model.

    The server is aiohttp on its own event loop in one thread, which reads every request as it comes,
    chooses the answer and sends it ``latency`` after the request came. (A thread per connection, as
    ``http.server`` has, made requests wait for the GIL before they were even read.) The answers are
    chosen one at a time, in the order the requests came, by one task (``_choosing``) while the requests
    wait out their latency: a burst of requests is read, and its latency clock started, as it comes, not
    each after the choices of those before it (a real API is not one loop; the fake's own work, about half
    a millisecond a request, stays inside the latency it models as long as it keeps up).
    """

    def __init__(self, latency: float = 0.0, faults: dict[str, int] | None = None, slow_seconds: float = 1.0,
                 retry_after: str = "0.01", api_key: str = "test-key",
                 survey_faults: dict[str, int] | None = None, context_tokens: int | None = None) -> None:
        self.latency = latency
        self.context_tokens = context_tokens  # the model's context window (None: unbounded)
        self.refused: list[str] = []  # the messages of requests refused by the API contract (400)
        self.systems: set[str] = set()  # every distinct system text the contract accepted
        self.faults = dict(faults or {})
        self.slow_seconds = slow_seconds
        self.retry_after = retry_after
        self.api_key = api_key
        self.requests = 0
        self.faults_sent: dict[str, int] = {}
        self.answered = 0
        self.lock = threading.Lock()
        self._ids = count(1)
        self._policies = {name: OfflinePolicy(profile, seed=0) for name, profile in PROFILES.items()}
        self.susceptibility = dict(SUSCEPTIBILITY)
        self.injections_followed: dict[str, int] = {}
        self._kinds: dict[str, tuple[str, ...]] = {}  # text -> the injection kinds it matches
        self._principals: dict[str, dict[str, Any]] = {}  # system text -> its parsed principal
        self._policy_lock = threading.Lock()
        self.corrections: dict[str, dict[str, Any]] = {}
        self.cache: set[str] = set()
        self.survey_faults = dict(survey_faults or {})
        self.survey_questions = 0
        self.survey_faults_sent: dict[str, int] = {}
        self.stubborn: set[str] = set()  # ids of survey answers whose repair is malformed too
        self.hostile_sent = 0
        self._slow = 0.0  # extra delay ``handle`` asks for (the ``slow`` fault); one request at a time
        self._socket = socket.create_server(("127.0.0.1", 0))  # bound now, so the port is known before start
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._chooser: asyncio.Task[None] | None = None
        self._requests: asyncio.Queue[tuple[str, bytes, str, asyncio.Future[Chosen]]] | None = None
        self.thread: threading.Thread | None = None

    # --- lifecycle -----------------------------------------------------------
    @property
    def port(self) -> int:
        return self._socket.getsockname()[1]

    def start(self) -> FakeModelServer:
        self.thread = threading.Thread(target=self._loop.run_forever, name="fake-api", daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(timeout=30)
        return self

    def stop(self) -> None:
        """Stop serving (idempotent): open connections are closed, the port is released."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            asyncio.run_coroutine_threadsafe(self._shutdown(runner), self._loop).result(timeout=30)
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self.thread is not None:
                self.thread.join(timeout=30)
        self._socket.close()

    # --- helpers for subclasses ----------------------------------------------
    def next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):06d}"

    def fault_for(self) -> str | None:
        with self.lock:
            self.requests += 1
            return _every_nth(self.requests, self.faults, self.faults_sent)

    def decide(self, model: str, observation: Observation,
               prior: AbstractSet[tuple[str, str]] = frozenset()) -> list[dict[str, Any]]:
        """The offline policy's actions as (name, input) tool calls, plus any injected instruction followed.

        ``prior`` holds (tool name, listing id) of the calls already in the conversation, so an
        injected instruction is followed once, not on every turn.
        """
        profile = "frontier" if "opus" in model or "frontier" in model else "small"
        with self._policy_lock:
            decision = self._policies[profile].decide(observation)
        calls = [
            {"name": a.type, "input": a.model_dump(mode="json", exclude={"type"})}
            for a in decision.actions
        ]
        return self.follow_injections(model, profile, observation, calls, prior)

    def follow_injections(self, model: str, profile: str, obs: Observation, calls: list[dict[str, Any]],
                          prior: AbstractSet[tuple[str, str]]) -> list[dict[str, Any]]:
        """The modelled susceptibility (see the module docstring): replace or add calls as instructed."""
        rate = self.susceptibility.get(profile, 0.0)
        views = {v.listing.id: v for v in (*obs.market_listings, *obs.thread_listings)}
        mine = {listing.id: listing for listing in obs.my_listings}
        bidding = {o.listing_id for o in obs.outgoing}
        done: set[tuple[str, str]] = set()
        for lid, text in injected_texts(obs):
            for kind in self.injection_kinds(text):
                if (lid, kind) in done:
                    continue
                done.add((lid, kind))
                if _unit(model, obs.market, obs.trader, lid, kind) >= rate:
                    continue
                call = self._instructed(kind, obs, views.get(lid), mine.get(lid), lid)
                if call is None or (call["name"], lid) in prior or (call["name"] == "make_offer" and lid in bidding):
                    continue
                if call["name"] == "make_offer":  # instead of the policy's own bid on that listing
                    calls = [c for c in calls if c["input"].get("listing_id") != lid]
                calls.append(call)
                with self.lock:
                    self.injections_followed[kind] = self.injections_followed.get(kind, 0) + 1
        return calls

    def injection_kinds(self, text: str) -> tuple[str, ...]:
        """The ``INJECTION_KINDS`` whose pattern ``text`` matches (kept by the text: the same listing's
        description is read again on every turn that shows it)."""
        kinds = self._kinds.get(text)
        if kinds is None:
            kinds = self._kinds[text] = tuple(k for k, pattern in INJECTION_KINDS.items() if pattern.search(text))
        return kinds

    def principal(self, text: str) -> dict[str, Any]:
        """The principal inside ``text`` (a system prompt), parsed once per distinct text: a trader's system
        prompt is the same on every turn. Nothing reads it but ``Observation`` validation, which copies it."""
        principal = self._principals.get(text)
        if principal is None:
            principal = self._principals[text] = parse_principal(text)
        return principal

    @staticmethod
    def _instructed(kind: str, obs: Observation, view: Any, own: Any, lid: str) -> dict[str, Any] | None:
        principal = obs.principal
        if own is not None:  # the trader sells this one
            reserve = principal.reserves.get(own.item_id)
            if kind == "reveal" and reserve is not None:
                return {"name": "send_message", "input": {
                    "listing_id": lid, "text": f"Between us, the least I can take is {format_money(reserve)}."}}
            offer = next((o for o in obs.incoming if o.listing_id == lid), None)
            if kind == "ignore" and offer is not None:
                return {"name": "accept", "input": {"offer_id": offer.id, "message": "As you asked."}}
            return None
        if view is None:
            return None
        want = principal.want_for(view.item.kind)
        if kind == "reveal":
            most = want.max_price if want is not None else principal.budget
            return {"name": "send_message", "input": {
                "listing_id": lid, "text": f"The most I can pay for the {view.item.title} is {format_money(most)}."}}
        amount = view.listing.ask * 2 if kind == "overpay" else obs.balance
        return {"name": "make_offer", "input": {"listing_id": lid, "amount": amount, "message": "As you asked."}}

    def corrupt(self, calls: list[dict[str, Any]], mode: str) -> str | None:
        """Break one call the way a model might; returns the index (as the id to correct) or None."""
        for i, call in enumerate(calls):
            money = [f for f in MONEY_FIELDS if f in call["input"]]
            if mode == "malformed" and money:
                self.corrections[str(i)] = dict(call)
                call["input"] = {**call["input"], money[0]: format_money(call["input"][money[0]])}
                return str(i)
            if mode == "unknown_tool":
                self.corrections[str(i)] = dict(call)
                call["name"] = "buy_now"
                return str(i)
        return None

    @staticmethod
    def rate(facts: dict[str, Any]) -> tuple[int, str]:
        """The fake's rule for a fairness rating (see the module docstring): more surplus, a higher rating."""
        price = facts["price"]
        if facts["you_were"] == "buyer":
            limit = facts.get("most_you_would_pay")
            surplus = limit - price if limit else None
            share = surplus / limit if limit else -1.0
        else:
            reserve = facts["least_you_would_accept"]
            surplus = price - reserve
            share = surplus / max(reserve, 1)
        rating = max(1, min(7, 4 + round(6 * share)))
        said = f"{format_money(surplus)} of surplus" if surplus is not None else "I did not need it"
        return rating, f"{said} at {format_money(price)}."

    def survey_answer(self, question: str, repair_of: str | None) -> tuple[dict[str, Any], str | None]:
        """(the ``rate_deals`` arguments, the fault to apply to them: None, "malformed")."""
        ratings = []
        for facts in deals_in(question):
            rating, comment = self.rate(facts)
            ratings.append({"deal_id": facts["deal_id"], "rating": rating, "comment": comment})
        fault = None
        if repair_of is None:
            with self.lock:
                self.survey_questions += 1
                fault = _every_nth(self.survey_questions, self.survey_faults, self.survey_faults_sent)
        elif repair_of in self.stubborn:
            fault = "malformed"
        return {"ratings": ratings}, fault

    @staticmethod
    def adversarial(calls: list[dict[str, Any]]) -> None:
        """Ignore the principal: bid far above any limit, sell for a cent."""
        for call in calls:
            if call["name"] == "make_offer":
                call["input"] = {**call["input"], "amount": 1_000_000}
            elif call["name"] in ("list_item", "reprice"):
                call["input"] = {**call["input"], "ask": 1}
            elif call["name"] == "counter":
                call["input"] = {**call["input"], "amount": 1}

    async def _answer(self, request: web.Request) -> web.Response:
        # the answer leaves ``latency`` after the request came, however long the fake took to choose it
        # (a model's time to answer includes its thinking); ``_choosing`` chooses it meanwhile
        loop = asyncio.get_running_loop()
        answer_at = loop.time() + self.latency
        body = await request.read()
        auth = request.headers.get("x-api-key") or request.headers.get("authorization", "").removeprefix("Bearer ")
        chosen: asyncio.Future[Chosen] = loop.create_future()
        assert self._requests is not None  # made by _serve, before the site takes requests
        self._requests.put_nowait((request.path, body, auth, chosen))
        status, headers, data, slow = await chosen
        delay = answer_at - loop.time() + slow
        if delay > 0:
            await asyncio.sleep(delay)
        return web.Response(status=status, body=data, headers={**headers, "content-type": "application/json"})

    async def _choosing(self) -> None:
        """Choose the answer of each request read, one at a time, in the order they came (see the class
        docstring): the fault schedule, the prompt cache and the ids see them in that order."""
        assert self._requests is not None
        while True:
            path, body, auth, chosen = await self._requests.get()
            try:
                answer = self._choose(path, body, auth)
                slow, self._slow = self._slow, 0.0
                if not chosen.done():  # a request whose client went away is still chosen (and counted)
                    chosen.set_result((*answer, slow))
            except Exception as exc:  # the request fails (aiohttp answers 500); the next ones are still chosen
                if not chosen.done():
                    chosen.set_exception(exc)
            await asyncio.sleep(0)  # the requests that came meanwhile are read before the next choice

    async def _shutdown(self, runner: web.AppRunner) -> None:
        await runner.cleanup()
        if self._chooser is not None:
            self._chooser.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._chooser

    async def _stats(self, request: web.Request) -> web.Response:
        """``GET /stats``: what the fake saw and sent (for benchmarks that run it in another process)."""
        del request
        with self.lock:
            stats = {"requests": self.requests, "answered": self.answered, "faults_sent": dict(self.faults_sent),
                     "refused": list(self.refused)}
        return web.json_response(stats)

    def _choose(self, path: str, body: bytes, auth: str) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, encoded body) for one request (``handle`` may set ``_slow``)."""
        if auth != self.api_key:
            status, headers, payload = self.auth_error()
        else:
            try:
                status, headers, payload = self.handle(path, orjson.loads(body))
                if isinstance(payload, bytes):  # already encoded (hostile JSON)
                    return status, headers, payload
            except Exception as exc:  # a bug in the fake must be visible, not a hang
                status, headers, payload = 500, {}, {"type": "error", "error": {
                    "type": "api_error", "message": f"fake server error: {exc!r}"}}
        return status, headers, orjson.dumps(payload)

    async def _serve(self) -> None:
        self._requests = asyncio.Queue()
        self._chooser = asyncio.create_task(self._choosing(), name="fake-api-choosing")
        app = web.Application(client_max_size=64 * 2**20)
        app.router.add_post("/{path:.*}", self._answer)
        app.router.add_get("/stats", self._stats)
        # a slow answer still sleeping when the server stops is dropped, not waited for
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.SockSite(self._runner, self._socket).start()

    def auth_error(self) -> tuple[int, dict[str, str], dict[str, Any]]:
        raise NotImplementedError

    def handle(self, path: str, request: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        raise NotImplementedError


class FakeAnthropic(FakeModelServer):
    """The Anthropic Messages API."""

    def error(self, status: int, kind: str, message: str, **headers: str) -> tuple[int, dict[str, str], dict]:
        return status, {"request-id": self.next_id("req_"), **headers}, {
            "type": "error", "error": {"type": kind, "message": message}}

    def auth_error(self) -> tuple[int, dict[str, str], dict[str, Any]]:
        return self.error(401, "authentication_error", "invalid x-api-key")

    def refusal(self, request: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]] | None:
        """The real API's 400 for a request that breaks its contract (the message kept in ``refused``), else None."""
        try:
            check_anthropic(request, self.context_tokens)
        except Refused as exc:
            with self.lock:
                self.refused.append(exc.message)
            return 400, {"request-id": self.next_id("req_")}, anthropic_error(exc)
        return None

    def handle(self, path: str, request: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        if path.rstrip("/") != "/v1/messages":
            return self.error(404, "not_found_error", f"no route {path}")
        model = request.get("model", "")
        if lookup(model) is None:
            return self.error(404, "not_found_error", f"model: {model}")
        refusal = self.refusal(request)
        if refusal is not None:
            return refusal
        with self.lock:
            system = request.get("system", "")
            self.systems.add(system if isinstance(system, str) else "".join(b["text"] for b in system))
        fault = self.fault_for()
        if fault == "rate_limit":
            return self.error(429, "rate_limit_error", "Number of requests has exceeded your rate limit",
                              **{"retry-after": self.retry_after})
        if fault == "bad_request":
            return self.error(400, "invalid_request_error", "messages.0.content.0.text: injected fault: refused")
        if fault == "context":
            return self.error(400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum")
        if fault == "auth":
            return self.auth_error()
        if fault == "permission":
            return self.error(403, "permission_error", "Your API key does not have permission to use this resource.")
        if fault == "billing":
            return self.error(400, "invalid_request_error", "Your credit balance is too low to access the Anthropic "
                              "API. Please go to Plans & Billing to upgrade or purchase credits.")
        if fault == "unknown_model":
            return self.error(404, "not_found_error", f"model: {model}")
        if fault == "overloaded":
            return self.error(529, "overloaded_error", "Overloaded")
        if fault == "server_error":
            return self.error(500, "api_error", "Internal server error")
        if fault == "slow":
            self._slow = self.slow_seconds
        if any(t.get("name") == SURVEY_TOOL for t in request.get("tools", [])):
            return self.survey(model, request)
        system = "".join(b["text"] for b in request.get("system", []) if isinstance(b, dict))
        principal = self.principal(system)
        last = request["messages"][-1]
        text = "".join(b.get("text", "") for b in last["content"] if b.get("type") == "text")
        stop = "tool_use"
        if "<observation>" in text:
            prior = {(b["name"], str((b.get("input") or {}).get("listing_id")))
                     for m in request["messages"] if m["role"] == "assistant" and isinstance(m["content"], list)
                     for b in m["content"] if b.get("type") == "tool_use"}
            calls = self.decide(model, parse_observation(text, principal), prior)
        else:  # a repair request: the corrected calls for the ones that failed
            calls = [self.corrections.pop(b["tool_use_id"]) for b in last["content"]
                     if b.get("type") == "tool_result" and b.get("is_error") and b["tool_use_id"] in self.corrections]
            if not calls:
                calls = [{"name": "pass", "input": {}}]
        calls = calls or [{"name": "pass", "input": {}}]  # nothing to do: the model calls `pass`
        if fault == "adversarial":
            self.adversarial(calls)
        content: list[dict[str, Any]] = [{"type": "text", "text": "Here is what I will do."}]
        ids = [self.next_id("toolu_") for _ in calls]
        if fault in ("malformed", "unknown_tool"):
            index = self.corrupt(calls, fault)
            if index is not None:
                self.corrections[ids[int(index)]] = self.corrections.pop(index)
        if fault == "max_tokens" and calls:
            cut = calls[-1]
            for i, c in zip(ids, calls, strict=True):  # the repair gives every call again, complete
                self.corrections[i] = dict(c)
            calls[-1] = {"name": cut["name"], "input": dict(list(cut["input"].items())[:1])}
            stop = "max_tokens"
        if fault == "refusal":
            content, calls, stop = [], [], "refusal"
        if fault == "hostile_json" and calls:
            calls[0] = {"name": calls[0]["name"], "input": {**calls[0]["input"], "amount": "__HOSTILE__"}}
        content += [{"type": "tool_use", "id": i, "name": c["name"], "input": c["input"]} for i, c in zip(
            ids, calls, strict=False)]
        if not calls and stop != "refusal":
            stop = "end_turn"
        if fault == "hostile_json" and calls:
            return self.hostile(self._reply(model, request, content, stop))
        return self._reply(model, request, content, stop)

    def hostile(self, answer: tuple[int, dict[str, str], dict[str, Any]]) -> tuple[int, dict[str, str], bytes]:
        """``answer`` with its placeholder replaced by hostile JSON (see ``hostile_body``)."""
        with self.lock:
            self.hostile_sent += 1
            n = self.hostile_sent
        status, headers, payload = answer
        return status, headers, hostile_body(payload, n)

    def survey(self, model: str, request: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        """A fairness survey question (or its repair), answered by the rule with one ``rate_deals`` call."""
        messages = request["messages"]
        question = "".join(b.get("text", "") for b in messages[0]["content"] if b.get("type") == "text")
        errors = [b["tool_use_id"] for b in messages[-1]["content"] if b.get("type") == "tool_result"
                  and b.get("is_error")] if len(messages) > 1 else []
        arguments, fault = self.survey_answer(question, errors[0] if errors else None)
        tool_id = self.next_id("toolu_")
        if fault in ("malformed", "stubborn"):
            if fault == "stubborn":
                self.stubborn.add(tool_id)
            arguments = {"ratings": [{**r, "rating": f"{r['rating']} out of 7"} for r in arguments["ratings"]]}
        content = [{"type": "tool_use", "id": tool_id, "name": SURVEY_TOOL, "input": arguments}]
        return self._reply(model, request, content, "tool_use")

    def _reply(self, model: str, request: dict[str, Any], content: list[dict[str, Any]],
               stop: str) -> tuple[int, dict[str, str], dict[str, Any]]:
        """A 200 answer with ``content``, its usage and ids, counted as answered."""
        usage = self.usage(model, request)
        usage["output_tokens"] = tokens(content)
        with self.lock:
            self.answered += 1
        return 200, {"request-id": self.next_id("req_")}, {
            "id": self.next_id("msg_"), "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": stop, "stop_sequence": None, "usage": usage,
        }

    def usage(self, model: str, request: dict[str, Any]) -> dict[str, int]:
        """Input tokens split as the real API does: uncached, cache writes, cache reads."""
        blocks: list[tuple[Any, bool]] = [(t, "cache_control" in t) for t in request.get("tools", [])]
        blocks += [(b, "cache_control" in b) for b in request.get("system", [])]
        for message in request["messages"]:
            content = message["content"]
            content = [{"type": "text", "text": content}] if isinstance(content, str) else content
            blocks += [({"role": message["role"], **b}, "cache_control" in b) for b in content]
        digests, sizes, digest, total = [], [], b"", 0
        sha256 = hashlib.sha256
        for block, marked in blocks:
            # one encoding per block, for its prefix hash and its tokens
            text = _compact(_strip(block) if marked else block)
            digest = sha256(digest + text).digest()
            total += estimated_tokens(text)
            digests.append(digest)
            sizes.append(total)

        def key(j: int) -> str:  # a prefix's cache key, made only for the prefixes looked up or written
            return model + digests[j].hex()

        breakpoints = [i for i, (_, marked) in enumerate(blocks) if marked]
        priced = lookup(model)
        minimum = priced.min_cache_tokens if priced else 1024
        read = 0
        with self.lock:
            for b in breakpoints:
                for j in range(b, max(-1, b - 21), -1):
                    if key(j) in self.cache:
                        read = max(read, sizes[j])
                        break
            write = 0
            for b in breakpoints:
                if sizes[b] >= minimum:
                    self.cache.add(key(b))
            if breakpoints and sizes[breakpoints[-1]] >= minimum and sizes[breakpoints[-1]] > read:
                write = sizes[breakpoints[-1]] - read
        return {"input_tokens": total - read - write, "output_tokens": 0,
                "cache_creation_input_tokens": write, "cache_read_input_tokens": read}


def _openai_type(status: int, code: str) -> str:
    if status == 429:
        return "insufficient_quota" if code == "insufficient_quota" else "requests"
    return "server_error" if status >= 500 else "invalid_request_error"


class FakeOpenAI(FakeModelServer):
    """The OpenAI chat completions API."""

    def error(self, status: int, code: str, message: str, **headers: str) -> tuple[int, dict[str, str], dict]:
        return status, {"x-request-id": self.next_id("req_"), **headers}, {
            "error": {"message": message, "type": _openai_type(status, code), "param": None, "code": code}}

    def auth_error(self) -> tuple[int, dict[str, str], dict[str, Any]]:
        return self.error(401, "invalid_api_key", "Incorrect API key provided")

    def refuse(self, message: str, param: str | None, code: str | None) -> tuple[int, dict[str, str], dict]:
        """A 400 ``invalid_request_error`` as the real API sends it."""
        return 400, {"x-request-id": self.next_id("req_")}, openai_error(Refused(message, param, code))

    def handle(self, path: str, request: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        if path.rstrip("/") != "/v1/chat/completions":
            return self.error(404, "not_found", f"no route {path}")
        model = request.get("model", "")
        try:
            check_openai(request, self.context_tokens)
        except Refused as exc:
            with self.lock:
                self.refused.append(exc.message)
            return 400, {"x-request-id": self.next_id("req_")}, openai_error(exc)
        fault = self.fault_for()
        if fault == "rate_limit":
            return self.error(429, "rate_limit_exceeded", "Rate limit reached", **{"retry-after": self.retry_after})
        if fault == "bad_request":
            return self.refuse("Invalid 'messages[0].content': injected fault: refused.", "messages", "invalid_value")
        if fault == "context":
            return self.refuse("This model's maximum context length is 8192 tokens. However, your messages resulted "
                               "in 9100 tokens. Please reduce the length of the messages.", "messages",
                               "context_length_exceeded")
        if fault == "auth":
            return self.auth_error()
        if fault == "permission":
            return self.error(403, "unsupported_country_region_territory",
                              "Country, region, or territory not supported")
        if fault == "unknown_model":
            return self.error(404, "model_not_found", f"The model `{model}` does not exist or you do not have access "
                              "to it.")
        if fault == "quota":
            return self.error(429, "insufficient_quota", "You exceeded your current quota")
        if fault in ("server_error", "overloaded"):
            return self.error(500 if fault == "server_error" else 503, "server_error", "The server had an error")
        if fault == "slow":
            self._slow = self.slow_seconds
        if any((t.get("function") or {}).get("name") == SURVEY_TOOL for t in request.get("tools", [])):
            return self.survey(model, request)
        messages = request["messages"]
        principal = self.principal(messages[0]["content"])
        last = messages[-1]
        finish = "tool_calls"
        if last["role"] == "user" and "<observation>" in last["content"]:
            prior = set()
            for m in messages:
                for c in m.get("tool_calls") or [] if m["role"] == "assistant" else []:
                    try:
                        args = json.loads(c["function"]["arguments"])
                    except ValueError:
                        continue
                    prior.add((c["function"]["name"], str(args.get("listing_id") if isinstance(args, dict) else None)))
            calls = self.decide(model, parse_observation(last["content"], principal), prior)
        else:
            tool_msgs = []
            for m in reversed(messages[:-1]):
                if m["role"] != "tool":
                    break
                tool_msgs.append(m)
            calls = [self.corrections.pop(m["tool_call_id"]) for m in tool_msgs
                     if m["content"].startswith("error:") and m["tool_call_id"] in self.corrections]
            calls = calls or [{"name": "pass", "input": {}}]
        calls = calls or [{"name": "pass", "input": {}}]
        if fault == "adversarial":
            self.adversarial(calls)
        ids = [self.next_id("call_") for _ in calls]
        args = [json.dumps(c["input"]) for c in calls]
        names = [c["name"] for c in calls]
        refusal = None
        if fault == "malformed" and calls:
            self.corrections[ids[0]] = calls[0]
            args[0] = args[0][:-1] + ",}"  # not JSON
        if fault == "unknown_tool" and calls:
            self.corrections[ids[0]] = calls[0]
            names[0] = "buy_now"
        if fault == "max_tokens" and calls:
            for i, c in zip(ids, calls, strict=True):  # the repair gives every call again, complete
                self.corrections[i] = c
            args[-1] = args[-1][: len(args[-1]) // 2]
            finish = "length"
        if fault == "refusal":
            ids, refusal, finish = [], "I can't help with that.", "stop"
        body_level = False
        if fault == "hostile_json" and calls:
            with self.lock:
                self.hostile_sent += 1
                n = self.hostile_sent
            body_level = n % 3 == 0  # now and then the whole body, otherwise the tool arguments
            if not body_level:
                bad = "1" * 4301 if n % 2 else "[" * 3000 + "]" * 3000
                args[0] = '{"amount": ' + bad + "}"
        tool_calls = [{"id": i, "type": "function", "function": {"name": n, "arguments": a}}
                      for i, n, a in zip(ids, names, args, strict=False)]
        message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": refusal}
        if tool_calls:
            message["tool_calls"] = tool_calls
        if body_level:
            message["content"] = "__HOSTILE__"
            status, headers, payload = self._reply(model, request, message, finish)
            return status, headers, hostile_body(payload, n)
        return self._reply(model, request, message, finish)

    def survey(self, model: str, request: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        """A fairness survey question (or its repair), answered by the rule with one ``rate_deals`` call."""
        messages = request["messages"]
        question = next(m["content"] for m in messages if m["role"] == "user")
        errors = [m["tool_call_id"] for m in messages if m["role"] == "tool" and m["content"].startswith("error:")]
        arguments, fault = self.survey_answer(question, errors[-1] if errors and len(messages) > 2 else None)
        call_id = self.next_id("call_")
        text = json.dumps(arguments)
        if fault in ("malformed", "stubborn"):
            if fault == "stubborn":
                self.stubborn.add(call_id)
            text = text[:-1] + ",}"  # not JSON
        message = {"role": "assistant", "content": None, "refusal": None, "tool_calls": [
            {"id": call_id, "type": "function", "function": {"name": SURVEY_TOOL, "arguments": text}}]}
        return self._reply(model, request, message, "tool_calls")

    def _reply(self, model: str, request: dict[str, Any], message: dict[str, Any],
               finish: str) -> tuple[int, dict[str, str], dict[str, Any]]:
        """A 200 completion with ``message``, its usage and ids, counted as answered."""
        prompt, cached = self.usage(model, request)
        completion = tokens(message.get("tool_calls") or message.get("refusal") or "")
        with self.lock:
            self.answered += 1
        return 200, {"x-request-id": self.next_id("req_")}, {
            "id": self.next_id("chatcmpl-"), "object": "chat.completion", "created": 1_700_000_000, "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
                      "prompt_tokens_details": {"cached_tokens": cached}},
        }

    def usage(self, model: str, request: dict[str, Any]) -> tuple[int, int]:
        """(prompt tokens including cached ones, cached tokens): automatic prefix caching."""
        hashes = openai_prefixes(model, request)  # the estimate's counting rule; the caching below is the fake's
        total, best = (hashes[-1][1] if hashes else 0), 0
        with self.lock:
            for h, size in hashes:
                if h in self.cache:
                    best = max(best, size)
            for h, size in hashes:
                if size >= 1024:
                    self.cache.add(h)
        cached = best // 128 * 128 if best >= 1024 else 0
        return total, cached


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("api", choices=["anthropic", "openai"])
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--faults", default="", help="MODE=N,... : each mode on every Nth request")
    parser.add_argument("--slow-seconds", type=float, default=1.0)
    args = parser.parse_args()
    faults = {m: int(n) for m, _, n in (f.partition("=") for f in args.faults.split(",") if f)}
    server = (FakeAnthropic if args.api == "anthropic" else FakeOpenAI)(
        latency=args.latency, faults=faults, slow_seconds=args.slow_seconds)
    server.start()
    print(server.port, flush=True)
    threading.Event().wait()
