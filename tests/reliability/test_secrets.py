"""Secrets and privacy (docs/reliability.md#secrets-and-privacy): every capability runs once with known secrets
planted; everything guestctl writes is scanned for them and for the shapes of secrets → zero findings.

Planted: a client secret (AZURE_CLIENT_SECRET; the emulator's auth never reads it, guestctl must never print it),
the notification clientState, HR webhook secrets (native and BambooHR), the attestation secret and a function
key in the notification URL. Seen during the run and added to the search: the Graph bearer tokens in use, the
HR deliveries' signatures, the attestation tokens of the sponsor notices and every invitation's redeem URL.
Scanned: the CLI's stdout and stderr at -vv, every file it wrote (plans, reports, result CSVs, SQLite stores:
every row, compressed texts unpacked), the root logger at DEBUG while the functions run, their HTTP answers and
queue messages.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import io
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import azure.functions as func
import httpx
import pytest

from emulator.routes.invitations import redeem_url
from emulator.seed import seed_tenant
from emulator.testing import EmulatorServer, WebhookReceiver
from shared.credentials import emulator_token_for
from shared.offboarding.signatures import sign
from tests.reliability.figures import Figures, profile
from tests.reliability.leaks import Artifact, Finding, files, scan
from tests.support.cli import GUESTCTL, emulator_settings, guestctl_env
from tests.support.functions import CapturedOut
from tests.support.partners import DIRECT_CONNECT_INBOUND, FABRIKAM, partner_tenant

PLANTED = {
    "client secret": "planted~ClientSecret.0123456789abcdefXYZ",
    "notification clientState": "planted-client-state-5f0b7c1e9a2d",
    "HR webhook secret": "whsec_" + base64.b64encode(b"planted-hr-webhook-secret-32byte").decode(),
    "HR webhook secret (next)": "whsec_" + base64.b64encode(b"planted-next-hr-webhook-secret!!").decode(),
    "BambooHR secret": "planted-bamboohr-key-7d3e91c4",
    "attestation secret": "planted-attestation-secret-0123456789abcdef",
    "function key": "planted-function-key-00aa11bb22",
}
EMULATOR_TOKEN = "emulator-token"  # GraphOptions' static token for the loopback emulator (shared/graph/client.py)
BASE = "https://guestctl.example.net"
SIZES = {"short": (40, 3), "full": (400, 30)}  # guests in the tenant, invitations


def secret_settings(receiver: WebhookReceiver) -> dict[str, str]:
    return {
        "AZURE_TENANT_ID": "84bd8158-6d4d-4958-8b9f-9d6445542f95",
        "AZURE_CLIENT_ID": "0f6f3b0e-1111-4222-8333-444455556666",
        "AZURE_CLIENT_SECRET": PLANTED["client secret"],
        "GUESTCTL_NOTIFICATION_SECRET": PLANTED["notification clientState"],
        "GUESTCTL_NOTIFICATION_URL": f"{receiver.url}?code={PLANTED['function key']}",
        "GUESTCTL_HR_WEBHOOK_SECRETS": f"{PLANTED['HR webhook secret']} {PLANTED['HR webhook secret (next)']}",
        "GUESTCTL_HR_BAMBOOHR_SECRETS": PLANTED["BambooHR secret"],
        "GUESTCTL_ATTESTATION_SECRET": PLANTED["attestation secret"],
        "GUESTCTL_ATTESTATION_URL": BASE,
        "GUESTCTL_SWEEP_SCHEDULE": "0 0 6 * * 1",
        "GUESTCTL_REPORT_SCHEDULE": "0 0 7 * * 1",
    }


class Run:
    """What one scene wrote (artifacts) and the secret values seen while it ran (beyond the planted ones)."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder = folder
        self.env = env
        self.artifacts: list[Artifact] = []
        self.seen: dict[str, set[str]] = {}

    def secret(self, kind: str, value: str) -> str:
        self.seen.setdefault(kind, set()).add(value)
        return value

    def guestctl(self, *args: str, state: str, ok: tuple[int, ...] = (0,)) -> tuple[int, str, str]:
        """guestctl -vv in the scene's folder with its own state file: a child process (full profile), or
        shared.cli.main in this process (short: the same code without a second of imports per command)."""
        env = {**self.env, "GUESTCTL_STATE": str(self.folder / state)}
        if profile() == "full":
            result = subprocess.run(
                [*GUESTCTL, "-vv", *args],
                cwd=self.folder,
                env=guestctl_env(env),
                capture_output=True,
                text=True,
                timeout=120,
            )
            code, out, err = result.returncode, result.stdout, result.stderr
        else:
            code, out, err = in_process(["-vv", *args], self.folder, env)
        name = "guestctl " + " ".join(args)
        self.artifacts += [Artifact(f"{name} (stdout)", out), Artifact(f"{name} (stderr)", err)]
        assert code in ok, f"{name} exited {code}: {err[-2000:]}"
        return code, out, err

    def chains(self, *chains: list[tuple[str, ...]], state: str) -> None:
        """Independent command chains (each its own state file), in parallel when they are child processes;
        each chain's commands in order."""

        def run(number: int, chain: list[tuple[str, ...]]) -> None:
            for args in chain:
                self.guestctl(*args, state=f"{state}-{number}.db")

        with ThreadPoolExecutor(len(chains) if profile() == "full" else 1) as pool:
            for done in [pool.submit(run, n, chain) for n, chain in enumerate(chains)]:
                done.result()

    def answer(self, name: str, response: func.HttpResponse, *, own: str = "") -> func.HttpResponse:
        """An HTTP answer; `own`: the credential the request carried, which the answer may hand back."""
        headers = json.dumps(dict(response.headers))
        body = response.get_body().decode("utf-8", "replace")
        mine = frozenset({own} if own else ())
        self.artifacts.append(Artifact(f"{name} (HTTP {response.status_code})", f"{headers}\n{body}", mine))
        return response

    def queued(self, name: str, out: CapturedOut) -> list[str]:
        values = out.value if isinstance(out.value, list) else [out.value] if out.value else []
        self.artifacts += [Artifact(f"{name} (queue message {n})", str(v)) for n, v in enumerate(values)]
        return [str(v) for v in values]


