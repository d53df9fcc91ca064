"""Settings and policy: strict validation, one actionable line per problem, safe defaults."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import pytest

from shared.config import (
    MAX_POLICY_BYTES,
    Policy,
    Settings,
    check_ncrontab,
    load_policy,
    load_settings,
    policy_json_schema,
    redact_url,
)
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
            "schedules:\n  report: a b c d e f\n", "schedules.report: second field: 'a' is not", id="letters-cron"
        ),
        pytest.param(
            "stale:\n  inactive_days: 0\n  delete_after_days: 0\n",
            "stale.inactive_days: input should be greater than or equal to 1 (got 0); stale.delete_after_days: input",
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


# -- strict types: YAML 1.1 booleans, decimals and quoted numbers never quietly become numbers -----------------
BOOLEAN = "got a boolean (yes/no/on/off/true/false are booleans in YAML)"
INT_KEYS = [
    ("stale", "inactive_days", "expected an integer number of days"),
    ("stale", "never_redeemed_days", "expected an integer number of days"),
    ("stale", "disable_after_days", "expected an integer number of days"),
    ("stale", "delete_after_days", "expected an integer number of days"),
    ("safety", "max_actions", "expected an integer"),
    ("safety", "plan_max_age_hours", "expected an integer number of hours"),
]
NOT_AN_INT = [
    ("yes", BOOLEAN),
    ("on", BOOLEAN),
    ("true", BOOLEAN),
    ("Off", BOOLEAN),
    ("14.5", "got a decimal number (14.5)"),
    ("14.0", "got a decimal number (14.0)"),
    ("'30'", "got text '30' (write plain decimal digits without quotes)"),
    ("030", "got text '030'"),  # YAML 1.1 octal: 24
    ("0x1E", "got text '0x1E'"),
    ("1:30", "got text '1:30'"),  # YAML 1.1 base 60: 90
    ("1_000", "got text '1_000'"),
    ("", "got nothing (an empty value is null in YAML)"),
    ("[30]", "got a list"),
]


@pytest.mark.parametrize(
    ("section", "key", "value", "expected"),
    [
        pytest.param(section, key, value, f"{section}.{key}: {expects}, {got}", id=f"{key}={value or 'empty'}")
        for section, key, expects in INT_KEYS
        for value, got in NOT_AN_INT
    ],
)
def test_integer_keys_take_only_integers(tmp_path: Path, section: str, key: str, value: str, expected: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(f"{section}:\n  {key}: {value}\n")
    with pytest.raises(PolicyError) as raised:
        load_policy(path)
    assert expected in raised.value.one_line()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("version: true\n", f"version: expected an integer, {BOOLEAN}", id="version-boolean"),
        pytest.param("version: 1.0\n", "version: expected an integer, got a decimal number (1.0)", id="version-1.0"),
        pytest.param("version: '1'\n", "version: expected an integer, got text '1'", id="version-text"),
        pytest.param(
            "invitations:\n  send_email: 1\n",
            "invitations.send_email: expected true or false, got an integer (1)",
            id="send_email-1",
        ),
        pytest.param(
            "invitations:\n  send_email: 'yes'\n",
            "invitations.send_email: expected true or false, got text 'yes'",
            id="send_email-quoted-yes",
        ),
        pytest.param(
            "stale:\n  notify_sponsors: 0\n",
            "stale.notify_sponsors: expected true or false, got an integer (0)",
            id="notify_sponsors-0",
        ),
        pytest.param(
            "safety:\n  max_percent: yes\n", f"safety.max_percent: expected a number, {BOOLEAN}", id="pct-yes"
        ),
        pytest.param(
            "safety:\n  max_percent: '5'\n", "safety.max_percent: expected a number, got text '5'", id="pct-text"
        ),
        pytest.param("safety:\n  max_percent: .nan\n", "safety.max_percent: expected a number", id="pct-nan"),
        pytest.param(
            "exemptions:\n  groups: [NO]\n",
            f"exemptions.groups.0: expected text, {BOOLEAN} — put text in quotes",
            id="group-named-NO",
        ),
        pytest.param(
            "exemptions:\n  users: [12345]\n",
            "exemptions.users.0: expected text, got an integer (12345) — put text in",
            id="numeric-user",
        ),
        pytest.param(
            "invitations:\n  sender_mailbox: on\n",
            f"invitations.sender_mailbox: expected text, {BOOLEAN}",
            id="mailbox-on",
        ),
        pytest.param(
            "invitations:\n  denied_domains: [yes]\n",
            f"invitations.denied_domains.0: expected text, {BOOLEAN}",
            id="domain-yes",
        ),
        pytest.param("schedules:\n  sweep: off\n", f"schedules.sweep: expected text, {BOOLEAN}", id="schedule-off"),
        pytest.param("stale: yes\n", f"stale: expected a mapping of keys, {BOOLEAN}", id="section-yes"),
        pytest.param("stale:\n", "stale: expected a mapping of keys, got nothing", id="section-empty"),
        pytest.param("invitations:\n  redirect_url: 5\n", "invitations.redirect_url: expected a URL", id="url-number"),
        pytest.param(
            "exemptions:\n  attested_until:\n    ann@fabrikam.com: 20270630\n",
            "exemptions.attested_until.ann@fabrikam.com: expected a date written YYYY-MM-DD, got an integer",
            id="date-as-number",
        ),
        pytest.param(
            "exemptions:\n  attested_until:\n    ann@fabrikam.com: 2027-06-30T10:00:00\n",
            "exemptions.attested_until.ann@fabrikam.com: expected a date written YYYY-MM-DD, got text",
            id="date-with-time",
        ),
        pytest.param(
            "exemptions:\n  attested_until:\n    ann@fabrikam.com: yes\n",
            f"exemptions.attested_until.ann@fabrikam.com: expected a date written YYYY-MM-DD, {BOOLEAN}",
            id="date-yes",
        ),
        pytest.param(
            "exemptions:\n  attested_until:\n    ops_days: 5\n",
            "exemptions.attested_until.ops_days: expected a date written YYYY-MM-DD, got an integer (5)",
            id="date-under-a-key-ending-in-days",
        ),
    ],
)
def test_other_keys_are_strict_too(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError) as raised:
        load_policy(path)
    assert expected in raised.value.one_line()


@pytest.mark.parametrize(
    ("text", "key_path", "expected"),
    [
        pytest.param("safety:\n  max_percent: 5\n", ("safety", "max_percent"), 5.0, id="integer-percent"),
        pytest.param("safety:\n  max_percent: 2.5\n", ("safety", "max_percent"), 2.5, id="decimal-percent"),
        pytest.param("safety:\n  max_actions: 0\n", ("safety", "max_actions"), 0, id="zero-actions"),
        pytest.param("stale:\n  inactive_days: +60\n", ("stale", "inactive_days"), 60, id="plus-sign"),
        pytest.param("invitations:\n  send_email: false\n", ("invitations", "send_email"), False, id="false"),
        pytest.param("exemptions:\n  groups: ['NO', '2024']\n", ("exemptions", "groups"), ["NO", "2024"], id="quoted"),
        pytest.param("exemptions:\n  users: [0123]\n", ("exemptions", "users"), ["0123"], id="leading-zero-is-text"),
        pytest.param(
            "exemptions:\n  attested_until:\n    a@b.com: 2027-06-30\n",
            ("exemptions", "attested_until"),
            {"a@b.com": date(2027, 6, 30)},
            id="yaml-date",
        ),
        pytest.param(
            "exemptions:\n  attested_until:\n    a@b.com: '2027-06-30'\n",
            ("exemptions", "attested_until"),
            {"a@b.com": date(2027, 6, 30)},
            id="iso-text-date",
        ),
        pytest.param(
            "schedules:\n  sweep: '*/30 0 6 * Jan,Jul Mon-Fri'\n",
            ("schedules", "sweep"),
            "*/30 0 6 * Jan,Jul Mon-Fri",
            id="named-schedule",
        ),
    ],
)
def test_well_typed_values_still_load(tmp_path: Path, text: str, key_path: tuple[str, str], expected: object) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    section, key = key_path
    assert getattr(getattr(load_policy(path), section), key) == expected


# -- NCRONTAB -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "expression",
    [
        "0 0 6 * * 1",
        "0 0 */6 * * *",
        "0 30 */12 * * *",
        "0 */5 * * * *",
        "59 59 23 31 12 6",
        "0 0 0 1 1 0",
        "0 0 9-17/2 * * 1-5",
        "0 0,15,30,45 * * * *",
        "0 0 6 * jan,JUL mon",
        "0 0 6 1-7 * Sun",
        "0 0 6 * Jan-Mar *",
        "  0  0 6 * * 1 ",
    ],
)
def test_good_ncrontab_schedules(expression: str) -> None:
    assert check_ncrontab(expression) == expression


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("a b c d e f", "second field: 'a' is not *, a number, a range a-b or a step */n"),
        ("0 6 * * 1", "must be a six-field NCRONTAB expression like '0 0 6 * * 1'"),
        ("0 0 6 * * 1 2027", "got 7 fields"),
        ("", "got 0 fields"),
        ("60 0 6 * * 1", "second field: '60' is outside 0-59"),
        ("0 60 6 * * 1", "minute field: '60' is outside 0-59"),
        ("0 0 24 * * 1", "hour field: '24' is outside 0-23"),
        ("0 0 6 0 * 1", "day field: '0' is outside 1-31"),
        ("0 0 6 32 * 1", "day field: '32' is outside 1-31"),
        ("0 0 6 * 13 1", "month field: '13' is outside 1-12"),
        ("0 0 6 * 0 1", "month field: '0' is outside 1-12"),
        ("0 0 6 * * 7", "day-of-week field: '7' is outside 0-6"),
        ("0 0 6 * Foo 1", "month field: 'Foo' is not *, a number or a name like Feb"),
        ("0 0 6 * * Monday", "day-of-week field: 'Monday' is not *, a number or a name like Mon"),
        ("0 0 6 * Mon *", "month field: 'Mon' is not"),
        ("0 0 6 * * Fri-Mon", "day-of-week field: 'Fri-Mon' is a range that runs backwards"),
        ("0 0 17-9 * * *", "hour field: '17-9' is a range that runs backwards"),
        ("0 */0 * * * *", "minute field: '*/0' has a step that is not a whole number of at least 1"),
        ("0 */x * * * *", "minute field: '*/x' has a step"),
        ("0 5/10 * * * *", "minute field: '5/10' has a step without '*' or a range before it"),
        ("0 0 6 * * 1,", "day-of-week field: '' is not"),
        ("0 0 6 * * 1-", "day-of-week field: '1-' is not"),
        ("0 0 6 * * ?", "day-of-week field: '?' is not"),
        ("0 0 6 L * *", "day field: 'L' is not"),
        ("0 0 -1 * * *", "hour field: '-1' is not"),
        ("0 0 ６ * * *", "hour field: '６' is not"),  # a full-width digit
        ("0 0 " + "1" * 500 + " * * *", "hour field: '1111111111111111111…' is not"),
    ],
)
def test_bad_ncrontab_schedules_name_the_field_and_the_part(expression: str, expected: str) -> None:
    with pytest.raises(ValueError, match=re.escape(expected)) as raised:
        check_ncrontab(expression)
    assert len(str(raised.value)) < 200


# -- the YAML loader's limits: a hostile file fails at once, in one line ----------------------------------------
BILLION_LAUGHS = "".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n',
        *(
            f"{name}: &{name} [{','.join([f'*{prev}'] * 9)}]\n"
            for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
        ),
    ]
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(BILLION_LAUGHS, "refused: more than 10000 values (aliases expanded)", id="billion-laughs"),
        pytest.param(
            "x: &x [1]\ny: [" + ", ".join(["*x"] * 51) + "]\n", "refused: more than 50 aliases", id="too-many-aliases"
        ),
        pytest.param("a: &a [*a]\n", "refused: an alias inside the value it refers to", id="recursive-alias"),
        pytest.param("a: " + "[" * 5000 + "]" * 5000 + "\n", "refused: nested more than 20 levels", id="deep-flow"),
        pytest.param(
            "".join(" " * level + f"k{level}:\n" for level in range(1000)),
            "refused: nested more than 20",
            id="deep-block",
        ),
        pytest.param("- x\n" * 20_000, "refused: more than 10000 values", id="long-list"),
        pytest.param(
            "defaults: &defaults\n  inactive_days: 60\nstale:\n  <<: *defaults\n",
            ":4:3: refused: merge keys (<<) are not supported — write the keys out in each section",
            id="merge-key",
        ),
        pytest.param(
            "? [complex, key]\n: 1\n",
            ":1:3: refused: a key that is a list or mapping — keys are plain names",
            id="list-key",
        ),
        pytest.param(
            "#" * MAX_POLICY_BYTES + "\n", "larger than 1024 KiB, the most a policy file may be", id="oversize"
        ),
    ],
)
def test_hostile_yaml_is_refused_in_one_line(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError) as raised:
        load_policy(path)
    line = raised.value.one_line()
    assert line.startswith(str(path))
    assert expected in line
    assert "\n" not in line
    assert len(line) < 400


def test_a_few_aliases_may_reuse_a_list(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(
        "invitations:\n  denied_domains: &personal [gmail.com, outlook.com]\nexemptions:\n  domains: *personal\n"
    )
    policy = load_policy(path)
    assert policy.exemptions.domains == ["gmail.com", "outlook.com"]


def test_a_policy_just_under_the_size_limit_is_read(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("version: 1\n" + "#" * (MAX_POLICY_BYTES - 12) + "\n")
    assert load_policy(path) == Policy()


# -- error lines stay short however large the input ------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "stale:\n  inactive_days: '" + "x" * 100_000 + "'\n", "got text 'xxxxxxxx", id="huge-value-is-clipped"
        ),
        pytest.param("stale:\n  ? " + "k" * 100_000 + "\n  : 1\n", "stale.kkkkkkk", id="huge-key-is-clipped"),
        pytest.param(
            "".join(f"k{i}: 1\n" for i in range(200)), "k4: unknown key (known keys: version", id="many-unknown-keys"
        ),
        pytest.param(
            "stale: " + "[" * 17 + "1" + "]" * 17 + "\n",
            "stale: expected a mapping of keys, got a list",
            id="deep-value",
        ),
        pytest.param(
            "exemptions:\n  users: [" + ", ".join(["yes"] * 3000) + "]\n",
            "exemptions.users.4: expected text, got a boolean",
            id="many-bad-items",
        ),
        pytest.param(
            "stale:\n  inactive_days: 1\n" + "\n".join(f"  {'k' * 60}{i}: 1" for i in range(9)) + "\n",
            "(and 4 more problems)",
            id="problems-beyond-five-are-counted",
        ),
        pytest.param(
            "stale: {" + ", ".join(["a: " + "[" * 18 + "]" * 18] * 2) + "}\n",
            ":1:",
            id="duplicate-deep-key",
        ),
    ],
)
def test_error_lines_are_bounded(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError) as raised:
        load_policy(path)
    line = raised.value.one_line()
    assert expected in line
    assert "\n" not in line
    assert len(line) < 1000 + len(str(path))


# -- settings ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("GUESTCTL_MAX_CONCURRENCY", "yes", "GUESTCTL_MAX_CONCURRENCY: input should be a whole number"),
        ("GUESTCTL_MAX_CONCURRENCY", "1.5", "GUESTCTL_MAX_CONCURRENCY: input should be a whole number"),
        ("GUESTCTL_MAX_CONCURRENCY", "1.0", "GUESTCTL_MAX_CONCURRENCY: input should be a whole number"),
        ("GUESTCTL_MAX_CONCURRENCY", "true", "GUESTCTL_MAX_CONCURRENCY: input should be a whole number"),
        ("GUESTCTL_MAX_CONCURRENCY", "", "GUESTCTL_MAX_CONCURRENCY: input should be a whole number"),
        ("GUESTCTL_MAX_CONCURRENCY", "0", "GUESTCTL_MAX_CONCURRENCY: input should be greater than or equal to 1"),
        ("GUESTCTL_SIGN_IN_ACTIVITY_PER_MINUTE", "on", "GUESTCTL_SIGN_IN_ACTIVITY_PER_MINUTE: input should be a whole"),
        ("GUESTCTL_BUDGET_FRACTION", "yes", "GUESTCTL_BUDGET_FRACTION: input should be a valid number"),
        ("GUESTCTL_BUDGET_FRACTION", "nan", "GUESTCTL_BUDGET_FRACTION: input should be less than or equal to 1"),
        ("GUESTCTL_RETRY_BUDGET_SECONDS", "off", "GUESTCTL_RETRY_BUDGET_SECONDS: input should be a valid number"),
        ("GUESTCTL_TIME_SCALE", "x" * 1000, "(got 'xxxxxxxxxxxxxxx"),
    ],
)
def test_bad_numeric_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    line = raised.value.one_line()
    assert expected in line
    assert len(line) < 400


@pytest.mark.parametrize(
    ("variable", "value", "attribute", "expected"),
    [
        ("GUESTCTL_MAX_CONCURRENCY", "8", "max_concurrency", 8),
        ("GUESTCTL_MAX_CONCURRENCY", " 8 ", "max_concurrency", 8),
        ("GUESTCTL_BUDGET_FRACTION", "0.5", "budget_fraction", 0.5),
        ("GUESTCTL_BUDGET_FRACTION", "1", "budget_fraction", 1.0),
    ],
)
def test_numeric_settings_are_read_from_text(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, attribute: str, expected: object
) -> None:
    monkeypatch.setenv(variable, value)
    assert getattr(load_settings(), attribute) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://user:secret@127.0.0.1:8765/v1.0", "http://user:<redacted>@127.0.0.1:8765/v1.0"),
        ("https://user:secret@graph.example.com/v1.0?x=1", "https://user:<redacted>@graph.example.com/v1.0?x=1"),
        ("http://:secret@127.0.0.1:8765/v1.0", "http://:<redacted>@127.0.0.1:8765/v1.0"),
        ("http://user@127.0.0.1:8765/v1.0", "http://user@127.0.0.1:8765/v1.0"),
        ("https://graph.microsoft.com/v1.0", "https://graph.microsoft.com/v1.0"),
    ],
)
def test_redact_url_hides_a_password(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_settings_shown_hide_the_graph_url_password() -> None:
    settings = load_settings(auth="emulator", graph_url="http://ann:s3cret@127.0.0.1:8765/v1.0")
    assert settings.shown()["graph_url"] == "http://ann:<redacted>@127.0.0.1:8765/v1.0"
    assert "s3cret" not in json.dumps(settings.shown())


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"graph_url": "http://ann:s3cret@graph.example.com/v1.0"}, id="plain-http"),
        pytest.param({"graph_url": "http://ann:s3cret@graph.example.com/v1.0", "auth": "emulator"}, id="emulator"),
        pytest.param({"graph_url": "ftp://ann:s3cret@graph.example.com/v1.0"}, id="not-http"),
    ],
)
def test_graph_url_errors_hide_the_password(overrides: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(**overrides)
    assert "GUESTCTL_GRAPH_URL" in raised.value.one_line() or "GUESTCTL_AUTH" in raised.value.one_line()
    assert "s3cret" not in raised.value.one_line()
