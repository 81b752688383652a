"""Honest statistics for tier effects: paired differences, bootstrap, permutation, fixed effects.

The reference week ran several markets with the same people and items, so
the same item sold by a frontier agent in one market and by a small one in
another is a paired comparison. Units of analysis are (run, item) for prices
and (run, participant) for deal counts; confidence intervals resample units,
and across replications they are taken over the per-run estimates.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import polars as pl
import statsmodels.api as sm
from scipy import stats as sps

from analysis.load import RunData
from running import provenance

Pair = tuple[str, str]

BOOTSTRAPS = 4000
PERMUTATIONS = 10000


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a 95% interval. ``value`` is in the unit the name says (cents or count)."""

    name: str
    value: float
    low: float
    high: float
    p_value: float | None
    n: int
    method: str
    p_floor: float | None = None
    """The least p-value the method can give (a permutation test's 1/(permutations + 1))."""

    def as_dict(self) -> dict[str, object]:
        """Every field by name (for JSON)."""
        return asdict(self)

    @property
    def p_text(self) -> str:
        """The p-value as people read it: ``p < 1/10,000`` at a permutation test's floor."""
        return format_p(self.p_value, self.p_floor)


def format_p(p: float | None, floor: float | None = None) -> str:
    """``p = 0.03``; ``p < 0.001``; at a permutation floor of 1/(n + 1), ``p < 1/n``."""
    if p is None or np.isnan(p):
        return "p not computable"
    if floor is not None and p <= floor * (1 + 1e-9):
        return f"p < 1/{round(1 / floor) - 1:,}"
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.2g}"


def agrees(paired: Estimate, other: Estimate) -> bool:
    """Whether two estimates of one effect agree: same sign and overlapping 95% intervals."""
    values = (paired.value, paired.low, paired.high, other.value, other.low, other.high)
    if any(np.isnan(v) for v in values):
        return False
    same_sign = np.sign(paired.value) == np.sign(other.value)
    return bool(same_sign and paired.low <= other.high and other.low <= paired.high)


