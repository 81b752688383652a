"""``python -m market.power SCENARIO --vary participants=20,40,69,140``: how likely a study detects each tier effect.

For each design point (a value of the varied design) the scenario is run
``--replications`` times (seeds derived as in an experiment), and each run is
tested exactly as the report tests one week: :func:`analysis.stats.headline` on
the run, with the report's pair and permutation seed (the same p-values
report.html prints). Its three tests, chosen with ``--effect``:

- ``seller_premium``: same item sold by the top vs the base tier, paired per item
  over every market of the run;
- ``buyer_savings``: the same, for the buyer;
- ``extra_deals``: deals per person as top vs base tier, paired per person over
  the run's mixed markets pooled (a person frontier in B and small in C is one unit).

The power of an effect at a design point is the share of its weeks whose test
gives p < ``--alpha``, with a 95% Clopper-Pearson interval. A week whose test
had no units (no item sold by both tiers, no person in both tiers) detected
nothing and counts as such; a design point where no week had units has no
power ("no units"), not power 0. With offline profiles the effect sizes are the
profiles' assumptions, so the power is too.

``--vary`` takes one design and its values; the shortcuts are ``participants``
(people, each in every market: ``participants.generate.count``), ``mixed_markets``
(that many half/half markets replace the scenario's mixed ones; its single-tier
markets stay) and ``days`` (trading days); any other scenario field path works
as in an experiment (``markets[*].tiers.small.share=0.2,0.5``).

``--effects published`` answers at the published effects instead, with no run: for the published design
(``PUBLISHED_PEOPLE`` = 69 people, two mixed markets) each effect of the targets file (the scenario's
``targets:``) has its estimate and the standard error derived from its p-value (:mod:`market.targets`). The
power of the two-sided level-alpha test at a true effect ``d`` with standard error ``se`` is, in the normal
approximation the published p-values imply, ``Phi(d/se - z) + Phi(-d/se - z)``, z = z(1 - alpha/2). A design
of ``n`` people has ``se(n) = se * sqrt(69 / n)`` (the paired units, items and people, grow with the
people); the people a replication needs for a power of 80% (90%) is ``69 * ((z + z(0.8)) * se / d)^2``. At the
published estimate this is the design's power if the true effect were the estimate: a function of the
published p alone (about 0.5 at p = 0.05), and optimistic, because a significant estimate tends to overstate
its effect. ``--vary participants=...`` gives the design points (default 69 alone); the table is written as
``power_published.parquet``.

The runs are an ordinary experiment folder (``studies.experiment``), resumable
with the same ``--out``; no report or survey is made per run. Writes
``power_runs.parquet`` (each week's tests), ``power.parquet`` (the table) and
``power.html`` (the curve) into the folder. It tests each week with the analysis's own tests
(:mod:`analysis.stats`); ``python -m market.power`` and ``market power`` launch it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import plotly.graph_objects as go
import polars as pl
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from scipy import stats as sps

from analysis import pages
from analysis.load import load_run
from analysis.pages import figure_html
from analysis.report import frame_table
from analysis.stats import contrast, headline
from market.scenario import MAX_DIGITS, MAX_MARKETS, Scenario, load_scenario, quoted
from market.targets import Targets, read_targets
from running.run import BAD_INPUT
from studies.experiment import ExperimentError, design, run, validate_spec
from studies.factors import FactorError, parse_path

EFFECTS = ("seller_premium", "buyer_savings", "extra_deals")
"""The headline effects, in the order :func:`analysis.stats.headline` returns them."""
EFFECT_TEXT = {"seller_premium": "seller premium", "buyer_savings": "buyer savings",
               "extra_deals": "extra deals per person"}
REPORT_SEED = 0
"""The permutation seed the report tests a week with (``analysis.report.analyse``'s default)."""
PUBLISHED_PEOPLE = 69
"""The published design's people (Project Deal: 69 people, each in every market, two mixed markets)."""
PUBLISHED_STATISTIC = {"seller_premium": "seller_premium_cents", "buyer_savings": "buyer_savings_cents",
                       "extra_deals": "extra_deals_per_person"}
"""Each effect's statistic in a targets file (:mod:`market.targets`)."""
TARGET_POWERS = (0.8, 0.9)


@dataclass(frozen=True)
class Shortcut:
    """A design named in the researchers' words: the scenario field it sets and its axis label (with units)."""

    path: str
    axis: str


SHORTCUTS = {
    "participants": Shortcut("participants.generate.count", "participants (people, each in every market)"),
    "mixed_markets": Shortcut("markets", "mixed markets (half-and-half tier markets per week)"),
    "days": Shortcut("days", "days (trading days per week)"),
}


@dataclass(frozen=True)
class Vary:
    """The varied design: its name (a shortcut or a field path), the field set, and the values as written."""

    name: str
    path: str
    values: list[Any]

    @property
    def axis(self) -> str:
        """The figure's x-axis title."""
        shortcut = SHORTCUTS.get(self.name)
        return shortcut.axis if shortcut else f"{self.name} (as written in the scenario)"

    def levels(self, scenario: Scenario) -> list[Any]:
        """The field's value at each design point (``mixed_markets``: the whole ``markets`` list)."""
        if self.name == "mixed_markets":
            return [mixed_markets(scenario, count) for count in self.values]
        return list(self.values)


def parse_vary(text: str) -> Vary:
    """``participants=20,40,69`` (a shortcut or any field path) -> :class:`Vary`; numbers stay numbers."""
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not raw.strip() or not name:
        raise FactorError(f"--vary {quoted(text)}: expected NAME=V1,V2,..., e.g. participants=20,40,69,140 "
                          f"(shortcuts: {', '.join(SHORTCUTS)}; or a scenario field path)")
    shortcut = SHORTCUTS.get(name)
    path = shortcut.path if shortcut else name
    parse_path(path)
    values: list[Any] = []
    for part in raw.split(","):
        part = part.strip()
        if sum(char.isdigit() for char in part) > MAX_DIGITS:
            raise FactorError(f"--vary {name}: a number of {len(part):,} characters (at most {MAX_DIGITS:,} "
                              "digits are read)")
        values.append(int(part) if re.fullmatch(r"-?\d+", part) else float(part)
                      if re.fullmatch(r"-?\d*\.\d+", part) else part)
    if shortcut and any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
        raise FactorError(f"--vary {name}: values are whole numbers of at least 1, got {raw.strip()}")
    if len({repr(v) for v in values}) != len(values):
        raise FactorError(f"--vary {name}: a value is given twice ({raw.strip()})")
    return Vary(name, path, values)


def parse_effects(given: Sequence[str] | None) -> list[str]:
    """``--effect`` values (repeatable, or comma-separated; ``all`` or none: every effect) in headline order."""
    chosen: set[str] = set()
    for item in given or ["all"]:
        for key in (k.strip() for k in item.split(",")):
            if key == "all":
                chosen.update(EFFECTS)
            elif key in EFFECTS:
                chosen.add(key)
            else:
                raise ValueError(f"--effect {key!r}: not an effect; the effects are {', '.join(EFFECTS)} (or all)")
    return [e for e in EFFECTS if e in chosen]


def mixed_markets(scenario: Scenario, count: int) -> list[dict[str, Any]]:
    """The scenario's markets with its mixed ones replaced by ``count`` mixed markets, in their place.

    The scenario's mixed markets are kept as they are, in order, as far as they go;
    more are copies of the first one's tier shares under fresh names (E, F, ... after
    A-D). Without a mixed market the new ones are half/half between the first two
    compared tiers (``compare:``, else the tiers in the order defined). Single-tier
    markets stay where they are: with ``deal.yaml``, 2 is the published A, B, C, D.
    """
    if count < 1:
        raise FactorError(f"mixed_markets: at least one mixed market is needed to compare tiers, got {count}")
    if count > MAX_MARKETS:
        raise FactorError(f"mixed_markets: a scenario holds at most {MAX_MARKETS} markets, got {count}")
    markets = [m.model_dump(mode="json", exclude_defaults=True) for m in scenario.markets]
    mixed = [i for i, m in enumerate(markets) if sum(1 for share in m["tiers"].values() if share > 0) > 1]
    if mixed:
        template = {k: v for k, v in markets[mixed[0]]["tiers"].items() if v > 0}
    else:
        order = list(dict.fromkeys([*scenario.compare, *scenario.tiers]))
        if len(order) < 2:
            raise FactorError(f"mixed_markets: the scenario defines one tier ({', '.join(order)}); a mixed market "
                              "needs two")
        template = {order[0]: 0.5, order[1]: 0.5}
    taken = {m["name"] for m in markets}
    fresh = (n for n in [chr(c) for c in range(ord("A"), ord("Z") + 1)] + [f"M{i}" for i in range(1, 10_000)]
             if n not in taken)
    built = [markets[i] for i in mixed[:count]]
    built += [{"name": next(fresh), "tiers": dict(template)} for _ in range(count - len(built))]
    where = mixed[0] if mixed else len(markets)
    kept = [m for i, m in enumerate(markets) if i not in mixed]
    return kept[:where] + built + kept[where:]


def week_tests(folder: Path, record: dict[str, Any], vary: Vary, levels: list[Any],
               effects: Sequence[str] = EFFECTS) -> pl.DataFrame:
    """Each finished week of the power experiment tested as the report tests it: one row per run x effect."""
    value_of = {c["id"]: vary.values[levels.index(c["values"][vary.path])] for c in record["cells"]}
    rows = []
    for entry in record["runs"]:
        data = load_run(folder / entry["run_dir"])
        pair = contrast(data)
        for key, estimate in zip(EFFECTS, headline(data, REPORT_SEED, pair), strict=True):
            if key in effects:
                rows.append({vary.name: value_of[entry["cell"]], "effect": key, "name": estimate.name,
                             "run_dir": entry["run_dir"], "seed": entry["seed"], "estimate": estimate.value,
                             "p_value": estimate.p_value, "units": estimate.n})
    return pl.DataFrame(rows, infer_schema_length=None)


def power_table(weeks: pl.DataFrame, design_name: str, alpha: float) -> pl.DataFrame:
    """Per design point and effect: weeks run, weeks with units, weeks detected (p < alpha), power, interval.

    Power is detected / weeks, with a 95% Clopper-Pearson interval; it is null (``status``
    "no units") where no week had a unit to test. ``mean_estimate`` is over the weeks with units.
    """
    out = []
    for (value, key, name), part in weeks.group_by(design_name, "effect", "name", maintain_order=True):
        tested = part.filter(pl.col("p_value").is_not_null() & (pl.col("units") > 0))
        hits = int((tested["p_value"] < alpha).sum())
        n = part.height
        low = high = power = None
        if tested.height:
            interval = sps.binomtest(hits, n).proportion_ci(0.95, method="exact")
            low, high, power = float(interval.low), float(interval.high), hits / n
        out.append({design_name: value, "effect": key, "name": name, "weeks": n, "tested": tested.height,
                    "detected": hits, "power": power, "low": low, "high": high,
                    "mean_estimate": tested["estimate"].mean() if tested.height else None,
                    "alpha": alpha, "status": "tested" if tested.height else "no units"})
    return pl.DataFrame(out, infer_schema_length=None)


MARKS = {"seller_premium": ("circle", 14), "buyer_savings": ("square", 9), "extra_deals": ("diamond", 4)}
"""Each effect's marker and error-bar cap width: the effects share their design points' x, so overlapping
intervals are told apart by their caps, not shifted sideways off the design values."""


def figure(table: pl.DataFrame, vary: Vary, alpha: float) -> go.Figure:
    """The power curve: one line per effect with its points on the design values, 95% intervals, the alpha line."""
    fig = go.Figure()
    for (key,), part in table.group_by("effect", maintain_order=True):
        power = part["power"].to_list()
        symbol, cap = MARKS[str(key)]
        fig.add_trace(go.Scatter(
            x=part[vary.name].to_list(), y=power, mode="lines+markers", name=EFFECT_TEXT[str(key)],
            marker={"symbol": symbol, "size": 9}, opacity=0.85,
            customdata=part.select("detected", "weeks").rows(),
            hovertemplate="%{x}: power %{y:.0%} (%{customdata[0]} of %{customdata[1]} weeks)<extra></extra>",
            error_y={"type": "data", "symmetric": False, "width": cap, "thickness": 1.5,
                     "array": [None if p is None else h - p for h, p in zip(part["high"], power, strict=True)],
                     "arrayminus": [None if p is None else p - lo for lo, p in zip(part["low"], power, strict=True)]}))
    fig.add_hline(y=alpha, line_dash="dot", line_color="grey",
                  annotation_text=f"alpha {alpha:.0%} (the power when there is no effect)")
    fig.update_layout(title=f"power to detect each tier effect at alpha {alpha:.0%} (share of weeks, 95% interval)",
                      xaxis_title=vary.axis, yaxis_title="power (% of weeks with p < alpha)",
                      yaxis={"range": [0, 1.05], "tickformat": ".0%"}, height=480,
                      legend={"orientation": "h", "y": -0.35}, margin={"b": 140})
    untested = {value: ", ".join(EFFECT_TEXT[e] for e in rows["effect"]) for (value,), rows in
                table.filter(pl.col("status") == "no units").group_by(vary.name, maintain_order=True)}
    # a design point without units is named under its tick, not drawn as a power of 0
    fig.update_xaxes(tickvals=vary.values, ticktext=[
        f"{v}<br><sub>{untested[v]}:<br>no units</sub>" if v in untested else str(v) for v in vary.values])
    return fig


def _estimate_text(key: str, value: float | None) -> str:
    if value is None:
        return "-"
    if key == "extra_deals":
        return f"{value:+.2f} deals"
    return f"{'-' if value < 0 else '+'}${abs(value) / 100:,.2f}"


def normal_power(effect: float, se: float, alpha: float) -> float:
    """The power of a two-sided level-``alpha`` z test of zero when the true effect is ``effect`` with standard
    error ``se``: ``Phi(d/se - z) + Phi(-d/se - z)``."""
    z = float(sps.norm.ppf(1 - alpha / 2))
    return float(sps.norm.cdf(effect / se - z) + sps.norm.cdf(-effect / se - z))


def people_needed(effect: float, se: float, people: int, alpha: float, power: float) -> int:
    """People a design needs for ``power`` when ``people`` give standard error ``se`` (se shrinks as
    1/sqrt(people)); the one-sided approximation, whose other tail adds under 0.01 at these powers."""
    z = float(sps.norm.ppf(1 - alpha / 2) + sps.norm.ppf(power))
    return max(1, int(-(-people * (z * se / effect) ** 2 // 1)))


def published_power(targets: Targets, effects: Sequence[str], people: Sequence[int], alpha: float) -> pl.DataFrame:
    """Per design point and effect: the power at the published estimate with its standard error, and the
    people a replication needs for 80% and 90% power (module docstring)."""
    by_statistic = {m.statistic: m for m in targets.moments}
    rows = []
    for key in effects:
        m = by_statistic.get(PUBLISHED_STATISTIC[key])
        if m is None or m.se is None:
            raise ValueError(f"{targets.name}: no published {EFFECT_TEXT[key]} with a p-value or se "
                             f"(statistic {PUBLISHED_STATISTIC[key]})")
        needed = {f"people_for_{round(q * 100)}": people_needed(m.target, m.se, PUBLISHED_PEOPLE, alpha, q)
                  for q in TARGET_POWERS}
        for n in people:
            se = m.se * (PUBLISHED_PEOPLE / n) ** 0.5
            rows.append({"participants": n, "effect": key, "estimate": m.target, "p_value": m.p_value,
                         "se": se, "power": normal_power(m.target, se, alpha), **needed, "alpha": alpha})
    return pl.DataFrame(rows, infer_schema_length=None)


def print_published(console: Console, table: pl.DataFrame, targets: str) -> None:
    """The published-effects power table as people read it."""
    alpha = float(table["alpha"][0]) if table.height else 0.05
    out = Table(title=f"power at the published effects ({targets}): two-sided test, alpha {alpha:g}, normal "
                      f"approximation; SE from the published p-value, scaled by sqrt({PUBLISHED_PEOPLE} / people)")
    for column in ("participants", "effect", "published", "SE", "power", "people for 80%", "people for 90%"):
        out.add_column(column, justify="left" if column == "effect" else "right", no_wrap=True)
    for row in table.iter_rows(named=True):
        p = f" (p = {row['p_value']:g})" if row["p_value"] is not None else ""
        out.add_row(str(row["participants"]), EFFECT_TEXT[row["effect"]],
                    _estimate_text(row["effect"], row["estimate"]) + p,
                    _estimate_text(row["effect"], row["se"]).lstrip("+"),
                    f"{row['power']:.2f}", str(row["people_for_80"]), str(row["people_for_90"]))
    console.print(out)


def print_table(console: Console, table: pl.DataFrame, vary: Vary) -> None:
    """The power table as people read it: power with its interval, weeks detected of weeks run."""
    alpha = float(table["alpha"][0]) if table.height else 0.05
    out = Table(title=f"power: share of weeks whose test gives p < {alpha:g} (95% Clopper-Pearson interval)")
    for column in (vary.name, "effect", "power", "95% interval", "detected", "with units", "mean estimate"):
        out.add_column(column, justify="left" if column == "effect" else "right", no_wrap=True)
    for row in table.iter_rows(named=True):
        tested = row["status"] == "tested"
        out.add_row(str(row[vary.name]), row["effect"], f"{row['power']:.2f}" if tested else "no units",
                    f"{row['low']:.2f}-{row['high']:.2f}" if tested else "-",
                    f"{row['detected']} / {row['weeks']}", f"{row['tested']} / {row['weeks']}",
                    _estimate_text(row["effect"], row["mean_estimate"]))
    console.print(out)


def page_table(table: pl.DataFrame, vary: Vary) -> pages.Table | None:
    """The power table for the page: power and its interval in %, weeks counted, mean estimates with units."""
    rows = [{vary.axis: str(row[vary.name]), "effect": EFFECT_TEXT[row["effect"]],
             "power": f"{row['power']:.0%}" if row["status"] == "tested" else "no units",
             "95% interval": f"{row['low']:.0%} to {row['high']:.0%}" if row["status"] == "tested" else "–",
             "weeks detected": f"{row['detected']} of {row['weeks']} weeks",
             "weeks with units": f"{row['tested']} of {row['weeks']} weeks",
             "mean estimate": _estimate_text(row["effect"], row["mean_estimate"])
             + (" per person" if row["effect"] == "extra_deals" and row["mean_estimate"] is not None else "")}
            for row in table.iter_rows(named=True)]
    return frame_table(pl.DataFrame(rows), "Power per design point and effect") if rows else None


def write_page(path: Path, fig: go.Figure, scenario: Path, effects: Sequence[str], table: pl.DataFrame,
               vary: Vary) -> None:
    """``power.html``: what the tests are, the curve and the table, with the run report's look; self-contained."""
    alpha = float(table["alpha"][0]) if table.height else 0.05
    lines = [f"Each week is tested as the report tests one week: {'; '.join(EFFECT_TEXT[e] for e in effects)} "
             "(paired units, sign-flip permutation p-values; extra deals pool the week's mixed markets per person).",
             f"Power is the % of weeks with p < {alpha:.0%}, with a 95% Clopper-Pearson interval; a design point "
             "where no week had a unit to test has no power (\"no units\"), not 0%.",
             "With offline profiles the effect sizes are the profiles' assumptions, and so is this power."]
    path.write_text(pages.render("power.html", title=f"Power: {scenario.name}", heading=f"Power: {scenario.name}",
                                 provenance=lines, figure=figure_html(fig, include_plotlyjs=True),
                                 power=page_table(table, vary)), encoding="utf-8")


def _progress(console: Console, total: int, quiet: bool) -> tuple[Progress, Callable[[str], None]]:
    progress = Progress(TextColumn("weeks"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=console, disable=quiet)
    task = progress.add_task("weeks", total=total)
    return progress, lambda _cell: progress.advance(task)


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]})
err = Console(stderr=True)


@app.command()
def main(
    scenario: Annotated[Path, typer.Argument(help="scenario YAML file")],
    vary: Annotated[str | None, typer.Option(help=(
        "NAME=V1,V2,...: participants=20,40,69,140, mixed_markets=1,2,4, days=1,3,5, or any scenario field path "
        "(with --effects published: participants only, default 69)"))] = None,
    effects: Annotated[str, typer.Option("--effects", help=(
        "twin: simulate the scenario's weeks and test them (the twin's effects); published: no runs, the power "
        "at the published estimates with the SEs their p-values imply (normal approximation)"))] = "twin",
    targets: Annotated[Path | None, typer.Option("--targets", help=(
        "targets file for --effects published (default: the scenario's targets:)"))] = None,
    effect: Annotated[list[str] | None, typer.Option("--effect", help=(
        "seller_premium, buyer_savings, extra_deals or all (default); repeatable"))] = None,
    replications: Annotated[int, typer.Option("--replications", "-n", help="weeks per design point")] = 20,
    alpha: Annotated[float, typer.Option(help="significance level of each week's test")] = 0.05,
    workers: Annotated[int, typer.Option(help="local worker processes (or Ray CPUs with --ray local)")] = 1,
    ray: Annotated[str | None, typer.Option("--ray", help="run on Ray: local, auto, or HOST:PORT")] = None,
    out: Annotated[Path | None, typer.Option(help="folder (default runs/power/<scenario>-<time>)")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
) -> None:
    """Estimate the power of a one-week study to detect each headline tier effect, per design point."""
    console = Console(quiet=quiet)
    folder = out
    if effects not in ("twin", "published"):
        err.print(f"[red]error:[/red] --effects must be twin or published, got {quoted(effects)}", highlight=False)
        raise typer.Exit(2)
    if effects == "published":
        _published(scenario, vary, effect, targets, alpha, out)
        return
    try:
        chosen = parse_effects(effect)
        if vary is None:
            raise ValueError("--vary is required (e.g. --vary participants=20,40,69,140)")
        varied = parse_vary(vary)
        if not 0 < alpha < 1:
            raise ValueError(f"--alpha must be between 0 and 1, got {alpha}")
        base, _ = load_scenario(scenario)
        levels = varied.levels(base)
        spec = validate_spec({"scenario": str(scenario.resolve()), "replications": replications,
                              "factors": {varied.path: levels}}, "--vary")
        plan = design(spec, None, scenario.resolve().parent, name=f"power-{scenario.stem}")
        folder = out or Path("runs/power") / f"{scenario.stem}-{datetime.now():%Y%m%d-%H%M%S}"
        console.print(f"power of {scenario.name}: {varied.name} = {', '.join(map(str, varied.values))}, "
                      f"{replications} week(s) each, alpha {alpha:g}", highlight=False)
        progress, advance = _progress(console, len(plan.cells) * replications, quiet)
        with progress:
            record = run(plan, out=folder, workers=workers, ray_address=ray, on_done=advance, report=False)
    except (*BAD_INPUT, ExperimentError) as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        err.print(f"interrupted; continue with the same command and --out {folder}", highlight=False)
        raise typer.Exit(130) from None
    if not record["complete"]:
        err.print(f"some weeks did not finish; run the same command with --out {folder}", highlight=False)
        raise typer.Exit(1)
    weeks = week_tests(folder, record, varied, levels, chosen)
    weeks.write_parquet(folder / "power_runs.parquet")
    table = power_table(weeks, varied.name, alpha)
    table.write_parquet(folder / "power.parquet")
    write_page(folder / "power.html", figure(table, varied, alpha), scenario, chosen, table, varied)
    print_table(Console(width=max(Console().width, 100)), table, varied)  # the table's width; a pipe says 80
    print(f"power table: {folder / 'power.parquet'}\npower curve: {folder / 'power.html'}")


def _published(scenario: Path, vary: str | None, effect: list[str] | None, targets: Path | None, alpha: float,
               out: Path | None) -> None:
    """``--effects published``: the analytic power table at the published effects (no runs)."""
    try:
        chosen = parse_effects(effect)
        if not 0 < alpha < 1:
            raise ValueError(f"--alpha must be between 0 and 1, got {alpha}")
        people = [PUBLISHED_PEOPLE]
        if vary is not None:
            varied = parse_vary(vary)
            if varied.name != "participants" or not all(isinstance(v, int) and v > 0 for v in varied.values):
                raise ValueError(f"--vary {quoted(vary)}: with --effects published only participants=N1,N2,... "
                                 "(whole numbers of people) can be varied")
            people = [int(v) for v in varied.values]
        if targets is None:
            base, _ = load_scenario(scenario)
            if base.targets is None:
                raise ValueError(f"{scenario.name} names no targets file; give --targets")
            targets = scenario.parent / base.targets
        published = read_targets(targets)
        table = published_power(published, chosen, people, alpha)
    except (*BAD_INPUT, ExperimentError) as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    print_published(Console(width=max(Console().width, 140)), table, published.name)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        table.write_parquet(out / "power_published.parquet")
        print(f"power table: {out / 'power_published.parquet'}")


def cli() -> None:
    """Run the command line as ``python -m market.power``."""
    app(prog_name="python -m market.power")


if __name__ == "__main__":
    cli()
