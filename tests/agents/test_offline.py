"""The offline negotiator's shortcuts give what the plain code they replace gave."""

from __future__ import annotations

import zlib

from agents.offline import PROFILES, OfflinePolicy
from market.actions import MakeOffer
from market.domain import Item, Listing, Participant, Want
from market.observation import ListingView, Observation


def _view(n: int, kind: str, ask: int, value: int) -> ListingView:
    item = Item(id=f"i{n:02d}", kind=kind, title=kind.title(), category="misc", value=value)
    listing = Listing(id=f"L{n:02d}", item_id=item.id, seller=f"s{n}", ask=ask, description="", opened_at=0)
    return ListingView(listing=listing, item=item, seller_name=f"Seller {n}")


def _observation(shown: tuple[ListingView, ...], step: int) -> Observation:
    wants = tuple(Want(kind=k, title=k.title(), max_price=5_000) for k in ("lamp", "desk", "chair"))
    bob = Participant(id="bob", name="Bob", budget=100_000, wants=wants)
    return Observation(
        market="A", trader="bob", tier="frontier", at=100, step=step, principal=bob, balance=100_000, escrow=0,
        holdings=(), open_wants=wants, my_listings=(), unlisted=(), market_listings=shown, thread_listings=(),
        incoming=(), outgoing=(), news=(),
    )


def test_a_bid_goes_to_the_cheapest_for_its_value_of_the_first_listings_of_a_kind_it_looks_at() -> None:
    # kinds interleaved and repeated, more lamps than it looks at, ties in price for value
    kinds = ["lamp", "desk", "lamp", "lamp", "chair", "lamp", "desk", "lamp"] * 3
    shown = tuple(_view(n, kind, 1_000 + 150 * ((n * 7) % 5), 900 + 40 * (n % 4)) for n, kind in enumerate(kinds))
    bid_on = {}
    for name in ("frontier", "small"):
        policy = OfflinePolicy(PROFILES[name], seed=5)
        for step in range(40):
            obs = _observation(shown, step)
            for action in policy.decide(obs).actions:
                assert isinstance(action, MakeOffer)
                view = next(v for v in shown if v.listing.id == action.listing_id)
                looked_at = [v for v in shown if v.item.kind == view.item.kind][: PROFILES[name].attention]
                expected = min(looked_at, key=lambda v: (
                    v.listing.ask * 1000 // policy.estimate(obs, v.item), v.listing.id))
                assert view is expected
                bid_on[view.listing.id] = name
    assert {PROFILES[name].attention for name in bid_on.values()} == {1, 12}, "both look at few and many"
    assert len(bid_on) > 3, "the choice covers more than one listing per kind"


def test_an_estimate_is_the_value_moved_by_the_noise_of_the_crc_of_its_whole_key() -> None:
    for seed in (0, 7, 20251):
        for name in ("frontier", "small"):
            policy = OfflinePolicy(PROFILES[name], seed=seed)
            for trader in ("bob", "B-p0042", ""):
                obs = _observation((), 0).model_copy(update={"trader": trader})
                for n in range(30):
                    item = Item(id=f"B-p{n:04d}-i{n % 4}", kind="lamp", title="Lamp", category="misc", value=37 * n)
                    digest = zlib.crc32(f"{seed}:{trader}:{item.id}:value".encode())
                    noise = digest / 0xFFFFFFFF * 2 - 1
                    expected = max(1, round(item.value * (1 + noise * PROFILES[name].value_noise)))
                    assert policy.estimate(obs, item) == expected
