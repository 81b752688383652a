"""Read run folders (ledger + scenario.yaml) into polars DataFrames.

Nothing here touches the engine: the ledger's events are the only truth.
Money columns are integer cents (``Int64``); times are simulated seconds.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import yaml
from pydantic import ValidationError

from market.events import (
    DealClosed,
    ItemListed,
    ListingDelisted,
    ListingRepriced,
    MessageSent,
    OfferEnded,
    OfferMade,
    ParticipantJoined,
)
from market.ledger import Ledger, LedgerError
from market.runfolder import RunFolder, RunFolderError

HOUR = 3600
TABLES = ("participants", "items", "wants", "listings", "offers", "deals", "messages", "hourly")


class AnalysisError(ValueError):
    """A path that cannot be analysed; the message says which and why."""


@dataclass
class RunData:
    """One run's tables. Every table has ``run`` (the run folder's name) and ``market``."""

    path: Path
    name: str
    seed: int
    scenario: dict[str, Any]
    tiers: list[str]
    participants: pl.DataFrame
    items: pl.DataFrame
    wants: pl.DataFrame
    listings: pl.DataFrame
    offers: pl.DataFrame
    deals: pl.DataFrame
    messages: pl.DataFrame
    hourly: pl.DataFrame
    runs: list[Path] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)

    @property
    def markets(self) -> list[str]:
        return sorted(self.participants["market"].unique().to_list())

    @property
    def duration(self) -> int:
        return int(self.scenario.get("days", 1)) * 86_400


_SCHEMAS: dict[str, dict[str, Any]] = {
    "participants": {"run": pl.Utf8, "market": pl.Utf8, "participant_id": pl.Utf8, "name": pl.Utf8,
                     "tier": pl.Utf8, "budget": pl.Int64, "items": pl.Int64, "wants": pl.Int64},
    "items": {"run": pl.Utf8, "market": pl.Utf8, "item_id": pl.Utf8, "kind": pl.Utf8, "title": pl.Utf8,
              "category": pl.Utf8, "condition": pl.Utf8, "value": pl.Int64, "owner": pl.Utf8,
              "reserve": pl.Int64},
    "wants": {"run": pl.Utf8, "market": pl.Utf8, "participant_id": pl.Utf8, "kind": pl.Utf8,
              "title": pl.Utf8, "max_price": pl.Int64},
    "listings": {"run": pl.Utf8, "market": pl.Utf8, "listing_id": pl.Utf8, "item_id": pl.Utf8,
                 "seller": pl.Utf8, "first_ask": pl.Int64, "ask": pl.Int64, "opened_at": pl.Int64,
                 "status": pl.Utf8, "closed_at": pl.Int64},
    "offers": {"run": pl.Utf8, "market": pl.Utf8, "offer_id": pl.Utf8, "listing_id": pl.Utf8,
               "proposer": pl.Utf8, "buyer": pl.Utf8, "seller": pl.Utf8, "amount": pl.Int64,
               "round": pl.Int64, "made_at": pl.Int64, "status": pl.Utf8, "ended_at": pl.Int64},
    "deals": {"run": pl.Utf8, "market": pl.Utf8, "deal_id": pl.Utf8, "listing_id": pl.Utf8,
              "offer_id": pl.Utf8, "item_id": pl.Utf8, "seller": pl.Utf8, "buyer": pl.Utf8,
              "price": pl.Int64, "at": pl.Int64},
    "messages": {"run": pl.Utf8, "market": pl.Utf8, "listing_id": pl.Utf8, "sender": pl.Utf8,
                 "to": pl.Utf8, "text": pl.Utf8, "at": pl.Int64},
}


def load_run(path: Path | str, run_id: str | None = None) -> RunData:
    """Load one complete run folder; :class:`AnalysisError` names what is wrong.

    ``run_id`` fills the ``run`` column (default: the folder's name).
    """
    try:
        folder = RunFolder.open(path)
    except RunFolderError as exc:
        raise AnalysisError(str(exc)) from None
    scenario = _read_scenario(folder)
    run = run_id or folder.path.name
    try:
        with Ledger(folder.ledger) as ledger:
            state = ledger.status("state")
            if state != "complete":
                raise AnalysisError(
                    f"{folder.path}: the run is {'still in progress or was interrupted' if state else 'not finished'}"
                    f" (ledger state {state or 'missing'}); finish it with "
                    f"`python -m market.run --resume {folder.path}` before analysing it"
                )
            rows = _collect(ledger, run)
    except (LedgerError, sqlite3.DatabaseError) as exc:
        raise AnalysisError(f"{folder.path}: the ledger cannot be read ({exc}); it may be truncated") from None
    except (ValidationError, ValueError) as exc:
        if isinstance(exc, AnalysisError):
            raise
        raise AnalysisError(f"{folder.path}: the ledger holds an event that cannot be read ({exc})") from None
    frames = {name: pl.DataFrame(rows[name], schema=_SCHEMAS[name], orient="row") for name in _SCHEMAS}
    if frames["participants"].is_empty():
        raise AnalysisError(f"{folder.path}: the ledger has no participants; it may be truncated")
    tiers = list(scenario.get("tiers") or sorted(frames["participants"]["tier"].unique().to_list()))
    frames["deals"] = _enrich_deals(frames["deals"], frames)
    hourly = hourly_series(frames, tiers, int(scenario.get("days", 1)) * 86_400, run)
    return RunData(
        path=folder.path, name=str(scenario.get("name", run)), seed=int(scenario.get("seed", 0)),
        scenario=scenario, tiers=tiers, hourly=hourly, runs=[folder.path], run_ids=[run], **frames,
    )


def load_runs(paths: Iterable[Path | str]) -> RunData:
    """Load and stack several runs (or sweep folders: every run folder directly inside)."""
    folders = expand_runs(paths)
    names = [p.name for p in folders]
    if len(set(names)) != len(names):  # e.g. runs of two sweeps: name them by sweep and run
        names = [f"{p.parent.name}/{p.name}" for p in folders]
    if len(set(names)) != len(names):
        names = [str(p) for p in folders]
    if len(set(names)) != len(names):
        raise AnalysisError(f"the same run folder is given twice ({', '.join(sorted(names))})")
    loaded = [load_run(p, n) for p, n in zip(folders, names, strict=True)]
    first = loaded[0]
    if len(loaded) == 1:
        return first
    tiers = list(dict.fromkeys(t for r in loaded for t in r.tiers))
    stacked = {
        name: pl.concat([getattr(r, name) for r in loaded], how="diagonal_relaxed") for name in TABLES
    }
    return RunData(
        path=first.path.parent, name=first.name, seed=first.seed, scenario=first.scenario, tiers=tiers,
        runs=[r.path for r in loaded], run_ids=names, **stacked,
    )


def expand_runs(paths: Iterable[Path | str]) -> list[Path]:
    """Run folders named by ``paths``: a run folder itself, or a sweep folder holding runs."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            raise AnalysisError(f"{path}: no such folder")
        if (path / "ledger.sqlite").is_file() or (path / "scenario.yaml").is_file():
            out.append(path)
            continue
        inner = sorted(p for p in path.iterdir() if p.is_dir() and (p / "ledger.sqlite").is_file())
        if not inner:
            raise AnalysisError(f"{path}: not a run folder (no ledger.sqlite) and holds no run folders")
        out.extend(inner)
    if not out:
        raise AnalysisError("give at least one run folder or sweep folder")
    return out


def _read_scenario(folder: RunFolder) -> dict[str, Any]:
    try:
        data = yaml.safe_load(folder.scenario.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise AnalysisError(f"{folder.scenario}: not a readable scenario ({exc})") from None
    if not isinstance(data, dict):
        raise AnalysisError(f"{folder.scenario}: expected a mapping of settings")
    return data


def _collect(ledger: Ledger, run: str) -> dict[str, list[tuple[Any, ...]]]:
    rows: dict[str, list[tuple[Any, ...]]] = {name: [] for name in _SCHEMAS}
    listings: dict[tuple[str, str], list[Any]] = {}
    offers: dict[tuple[str, str], list[Any]] = {}
    for _, market, event in ledger.records():
        match event:
            case ParticipantJoined(participant=p):
                rows["participants"].append(
                    (run, market, p.id, p.name, p.tier, p.budget, len(p.items), len(p.wants)))
                for item in p.items:
                    rows["items"].append((run, market, item.id, item.kind, item.title, item.category,
                                          item.condition.value, item.value, p.id, p.reserves.get(item.id)))
                for want in p.wants:
                    rows["wants"].append((run, market, p.id, want.kind, want.title, want.max_price))
            case ItemListed(listing=li, at=at):
                listings[(market, li.id)] = [run, market, li.id, li.item_id, li.seller, li.ask, li.ask,
                                             at, "open", None]
            case ListingRepriced(listing_id=lid, ask=ask):
                listings[(market, lid)][5] = ask
            case ListingDelisted(listing_id=lid, at=at):
                listings[(market, lid)][8:10] = ["delisted", at]
            case OfferMade(offer=o, at=at):
                offers[(market, o.id)] = [run, market, o.id, o.listing_id, o.proposer, o.buyer, o.seller,
                                          o.amount, o.round, at, "open", None]
            case OfferEnded(offer_id=oid, status=status, at=at):
                offers[(market, oid)][10:12] = [status.value, at]
            case DealClosed(deal=d, at=at):
                rows["deals"].append((run, market, d.id, d.listing_id, d.offer_id, d.item_id, d.seller,
                                      d.buyer, d.price, at))
                listings[(market, d.listing_id)][8:10] = ["sold", at]
                if (market, d.offer_id) in offers:
                    offers[(market, d.offer_id)][10:12] = ["accepted", at]
            case MessageSent(message=m, at=at):
                rows["messages"].append((run, market, m.listing_id, m.sender, m.to, m.text, at))
            case _:
                pass
    rows["listings"] = [tuple(v) for v in listings.values()]
    rows["offers"] = [tuple(v) for v in offers.values()]
    return rows


def _enrich_deals(deals: pl.DataFrame, frames: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Add the item's kind and value, both parties' tiers, the seller's reserve and the buyer's value.

    ``buyer_value`` is the buyer's most-they-would-pay for the item's kind (0 when
    they did not want it, or when an earlier purchase already filled that want).
    ``seller_reserve`` is the seller's reserve for the item (its reference value
    when none was given). The exchange sells every item once, so the seller is
    always the item's first owner.
    """
    keys = ["run", "market"]
    items = frames["items"].select(*keys, "item_id", "kind", "title", "condition", "value", "reserve")
    tiers = frames["participants"].select(*keys, "participant_id", "tier")
    wants = frames["wants"].select(*keys, pl.col("participant_id").alias("buyer"), "kind",
                                   pl.col("max_price").alias("want_max"))
    out = (
        deals.join(items, on=[*keys, "item_id"], how="left")
        .join(tiers.rename({"participant_id": "seller", "tier": "seller_tier"}), on=[*keys, "seller"], how="left")
        .join(tiers.rename({"participant_id": "buyer", "tier": "buyer_tier"}), on=[*keys, "buyer"], how="left")
        .join(wants, on=[*keys, "buyer", "kind"], how="left")
        .sort([*keys, "at", "deal_id"])
    )
    first_fill = pl.int_range(pl.len()).over([*keys, "buyer", "kind"]) == 0
    return out.with_columns(
        buyer_value=pl.when(first_fill & pl.col("want_max").is_not_null()).then(pl.col("want_max")).otherwise(0),
        seller_reserve=pl.coalesce("reserve", "value"),
    ).drop("want_max", "reserve")


def hourly_series(frames: dict[str, pl.DataFrame], tiers: Sequence[str], duration: int, run: str) -> pl.DataFrame:
    """Per market and simulated hour: open listings and offers, cumulative deals and volume, money per tier.

    Rebuilt from the ledger's events, the same figures the engine's hourly
    DataCollector table records. Money per tier is settled money (budget plus
    sales minus purchases), in cents.
    """
    times = np.arange(1, duration // HOUR + 1, dtype=np.int64) * HOUR
    out = []
    for market in sorted(frames["participants"]["market"].unique().to_list()):
        people = frames["participants"].filter(pl.col("market") == market)
        tier_of = dict(zip(people["participant_id"], people["tier"], strict=True))
        deals = frames["deals"].filter(pl.col("market") == market).sort("at")
        at = deals["at"].to_numpy()
        done = np.searchsorted(at, times, side="right")  # deals closed by each hour
        volume = np.concatenate([[0], np.cumsum(deals["price"].to_numpy())])
        columns: dict[str, Any] = {
            "run": run, "market": market, "hour": times // HOUR,
            "open_listings": _open_at(frames["listings"].filter(pl.col("market") == market), "opened_at",
                                      "closed_at", times),
            "open_offers": _open_at(frames["offers"].filter(pl.col("market") == market), "made_at", "ended_at",
                                    times),
            "deals": done, "volume": volume[done],
        }
        for tier in tiers:
            budget = int(people.filter(pl.col("tier") == tier)["budget"].sum())
            flow = np.array([(p if tier_of[s] == tier else 0) - (p if tier_of[b] == tier else 0)
                             for p, s, b in zip(deals["price"], deals["seller"], deals["buyer"], strict=True)],
                            dtype=np.int64)
            columns[f"money_{tier}"] = budget + np.concatenate([[0], np.cumsum(flow)])[done]
        out.append(pl.DataFrame(columns).with_columns(pl.exclude("run", "market").cast(pl.Int64)))
    return pl.concat(out)


def _open_at(df: pl.DataFrame, start: str, end: str, times: np.ndarray) -> np.ndarray:
    """How many intervals [start, end) contain each time (end null = still open)."""
    starts = np.sort(df[start].to_numpy())
    ends = np.sort(df[end].fill_null(np.iinfo(np.int64).max).to_numpy())
    return np.searchsorted(starts, times, side="right") - np.searchsorted(ends, times, side="right")
