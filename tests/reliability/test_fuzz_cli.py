"""Bad input through the command line (docs/reliability.md#bad-input): random argv for every command, the
policy YAML, invitation files, plan files. Every run is `cli.main` in process against the emulator.

Properties: a documented exit code (never 70, never a traceback); a rejection (exit 2 or 3) is one `error:`
line that does not echo a long input whole, and changes neither the tenant nor the store.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml
from hypothesis import given
from hypothesis import strategies as st

from emulator.testing import EmulatorServer
from shared import cli
from shared.config import Policy
from tests.reliability.figures import Figures
from tests.reliability.fuzzing import (
    ODD,
    Fuzz,
    Ran,
    cli_problems,
    csv_files,
    encoded,
    fuzz_settings,
    json_lines_files,
    mutated,
    near_valid_json,
    random_bytes,
    run_cli,
    store_digest,
    tenant_mark,
)
from tests.support.cli import ROOT, emulator_settings, guestctl_env
from tests.support.partners import FABRIKAM, partner_tenant
from tests.support.stale import NOW

GUEST = "a" * 8 + "-0000-4000-8000-000000000001"
POLICY: dict[str, Any] = {"safety": {"max_actions": 10_000, "max_percent": 100}}
# Long-running by design (a server, the whole demo): not for hundreds of examples (docs/reliability.md).
SKIPPED_COMMANDS = {("emulator",), ("demo",)}
# typer's shell-completion installers edit the person's shell profile: never run them from a test.
SKIPPED_OPTIONS = {"--install-completion", "--show-completion"}


@pytest.fixture
def folder(emulator: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """guestctl's settings pointed at the emulator, its state, policy and files in tmp_path (the cwd)."""
    for name in [n for n in os.environ if n.startswith("GUESTCTL_") and not n.startswith("GUESTCTL_RELIABILITY_")]:
        monkeypatch.delenv(name)
    settings = {**emulator_settings(emulator, tmp_path, tmp_path / "policy.yaml"), "GUESTCTL_RETRY_BUDGET_SECONDS": "5"}
    for name, value in guestctl_env(settings).items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(POLICY))
    (tmp_path / "invitations.csv").write_bytes((ROOT / "examples" / "invitations.csv").read_bytes())
    (tmp_path / "garbage.bin").write_bytes(b"\x00\xff{[\n" * 100)
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "a folder").mkdir()
    return tmp_path


def check(fuzz: Fuzz, emulator: EmulatorServer, state: Path, argv: list[str], files: dict[str, Any]) -> Ran:
    """Run `argv`; record what is wrong with how it ended and, for a rejection, whether anything changed."""
    tenant, store = tenant_mark(emulator), store_digest(state)
    fuzz.examples += 1
    ran = run_cli(argv)
    example = {"argv": argv, **files, "exit": ran.code}
    for problem in cli_problems(ran, [*argv, *(v for v in files.values() if isinstance(v, str))]):
        fuzz.violation(problem, example)
    if ran.code in (2, 3):
        if tenant_mark(emulator) != tenant:
            fuzz.violation("the tenant changed on a rejection", example)
        if store_digest(state) != store:
            fuzz.violation("the store changed on a rejection", example)
    return ran


# ---- random argv for every command -------------------------------------------------------------------------


def _commands() -> list[tuple[tuple[str, ...], list[Any]]]:
    """Every guestctl command (path, parameters), read from the app itself so a new command is fuzzed too."""
    found = []

    def walk(group: Any, path: tuple[str, ...]) -> None:
        for name, command in sorted(getattr(group, "commands", {}).items()):
            if hasattr(command, "commands"):  # a group (typer carries its own copy of click)
                walk(command, (*path, name))
            elif (*path, name) not in SKIPPED_COMMANDS:
                found.append(((*path, name), list(command.params)))

    walk(typer.main.get_command(cli.app), ())
    return found


