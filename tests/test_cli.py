"""``market``: one console command; each subcommand is its module's own command line, loaded when it runs."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from importlib.metadata import entry_points, version
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import cli
from market.ledger import Ledger
from tests.conftest import ROOT, export

# what each subcommand's own help says first: proof that the module's command line answered
OWN_HELP = {
    "run": "Run SCENARIO offline",
    "sweep": "Run many replications of SCENARIO",
    "experiment": "Run every cell x replication of EXPERIMENT",
    "calibrate": "Fit offline profile parameters to published figures",
    "power": "Estimate the power of a one-week study",
    "report": "Write a self-contained report.html",
    "watch": "Serve a local page that replays RUN_DIR",
    "export": "Write every table of the runs under PATH",
    "ledger": "Print RUN_DIR's events as JSON lines",
    "slack": "Post a run into Slack (watch), or host a live trading week there (host)",
}


def invoke(*args: str) -> object:
    return CliRunner().invoke(cli.app, list(args), prog_name="market")


def test_the_console_command_is_installed() -> None:
    (script,) = entry_points(group="console_scripts", name="market")
    assert script.value == "cli:main"
    assert [s.value for s in entry_points(group="console_scripts", name="market-run")] == ["running.run:cli"]


def test_subcommands_live_where_the_commands_entry_points_say() -> None:
    """One declaration: a subcommand the core reaches is where its ``market.commands`` entry point says, and every
    command there but the Python API (batch_run) is a subcommand."""
    declared = {ep.name: ep.value for ep in entry_points(group="market.commands")}
    assert set(declared) - {"batch_run"} <= set(cli.SUBCOMMANDS)
    assert list(cli.SUBCOMMANDS) == list(cli.SUMMARIES) == list(OWN_HELP)
    for name, sub in cli.SUBCOMMANDS.items():
        assert f"{sub.module}:{sub.attr}" == declared.get(name, cli.UNREACHED.get(name)), name


def test_version_at_the_top_and_on_every_subcommand() -> None:
    expected = f"market {version('market')}\n"
    assert invoke("--version").output == expected
    for name in cli.SUBCOMMANDS:
        result = invoke(name, "--version")
        assert (result.exit_code, result.output) == (0, expected), name


def test_top_level_help_lists_every_subcommand_without_importing_them() -> None:
    code = ("import sys; from cli import main; sys.argv = ['market', '-h']\n"
            "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
            "above = ('analysis', 'agents', 'slackbot', 'watch', 'running', 'studies')\n"
            "loaded = sorted(m for m in sys.modules if m.split('.')[0] in above"
            " or m == 'market.engine')\n"
            "print(code, loaded)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
                         env={**os.environ, "COLUMNS": "200"})
    *help_lines, last = out.stdout.splitlines()
    assert last == "0 []", out.stdout + out.stderr
    text = "\n".join(help_lines)
    for name in ("run", "sweep", "experiment", "calibrate", "power", "report", "watch", "export", "ledger", "slack"):
        assert f" {name} " in text, name


@pytest.mark.parametrize("name", list(cli.SUBCOMMANDS))
@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_every_subcommand_help(name: str, flag: str) -> None:
    result = invoke(name, flag)
    assert result.exit_code == 0, result.output
    assert OWN_HELP[name] in result.output
    assert f"Usage: market {name}" in result.output


@pytest.mark.parametrize("name", [n for n, sub in cli.SUBCOMMANDS.items() if sub.module != "cli"])
def test_the_module_forms_take_h_too(name: str) -> None:
    """``python -m market.run -h`` (and every other module's own command line) answers as ``market run -h`` does."""
    sub = cli.SUBCOMMANDS[name]
    result = CliRunner().invoke(getattr(importlib.import_module(sub.module), sub.attr), ["-h"])
    assert result.exit_code == 0, result.output
    assert OWN_HELP[name] in result.output


def test_flags_read_as_flags_and_shared_options_agree() -> None:
    """No --x/--no-x pairs; an option two subcommands share is spelled the same (``--quiet`` is always ``-q``)."""
    spellings: dict[str, set[tuple[str, ...]]] = {}
    for name, sub in cli.SUBCOMMANDS.items():
        command = typer.main.get_command(getattr(importlib.import_module(sub.module), sub.attr))
        for param in command.params:
            if param.param_type_name != "option":
                continue
            assert not param.secondary_opts, f"market {name}: {param.opts} + {param.secondary_opts}"
            spellings.setdefault(param.name, set()).add(tuple(sorted(param.opts)))
    assert {name: s for name, s in spellings.items() if len(s) > 1} == {}
    assert spellings["quiet"] == {("--quiet", "-q")}


def test_unknown_subcommand_exits_2_and_says_so() -> None:
    result = invoke("frobnicate")
    assert result.exit_code == 2
    assert "No such command 'frobnicate'" in result.output
    assert "market -h" in result.output
    typo = invoke("rnu")
    assert typo.exit_code == 2 and "Did you mean 'run'?" in typo.output


def test_a_missing_subcommand_module_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(cli.SUBCOMMANDS, "experiment",
                        cli.Subcommand("market.no_such_part", "app", "Run an experiment."))
    result = invoke("experiment", "-h")
    assert result.exit_code == 2
    assert "market experiment: this installation has no module market.no_such_part" in result.output


def test_a_subcommand_missing_a_dependency_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "needs_extra_probe.py").write_text("import no_such_dependency_probe\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(cli.SUBCOMMANDS, "slack", cli.Subcommand("needs_extra_probe", "app", "Slack."))
    result = invoke("slack", "-h")
    assert result.exit_code == 2
    assert "market slack needs the package 'no_such_dependency_probe', which is not installed" in result.output


def test_bad_input_to_a_subcommand_is_the_module_s_own_error(tmp_path: Path) -> None:
    result = invoke("run", str(tmp_path / "nope.yaml"), "-q")
    assert result.exit_code == 2
    assert "error:" in result.output and "nope.yaml" in result.output
    assert invoke("run", "--seed", "many").exit_code == 2
    assert not list(tmp_path.iterdir())


def test_paused_and_speed_need_watch(smoke: Path, tmp_path: Path) -> None:
    result = invoke("run", str(smoke), "--paused", "--out", str(tmp_path / "r"))
    assert result.exit_code == 2
    assert "--paused and --speed go with --watch" in result.output
    assert not (tmp_path / "r").exists()


def test_market_run_on_smoke_then_market_ledger(smoke: Path, tmp_path: Path) -> None:
    """``market run`` is ``python -m market.run``: same run folder, and ``market ledger`` prints its events."""
    out = tmp_path / "smoke"
    result = invoke("run", str(smoke), "--out", str(out), "--quiet", "--no-report")
    assert result.exit_code == 0, result.output
    assert f"run folder: {out}" in result.output
    assert (out / "summary.json").is_file()
    with Ledger(out) as ledger:
        assert ledger.status("state") == "complete"
    printed = invoke("ledger", str(out))
    assert printed.exit_code == 0
    assert printed.output == export(out)
    only_a = invoke("ledger", str(out), "A")
    assert only_a.output and all('"market":"A"' in line for line in only_a.output.splitlines())
    missing = invoke("ledger", str(tmp_path / "none"))
    assert missing.exit_code == 2 and "error:" in missing.output


def test_slack_is_slackbot_s_own_command_line() -> None:
    """``market slack watch|host`` is ``python -m slackbot``'s typer app, with the same help as every subcommand."""
    for command, says in (("watch", "--channel-prefix"), ("host", "--admin")):
        result = invoke("slack", command, "-h")
        assert result.exit_code == 0
        assert f"Usage: market slack {command}" in result.output and says in result.output
        assert "--version" in result.output
    bad = invoke("slack", "frobnicate")
    assert bad.exit_code == 2
    assert "No such command 'frobnicate'" in bad.output


def test_slack_without_a_token_exits_2_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET"):
        monkeypatch.delenv(name, raising=False)
    watch = invoke("slack", "watch", str(tmp_path / "none"))
    assert (watch.exit_code, watch.output) == (2, f"error: {tmp_path / 'none'}: no such folder\n")
    host = invoke("slack", "host", str(ROOT / "scenarios" / "smoke.yaml"))
    assert host.exit_code == 2
    assert host.output.count("\n") == 1 and "SLACK_BOT_TOKEN" in host.output and "SLACK_APP_TOKEN" in host.output
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    http = invoke("slack", "host", str(ROOT / "scenarios" / "smoke.yaml"), "--http")
    assert http.exit_code == 2 and http.output.startswith("error: set SLACK_SIGNING_SECRET")
    assert "SLACK_BOT_TOKEN" not in http.output


@pytest.mark.slow
def test_console_script_in_a_subprocess(tmp_path: Path) -> None:
    """The installed entry point's module, as a shell runs it: exit codes pass through."""
    ok = subprocess.run([sys.executable, "-m", "cli", "--version"], capture_output=True, text=True,
                        cwd=tmp_path, timeout=120)
    assert (ok.returncode, ok.stdout) == (0, f"market {version('market')}\n")
    bad = subprocess.run([sys.executable, "-m", "cli", "watch", str(tmp_path)], capture_output=True,
                         text=True, cwd=tmp_path, timeout=120)
    assert bad.returncode == 2
    assert "not a run folder" in bad.stderr
