"""The offline negotiator: one behaviour for every tier (a tier is its capabilities); its shortcuts give what
the plain code they replace gave."""

from __future__ import annotations

import zlib
from dataclasses import replace

import msgspec
import pytest
from pydantic import ValidationError

from agents.offline import CAPABILITIES, NO_LIMIT, PROFILES, OfflinePolicy, Profile, resolve_profile
from market.actions import Accept, Counter, MakeOffer, Reject
from market.domain import Item, Listing, Offer, Participant, Want
from market.observation import ListingView, Observation
from market.scenario import ProfileSpec, load_scenario
from tests.conftest import SCENARIOS


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
                obs = msgspec.structs.replace(_observation((), 0), trader=trader)
                for n in range(30):
                    item = Item(id=f"B-p{n:04d}-i{n % 4}", kind="lamp", title="Lamp", category="misc", value=37 * n)
                    digest = zlib.crc32(f"{seed}:{trader}:{item.id}:value".encode())
                    noise = digest / 0xFFFFFFFF * 2 - 1
                    expected = max(1, round(item.value * (1 + noise * PROFILES[name].value_noise)))
                    assert policy.estimate(obs, item) == expected


# --- one behaviour, tiers differ by their capabilities ---------------------------------------------


def _copy_of(name: str, base: str) -> ProfileSpec:
    """A declared profile on ``base`` with every capability of the built-in ``name``."""
    spec: dict[str, object] = {}
    for setting in CAPABILITIES:
        value = getattr(PROFILES[name], setting)
        spec[setting] = NO_LIMIT[setting] if value is None else list(value) if isinstance(value, tuple) else value
    return ProfileSpec.model_validate({"base": base, **spec})


def test_every_capability_is_a_profile_setting_and_a_declared_one() -> None:
    settings = set(Profile.__dataclass_fields__) - {"name"}
    assert set(CAPABILITIES) == settings
    assert set(ProfileSpec.model_fields) - {"base", "description"} == settings


def test_a_profile_built_from_another_tiers_values_decides_the_same() -> None:
    # the small base with every capability of the frontier's is the frontier, and the other way round
    for name, base in (("frontier", "small"), ("small", "frontier")):
        copy = resolve_profile("copy", {"copy": _copy_of(name, base)})
        assert replace(copy, name=name) == PROFILES[name]


def _offer(n: int, listing: ListingView, amount: int, buyer: str, round_: int, proposer: str) -> Offer:
    seller = listing.listing.seller
    return Offer(id=f"o{n}", listing_id=listing.listing.id, proposer=proposer,
                 recipient=seller if proposer == buyer else buyer, buyer=buyer, seller=seller, amount=amount,
                 made_at=0, expires_at=10_000, round=round_)


def test_the_same_capabilities_give_the_same_decisions_whatever_the_tier_or_profile_name() -> None:
    shown = tuple(_view(n, kind, 1_000 + 150 * (n % 5), 900 + 40 * (n % 4))
                  for n, kind in enumerate(["lamp", "desk", "chair", "lamp"] * 3))
    kinds: dict[str, set[str]] = {}
    for name in ("frontier", "small"):
        built_in = OfflinePolicy(PROFILES[name], seed=3)
        declared = OfflinePolicy(resolve_profile("copy", {"copy": _copy_of(name, "small" if name == "frontier"
                                                                            else "frontier")}), seed=3)
        for step in range(30):
            base = _observation(shown, step)
            # offers to bob as seller of what he holds and counters to him as buyer, in several rounds
            mine = replace_listing(shown[step % len(shown)], seller="bob")
            theirs = shown[(step + 1) % len(shown)]
            incoming = (_offer(1, mine, 700 + 37 * step, "ann", 1 + step % 4, "ann"),
                        _offer(2, theirs, 900 + 29 * step, "bob", 2 + step % 3, theirs.listing.seller))
            obs = msgspec.structs.replace(base, incoming=incoming, thread_listings=(mine, theirs),
                                          tier="small" if step % 2 else "frontier")
            decision = built_in.decide(obs)
            assert decision == declared.decide(msgspec.structs.replace(obs, tier="other"))
            kinds.setdefault(name, set()).update(type(a).__name__ for a in decision.actions)
    assert kinds["frontier"] >= {"Accept", "Counter", "MakeOffer"} and kinds["small"] >= {"Accept", "Reject"}


def replace_listing(view: ListingView, seller: str) -> ListingView:
    """``view`` as a listing of ``seller``'s."""
    return msgspec.structs.replace(view, listing=msgspec.structs.replace(view.listing, seller=seller))


def test_the_small_tiers_old_rules_are_values_of_its_settings() -> None:
    view = replace_listing(_view(1, "lamp", 2_000, 2_000), seller="bob")
    bob = msgspec.structs.replace(_observation((), 0).principal, reserves={view.item.id: 1_000})
    offer = _offer(1, view, 1_100, "ann", 1, "ann")  # at reserve, far below the ask
    obs = msgspec.structs.replace(_observation((), 0), principal=bob, incoming=(offer,), thread_listings=(view,))

    def answer(profile: Profile) -> type:
        policy = OfflinePolicy(replace(profile, diligence=1.0), seed=1)
        return type(policy.decide(obs).actions[0])

    small = PROFILES["small"]
    assert answer(small) is Accept  # accept_within 1: the first offer within its limits
    assert answer(replace(small, accept_within=0.05)) is Reject  # counters false: it declines
    assert answer(replace(small, accept_within=0.05, counters=True)) is Counter
    assert answer(replace(small, accept_within=0.05, max_rounds=1)) is Accept  # its last round: it settles


def test_declared_profiles_validate_with_their_settings_named() -> None:
    spec = ProfileSpec.model_validate({"base": "small", "ask_ceiling": "any", "threads_per_turn": "all"})
    profile = resolve_profile("mine", {"mine": spec})
    assert profile.ask_ceiling is None and profile.threads_per_turn is None and profile.counters is False
    for bad, field in (({"ask_ceiling": 0.5}, "ask_ceiling"), ({"accept_within": 1.5}, "accept_within"),
                       ({"counters": "often"}, "counters"), ({"bogus": 1}, "bogus")):
        with pytest.raises(ValidationError, match=field):
            ProfileSpec.model_validate({"base": "small", **bad})
    scenario, _ = load_scenario(SCENARIOS / "three_tiers.yaml")
    for tier, settings in scenario.tiers.items():
        assert resolve_profile(settings.profile or tier, scenario.profiles, tier).name == (settings.profile or tier)
    with pytest.raises(ValueError, match="unknown offline profile 'nope'"):
        resolve_profile("nope", scenario.profiles)
