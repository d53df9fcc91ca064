"""Bad input through the Functions app (docs/reliability.md#bad-input): every HTTP body, header, route value
and token an outsider can send, and every queue message a trigger can be handed, through real
azure.functions objects against the emulator and the SQLite store.

Properties: never an unhandled exception or a 5xx; a 4xx is JSON with a one-line `error` (attestation: an
HTML page); a refusal queues nothing and changes neither the tenant nor the store; a queue message that
cannot be used goes to the poison queue with a one-line reason, having changed nothing.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulator.testing import EmulatorServer
from shared.attestation.tokens import Decision
from shared.attestation.tokens import sign as sign_token
from shared.offboarding.signatures import sign as sign_webhook
from tests.reliability.figures import Figures
from tests.reliability.fuzzing import (
    ODD_TEXT,
    Fuzz,
    csv_files,
    encoded,
    fuzz_settings,
    json_lines_files,
    near_valid_json,
    random_bytes,
    store_digest,
    tenant_mark,
)
from tests.support.functions import CapturedOut, point_at_emulator
from tests.support.offboarding import SPEC_SECRET, TERMINATION

NOTIFICATION_SECRET = "s3cr3t-client-state-0123456789"
HR_SECRET = SPEC_SECRET
ADAPTER_KEY = "key"
ATTESTATION_SECRET = "attestation-secret-for-tests-0123456789"
FIXTURES = Path(__file__).resolve().parents[1] / "unit" / "offboarding" / "fixtures"
USER = "1f2e3d4c-0000-4000-8000-000000000001"
SUBSCRIPTION = "7f105c7d-2dc5-4530-97cd-4e7ae6534c07"
ODD = st.sampled_from(ODD_TEXT) | st.text(max_size=40)


@pytest.fixture
def app(
    emulator: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, functions: dict[str, Any]
) -> Iterator[App]:
    """The app's settings as deployed, pointed at the emulator; one event loop for the whole property."""
    point_at_emulator(monkeypatch, emulator, tmp_path, "GUESTCTL_POLICY", "GUESTCTL_TENANT_ID", "GUESTCTL_PAUSED")
    for name, value in {
        "GUESTCTL_NOTIFICATION_SECRET": NOTIFICATION_SECRET,
        "GUESTCTL_NOTIFICATION_URL": "https://guestctl.example.net/api/graph/notifications?code=k",
        "GUESTCTL_HR_WEBHOOK_SECRETS": HR_SECRET,
        "GUESTCTL_HR_BAMBOOHR_SECRETS": ADAPTER_KEY,
        "GUESTCTL_HR_HIBOB_SECRETS": ADAPTER_KEY,
        "GUESTCTL_HR_DEEL_SECRETS": ADAPTER_KEY,
        "GUESTCTL_HR_SUCCESSFACTORS_SECRETS": ADAPTER_KEY,
        "GUESTCTL_ATTESTATION_URL": "https://guestctl.example.net",
        "GUESTCTL_ATTESTATION_SECRET": ATTESTATION_SECRET,
        "GUESTCTL_RETRY_BUDGET_SECONDS": "5",
    }.items():
        monkeypatch.setenv(name, value)
    loop = asyncio.new_event_loop()
    yield App(functions, emulator, tmp_path / "state.db", loop)
    loop.close()


