"""Shared data for the stale-guest tests: one clock start, the policies, the policy file guestctl reads."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.config import Policy

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
# Safety caps out of the way: the tests choose which guests are acted on, not the caps.
UNCAPPED = Policy.model_validate({"safety": {"max_actions": 10_000, "max_percent": 100}})
# UNCAPPED as guestctl reads it from policy.yaml.
POLICY_TEXT = "safety:\n  max_actions: 10000\n  max_percent: 100\n"
# Every stage with its own limit, so a test can walk a guest from flagged to deleted.
POLICY = Policy.model_validate(
    {
        "stale": {"inactive_days": 90, "never_redeemed_days": 30, "disable_after_days": 14, "delete_after_days": 30},
        "safety": {"max_actions": 10_000, "max_percent": 100},
    }
)
