"""``/deal`` command text -> what to do (pure). Market actions become ``market.actions`` actions."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from market.actions import Action, parse_action
from market.money import MoneyError, parse_money
from slackbot.escape import entry, unmark

USAGE = """*Usage:* `/deal <command>`
• `join` — join the market with your own agent
• `market` — the open listings you could buy, with offer buttons
• `status` — your balance, escrow, holdings and open offers (only you see it)
• `list ITEM PRICE` — list one of your items (id from `status`), e.g. `/deal list slack-u1-i1 $12`
• `offer LISTING PRICE [message]` — e.g. `/deal offer L12 $8.50 would you take this?`
• `counter OFFER PRICE [message]`, `accept OFFER`, `reject OFFER`, `withdraw OFFER`
• `reprice LISTING PRICE`, `delist LISTING`, `say LISTING text`
• `survey` — rate how fair your deals were
• `admin start|pause|resume|settle|export|pending|resend` — admins only"""

ADMIN = ("start", "pause", "resume", "settle", "export", "pending", "resend")


@dataclass(frozen=True)
class Command:
    """A parsed command: ``name`` plus a market ``action`` or an admin ``arg``."""

    name: str
    action: Action | None = None
    arg: str = ""


@dataclass(frozen=True)
class Usage:
    """Malformed text: what was wrong, and the help."""

    problem: str

    @property
    def text(self) -> str:
        """The reply: the problem (if any) on its own line, then the help text ``USAGE``."""
        return f"{self.problem}\n{USAGE}" if self.problem else USAGE


def parse_command(text: str) -> Command | Usage:
    """The command in a ``/deal`` text (control and bidi characters removed first: ``escape.entry``)."""
    words = entry(text or "").strip().split()
    if not words or words[0].lower() in ("help", "-h", "--help"):
        return Usage("")
    verb, args = words[0].lower(), words[1:]
    rest = " ".join(args[2:])
    try:
        match verb:
            case "join" | "status" | "survey" | "market":
                return Command(verb)
            case "admin":
                if len(args) != 1 or args[0].lower() not in ADMIN:
                    return Usage(f"`admin` needs one of: {', '.join(ADMIN)}.")
                return Command("admin", arg=args[0].lower())
            case "list":
                _need(verb, args, 2)
                return _act(verb, {"type": "list_item", "item_id": args[0], "ask": parse_money(args[1])})
            case "offer":
                _need(verb, args, 2)
                return _act(verb, {"type": "make_offer", "listing_id": args[0], "amount": parse_money(args[1]),
                                   "message": rest})
            case "counter":
                _need(verb, args, 2)
                return _act(verb, {"type": "counter", "offer_id": args[0], "amount": parse_money(args[1]),
                                   "message": rest})
            case "reprice":
                _need(verb, args, 2)
                return _act(verb, {"type": "reprice", "listing_id": args[0], "ask": parse_money(args[1])})
            case "accept" | "reject":
                _need(verb, args, 1)
                return _act(verb, {"type": verb, "offer_id": args[0], "message": " ".join(args[1:])})
            case "withdraw":
                _need(verb, args, 1)
                return _act(verb, {"type": "withdraw", "offer_id": args[0]})
            case "delist":
                _need(verb, args, 1)
                return _act(verb, {"type": "delist", "listing_id": args[0]})
            case "say":
                _need(verb, args, 2)
                return _act(verb, {"type": "send_message", "listing_id": args[0], "text": " ".join(args[1:])})
    except MoneyError as exc:
        return Usage(f"`{verb}`: {exc}")
    except _Missing as exc:
        return Usage(str(exc))
    except ValidationError as exc:
        return Usage(f"`{verb}`: {exc.errors()[0]['msg']}")
    return Usage(f"Unknown command `{unmark(verb[:30])}`.")


class _Missing(ValueError):
    pass


def _need(verb: str, args: list[str], count: int) -> None:
    if len(args) < count:
        raise _Missing(f"`{verb}` needs {count} argument{'s' if count > 1 else ''}.")


def _act(verb: str, data: dict[str, object]) -> Command:
    return Command(verb, action=parse_action(data))