class App:
    def __init__(self, functions: dict[str, Any], emulator: EmulatorServer, state: Path, loop: Any) -> None:
        self.functions, self.emulator, self.state, self.loop = functions, emulator, state, loop

    def call(self, name: str, *args: Any) -> Any:
        result = self.functions[name].get_user_function()(*args)
        return self.loop.run_until_complete(result) if isinstance(result, Awaitable) else result

    def http(
        self,
        fuzz: Fuzz,
        name: str,
        request: func.HttpRequest,
        example: object,
        *outs: CapturedOut,
        audited: str | None = None,
    ) -> Any:
        """Call an HTTP function; check the answer and, for a refusal, that nothing was queued or changed
        (but for audit entries of the action `audited`)."""
        return self._checked(fuzz, example, lambda: self.call(name, request, *outs), outs, http=True, audited=audited)

    def queue(self, fuzz: Fuzz, name: str, body: bytes, outs: int, example: object) -> CapturedOut:
        """Hand a queue trigger `body`; check it ends, and that a message sent to poison changed nothing."""
        poison, more = CapturedOut(), [CapturedOut() for _ in range(outs - 1)]
        message = func.QueueMessage(id="m1", body=body)
        self._checked(fuzz, example, lambda: self.call(name, message, *more, poison), (poison,), http=False)
        return poison

    def _checked(
        self,
        fuzz: Fuzz,
        example: object,
        call: Callable[[], Any],
        outs: tuple[CapturedOut, ...],
        *,
        http: bool,
        audited: str | None = None,
    ) -> Any:
        tenant, store = tenant_mark(self.emulator), store_digest(self.state, audited=audited)
        fuzz.examples += 1
        try:
            answer = call()
        except Exception as error:
            fuzz.violation(f"unhandled {type(error).__name__}: {str(error)[:200]}", example)
            return None
        refused = False
        if http:
            refused = answer.status_code >= 400
            for problem in http_problems(answer):
                fuzz.violation(problem, example)
            if refused and any(out.was_set for out in outs):
                fuzz.violation(f"{answer.status_code} but a message was queued", example)
        else:
            (poison,) = outs
            refused = poison.was_set
            if refused and "\n" in json.loads(poison.value)["reason"]:
                fuzz.violation("a poison reason of several lines", example)
        if refused and tenant_mark(self.emulator) != tenant:
            fuzz.violation("the tenant changed on a refusal", example)
        if refused and store_digest(self.state, audited=audited) != store:
            fuzz.violation("the store changed on a refusal", example)
        return answer


def http_problems(answer: func.HttpResponse) -> list[str]:
    body = answer.get_body()
    if answer.status_code >= 500:
        return [f"status {answer.status_code}: {body[:300]!r}"]
    problems = []
    if b"Traceback" in body or b'File "' in body:
        problems.append("a stack trace in the answer")
    if answer.status_code >= 400 and answer.mimetype == "application/json":
        error = json.loads(body).get("error")
        if not isinstance(error, str) or not error or "\n" in error:
            problems.append(f"{answer.status_code} without a one-line error: {body[:300]!r}")
    elif answer.status_code >= 400 and answer.mimetype != "text/html":
        problems.append(f"{answer.status_code} as {answer.mimetype}")
    return problems


def post(url: str, body: bytes, headers: dict[str, str] | None = None, **kwargs: Any) -> func.HttpRequest:
    return func.HttpRequest(method="POST", url=url, body=body, headers=headers or {}, **kwargs)


# ---- Graph change and lifecycle notifications, Event Grid events (redemptions) ---------------------------


def notification(**changes: Any) -> dict[str, Any]:
    """A users change notification as Graph sends it (docs/graph-contract.md#change-notifications)."""
    return {
        "id": "lsgTZMr9KwAAA",
        "subscriptionId": SUBSCRIPTION,
        "subscriptionExpirationDateTime": "2026-12-20T11:00:00.0000000Z",
        "clientState": NOTIFICATION_SECRET,
        "changeType": "updated",
        "resource": f"Users/{USER}",
        "tenantId": "84bd8158-6d4d-4958-8b9f-9d6445542f95",
        "resourceData": {"@odata.type": "#Microsoft.Graph.User", "@odata.id": f"Users/{USER}", "id": USER},
        **changes,
    }


LIFECYCLE = notification(lifecycleEvent="reauthorizationRequired", resource=None, resourceData=None)
DELIVERIES = [{"value": [notification()]}, {"value": [LIFECYCLE]}, {"value": [notification(), notification()]}]


