"""Settings and policy: strict validation, one actionable line per problem, safe defaults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.config import Policy, Settings, load_policy, load_settings, policy_json_schema
from shared.errors import ConfigError, PolicyError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "stale:\n  inactiv_days: 30\n",
            "stale.inactiv_days: unknown key (did you mean 'inactive_days'?)",
            id="unknown-key-named-with-suggestion",
        ),
        pytest.param(
            "stale:\n  inactive_days: -5\n",
            "stale.inactive_days: input should be greater than or equal to 1 (got -5)",
            id="negative-days",
        ),
        pytest.param(
            "stale:\n  inactive_days: 30\n   notify_sponsors: true\n",
            ":3:19: invalid YAML: mapping values are not allowed here",
            id="bad-indent-with-line-and-column",
        ),
        pytest.param(
            "stale:\n  inactive_days: 30\n  inactive_days: 40\n",
            ":3:3: invalid YAML: duplicate key 'inactive_days'",
            id="duplicate-key",
        ),
        pytest.param("- stale\n", "the policy must be a mapping of sections (got list)", id="not-a-mapping"),
        pytest.param("bogus: 1\n", "bogus: unknown key (known keys:", id="unknown-section"),
        pytest.param(
            "exemptions:\n  attested_until:\n    ann@fabrikam.com: 2027-13-01\n",
            "exemptions.attested_until.ann@fabrikam.com: input should be a valid date",
            id="impossible-date",
        ),
        pytest.param(
            "invitations:\n  denied_domains: [not a domain]\n",
            "invitations.denied_domains.0: not a domain name",
            id="bad-domain",
        ),
        pytest.param(
            "invitations:\n  message_template: Welcome!\n",
            "invitations.message_template: must contain {redeem_url}",
            id="template-without-redeem-url",
        ),
        pytest.param(
            "schedules:\n  sweep: '0 6 * * 1'\n", "schedules.sweep: must be a six-field NCRONTAB", id="five-field-cron"
        ),
        pytest.param(
            "stale:\n  inactive_days: 0\n  delete_after_days: 0\n",
            "stale.inactive_days: input should be greater than or equal to 1 (got 0) (and 1 more problem)",
            id="several-problems-one-line",
        ),
        pytest.param("version: 2\n", "version: input should be 1 (got 2)", id="unknown-version"),
        pytest.param(
            "stale:\n  notify_sponsors: true\n",
            "policy.yaml: stale.notify_sponsors is on but invitations.sender_mailbox is not set: name the mailbox",
            id="notices-without-a-sender",
        ),
    ],
)
def test_bad_policy_is_one_line_naming_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError) as raised:
        load_policy(path)
    line = raised.value.one_line()
    assert line.startswith(str(path))
    assert expected in line
    assert "\n" not in line


def test_missing_policy_file_is_an_error_not_defaults(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="file not found"):
        load_policy(tmp_path / "nope.yaml")


@pytest.mark.parametrize("text", ["", "# only a comment\n"], ids=["empty-file", "comment-only"])
def test_empty_policy_means_safe_defaults(tmp_path: Path, text: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    assert load_policy(path) == Policy()


def test_defaults_are_the_safe_ones() -> None:
    policy = load_policy(None)
    assert policy.stale.inactive_days == 90
    assert policy.safety.max_actions == 50
    assert policy.safety.max_percent == 5.0
    assert policy.exemptions.groups == []


def test_example_policy_is_valid_and_dates_parse() -> None:
    policy = load_policy(ROOT / "examples" / "policy.yaml")
    assert policy.invitations.denied_domains
    assert all(str(d) for d in policy.exemptions.attested_until.values())


def test_digest_is_stable_and_changes_with_the_policy() -> None:
    assert Policy().digest() == Policy().digest()
    stricter = Policy.model_validate({"stale": {"inactive_days": 60}})
    assert stricter.digest() != Policy().digest()


def test_committed_json_schema_matches_the_model() -> None:
    committed = json.loads((ROOT / "docs" / "policy.schema.json").read_text())
    assert committed == policy_json_schema(), "run: guestctl config schema > docs/policy.schema.json"


def test_policy_reference_documents_every_key_and_default() -> None:
    doc = (ROOT / "docs" / "policy.md").read_text()

    def keys(model: type, prefix: str = "") -> list[tuple[str, object]]:
        found = []
        for name, field in model.model_fields.items():
            annotation = field.annotation
            if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
                found += keys(annotation, f"{prefix}{name}.")
            else:
                found.append((prefix + name, field.get_default(call_default_factory=True)))
        return found

    for key, default in keys(Policy):
        assert f"`{key}`" in doc, f"docs/policy.md does not document {key}"
        shown = json.dumps(default, default=str) if not isinstance(default, str) else default
        assert shown.strip('"') in doc, f"docs/policy.md does not show the default of {key} ({shown})"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param({"auth": "emulator"}, "only allowed with a loopback", id="emulator-auth-needs-loopback"),
        pytest.param(
            {"auth": "emulator", "graph_url": "https://graph.microsoft.com/v1.0"},
            "only allowed with a loopback",
            id="emulator-auth-refused-for-real-graph",
        ),
        pytest.param({"graph_url": "http://graph.example.com/v1.0"}, "plain http", id="plain-http-non-loopback"),
        pytest.param({"cloud": "mars"}, "GUESTCTL_CLOUD:", id="unknown-cloud-names-variable"),
        pytest.param({"graph_url": "graph"}, "GUESTCTL_GRAPH_URL:", id="relative-graph-url"),
    ],
)
def test_bad_settings_name_the_variable(overrides: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_settings(**overrides)


def test_flags_override_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUESTCTL_CLOUD", "china")
    monkeypatch.setenv("GUESTCTL_TENANT_SIZE", "S")
    settings = load_settings(cloud="usgov", tenant_size=None)
    assert (settings.cloud, settings.tenant_size) == ("usgov", "S")


def test_emulator_auth_with_loopback_url_is_fine() -> None:
    settings = load_settings(auth="emulator", graph_url="http://127.0.0.1:8765/v1.0/")
    assert settings.graph_url == "http://127.0.0.1:8765/v1.0"
    assert isinstance(settings, Settings)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param(
            {"state": "AccountKey=abc"}, "GUESTCTL_STATE: state store location", id="connection-string-without-account"
        ),
        pytest.param({"state": "ftp://x/y"}, "GUESTCTL_STATE:", id="unknown-url-form"),
        pytest.param({"state_prefix": "Guest-Ctl"}, "GUESTCTL_STATE_PREFIX: store prefix", id="bad-table-prefix"),
    ],
)
def test_bad_state_location_is_a_config_error(overrides: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected) as raised:
        load_settings(**overrides)
    assert "abc" not in raised.value.one_line()