COMMANDS = _commands()
ROOT_OPTIONS = [p for p in typer.main.get_command(cli.app).params if not set(p.opts) & SKIPPED_OPTIONS]
# Values a person could give each option, beside ODD ones. Endpoints, credentials and state stores are kept
# local: a real cloud login or a remote store would make each example wait for a network.
PLAUSIBLE: dict[str, list[str]] = {
    "--cloud": ["global", "usgov", "china", "mars"],
    "--graph-url": ["http://example.com/v1.0", "ftp://127.0.0.1/v1.0", "not a url", "https://"],
    "--auth": ["emulator", "nonsense"],
    "--tenant-id": [GUEST, "contoso.onmicrosoft.com", "not-a-guid"],
    "--client-id": [GUEST, "x"],
    "--state": ["state.db", "a folder", "garbage.bin/state.db", "garbage.bin", "nope/deeper/state.db"],
    "--policy": ["policy.yaml", "missing.yaml", "garbage.bin", "a folder", "empty.txt"],
    "--out": ["out.json", "out.csv", "a folder", "garbage.bin/out.json", "missing/out.json", "out.md"],
    "--plan": ["plan.json", "garbage.bin", "missing.json", "a folder", "empty.txt"],
    "--ids": ["garbage.bin", "missing.json", "empty.txt"],
    "--headers": ["garbage.bin", "missing.txt"],
    "--header": ["webhook-id: msg_1", "no colon", ": empty name"],
    "--until": ["2030-01-01", "2020-01-01", "tomorrow", "31/12/2030"],
    "--effective": ["2030-01-01", "yesterday", "2026-13-01"],
    "--week": ["2026-W48", "2026-W54", "W48", "2026-48"],
    "--days": ["1", "30", "31", "0", "-3", "seven"],
    "--min-guests": ["1", "0", "many"],
    "--timestamp": ["0", "1767225600", "-5", "soon"],
    "--secret": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_!!!", "short"],
    "--run": ["retire-0123456789abcdef", "partners-0123", "offboard-x", "sweep-1"],
    "--user": [GUEST, "ann@contoso.com"],
    "--users": ["all", "none", "some"],
    "--group": [GUEST, "Finance"],
    "--resource-tenant": [GUEST, "not-a-guid"],
    "--capability": ["invitations", "partners", "unknown"],
    "--batch": ["b-1", ""],
    "--batch-id": ["b-1"],
    "--id": ["msg_1", GUEST],
    "--curl": ["http://127.0.0.1:9/api/hr/events", "not a url"],
    "--by": ["ann"],
    "--tenant": ["fabrikam.com", GUEST],
    "file": ["invitations.csv", "garbage.bin", "empty.txt", "missing.csv", "a folder"],
    "worker": ["ann@contoso.com", GUEST, "status", "list"],
    "rest": [GUEST, "extra"],
    "guest": [GUEST, "ann@contoso.com"],
    "tenant": [GUEST, "fabrikam.com"],
}
UNKNOWN = st.sampled_from(["--nope", "-x", "--json=1", "--apply=yes", "--", "-", "---", "--=", "-vvvvv"])


def _value(param: Any) -> st.SearchStrategy[str]:
    name = param.opts[0] if param.param_type_name == "option" else (param.name or "")
    return st.sampled_from(PLAUSIBLE.get(name, ["1"])) | ODD


@st.composite
def argvs(draw: st.DrawFn) -> list[str]:
    """A command with some of its options (and some of guestctl's), values plausible or odd, extras unknown."""
    path, params = draw(st.sampled_from(COMMANDS))
    argv: list[str] = []
    for option in draw(st.lists(st.sampled_from(ROOT_OPTIONS), max_size=2, unique_by=lambda p: p.opts[0])):
        argv += [option.opts[0]] if getattr(option, "is_flag", False) else [option.opts[0], draw(_value(option))]
    argv += list(path)
    for param in params:
        if param.param_type_name == "argument":
            if draw(st.integers(0, 9)):  # mostly present: a missing argument is one kind of usage error
                argv.append(draw(_value(param)))
        elif draw(st.booleans()):
            flag = getattr(param, "is_flag", False) or getattr(param, "count", False)
            argv += [param.opts[0]] if flag else [param.opts[0], draw(_value(param))]
    if draw(st.integers(0, 3)) == 0:
        argv.insert(draw(st.integers(0, len(argv))), draw(UNKNOWN | ODD))
    return argv


def test_random_argv_for_every_command(emulator: EmulatorServer, folder: Path, figures: Figures) -> None:
    fuzz = Fuzz("cli")

    @fuzz_settings(short=20, full=600)
    @given(argv=argvs())
    def run(argv: list[str]) -> None:
        check(fuzz, emulator, folder / "state.db", argv, {})

    run()
    fuzz.report(figures)


# ---- the policy YAML -----------------------------------------------------------------------------------------

FULL_POLICY = Policy().model_dump(mode="json")  # every key guestctl reads, at its default


@st.composite
def policies(draw: st.DrawFn) -> bytes:
    """The whole policy with one field removed, retyped or odd; YAML-specific breakage; or random bytes."""
    how = draw(st.sampled_from(["mutated", "mutated", "mutated", "yaml", "random"]))
    if how == "random":
        return draw(random_bytes)
    text = yaml.safe_dump(draw(mutated(FULL_POLICY)), allow_unicode=True)
    if how == "yaml":
        text = draw(
            st.sampled_from(
                [
                    text.replace("  ", "\t", 1),
                    text + "stale: {inactive_days: 1}\n",  # a duplicate key
                    "--- !!python/object/apply:os.system ['true']\n",
                    "a: &a [*a]\n",
                    "stale:\n  inactive_days: " + "9" * 5000 + "\n",
                    "- a list\n- not a mapping\n",
                    "? [complex, key]\n: 1\n",
                    "stale: !!binary aGVsbG8=\n",
                    "%YAML 9.9\n---\nversion: 1\n",
                    text + "...\n---\nversion: 2\n",
                ]
            )
        )
    return draw(encoded(text))


