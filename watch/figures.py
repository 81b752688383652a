"""The page's plotly figures, drawn by the analysis package's own builders.

The market so far is handed to ``analysis.figures`` as a ``RunData`` whose
tables hold what has happened up to the clock (deals enriched as the loader
does: item value, both tiers). The live page is an edge package, so it may
import ``analysis``; the engine (``market``) never does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from analysis import figures, load
from analysis.tables import SCHEMAS, hourly_schema
from running.live import MarketView

FIGURE_HEIGHT = 400  # px; watch/static/page.css gives .fig the same min-height


def build(market: MarketView, hourly_rows: list[dict[str, Any]], tiers: list[str], run: str) -> dict[str, Any]:
    """Plotly JSON (``data`` and ``layout``) of each figure for ``market``, keyed by name."""
    data = run_data(market, hourly_rows, tiers, run)
    built = {
        "activity": figures.activity_over_time(data),
        "tiers": figures.tier_activity_over_time(data),
        "prices": figures.price_by_tier(data),
    }
    out: dict[str, Any] = {}
    for name, fig in built.items():
        fig.update_layout(height=FIGURE_HEIGHT, margin={"t": 72, "l": 60, "r": 10, "b": 64}, title_font_size=14,
                          legend={"orientation": "h", "y": -0.22}, uirevision=name)
        out[name] = json.loads(fig.to_json())
    return out


def run_data(market: MarketView, hourly_rows: list[dict[str, Any]], tiers: list[str], run: str) -> Any:
    """``analysis.load.RunData`` of one market as it stands (tables the figures do not use stay empty)."""
    state, tier_of = market.state, market.tiers
    keys = {"run": run, "market": market.name}
    participants = pl.DataFrame(
        [{**keys, "participant_id": p.id, "name": p.name, "tier": tier_of.get(p.id, p.tier), "budget": p.budget,
          "items": len(p.items), "wants": len(p.wants)} for p in state.participants.values()],
        schema=SCHEMAS["participants"],
    )
    deal_rows = []
    for d in state.deals:
        item = state.items[d.item_id]
        deal_rows.append({**keys, "deal_id": d.id, "listing_id": d.listing_id, "offer_id": d.offer_id,
                          "item_id": d.item_id, "seller": d.seller, "buyer": d.buyer, "price": d.price, "at": d.at,
                          "kind": item.kind, "title": item.title, "value": item.value,
                          "seller_tier": tier_of.get(d.seller, ""), "buyer_tier": tier_of.get(d.buyer, "")})
    deals = pl.DataFrame(deal_rows, schema={**SCHEMAS["deals"], "kind": pl.Utf8, "title": pl.Utf8,
                                            "value": pl.Int64, "seller_tier": pl.Utf8, "buyer_tier": pl.Utf8})
    hourly = pl.DataFrame([{"run": run, **row} for row in hourly_rows], schema=hourly_schema(tiers))
    empty = {name: pl.DataFrame(schema=SCHEMAS[name]) for name in ("items", "wants", "listings", "offers",
                                                                          "messages")}
    return load.RunData(path=Path(run), name=run, seed=0, scenario={"days": 0}, tiers=list(tiers),
                        participants=participants, deals=deals, hourly=hourly, runs=[], **empty)