def in_process(args: list[str], folder: Path, env: dict[str, str]) -> tuple[int, str, str]:
    """`guestctl ARGS` through shared.cli.main in this process: exit code, stdout, stderr. Its logging setup
    (-vv: the root logger to stderr, libraries at warnings) is undone afterwards, as are env and cwd."""
    from shared import cli

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in (*cli.LIBRARY_LOGGERS, "azure.identity")}
    saved_env, saved_argv, saved_cwd = dict(os.environ), sys.argv, os.getcwd()
    out, err = io.StringIO(), io.StringIO()
    os.environ.update(env)
    sys.argv = ["guestctl", *args]
    os.chdir(folder)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                cli.main()
                code = 0
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        os.chdir(saved_cwd)
        sys.argv = saved_argv
        os.environ.clear()
        os.environ.update(saved_env)
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, was in levels.items():
            logging.getLogger(name).setLevel(was)
    return code, out.getvalue(), err.getvalue()


class LogCapture(logging.Handler):
    """Every record of the root logger, formatted with its traceback, while the functions run."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not (record.threadName or "").startswith("uvicorn-"):  # the emulator's and the webhook receiver's threads
            self.lines.append(self.format(record))


@pytest.fixture
def logs() -> Iterator[LogCapture]:
    root = logging.getLogger()
    handler, level = LogCapture(), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver.reset()


# -- the flows -------------------------------------------------------------------------------------------------
def cli_flows(run: Run, emulator: EmulatorServer, invitations: int) -> None:
    """Bulk invite; sweep plan + apply (sponsor notices with attestation links) and the weekly report; sync and
    the notification subscription; offboarding and a kept guest; each chain its own process and state."""
    rows = [f"planted.guest{n}@fabrikam.com,Guest {n},,,,,true" for n in range(invitations)]
    (run.folder / "invites.csv").write_text(
        "email,display_name,redirect_url,groups,sponsors,message,send_email\n" + "\n".join(rows) + "\n"
    )
    leaver = emulator.control.create_user(userType="Guest", mail="leaver@partner.example")["id"]
    kept = next(u for u in emulator.tenant.users.values() if u.userType == "Guest" and u.id != leaver)
    run.chains(
        [
            ("sweep", "--out", "sweep-plan.json"),
            ("sweep", "--apply", "--plan", "sweep-plan.json", "--json"),
            ("report", "--out", "report"),
        ],
        [
            ("invite", "invites.csv", "--apply", "--out", "invite-results.csv"),
            ("sync",),
            ("subscriptions", "ensure"),
        ],
        [
            ("offboard", "leaver@partner.example", "--apply"),
            ("attest", "grant", kept.id, "--until", f"{datetime.now(UTC).year + 1}-01-31", "--by", "Ida Admin"),
        ],
        state="cli",
    )


async def notification_flow(run: Run, emulator: EmulatorServer, receiver: WebhookReceiver, functions: dict) -> None:
    """Graph's deliveries to the subscription `subscriptions ensure` made, through the webhook and its worker; a
    delivery with a wrong clientState; a lifecycle notification."""
    pending = [u for u in emulator.tenant.users.values() if u.externalUserState == "PendingAcceptance"]
    for user in pending[:2]:
        emulator.control.redeem(user.id)
    await asyncio.to_thread(receiver.wait_for, 1)
    bodies = [json.dumps(d["payload"]).encode() for d in receiver.deliveries]
    assert bodies, "Graph delivered no notification to the subscription"
    one = json.loads(bodies[0])["value"][0]
    wrong = {**one, "clientState": "a-wrong-client-state-guess"}
    lifecycle = {k: v for k, v in one.items() if k not in ("resource", "resourceData", "changeType")}
    missed = json.dumps({"value": [{**lifecycle, "lifecycleEvent": "missed"}]}).encode()
    deliveries = [*bodies, json.dumps({"value": [wrong]}).encode()]
    for name, body in [*(("graph_notifications", b) for b in deliveries), ("graph_lifecycle", missed)]:
        queue = CapturedOut()
        request = func.HttpRequest(method="POST", url=f"/api/graph/{name[6:]}", body=body, params={"code": "x"})
        run.answer(name, functions[name].get_user_function()(request, queue))
        for n, text in enumerate(run.queued(name, queue)):
            poison = CapturedOut()
            message = func.QueueMessage(id=f"n{n}", body=text.encode())
            await functions["graph_notifications_worker"].get_user_function()(message, poison)
            run.queued("graph_notifications_worker poison", poison)


async def hr_flow(run: Run, emulator: EmulatorServer, functions: dict) -> None:
    """A signed native event and a BambooHR delivery through the receivers and the worker; a wrong signature."""
    emulator.control.create_user(userType="Guest", mail="hr.leaver@partner.example")
    today = datetime.now(UTC).date().isoformat()
    event = {
        "type": "worker.terminated",
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "data": {
            "source": {"system": "workday", "eventId": "TERM-planted-1"},
            "worker": {"email": "hr.leaver@partner.example"},
            "effectiveDate": today,
            "effectiveTimeZone": "UTC",
        },
    }
    body = json.dumps(event).encode()
    good = sign(PLANTED["HR webhook secret"], "msg_planted1", int(time.time()), body)
    run.secret("HR signature", good["webhook-signature"])
    forged = sign("whsec_" + base64.b64encode(b"x" * 32).decode(), "msg_planted2", int(time.time()), body)
    run.secret("HR signature", forged["webhook-signature"])
    bamboo = (Path(__file__).parents[1] / "unit" / "offboarding" / "fixtures" / "bamboohr.json").read_bytes()
    stamp = str(int(time.time()))
    mac = run.secret(
        "HR signature",
        hmac.new(PLANTED["BambooHR secret"].encode(), bamboo + stamp.encode(), hashlib.sha256).hexdigest(),
    )
    bamboo_headers = {"X-BambooHR-Timestamp": stamp, "X-BambooHR-Signature": mac}
    for name, route, data, headers in (
        ("hr_events", "events", body, good),
        ("hr_events", "events", body, forged),
        ("hr_adapter", "bamboohr", bamboo, bamboo_headers),
        ("hr_adapter", "bamboohr", bamboo, {**bamboo_headers, "X-BambooHR-Signature": "0" * 64}),
    ):
        queue = CapturedOut()
        request = func.HttpRequest(
            method="POST",
            url=f"/api/hr/{route}",
            body=data,
            headers={"Content-Type": "application/json", **headers},
            route_params={"system": route},
        )
        run.answer(f"{name} {route}", await functions[name].get_user_function()(request, queue))
        for n, text in enumerate(run.queued(f"{name} {route}", queue)):
            poison = CapturedOut()
            await functions["hr_events_worker"].get_user_function()(
                func.QueueMessage(id=f"h{n}", body=text.encode()), poison
            )
            run.queued("hr_events_worker poison", poison)


async def attestation_flow(
    run: Run, emulator: EmulatorServer, functions: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sponsor notices' links: GET then POST each token once against the sweep's store; a forged one."""
    monkeypatch.setenv("GUESTCTL_STATE", str(run.folder / "cli-0.db"))  # the sweep chain's store
    tokens = []
    for mail in emulator.control.outbox(kind="mail"):
        for part in mail["body"].split(f"{BASE}/api/attest?token=")[1:]:
            tokens.append(run.secret("attestation token", part[:110]))
    assert tokens, "the sweep sent no sponsor notice with attestation links"
    forged = tokens[0][:-4] + ("AAAA" if not tokens[0].endswith("AAAA") else "BBBB")
    for token in [*tokens[:4], forged]:
        request = func.HttpRequest(method="GET", url="/api/attest", body=b"", params={"token": token})
        # The confirmation page's form posts the same token: the page hands the requester back their own link.
        run.answer("attest_page", await functions["attest_page"].get_user_function()(request), own=token)
        request = func.HttpRequest(
            method="POST",
            url="/api/attest",
            body=f"token={token}".encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        run.answer("attest_confirm", await functions["attest_confirm"].get_user_function()(request))


def partners_flow(run: Run, emulator: EmulatorServer, graph_post: Any) -> None:
    """Partner trust plan and a migration plan read from the partner's tenant with our app's token for it."""
    emulator.reset(partner_tenant(datetime.now(UTC)).tenant)
    graph_post()
    policy = run.folder / "partners-policy.yaml"
    policy.write_text(
        f"partners:\n  tenants:\n    - tenant: {FABRIKAM}\n      name: Fabrikam\n      inbound: {{users: all}}\n"
        '      channels: {"Project X": "Project X Partners"}\n      home_ids: app\n'
    )
    run.env = {**run.env, "GUESTCTL_POLICY": str(policy)}
    run.chains(
        [("partners", "plan", "--out", "partners-plan.json")],
        [("partners", "migrate", "--tenant", FABRIKAM, "--out", "migrate-plan.json")],
        state="partners",
    )


# -- the test --------------------------------------------------------------------------------------------------
async def test_nothing_guestctl_writes_holds_a_secret(
    emulator: EmulatorServer,
    receiver: WebhookReceiver,
    functions: dict,
    logs: LogCapture,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    figures: Figures,
) -> None:
    guests, invitations = SIZES[profile()]
    now = datetime.now(UTC)
    emulator.reset(seed_tenant(21, guests=guests, members=8, now=now))
    sender = next(u for u in emulator.tenant.users.values() if u.userType == "Member" and u.mail)
    (tmp_path / "policy.yaml").write_text(
        f"invitations:\n  sender_mailbox: {sender.userPrincipalName}\n  redirect_url: https://myapps.microsoft.com\n"
        "stale:\n  notify_sponsors: true\nattestation:\n  keep_days: 90\n"
        "safety:\n  max_actions: 1000\n  max_percent: 100\n"
    )
    env = {**emulator_settings(emulator, tmp_path, tmp_path / "policy.yaml"), **secret_settings(receiver)}
    run = Run(tmp_path, env)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    await asyncio.to_thread(cli_flows, run, emulator, invitations)
    graph_side = Artifact("the emulator's request log (Graph's side)", json.dumps(emulator.control.requests()))
    monkeypatch.setenv("GUESTCTL_STATE", str(tmp_path / "functions.db"))
    await notification_flow(run, emulator, receiver, functions)
    await hr_flow(run, emulator, functions)
    await attestation_flow(run, emulator, functions, monkeypatch)
    tenant = emulator.tenant
    for code, record in tenant.invitations.items():
        run.secret("invitation redeem URL", redeem_url(tenant, tenant.users[record["userId"]], code))
        run.secret("invitation redeem ticket", code)
    for mail in emulator.control.outbox(kind="invitation"):
        run.secret("invitation redeem URL", mail["inviteRedeemUrl"])
    assert run.seen.get("invitation redeem URL"), "no invitation was sent"

    def configure_partner() -> None:
        headers = {"Authorization": f"Bearer {EMULATOR_TOKEN}"}
        url = f"{emulator.base_url}/policies/crossTenantAccessPolicy/partners"
        httpx.post(url, json={"tenantId": FABRIKAM, **DIRECT_CONNECT_INBOUND}, headers=headers).raise_for_status()

    await asyncio.to_thread(partners_flow, run, emulator, configure_partner)
    run.secret("Graph bearer token", EMULATOR_TOKEN)
    for tenant_id in {r.get("tenantId") for r in emulator.control.requests()} - {None}:
        run.secret("Graph bearer token", emulator_token_for(tenant_id))

    artifacts = [*run.artifacts, *files(tmp_path), Artifact("root logger at DEBUG", "\n".join(logs.lines))]
    inputs = {"invites.csv", "policy.yaml", "partners-policy.yaml"}  # what the test wrote, not guestctl
    artifacts = [a for a in artifacts if a.name not in inputs]
    secrets = {**{k: [v] for k, v in PLANTED.items()}, **run.seen}
    findings = scan(artifacts, secrets)
    size = sum(len(a.text.encode()) for a in artifacts)
    print(
        f"\nsecrets: {len(artifacts)} artifacts, {size:,} bytes scanned for {sum(map(len, secrets.values()))} "
        f"values of {len(secrets)} kinds and the shapes of secrets: {len(findings)} findings"
    )
    figures.add("secrets", violations=len(findings))
    assert size > 50_000, "too little was captured to mean anything"
    written = {"invite-results.csv", "sweep-plan.json", "partners-plan.json", "migrate-plan.json"}
    written |= {f"report/report.{ext}" for ext in ("html", "csv", "json")}
    assert written <= {a.name for a in artifacts}, written - {a.name for a in artifacts}
    assert any(a.name.startswith("functions.db:audit") for a in artifacts), "no audit row was scanned"
    assert any(" DEBUG " in a.text for a in artifacts if a.name.endswith("(stderr)")), "-vv output not captured"
    # The planted values did travel: Graph received the clientState and the function key (the subscription).
    reached = {f.kind for f in scan([graph_side], secrets)}
    assert {"notification clientState", "function key"} <= reached, reached
    assert findings == [], "\n".join(map(str, findings[:10]))


# -- the scanner can fail ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "kind"),
    [
        pytest.param(f"DEBUG settings: client_secret={PLANTED['client secret']}", "client secret", id="planted"),
        pytest.param(
            f'{{"clientState": "{PLANTED["notification clientState"]}"}}',
            "notification clientState",
            id="planted-in-json",
        ),
        pytest.param("url=https://x/?s=planted%7EClientSecret.0123456789abcdefXYZ", "client secret", id="encoded"),
        pytest.param("GET /v1.0/users Authorization: Bearer eyJ0eXAiOiJKV1Qi.abc", "bearer token", id="bearer"),
        pytest.param("token eyJhbGciOiJub25lIn0.eyJ0aWQiOiJhYmMifQ.", "JWT", id="jwt"),
        pytest.param("redeem https://login.microsoftonline.com/redeem?rd=https%3A%2F%2Finv", "redeem URL", id="redeem"),
        pytest.param("webhook-signature: v1," + "A" * 43 + "=", "webhook signature (v1,base64)", id="v1-signature"),
        pytest.param("X-Signature: sha256=" + "ab" * 32, "HMAC signature (sha256=hex)", id="hex-signature"),
        pytest.param("secrets: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "webhook secret (whsec_)", id="whsec"),
    ],
)
def test_the_scanner_finds_a_planted_leak(text: str, kind: str) -> None:
    findings = scan([Artifact("sample.log", f"line one\n{text}\nline three")], {k: [v] for k, v in PLANTED.items()})
    assert kind in {f.kind for f in findings}
    assert all(isinstance(f, Finding) and f.artifact == "sample.log" for f in findings)


def test_the_scanner_passes_clean_text() -> None:
    clean = "INFO Authorization: Bearer *** GET /v1.0/users 200\nsweep: 3 guests flagged (plan 5f0b7c1e)\n"
    assert scan([Artifact("clean.log", clean)], {k: [v] for k, v in PLANTED.items()}) == []
