"""`guestctl sync`, `redemptions` and `subscriptions` as a person runs them: real processes and exit codes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator.seed import seed_tenant
from emulator.testing import EmulatorServer, WebhookReceiver
from shared.config import load_settings
from shared.errors import GuestctlError
from shared.notifications.service import delete_subscription
from tests.support.cli import ROOT, emulator_settings, run_guestctl
from tests.support.stale import NOW

SECRET = "a-client-state-secret-of-reasonable-length"


@pytest.fixture
def env(emulator: EmulatorServer, tmp_path: Path) -> dict[str, str]:
    return emulator_settings(emulator, tmp_path, ROOT / "examples" / "policy.yaml")


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


def guestctl_json(*args: str, cwd: Path, env: dict[str, str]) -> object:
    result = run_guestctl(*args, "--json", cwd=cwd, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_sync_then_redemptions_report_what_graph_says(
    emulator: EmulatorServer, env: dict[str, str], tmp_path: Path
) -> None:
    emulator.reset(seed_tenant(31, guests=30, members=5, now=NOW))
    guests = [u for u in emulator.tenant.users.values() if u.userType == "Guest"]
    pending = sorted(u.id for u in guests if u.externalUserState == "PendingAcceptance")
    first = guestctl_json("sync", cwd=tmp_path, env=env)
    assert first["full"] is True
    assert first["counts"]["new"] == len(guests)

    for user_id in pending[:2]:
        emulator.control.redeem(user_id)
    second = guestctl_json("sync", cwd=tmp_path, env=env)
    assert (second["full"], second["counts"]["redeemed"]) == (False, 2)

    report = guestctl_json("redemptions", cwd=tmp_path, env=env)
    overall = report["summaries"][-1]
    assert overall["batch"] == "all"
    assert (overall["invited"], overall["pending"]) == (len(guests), len(pending) - 2)
    assert sorted(p["user_id"] for p in report["pending"]) == pending[2:]

    only_pending = guestctl_json("redemptions", "--pending", cwd=tmp_path, env=env)
    assert set(only_pending) == {"pending"}

    people = run_guestctl("redemptions", cwd=tmp_path, env=env)
    assert people.returncode == 0, people.stderr
    assert "Redemptions" in people.stdout
    assert f"Pending ({len(pending) - 2})" in people.stdout


def test_redemptions_of_an_unknown_batch_exits_2(emulator: EmulatorServer, env: dict[str, str], tmp_path: Path) -> None:
    emulator.reset(seed_tenant(32, guests=10, members=2, now=NOW))
    assert run_guestctl("sync", cwd=tmp_path, env=env).returncode == 0
    result = run_guestctl("redemptions", "--batch", "inv-nope", cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert "no tracked guests in batch 'inv-nope'" in result.stderr


def test_subscriptions_ensure_is_idempotent_lists_ours_redacted_and_deletes_it(
    emulator: EmulatorServer, receiver: WebhookReceiver, env: dict[str, str], tmp_path: Path
) -> None:
    url = receiver.url_for("api/graph/notifications") + "?code=function-key-123"
    env = {**env, "GUESTCTL_NOTIFICATION_URL": url, "GUESTCTL_NOTIFICATION_SECRET": SECRET}
    created = guestctl_json("subscriptions", "ensure", cwd=tmp_path, env=env)
    assert created["action"] == "created"
    again = guestctl_json("subscriptions", "ensure", cwd=tmp_path, env=env)
    assert (again["action"], again["subscription_id"]) == ("kept", created["subscription_id"])
    assert len(emulator.tenant.subscriptions) == 1
    subscription = next(iter(emulator.tenant.subscriptions.values()))
    assert subscription["lifecycleNotificationUrl"].endswith("/api/graph/lifecycle?code=function-key-123")

    listed = guestctl_json("subscriptions", "list", cwd=tmp_path, env=env)
    assert [(s["id"], s["ours"]) for s in listed] == [(created["subscription_id"], True)]
    assert "function-key-123" not in json.dumps(listed)

    # An unusable state store fails before Graph is changed (it deleted the subscription, then failed: exit 2)
    (tmp_path / "notes.db").write_text("not a database\n" * 100)
    unusable = load_settings(graph_url=emulator.base_url, auth="emulator", state=str(tmp_path / "notes.db"))
    with pytest.raises(GuestctlError, match="not a database"):
        asyncio.run(delete_subscription(unusable, created["subscription_id"]))
    assert len(emulator.tenant.subscriptions) == 1

    deleted = guestctl_json("subscriptions", "delete", cwd=tmp_path, env=env)
    assert deleted == {"deleted": [created["subscription_id"]]}
    assert emulator.tenant.subscriptions == {}


def test_subscriptions_ensure_without_a_secret_exits_2_and_creates_nothing(
    emulator: EmulatorServer, receiver: WebhookReceiver, env: dict[str, str], tmp_path: Path
) -> None:
    env = {**env, "GUESTCTL_NOTIFICATION_URL": receiver.url}
    result = run_guestctl("subscriptions", "ensure", cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert "GUESTCTL_NOTIFICATION_SECRET is not set" in result.stderr
    assert emulator.tenant.subscriptions == {}
