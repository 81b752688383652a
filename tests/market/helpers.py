"""Small markets built by hand for exchange tests."""

from __future__ import annotations

from pathlib import Path

from market.domain import Item, Participant, Want
from market.events import MarketOpened, ParticipantJoined, Rules
from market.ledger import Ledger
from market.money import MAX_CENTS
from market.state import MarketState


def person(pid: str, budget: int = 10_000, items: int = 2, wants: tuple[Want, ...] | None = None,
           reserve: int | None = None) -> Participant:
    """A participant with ``items`` things of kinds kind1, kind2, ...; by default wanting one of each of
    kind1 and kind2 at any price (the mandate allows only the kinds and units a principal wants)."""
    if wants is None:
        wants = tuple(Want(kind=f"kind{n}", title=f"Thing {n}", max_price=MAX_CENTS) for n in (1, 2))
    owned = tuple(
        Item(id=f"{pid}-i{n}", kind=f"kind{n}", title=f"Thing {n}", category="misc", value=1_000)
        for n in range(1, items + 1)
    )
    reserves = {item.id: reserve for item in owned} if reserve is not None else {}
    return Participant(id=pid, name=pid.title(), budget=budget, items=owned, wants=wants, reserves=reserves)


def market(*people: Participant, rules: Rules | None = None) -> MarketState:
    events = [MarketOpened(at=0, rules=rules or Rules()), *(ParticipantJoined(at=0, participant=p) for p in people)]
    return MarketState.replay(events)


def assert_conserved(run_dir: Path) -> None:
    """Every market of a run folder's ledger: money conserved, no negative escrow, every item owned."""
    with Ledger(run_dir / "ledger.sqlite") as ledger:
        for name in ledger.markets():
            state = ledger.replay(name)
            assert sum(state.balance.values()) == state.money_in
            assert all(v >= 0 for v in state.escrow.values())
            assert all(item in state.owner for item in state.items)
