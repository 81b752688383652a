"""Text rules: control characters (NUL, BEL, ...) and bidirectional overrides/isolates never reach the
ledger from a person (join form, /deal say, thread replies) nor a post, and a title with mrkdwn markers
cannot break the bold around it."""

from __future__ import annotations

import json
import re
from pathlib import Path

from slack_sdk import WebClient

from market.domain import Item, Listing
from market.ledger import Ledger
from market.mandate import Mandate
from slackbot import blocks
from slackbot.app import build_app
from slackbot.commands import Usage, parse_command
from slackbot.escape import entry, escape, inline, safe
from slackbot.host import Host, participant_id
from slackbot.modals import parse_join
from tests.slackbot.conftest import ADMIN, SECRET
from tests.slackbot.live import MANUAL, Slack, join_values, locked, wait_for
from tests.slackbot.slack_stub import SlackStub

UNSEEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
NASTY = "A\x00B\x07C\x1bD\u202eE\u2066F\x7fG\x85H"


def test_entry_removes_controls_and_bidi_and_keeps_lines_only_where_allowed() -> None:
    assert entry(NASTY) == "ABCDEFGH"
    assert entry("one\r\ntwo\rthree\tfour\u2028five") == "one\ntwo\nthree four\nfive"
    assert entry("one\ntwo\tthree", lines=False) == "one two three"


def test_posting_removes_them_too_and_inline_neutralises_markers() -> None:
    assert escape(f"{NASTY}\nnext <@U1>") == "ABCDEFGH\nnext &lt;@U1&gt;"
    assert safe("x\x00y") == "xy"
    shown = inline("*bold* _it_ ~no~ `code`")
    assert not set(shown) & set("*_~`")
    assert shown == "\u2217bold\u2217 \uff3fit\uff3f \u223cno\u223c \u02cbcode\u02cb"


def test_a_title_in_bold_stays_one_bold_span() -> None:
    item = Item(id="I1", kind="lamp", title="Lamp *bold* _x_", category="home", value=1000)
    lst = Listing(id="L1", item_id="I1", seller="P1", ask=3000, description="", opened_at=0)
    head = blocks.listing(lst, item, "Sel*ler")["blocks"][0]["text"]["text"]
    assert head.startswith("*Lamp \u2217bold\u2217 \uff3fx\uff3f* — asking")
    assert head.count("*") == 4  # the title's bold and the price's, nothing else


def test_commands_and_join_titles_enter_clean() -> None:
    unknown = parse_command("fr`ob*x")
    assert isinstance(unknown, Usage)
    assert "Unknown command `fr\u02cbob\u2217x`." in unknown.text  # the verb cannot end the code span
    cmd = parse_command(f"say L3 hi{NASTY}")
    assert cmd.action is not None and cmd.action.text == "hiABCDEFGH"  # type: ignore[union-attr]
    form = parse_join(join_values(f"Lamp{NASTY}, $30, $5", f"Desk\u202e{NASTY}, $9", "manual"))
    assert isinstance(form, Mandate)
    assert form.sells[0].title == "LampABCDEFGH" and form.wants[0].title == "DeskABCDEFGH"


def test_nothing_unseen_reaches_the_ledger_or_slack(stub: SlackStub, client: WebClient, scenario: Path,
                                                    tmp_path: Path) -> None:
    stub.state.display_names[MANUAL] = "Mal\u202elory\x07"
    host = Host(scenario, client, out=tmp_path / "run", speed=20_000, pace=0, admins=[ADMIN])
    slack = Slack(build_app(host, client, signing_secret=SECRET), stub)
    try:
        slack.command(MANUAL, "join")
        view = wait_for(lambda: stub.calls("views.open"), what="join modal")[0].args["view"]  # type: ignore[index]
        assert slack.submit_view(MANUAL, view, join_values(f"Lamp *bold* {NASTY}, $30, $5", "", "manual")) == {}
        slack.command(ADMIN, "admin start")
        wait_for(lambda: host.person(MANUAL), what="joined")
        me = participant_id(MANUAL)
        target = wait_for(locked(host, lambda st: next((lst for lst in st.listings.values()
                                                        if lst.seller != me and lst.status == "open"), None)),
                          what="an agent's listing")
        slack.command(MANUAL, f"say {target.id} hello{NASTY}")  # type: ignore[attr-defined]
        wait_for(lambda: any("helloABCDEFGH" in json.dumps(m, ensure_ascii=False) for m in stub.posts("deal-a")),
                 what="the message posted")
        assert host.poster.flush(30)
    finally:
        host.close()
    with Ledger(tmp_path / "run") as ledger:
        lines = list(ledger.export_lines())
    said = [line for line in lines if "helloABCDEFGH" in line]
    assert said, "the message is in the ledger"
    for line in lines:
        assert not UNSEEN.search(json.dumps(json.loads(line), ensure_ascii=False)), line[:300]
    posted = json.dumps([c.args for c in stub.calls()] + stub.state.responses, ensure_ascii=False)
    assert not UNSEEN.search(posted)
    assert "Lamp \u2217bold\u2217" in posted  # the title in bold, its markers neutralised