def bootstrap_ci(values: np.ndarray, seed: int = 0, reps: int = BOOTSTRAPS, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (``scipy.stats.bootstrap``, seeded).

    Percentile rather than scipy's default BCa: it is the interval the project has always reported, and it is
    defined for every sample (BCa has no interval when all paired differences are equal, common in short runs).
    """
    values = np.asarray(values, dtype=float)
    if values.size < 2:
        return (float("nan"), float("nan"))
    if np.all(values == values[0]):
        return (float(values[0]), float(values[0]))  # every resample has this mean
    result = sps.bootstrap((values,), np.mean, n_resamples=reps, confidence_level=level, method="percentile",
                           rng=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def _abs_mean(sample: np.ndarray, axis: int) -> np.ndarray:
    return np.abs(np.mean(sample, axis=axis))


def sign_flip_p(diffs: np.ndarray, seed: int = 0, reps: int = PERMUTATIONS) -> float:
    """Two-sided permutation p-value for a mean paired difference of zero: ``scipy.stats.permutation_test`` with
    ``permutation_type='samples'`` on one sample flips the signs of the differences; the statistic is ``|mean|``.

    Exact (every one of the 2^n sign patterns) when 2^n <= ``reps``; otherwise ``reps`` random flips, seeded,
    with p = (1 + flips at least as extreme) / (reps + 1).
    """
    diffs = np.asarray(diffs, dtype=float)
    if diffs.size == 0:
        return float("nan")
    if diffs.size == 1:
        return 1.0  # both signs give the same |mean| (scipy wants two observations)
    result = sps.permutation_test((diffs,), _abs_mean, permutation_type="samples", n_resamples=reps,
                                  alternative="greater", rng=np.random.default_rng(seed))
    return float(result.pvalue)


def p_floor(n: int, reps: int = PERMUTATIONS) -> float | None:
    """The least p-value :func:`sign_flip_p`'s random flips can give for ``n`` differences, 1 / (reps + 1)
    (shown as ``p < 1/reps``); None when the test is exact (its p-value is the exact one)."""
    return None if n < 63 and 2**n <= reps else 1 / (reps + 1)


def paired_differences(df: pl.DataFrame, units: list[str], group: str, value: str, top: str, base: str) -> pl.DataFrame:
    """Per unit, mean ``value`` where ``group == top`` minus where ``group == base`` (units seen under both)."""
    means = df.filter(pl.col(group).is_in([top, base])).group_by([*units, group]).agg(mean=pl.col(value).mean())
    wide = means.pivot(on=group, index=units, values="mean")
    if top not in wide.columns or base not in wide.columns:
        return pl.DataFrame(schema={**{u: df.schema[u] for u in units}, top: pl.Float64, base: pl.Float64,
                                    "diff": pl.Float64})
    return wide.drop_nulls([top, base]).with_columns(diff=pl.col(top) - pl.col(base)).sort(units)


def paired_estimate(name: str, diffs: np.ndarray, seed: int = 0) -> Estimate:
    """Mean paired difference, bootstrap 95% interval over units, sign-flip permutation p-value."""
    diffs = np.asarray(diffs, dtype=float)
    low, high = bootstrap_ci(diffs, seed)
    mean = float(diffs.mean()) if diffs.size else float("nan")
    exact = p_floor(int(diffs.size)) is None
    flips = f"all {2**diffs.size:,} sign patterns" if exact else f"{PERMUTATIONS:,} random sign flips"
    return Estimate(name, mean, low, high, sign_flip_p(diffs, seed) if diffs.size else None, int(diffs.size),
                    f"paired; percentile bootstrap CI (scipy); sign-flip permutation p (scipy, {flips})",
                    p_floor(int(diffs.size)))


def comparisons(data: RunData, compare: list[str] | tuple[str, ...] = ()) -> list[Pair]:
    """The ``(measured, baseline)`` tier pairs compared, each read "measured minus baseline".

    ``compare`` (``--compare``), else the scenario's ``compare:``, names the tiers in
    order; without either, every pair of the tiers that took part, in the order the
    scenario defines them. Tiers that did not take part are left out.
    """
    present = set(data.participants["tier"].unique().to_list())
    chosen = list(compare) or list(data.scenario.get("compare") or [])
    order = [t for t in (chosen or data.tiers) if t in present]
    return provenance.comparisons(order)


def contrast(data: RunData, compare: list[str] | tuple[str, ...] = ()) -> Pair:
    """The first pair compared (see :func:`comparisons`)."""
    pairs = comparisons(data, compare)
    if not pairs:
        present = sorted(data.participants["tier"].unique().to_list())
        raise ValueError(f"fewer than two compared tiers took part ({', '.join(present) or 'none'}); "
                         "no tier effect to estimate")
    return pairs[0]


def same_item_pairs(data: RunData, side: str = "seller", pair: Pair | None = None) -> pl.DataFrame:
    """Per (run, item): mean price when the ``side``'s agent was top tier minus when it was base tier (cents)."""
    return same_item_pairs_of(data.deals, side, pair or contrast(data))


def person_pairs(data: RunData, pair: Pair | None = None) -> pl.DataFrame:
    """Per (run, participant) in markets where tiers mix: mean deals as top tier minus as base tier."""
    return person_pairs_of(data.participants, data.deals, pair or contrast(data))


def same_item_pairs_of(deals: pl.DataFrame, side: str, pair: Pair) -> pl.DataFrame:
    """:func:`same_item_pairs` on an enriched deals table (columns run, item_id, price, seller_tier, buyer_tier)."""
    top, base = pair
    return paired_differences(deals, ["run", "item_id"], f"{side}_tier", "price", top, base)


def person_pairs_of(participants: pl.DataFrame, deals: pl.DataFrame, pair: Pair) -> pl.DataFrame:
    """:func:`person_pairs` on the participants and deals tables: a person's deals count both sides."""
    top, base = pair
    tiers = participants.group_by("run", "market").agg(n=pl.col("tier").n_unique())
    mixed = participants.join(tiers.filter(pl.col("n") > 1).select("run", "market"), on=["run", "market"])
    counts = pl.concat([deals.select("run", "market", pl.col(side).alias("participant_id"))
                        for side in ("seller", "buyer")]).group_by("run", "market", "participant_id").agg(
        deals=pl.len().cast(pl.Int64))
    people = (mixed.join(counts, on=["run", "market", "participant_id"], how="left")
              .with_columns(pl.col("deals").fill_null(0)))
    return paired_differences(people, ["run", "participant_id"], "tier", "deals", top, base)


def fixed_effects(data: RunData, pair: Pair | None = None) -> list[Estimate]:
    """OLS of price (cents) on seller-top and buyer-top dummies with (run, item) fixed effects.

    Item effects are removed by demeaning within items (the within estimator: the same coefficients as OLS with
    one dummy per item); statsmodels fits it with standard errors cluster-robust by item (CR1,
    G/(G-1) * (n-1)/(n-k) with k = 2) and a t reference on clusters - 1 degrees of freedom. The item effects are
    not counted in k: they are nested in the clusters (as Stata's ``xtreg, fe vce(cluster)``; Cameron and Miller
    2015, section III.C). The hand-written version this replaces counted them, which made its standard errors
    larger by sqrt((n-2) / (n-2-G)).
    """
    return fixed_effects_of(data.deals, pair or contrast(data))


def fixed_effects_of(deals: pl.DataFrame, pair: Pair) -> list[Estimate]:
    """:func:`fixed_effects` on an enriched deals table."""
    top, base = pair
    df = deals.filter(pl.col("seller_tier").is_in([top, base]) & pl.col("buyer_tier").is_in([top, base]))
    df = df.with_columns(
        s=(pl.col("seller_tier") == top).cast(pl.Float64), b=(pl.col("buyer_tier") == top).cast(pl.Float64),
        y=pl.col("price").cast(pl.Float64), unit=pl.concat_str("run", "item_id", separator="/"),
    ).filter(pl.len().over("unit") > 1)
    names = (f"price: seller {top} vs {base}, item effects (cents)",
             f"price: buyer {top} vs {base}, item effects (cents)")
    if df.height < 4:
        return [Estimate(n, float("nan"), float("nan"), float("nan"), None, df.height, "too few repeat sales")
                for n in names]
    demeaned = df.with_columns([(pl.col(c) - pl.col(c).mean().over("unit")).alias(c) for c in ("s", "b", "y")])
    _, groups = np.unique(df["unit"].to_numpy(), return_inverse=True)
    clusters = int(groups.max()) + 1
    fit = sm.OLS(demeaned["y"].to_numpy(), demeaned.select("s", "b").to_numpy()).fit(
        cov_type="cluster", cov_kwds={"groups": groups}, use_t=True)  # CR1; t on clusters - 1 df
    low, high = fit.conf_int(0.05).T
    return [Estimate(name, float(fit.params[j]), float(low[j]), float(high[j]),
                     float(fit.pvalues[j]) if fit.bse[j] > 0 else None, df.height,
                     f"OLS (statsmodels), item fixed effects, cluster-robust SE by item ({clusters} items)")
            for j, name in enumerate(names)]


def headline(data: RunData, seed: int = 0, pair: Pair | None = None) -> list[Estimate]:
    """The three headline tier effects for one run (or runs pooled as units):
    seller premium and buyer savings on the same item (cents), extra deals per person."""
    top, base = pair = pair or contrast(data)
    sold = same_item_pairs(data, "seller", pair)["diff"].to_numpy()
    bought = same_item_pairs(data, "buyer", pair)["diff"].to_numpy()
    deals = person_pairs(data, pair)["diff"].to_numpy()
    return [
        paired_estimate(f"seller premium: same item sold by {top} vs {base} (cents)", sold, seed),
        paired_estimate(f"buyer savings: same item bought by {top} vs {base} (cents)", -bought, seed),
        paired_estimate(f"extra deals per person as {top} vs {base} (mixed markets)", deals, seed),
    ]


def across_runs(per_run: pl.DataFrame, seed: int = 0) -> list[Estimate]:
    """Pool per-run estimates (columns ``name``, ``value``): mean over replications, t interval, and
    the one-sample t test p-value; ``n`` is the number of replications."""
    out = []
    for name in per_run["name"].unique(maintain_order=True).to_list():
        values = per_run.filter((pl.col("name") == name) & pl.col("value").is_not_nan())["value"].to_numpy()
        if values.size < 2:
            v = float(values[0]) if values.size else float("nan")
            out.append(Estimate(name, v, float("nan"), float("nan"), None, int(values.size), "one replication"))
            continue
        mean, sem = float(values.mean()), float(values.std(ddof=1) / np.sqrt(values.size))
        tcrit = sps.t.ppf(0.975, values.size - 1)
        p = float(sps.ttest_1samp(values, 0.0).pvalue) if sem > 0 else None
        out.append(Estimate(name, mean, float(mean - tcrit * sem), float(mean + tcrit * sem), p, int(values.size),
                            "mean over replications; t interval"))
    del seed
    return out


def per_run_headline(data: RunData, seed: int = 0, pair: Pair | None = None) -> pl.DataFrame:
    """Headline estimates computed separately for every run in ``data``."""
    pair = pair or contrast(data)
    rows = []
    for run in data.participants["run"].unique(maintain_order=True).to_list():
        one = subset(data, run)
        for e in headline(one, seed, pair):
            rows.append({"run": run, **e.as_dict()})
    return pl.DataFrame(rows)


def subset(data: RunData, run: str) -> RunData:
    """The tables of one run out of stacked runs."""
    from dataclasses import replace

    from analysis.load import TABLES

    return replace(data, **{t: getattr(data, t).filter(pl.col("run") == run) for t in TABLES})
