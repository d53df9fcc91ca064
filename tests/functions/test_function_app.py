"""The Functions app as the host sees it: indexing, bindings, cold-start imports, adapters."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import azure.functions as func
import pytest

from tests.support.functions import bindings, http_bindings, timer_schedules

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("msgraph", "azure.identity", "kiota", "pydantic", "shared.graph", "shared.store")


def test_app_indexes_the_expected_functions(functions: dict) -> None:
    assert set(functions) == {
        "health",
        "submit_invitation_batch",
        "invitation_batch_status",
        "invite_rows",
        "invitation_file_dropped",
        "stale_sweep",
        "continue_stale_sweep",
        "approve_sweep",
        "sweep_status",
        "graph_notifications",
        "graph_lifecycle",
        "graph_notifications_worker",
        "renew_subscriptions",
        "delta_sync",
        "send_reminders",
        "partner_discovery",
        "partner_verification",
        "apply_partner_retirement",
        "approve_partner_plan",
        "hr_events",
        "hr_adapter",
        "hr_event_status",
        "hr_events_requeue",
        "hr_events_worker",
        "hr_events_due",
        "weekly_report",
        "attest_page",
        "attest_confirm",
    }


def test_every_timer_and_queue_worker_asks_about_the_pause_first(functions: dict) -> None:
    """GUESTCTL_PAUSED is one setting for everything (docs/operations.md#pause-everything): a new timer or queue
    worker that forgot it would keep changing the tenant while the app is paused."""
    import ast
    import inspect
    import textwrap

    first_calls = {}
    for name, builder in functions.items():
        trigger = json.loads(builder.get_function_json())["bindings"]
        if not {b["type"] for b in trigger} & {"timerTrigger", "queueTrigger"}:
            continue
        body = ast.parse(textwrap.dedent(inspect.getsource(builder.get_user_function()))).body[0].body
        statements = [
            node for node in body if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))
        ]
        calls = [n.func.id for n in ast.walk(statements[0]) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
        first_calls[name] = calls[:1]
    assert len(first_calls) == 14
    assert {name: calls for name, calls in first_calls.items() if calls not in (["skip_timer"], ["hold_message"])} == {}


def test_health_binding(functions: dict) -> None:
    assert bindings(functions, "health") == [
        *http_bindings("GET", "health"),
    ]


def test_importing_function_app_stays_light() -> None:
    """Graph webhooks must be answered within seconds of a cold start (docs/graph-contract.md#change-notifications)."""
    code = "import sys, function_app; print('\\n'.join(sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    heavy = sorted({m for m in loaded if m.startswith(HEAVY)})
    assert heavy == []


def call_health(functions: dict, monkeypatch: pytest.MonkeyPatch, **env: str) -> func.HttpResponse:
    """GET /api/health with these app settings, on top of the timer's schedule (a deployment sets it)."""
    for name, value in {**timer_schedules(), **env}.items():
        monkeypatch.setenv(name, value)
    request = func.HttpRequest(method="GET", url="/api/health", body=b"", headers={})
    return functions["health"].get_user_function()(request)


def test_health_answers_with_version_and_policy_digest(functions: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    response = call_health(functions, monkeypatch, GUESTCTL_POLICY=str(ROOT / "examples" / "policy.yaml"))
    body = json.loads(response.get_body())
    assert response.status_code == 200
    assert body["status"] == "ok"
    assert body["policy_digest"].startswith("sha256:")
    assert body["paused"] is False


def test_health_says_when_the_app_is_paused_and_names_a_value_that_is_not_a_boolean(
    functions: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert json.loads(call_health(functions, monkeypatch, GUESTCTL_PAUSED="true").get_body())["paused"] is True
    response = call_health(functions, monkeypatch, GUESTCTL_PAUSED="maybe")
    assert response.status_code == 400
    assert "GUESTCTL_PAUSED: input should be a valid boolean" in json.loads(response.get_body())["error"]


def test_health_reports_a_bad_policy_as_400_with_the_reason(
    functions: dict, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("safety:\n  max_percent: 500\n")
    response = call_health(functions, monkeypatch, GUESTCTL_POLICY=str(policy))
    assert response.status_code == 400
    assert "safety.max_percent: input should be less than or equal to 100" in json.loads(response.get_body())["error"]


@pytest.mark.parametrize(
    ("setting", "value", "reason"),
    [
        ("GUESTCTL_SWEEP_MODE", "aply", "GUESTCTL_SWEEP_MODE: input should be 'plan' or 'apply'"),
        ("GUESTCTL_SWEEP_TIME_BUDGET", "ten minutes", "GUESTCTL_SWEEP_TIME_BUDGET: input should be a valid number"),
        ("GUESTCTL_SWEEP_TIME_BUDGET", "900", "GUESTCTL_SWEEP_TIME_BUDGET: input should be less than or equal to 540"),
        ("GUESTCTL_SWEEP_TIME_BUDGET", "nan", "GUESTCTL_SWEEP_TIME_BUDGET"),
        ("GUESTCTL_SWEEP_SCHEDULE", "a b c d e f", "GUESTCTL_SWEEP_SCHEDULE: second field: 'a'"),
        ("GUESTCTL_SWEEP_SCHEDULE", "0 0 6 * *", "GUESTCTL_SWEEP_SCHEDULE: must be a six-field NCRONTAB expression"),
    ],
)
def test_health_reports_sweep_settings_that_would_mean_something_else(
    functions: dict, monkeypatch: pytest.MonkeyPatch, setting: str, value: str, reason: str
) -> None:
    response = call_health(functions, monkeypatch, **{setting: value})
    assert response.status_code == 400
    assert reason in json.loads(response.get_body())["error"]


def test_health_reports_attestation_and_refuses_a_secret_it_cannot_use(
    functions: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = str(ROOT / "examples" / "policy.yaml")
    monkeypatch.delenv("GUESTCTL_ATTESTATION_URL", raising=False)
    assert json.loads(call_health(functions, monkeypatch, GUESTCTL_POLICY=policy).get_body())["attestation"] == "off"

    reference = "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/attest/)"
    url = {"GUESTCTL_POLICY": policy, "GUESTCTL_ATTESTATION_URL": "https://guestctl.example.net"}
    for secret, line in [
        (reference, "GUESTCTL_ATTESTATION_SECRET is an unresolved Key Vault reference"),
        ("short", "GUESTCTL_ATTESTATION_SECRET is 5 characters; at least 32 are needed"),
    ]:
        response = call_health(functions, monkeypatch, **url, GUESTCTL_ATTESTATION_SECRET=secret)
        assert response.status_code == 503
        error = json.loads(response.get_body())["error"]
        assert error.startswith(line)
        assert secret not in error

    response = call_health(functions, monkeypatch, **url, GUESTCTL_ATTESTATION_SECRET="s" * 40)
    assert (response.status_code, json.loads(response.get_body())["attestation"]) == (200, "ready")


def test_health_reports_a_missing_timer_schedule(functions: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GUESTCTL_SWEEP_SCHEDULE", raising=False)
    request = func.HttpRequest(method="GET", url="/api/health", body=b"", headers={})
    response = functions["health"].get_user_function()(request)
    assert response.status_code == 400
    assert "GUESTCTL_SWEEP_SCHEDULE: not set" in json.loads(response.get_body())["error"]


@pytest.mark.parametrize("missing", ["GUESTCTL_REPORT_SCHEDULE", "GUESTCTL_PARTNER_VERIFICATION_SCHEDULE"])
def test_health_reports_any_missing_schedule(functions: dict, monkeypatch: pytest.MonkeyPatch, missing: str) -> None:
    for name, value in timer_schedules().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv(missing, raising=False)
    request = func.HttpRequest(method="GET", url="/api/health", body=b"", headers={})
    response = functions["health"].get_user_function()(request)
    assert response.status_code == 400
    assert f"{missing}: not set" in json.loads(response.get_body())["error"]


def test_every_timer_schedule_is_a_setting_the_host_resolves(functions: dict) -> None:
    """No timer has a constant schedule: each is a %GUESTCTL_…_SCHEDULE% app setting with a Settings default."""
    schedules = {
        name: binding["schedule"]
        for name in functions
        for binding in bindings(functions, name)
        if binding["type"] == "timerTrigger"
    }
    assert len(schedules) == 9
    assert sorted(set(schedules.values())) == sorted(f"%{name}%" for name in timer_schedules())


def test_weekly_report_bindings(functions: dict) -> None:
    found = {b["name"]: b for b in bindings(functions, "weekly_report")}
    assert found["timer"]["schedule"] == "%GUESTCTL_REPORT_SCHEDULE%"
    for name, file in (("html", "report.html"), ("csv", "report.csv"), ("data", "report.json")):
        assert found[name]["type"] == "blob"
        assert found[name]["direction"] == "OUT"
        assert found[name]["path"] == f"reports/{{DateTime:yyyy-MM-dd}}/{file}"
        assert found[name]["connection"] == "AzureWebJobsStorage"


def test_host_json() -> None:
    host = json.loads((ROOT / "host.json").read_text())
    assert host["version"] == "2.0"
    assert host["telemetryMode"] == "OpenTelemetry", "the worker exports logs with their run ids as attributes"
    assert host["extensionBundle"] == {"id": "Microsoft.Azure.Functions.ExtensionBundle", "version": "[4.*, 5.0.0)"}
    assert host["functionTimeout"] == "00:10:00"
    queues = host["extensions"]["queues"]
    assert queues["maxDequeueCount"] == 5, "after 5 failures a message goes to <queue>-poison, never dropped"