def test_policy_yaml_for_every_command_that_loads_it(emulator: EmulatorServer, folder: Path, figures: Figures) -> None:
    fuzz = Fuzz("policy")
    readers = [["config", "check"], ["config", "check", "--json"], ["redemptions"], ["attest", "list"]]

    @fuzz_settings(short=12, full=400)
    @given(policy=policies(), reader=st.sampled_from(readers))
    def run(policy: bytes, reader: list[str]) -> None:
        (folder / "fuzzed.yaml").write_bytes(policy)
        ran = check(fuzz, emulator, folder / "state.db", ["--policy", "fuzzed.yaml", *reader], {"policy": policy})
        if ran.code == 2 and "fuzzed.yaml" not in ran.err:
            fuzz.violation("a policy rejection that does not name the file", {"policy": policy, "err": ran.err})

    run()
    fuzz.report(figures)


# ---- invitation files ------------------------------------------------------------------------------------------


def test_invitation_files(emulator: EmulatorServer, folder: Path, figures: Figures) -> None:
    fuzz = Fuzz("invitations")

    @fuzz_settings(short=10, full=300)
    @given(
        kind=st.sampled_from(["csv", "jsonl"]).flatmap(
            lambda kind: st.tuples(st.just(kind), csv_files() if kind == "csv" else json_lines_files())
        ),
        apply=st.integers(0, 4),
    )
    def run(kind: tuple[str, bytes], apply: int) -> None:
        suffix, content = kind
        (folder / f"fuzzed.{suffix}").write_bytes(content)
        argv = ["invite", f"fuzzed.{suffix}", *(["--apply"] if apply == 0 else []), "--json"]
        ran = check(fuzz, emulator, folder / "state.db", argv, {"file": content})
        if ran.code == 2 and f"fuzzed.{suffix}" not in ran.err:
            fuzz.violation("a file rejection that does not name the file", {"file": content, "err": ran.err})

    run()
    fuzz.report(figures)


# ---- plan files ---------------------------------------------------------------------------------------------------


def test_sweep_plan_files(emulator: EmulatorServer, folder: Path, figures: Figures) -> None:
    written = run_cli(["sweep", "--out", "plan.json"])
    assert written.code == 0, written.err
    plan = json.loads((folder / "plan.json").read_text())
    fuzz = Fuzz("sweep")

    @fuzz_settings(short=8, full=300)
    @given(content=near_valid_json(plan))
    def run(content: bytes) -> None:
        (folder / "fuzzed.json").write_bytes(content)
        check(fuzz, emulator, folder / "state.db", ["sweep", "--apply", "--plan", "fuzzed.json"], {"plan": content})

    run()
    fuzz.report(figures)


PARTNERS_POLICY = {
    "partners": {
        "tenants": [
            {"tenant": FABRIKAM, "name": "Fabrikam", "inbound": {"users": "all"}, "channels": {"Project X": "PX"}}
        ]
    },
    "safety": {"max_actions": 50, "max_percent": 100},
}


def test_partners_plan_files(emulator: EmulatorServer, folder: Path, figures: Figures) -> None:
    """The trust plan (`partners plan --out` → `partners apply --plan`) and the retirement plan
    (`partners retire --plan` → `partners retire --apply --plan`), each written by guestctl, then changed."""
    emulator.reset(partner_tenant(NOW).tenant)
    (folder / "policy.yaml").write_text(yaml.safe_dump(PARTNERS_POLICY))
    plans = {}
    for name, write, apply in (
        ("trust", ["partners", "plan", "--out", "trust.json"], ["partners", "apply", "--plan"]),
        ("retire", ["partners", "retire", "--plan", "retire.json"], ["partners", "retire", "--apply", "--plan"]),
    ):
        written = run_cli(write)
        assert written.code == 0, written.err
        plans[name] = (json.loads((folder / f"{name}.json").read_text()), apply)
    fuzz = Fuzz("partners")

    @fuzz_settings(short=8, full=300)
    @given(data=st.data(), which=st.sampled_from(sorted(plans)))
    def run(data: st.DataObject, which: str) -> None:
        plan, apply = plans[which]
        content = data.draw(near_valid_json(plan))
        (folder / "fuzzed.json").write_bytes(content)
        check(fuzz, emulator, folder / "state.db", [*apply, "fuzzed.json"], {"plan": content})

    run()
    fuzz.report(figures)