def cloud_event(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    """A CloudEvent as Event Grid writes Graph's notifications to the queue (docs/graph-contract.md#event-grid)."""
    return {
        "id": "e1",
        "type": event_type,
        "source": "/tenants/t/applications/a",
        "subject": f"Users/{USER}",
        "specversion": "1.0",
        "time": "2026-11-27T10:00:00Z",
        "datacontenttype": "application/json",
        "data": data,
    }


QUEUED = [
    cloud_event("Microsoft.Graph.UserUpdated", notification()),
    cloud_event("Microsoft.Graph.SubscriptionReauthorizationRequired", LIFECYCLE),
    cloud_event("Microsoft.Graph.SubscriptionRemoved", notification(lifecycleEvent="subscriptionRemoved")),
    {"value": [notification()]},
]


def test_notification_and_lifecycle_bodies(app: App, figures: Figures) -> None:
    fuzz = Fuzz("redemptions")

    @fuzz_settings(short=40, full=500)
    @given(
        name=st.sampled_from(["graph_notifications", "graph_lifecycle"]),
        body=st.sampled_from(DELIVERIES).flatmap(near_valid_json),
        token=st.none() | ODD,
    )
    def run(name: str, body: bytes, token: str | None) -> None:
        params = {} if token is None else {"validationToken": token}
        request = post("/api/graph/notifications", body, params=params)
        app.http(fuzz, name, request, {"body": body, "token": token}, CapturedOut())

    run()
    fuzz.report(figures)


def test_event_grid_and_webhook_queue_messages(app: App, figures: Figures) -> None:
    fuzz = Fuzz("redemptions")

    @fuzz_settings(short=20, full=300)
    @given(body=st.sampled_from(QUEUED).flatmap(near_valid_json))
    def run(body: bytes) -> None:
        app.queue(fuzz, "graph_notifications_worker", body, 1, {"message": body})

    run()
    fuzz.report(figures)


# ---- HR webhooks: the native receiver and every adapter (offboarding) -----------------------------------------

HR_EVENT = TERMINATION
ADAPTER_BODIES = {name: json.loads((FIXTURES / f"{name}.json").read_text()) for name in ("bamboohr", "hibob", "deel")}
SUCCESSFACTORS = (FIXTURES / "successfactors.xml").read_text()


def _mac(message: bytes, algorithm: str = "sha256") -> str:
    return hmac.new(ADAPTER_KEY.encode(), message, algorithm).hexdigest()


def authentic(system: str, body: bytes) -> dict[str, str]:
    """Headers that pass `system`'s authentication for `body` now, so the body itself is what is judged."""
    now = int(time.time())
    return {
        "events": lambda: sign_webhook(HR_SECRET, "msg_2Q1nKx7T0bW3", now, body),
        "bamboohr": lambda: {"X-BambooHR-Timestamp": str(now), "X-BambooHR-Signature": _mac(body + str(now).encode())},
        "hibob": lambda: {"Bob-Signature": _mac(body, "sha512")},
        "deel": lambda: {"x-deel-signature": _mac(b"POST" + body)},
        "successfactors": lambda: {
            "Authorization": "Basic " + base64.b64encode(f"successfactors:{ADAPTER_KEY}".encode()).decode()
        },
    }[system]()


@st.composite
def successfactors_bodies(draw: st.DrawFn) -> bytes:
    """The SuccessFactors SOAP event with one element's text changed, an element cut, or hostile XML."""
    text = SUCCESSFACTORS
    how = draw(st.sampled_from(["value", "value", "cut", "hostile"]))
    if how == "value":
        start = draw(st.integers(0, text.count("<value>") - 1))
        parts = text.split("<value>")
        _, _, tail = parts[start + 1].partition("</")
        parts[start + 1] = draw(ODD).replace("<", "&lt;") + "</" + tail
        text = "<value>".join(parts)
    elif how == "cut":
        text = text[: draw(st.integers(0, len(text)))]
    else:
        text = draw(
            st.sampled_from(
                [
                    '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>',
                    '<!DOCTYPE x SYSTEM "file:///etc/passwd"><x/>',
                    "<a>" * 10_000,
                    text.replace("UTF-8", "UTF-16"),
                ]
            )
        )
    return draw(encoded(text))


@st.composite
def hr_deliveries(draw: st.DrawFn) -> tuple[str, bytes, dict[str, str]]:
    """(route, body, headers): a near-valid body for the route, signed for it (mostly) or with odd headers."""
    route = draw(st.sampled_from(["events", "bamboohr", "hibob", "deel", "successfactors", "workday", "..", ""]))
    if route == "successfactors":
        body = draw(successfactors_bodies())
    else:
        body = draw(near_valid_json(ADAPTER_BODIES.get(route, HR_EVENT)))
    how = draw(st.sampled_from(["signed", "signed", "signed", "odd"]))
    if how == "signed" and route in ("events", "bamboohr", "hibob", "deel", "successfactors"):
        headers = authentic(route, body)
    else:
        headers = draw(st.dictionaries(st.sampled_from(["webhook-id", "webhook-signature", "Authorization"]), ODD))
    content_type = "application/xml" if route == "successfactors" else "application/json"
    headers["Content-Type"] = draw(st.sampled_from([content_type, content_type, "text/plain", ""]))
    if draw(st.integers(0, 9)) == 0:
        headers["Content-Length"] = draw(st.sampled_from(["-1", "abc", "99999999999", str(len(body))]))
    return route, body, {k: v for k, v in headers.items() if "\x00" not in k}


def test_hr_webhook_bodies_and_headers(app: App, figures: Figures) -> None:
    fuzz = Fuzz("offboarding")

    @fuzz_settings(short=40, full=500)
    @given(delivery=hr_deliveries())
    def run(delivery: tuple[str, bytes, dict[str, str]]) -> None:
        route, body, headers = delivery
        name = "hr_events" if route == "events" else "hr_adapter"
        request = post(f"/api/hr/{route}", body, headers, route_params={"system": route})
        app.http(fuzz, name, request, {"route": route, "body": body, "headers": headers}, CapturedOut())

    run()
    fuzz.report(figures)


def test_hr_status_ids_and_queue_messages(app: App, figures: Figures) -> None:
    fuzz = Fuzz("offboarding")
    message = {"id": "0" * 64, "due": "2026-12-01T00:00:00Z"}

    @fuzz_settings(short=15, full=300)
    @given(event_id=ODD, body=near_valid_json(message))
    def run(event_id: str, body: bytes) -> None:
        request = func.HttpRequest(method="GET", url="/api/hr/events/x", body=b"", route_params={"event_id": event_id})
        app.http(fuzz, "hr_event_status", request, {"event_id": event_id})
        app.queue(fuzz, "hr_events_worker", body, 1, {"message": body})

    run()
    fuzz.report(figures)


# ---- attestation tokens ------------------------------------------------------------------------------------------


@st.composite
def tokens(draw: st.DrawFn) -> str:
    """A genuine token (for nobody this tenant knows, or expired) changed a little, one with another secret, or text."""
    secret = draw(st.sampled_from([ATTESTATION_SECRET, "another-secret-0123456789-0123456789"])).encode()
    expires = datetime.now(UTC) + timedelta(days=draw(st.sampled_from([-1, 7, 4000])))
    genuine = sign_token(
        draw(st.sampled_from(list(Decision))),
        guest_id=draw(st.sampled_from([None, USER, "00000000-0000-0000-0000-000000000000"])),
        sponsor_id=draw(st.sampled_from([USER, "6f1b9f0e-0000-4000-8000-000000000009"])),
        expires=expires,
        secret=secret,
        nonce=draw(st.sampled_from([None, "0" * 24])),
    )
    how = draw(st.sampled_from(["genuine", "flip", "cut", "longer", "spaces", "text"]))
    if how == "text":
        return draw(ODD)
    if how == "flip":
        at = draw(st.integers(0, len(genuine) - 1))
        return genuine[:at] + draw(st.sampled_from(list("A_-=+/ .%\x00é"))) + genuine[at + 1 :]
    if how == "cut":
        return genuine[: draw(st.integers(0, len(genuine) - 1))]
    if how == "longer":
        return genuine + draw(st.sampled_from(["A", "==", genuine]))
    if how == "spaces":
        return f" {genuine}\n"
    return genuine


@st.composite
def forms(draw: st.DrawFn, token: str) -> bytes:
    return draw(
        st.sampled_from(
            [
                f"token={token}".encode(),
                f"token={token}&token=x".encode(),
                f"a=1&b=2&c=3&d=4&e=5&token={token}".encode(),
                token.encode(),
                b"token=" + b"A" * 5000,
                b"token=%ZZ%",
            ]
        )
        | encoded(f"token={token}")
        | random_bytes
    )


def test_attestation_tokens(app: App, figures: Figures) -> None:
    fuzz = Fuzz("attestation")

    @fuzz_settings(short=30, full=500)
    @given(data=st.data(), token=tokens())
    def run(data: st.DataObject, token: str) -> None:
        page = func.HttpRequest(method="GET", url="/api/attest", body=b"", params={"token": token})
        app.http(fuzz, "attest_page", page, {"token": token})
        form = data.draw(forms(token))
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        # A genuine token that does not act is audited as attestation.refused (docs/attestation.md#audit).
        request = post("/api/attest", form, headers)
        app.http(fuzz, "attest_confirm", request, {"form": form}, audited="attestation.refused")

    run()
    fuzz.report(figures)


# ---- invitation batches: HTTP body and the inbox blob ------------------------------------------------------------


def data_for_chunk(chunk: dict[str, Any], seed: bytes) -> bytes:
    """The queued chunk with one field changed, chosen by the body's digest (deterministic, no second draw)."""
    rows = chunk["rows"]
    changes = [
        lambda: {**chunk, "rows": [{**rows[0], "row": "one"}]},
        lambda: {**chunk, "rows": [{**rows[0], "email": "\x00"}]},
        lambda: {**chunk, "batch_id": ""},
        lambda: {**chunk, "rows": [{**rows[0], "extra": 1}]},
        lambda: {**chunk, "rows": [{**rows[0], "groups": "Finance"}]},
    ]
    pick = hashlib.sha256(seed).digest()[0] % (len(changes) + 2)
    if pick == len(changes):
        return json.dumps(chunk).encode().replace(b'"rows"', b'"r\xffows"')
    if pick > len(changes):
        return json.dumps(chunk).encode()[:-3]
    return json.dumps(changes[pick]()).encode()


def test_invitation_bodies_and_dropped_files(app: App, figures: Figures) -> None:
    fuzz = Fuzz("invitations")
    types = ["text/csv", "application/x-ndjson", "text/csv; charset=latin-1", "application/xml", "", "TEXT/CSV"]

    @fuzz_settings(short=25, full=400)
    @given(
        body=st.one_of(csv_files(), json_lines_files()),
        content_type=st.sampled_from(types),
        name=st.sampled_from(["in.csv", "in.jsonl", "in.json", "in", "ü.csv", "a/b/../c.csv"]),
    )
    def run(body: bytes, content_type: str, name: str) -> None:
        request = post("/api/invitations/batches", body, {"Content-Type": content_type})
        queue = CapturedOut()
        app.http(fuzz, "submit_invitation_batch", request, {"body": body, "type": content_type}, queue)
        for message in (queue.value or [])[:1]:  # what the receiver queued, changed: the invite_rows worker
            chunk = json.loads(message)
            changed = data_for_chunk(chunk, body)
            app.queue(fuzz, "invite_rows", changed, 1, {"message": changed})
        blob = func.blob.InputStream(data=body, name=f"invitations-inbox/{name}")
        queue = CapturedOut()
        tenant, store = tenant_mark(app.emulator), store_digest(app.state)
        fuzz.examples += 1
        try:
            app.call("invitation_file_dropped", blob, queue)
        except Exception as error:
            fuzz.violation(f"unhandled {type(error).__name__}: {str(error)[:200]}", {"blob": body, "name": name})
            return
        if not queue.was_set and (tenant_mark(app.emulator), store_digest(app.state)) != (tenant, store):
            fuzz.violation("a refused file changed the tenant or the store", {"blob": body, "name": name})

    run()
    fuzz.report(figures)


# ---- plans: approve and status routes, queued apply steps (sweep, partners) ---------------------------------------


def test_plan_ids_and_apply_messages(app: App, figures: Figures) -> None:
    for flow, approve, status, worker, outs in (
        ("sweep", "approve_sweep", "sweep_status", "continue_stale_sweep", 2),
        ("partners", "approve_partner_plan", None, "apply_partner_retirement", 1),
    ):
        fuzz = Fuzz(flow)
        step = {"apply": "plan-" + hashlib.sha256(b"x").hexdigest()[:16], "actor": "function approve (test)"}

        @fuzz_settings(short=12, full=300)
        @given(plan_id=ODD, approver=ODD, body=near_valid_json(step))
        def run(plan_id: str, approver: str, body: bytes) -> None:
            headers = {"x-approver": approver.replace("\n", " ")}
            request = post("/api/x/approve", b"", headers, route_params={"plan_id": plan_id})
            app.http(fuzz, approve, request, {"plan_id": plan_id}, CapturedOut())  # noqa: B023
            if status is not None:  # noqa: B023
                get = func.HttpRequest(method="GET", url="/api/x", body=b"", route_params={"plan_id": plan_id})
                app.http(fuzz, status, get, {"plan_id": plan_id})  # noqa: B023
            app.queue(fuzz, worker, body, outs, {"message": body})  # noqa: B023

        run()
        fuzz.report(figures)
