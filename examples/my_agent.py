"""A trader of your own in one file: the worked example of the README's "Write your own agent".

Run it as the small tier of the smoke week (from the repository's folder)::

    market run scenarios/smoke.yaml --backend small=examples.my_agent:build

``MyTrader`` is a plain class: all a policy needs is ``decide(observation) -> Decision``.
Each turn it lists every unlisted item at its reference value (never below the
reserve), accepts an offer on its listings at or above the reserve and rejects
the rest, and buys what its principal wants at no more than the item's
reference value: it bids the ask or the value, whichever is lower, and takes a
seller's counter at or below the value (always within the want's limit and the
money it has).
"""

from __future__ import annotations

from market.actions import Accept, Action, ListItem, MakeOffer, Reject
from market.backends import BackendContext
from market.observation import Decision, Observation
from market.scenario import TierSettings


class MyTrader:
    """Lists at value, sells at or above the reserve, buys what it wants at or below value."""

    def decide(self, observation: Observation) -> Decision:
        """This turn's actions for one trader (``observation.trader``)."""
        actions: list[Action] = []
        principal = observation.principal
        spendable = observation.available  # balance minus the money held in escrow by open offers

        # Sell: every item not yet listed, at its reference value (the exchange refuses an ask below the reserve).
        for item in observation.unlisted:
            ask = max(item.value, principal.reserves.get(item.id, 0))
            actions.append(ListItem(item_id=item.id, ask=ask, description=f"{item.title}, {item.condition}"))

        # Answer offers addressed to me: as a seller on my listings, as a buyer to a seller's counter.
        my_items = {listing.id: listing.item_id for listing in observation.my_listings}
        threads = {view.listing.id: view for view in observation.thread_listings}
        sold: set[str] = set()  # listings whose best offer is accepted this turn
        for offer in sorted(observation.incoming, key=lambda o: -o.amount):  # the best offer first
            if offer.seller == observation.trader:
                reserve = principal.reserves.get(my_items.get(offer.listing_id, ""), 0)
                ok = offer.amount >= reserve and offer.listing_id not in sold
                if ok:
                    sold.add(offer.listing_id)
            else:
                item = threads[offer.listing_id].item
                want = principal.want_for(item.kind)
                ok = want is not None and offer.amount <= min(item.value, want.max_price, spendable)
                spendable -= offer.amount if ok else 0
            actions.append(Accept(offer_id=offer.id, message="Deal, thanks!") if ok else
                           Reject(offer_id=offer.id, message="Sorry, that does not work for me."))

        # Buy: one bid per wanted kind with no offer of mine in flight, at the ask or the value if that is lower.
        busy = {threads[o.listing_id].item.kind for o in observation.outgoing if o.listing_id in threads}
        for want in observation.open_wants:
            if want.kind in busy:
                continue
            for view in observation.listings_by_kind().get(want.kind, ()):
                bid = min(view.listing.ask, view.item.value)
                if bid <= min(want.max_price, spendable):
                    actions.append(MakeOffer(listing_id=view.listing.id, amount=bid, message="Would you take this?"))
                    spendable -= bid
                    break
        return Decision(actions=tuple(actions), note=f"{len(actions)} action(s)")


def build(tier: str, settings: TierSettings, context: BackendContext) -> MyTrader:
    """The backend's factory: ``market run ... --backend TIER=examples.my_agent:build`` calls it once per tier."""
    return MyTrader()
