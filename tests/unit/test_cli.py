"""`guestctl` as a person runs it: a real process, its exit code, its output, and what it writes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from shared import __version__, cli
from shared.errors import Interrupted
from tests.support.cli import ROOT, run_guestctl


def files_under(folder: Path) -> set[Path]:
    return {p.relative_to(folder) for p in folder.rglob("*")}


def test_version(tmp_path: Path) -> None:
    result = run_guestctl("--version", cwd=tmp_path)
    assert (result.returncode, result.stdout.strip()) == (0, f"guestctl {__version__}")


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        pytest.param("stale:\n  inactiv_days: 30\n", "stale.inactiv_days: unknown key", id="unknown-key"),
        pytest.param("stale:\n  inactive_days: -5\n", "stale.inactive_days: input should be greater", id="negative"),
        pytest.param("stale:\n  inactive_days: 30\n   x: 1\n", "policy.yaml:3:5: invalid YAML", id="bad-indent"),
    ],
)
def test_bad_policy_exits_2_with_one_line_and_writes_nothing(tmp_path: Path, policy: str, expected: str) -> None:
    (tmp_path / "policy.yaml").write_text(policy)
    before = files_under(tmp_path)
    result = run_guestctl("--policy", "policy.yaml", "config", "check", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: policy.yaml:")
    assert expected in lines[0]
    assert "Traceback" not in result.stderr
    assert files_under(tmp_path) == before


def test_bad_policy_with_json_reports_the_error_as_json(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text("nope: 1\n")
    result = run_guestctl("config", "check", "--json", cwd=tmp_path, env={"GUESTCTL_POLICY": "policy.yaml"})
    assert result.returncode == 2
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert report["exit_code"] == 2
    assert "nope: unknown key" in report["error"]


def test_config_check_prints_effective_configuration_with_secrets_redacted(tmp_path: Path) -> None:
    secret = "c2VjcmV0LWtleQ=="
    env = {
        "GUESTCTL_STATE": f"DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={secret}",
        "GUESTCTL_TENANT_SIZE": "M",
    }
    result = run_guestctl("--cloud", "usgov", "config", "check", "--json", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert secret not in result.stdout
    assert report["settings"]["state"].endswith("AccountKey=<redacted>")
    assert report["state_store"].startswith("Azure Table Storage")
    assert (report["settings"]["cloud"], report["sources"]["cloud"]) == ("usgov", "flag")
    assert (report["settings"]["tenant_size"], report["sources"]["tenant_size"]) == ("M", "environment")
    assert report["sources"]["auth"] == "default"
    assert report["policy"]["stale"]["inactive_days"] == 90
    assert report["policy_digest"].startswith("sha256:")
    assert files_under(tmp_path) == set()


def test_config_check_table_output(tmp_path: Path) -> None:
    result = run_guestctl("--policy", str(ROOT / "examples" / "policy.yaml"), "config", "check", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "GUESTCTL_CLOUD" in result.stdout
    assert "stale.inactive_days" in result.stdout
    assert "settings and policy are valid" in result.stdout


@pytest.mark.parametrize("as_json", [False, True], ids=["table", "json"])
def test_config_check_hides_a_password_in_the_graph_url(tmp_path: Path, as_json: bool) -> None:
    env = {"GUESTCTL_GRAPH_URL": "http://ann:s3cret-pw@127.0.0.1:8765/v1.0", "GUESTCTL_AUTH": "emulator"}
    result = run_guestctl("config", "check", *(["--json"] if as_json else []), cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "s3cret-pw" not in result.stdout + result.stderr
    assert "http://ann:<redacted>@127.0.0.1:8765/v1.0" in result.stdout
    if as_json:
        assert json.loads(result.stdout)["settings"]["graph_url"] == "http://ann:<redacted>@127.0.0.1:8765/v1.0"


# 10 values, then 100, 1,000 and 10,000 through aliases: in a file of 150 bytes
ALIAS_BOMB = "a: &a [1,1,1,1,1,1,1,1,1,1]\n" + "".join(
    f"{name}: &{name} [{','.join([f'*{prev}'] * 10)}]\n" for prev, name in zip("abc", "bcd", strict=True)
)


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        pytest.param("stale:\n  inactive_days: yes\n", "expected an integer number of days, got a boolean", id="yes"),
        pytest.param(
            ALIAS_BOMB,
            "refused: more than 10000 values",
            id="alias-bomb",
        ),
        pytest.param("schedules:\n  sweep: a b c d e f\n", "schedules.sweep: second field: 'a'", id="bad-schedule"),
    ],
)
def test_hostile_or_mistyped_policy_exits_2_with_one_line(tmp_path: Path, policy: str, expected: str) -> None:
    (tmp_path / "policy.yaml").write_text(policy)
    result = run_guestctl("--policy", "policy.yaml", "config", "check", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]


def test_emulator_auth_against_real_graph_is_refused(tmp_path: Path) -> None:
    result = run_guestctl("--auth", "emulator", "config", "check", cwd=tmp_path)
    assert result.returncode == 2
    assert "GUESTCTL_AUTH=emulator" in result.stderr


def test_unknown_flag_is_a_usage_error(tmp_path: Path) -> None:
    result = run_guestctl("--bogus", cwd=tmp_path)
    assert result.returncode == 2
    assert "No such option" in result.stderr


def test_sweep_without_a_tenant_id_is_refused_before_anything_happens(tmp_path: Path) -> None:
    result = run_guestctl("sweep", cwd=tmp_path, env={"GUESTCTL_STATE": str(tmp_path / "state.db")})
    assert result.returncode == 2
    assert "GUESTCTL_TENANT_ID is not set: stale-guest plans are tied to one tenant" in result.stderr
    assert files_under(tmp_path) == set(), "no state store was created"


@pytest.mark.parametrize(
    ("raised", "code", "line"),
    [
        pytest.param(
            Interrupted("interrupted while planning: the scan so far is kept"),
            130,
            "error: interrupted while planning: the scan so far is kept",
            id="interrupted-by-a-command-that-says-what-it-kept",
        ),
        pytest.param(
            KeyboardInterrupt(),
            130,
            "error: interrupted — what was done so far is kept; run the command again to continue",
            id="ctrl-c",
        ),
        pytest.param(
            PermissionError(13, "Permission denied", "results.csv"),
            2,
            "error: results.csv: Permission denied — check the path and its permissions",
            id="a-file-of-the-persons",
        ),
        pytest.param(
            RuntimeError("x" * 100_000),
            70,
            "error: unexpected RuntimeError: " + "x" * 299 + "… — this is a bug in guestctl; "
            "run again with -vv for the traceback and report it",
            id="a-bug",
        ),
    ],
)
def test_main_turns_what_escapes_a_command_into_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], raised: BaseException, code: int, line: str
) -> None:
    """The last line of defence, in-process: the command is replaced by one that raises."""

    def command(**_: object) -> None:
        raise raised

    monkeypatch.setattr(cli, "app", command)
    monkeypatch.setattr("sys.argv", ["guestctl", "invite", "in.csv"])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    captured = capsys.readouterr()
    assert exited.value.code == code
    assert captured.err.splitlines() == [line]
    assert captured.out == ""


@pytest.mark.parametrize(
    ("args", "line"),
    [
        pytest.param(
            ["partners", "retire", "--apply", "--plan", "bin.json"],
            "error: bin.json: cannot read the plan: not UTF-8 text — "
            "give a file `guestctl partners retire --plan FILE` wrote",
            id="retire-plan",  # was exit 70: only OSError was caught
        ),
        pytest.param(
            ["partners", "migrate", "--ids", "bin.json"],
            "error: bin.json: cannot read the id file: not UTF-8 text — "
            "give a file `guestctl partners accept --out` wrote",
            id="migrate-ids",
        ),
        pytest.param(
            ["partners", "apply", "--plan", "missing.json"],
            "error: missing.json: cannot read the plan: No such file or directory",
            id="apply-missing-plan",  # the path once, not again inside Python's error text
        ),
    ],
)
def test_a_partners_file_that_cannot_be_read_as_text_is_bad_input(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], line: str
) -> None:
    """In-process: the file is read before any setting is used, so nothing reaches Graph or the store."""
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("GUESTCTL_")]:
        monkeypatch.delenv(name)
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00{}")
    monkeypatch.setattr("sys.argv", ["guestctl", *args])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines() == [line]
    assert files_under(tmp_path) == {Path("bin.json")}


def test_a_retirement_plan_with_nothing_to_do_is_one_line_not_an_empty_table(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from shared.cli_partners_verify import _print_retirement

    plan = {"plan_id": "be9edb17c7db4b11", "run_id": "retire-be9edb17c7db4b11", "actions": [], "results": []}
    shown = {
        **plan,
        "applied": False,
        "candidates": 16,
        "kept": {"holds a directory role": 2},
        "notes": [],
        "refused": None,
    }
    _print_retirement(shown, None)
    assert " ".join(capsys.readouterr().out.split()) == (  # as words: the console wraps at its width
        "Retirement plan be9edb17c7db4b11 (run id retire-be9edb17c7db4b11): no guest account to retire now "
        "16 guests of named partners; kept: holds a directory role: 2"
    )
