"""Settings (where things are: environment / Functions app settings / CLI flags) and Policy (what guestctl
may do: the reviewed, versioned YAML file).

Settings come from `GUESTCTL_*` variables and can be overridden by CLI flags. The policy is validated
strictly — an unknown key, a wrong type or an unsafe value is an error naming the file and the key path —
and has safe defaults when absent, so a typo can never silently widen what guestctl does.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.errors import ConfigError, PolicyError

ENV_PREFIX = "GUESTCTL_"
DEFAULT_STATE = ".guestctl/state.db"


# -- settings -----------------------------------------------------------------------------------------------
class Settings(BaseSettings):
    """Where guestctl runs and what it talks to. Every field is `GUESTCTL_<NAME>` in the environment."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    cloud: Literal["global", "usgov", "usgov-dod", "china"] = "global"
    graph_url: str | None = Field(
        None, description="Overrides the cloud's Graph endpoint (emulator: http://127.0.0.1:8765/v1.0)"
    )
    auth: Literal["default", "managed-identity", "emulator"] = "default"
    tenant_id: str | None = None
    client_id: str | None = Field(
        None, description="App (client) id; for a user-assigned managed identity, its client id"
    )
    state: str = Field(DEFAULT_STATE, description="SQLite path, Azure Storage connection string or table account URL")
    state_prefix: str = Field(
        "guestctl", description="Prefix of the Azure table names (several deployments per account)"
    )
    policy: Path | None = Field(None, description="Policy YAML; safe defaults when unset")
    out: Path = Field(Path("guestctl-out"), description="Where plans and reports are written")
    tenant_size: Literal["S", "M", "L"] = Field("L", description="Graph's size class: S <50 users, M 50-500, L >500")
    budget_fraction: float = Field(0.9, gt=0, le=1, description="Share of Graph's per-app limits the pacer uses")
    max_concurrency: int = Field(16, ge=1, le=64)
    retry_budget_seconds: float = Field(120.0, gt=0, le=900)
    time_scale: float = Field(1.0, gt=0, le=1, description="Shrinks Graph's limit windows (emulator only)")
    sign_in_activity_per_minute: int = Field(
        10, ge=1, le=1_000_000, description="Pages of /users with signInActivity per minute (Graph: 10, unconfirmed)"
    )

    @field_validator("graph_url")
    @classmethod
    def _check_graph_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an absolute http(s) URL such as https://graph.microsoft.com/v1.0")
        return value.rstrip("/")

    def is_loopback_graph(self) -> bool:
        return urlsplit(self.graph_url or "").hostname in ("127.0.0.1", "localhost", "::1")

    def check(self) -> None:
        """Cross-field rules that pydantic cannot express per field, and the state location's form."""
        from shared.store.location import parse_location
        from shared.store.rules import check_prefix

        for name, check, value in (
            ("STATE", parse_location, self.state),
            ("STATE_PREFIX", check_prefix, self.state_prefix),
        ):
            try:
                check(value)
            except ConfigError as error:
                raise ConfigError(f"{ENV_PREFIX}{name}: {error.message}", hint=error.hint) from None
        if self.auth == "emulator" and not self.is_loopback_graph():
            raise ConfigError(
                "GUESTCTL_AUTH=emulator sends a static token and is only allowed with a loopback GUESTCTL_GRAPH_URL"
                f" (got {self.graph_url or 'the ' + self.cloud + ' cloud'})",
                hint="set GUESTCTL_GRAPH_URL=http://127.0.0.1:8765/v1.0, or use GUESTCTL_AUTH=default",
            )
        if self.graph_url and urlsplit(self.graph_url).scheme == "http" and not self.is_loopback_graph():
            raise ConfigError(
                f"GUESTCTL_GRAPH_URL: plain http is only allowed for a loopback emulator (got {self.graph_url})",
                hint="use https",
            )


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with CLI overrides (None = not given). Errors name the variable."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        settings = Settings(**given)
    except ValidationError as error:
        first = error.errors()[0]
        name = ENV_PREFIX + str(first["loc"][0]).upper()
        raise ConfigError(
            f"{name}: {_lower_first(first['msg'])} (got {first.get('input')!r})",
            hint=f"fix the environment variable / app setting {name} or the matching --flag",
        ) from None
    settings.check()
    return settings


# -- policy ---------------------------------------------------------------------------------------------------
def _domain(value: str) -> str:
    value = value.strip().lower().lstrip("@")
    labels = value.split(".")
    if len(labels) < 2 or not all(labels) or any(not label.replace("-", "").isalnum() for label in labels):
        raise ValueError("not a domain name (expected e.g. fabrikam.com)")
    return value


Domain = Annotated[str, AfterValidator(_domain)]
Days = Annotated[int, Field(ge=1, le=3650)]
NCRONTAB_FIELDS = 6


def _ncrontab(value: str) -> str:
    """Azure Functions timers use six-field NCRONTAB: second minute hour day month weekday."""
    if len(value.split()) != NCRONTAB_FIELDS:
        raise ValueError(
            "must be a six-field NCRONTAB expression like '0 0 6 * * 1' (second minute hour day month weekday)"
        )
    return value


Schedule = Annotated[str, AfterValidator(_ncrontab)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InvitationPolicy(StrictModel):
    redirect_url: HttpUrl = Field(
        HttpUrl("https://myapplications.microsoft.com"),
        description="Where guests land after redeeming, unless a row sets its own",
    )
    send_email: bool = Field(True, description="Send an invitation email (Microsoft's, or ours when a message is set)")
    allowed_domains: list[Domain] = Field(
        default_factory=list, description="If not empty, only these domains may be invited"
    )
    denied_domains: list[Domain] = Field(
        default_factory=list, description="Never invite these domains (wins over allowed)"
    )
    message_template: str | None = Field(None, description="Our own invitation email body; {redeem_url} is required")
    sender_mailbox: str | None = Field(None, description="Mailbox (UPN or id) that sends our own emails via sendMail")

    @field_validator("message_template")
    @classmethod
    def _needs_redeem_url(cls, value: str | None) -> str | None:
        if value is not None and "{redeem_url}" not in value:
            raise ValueError("must contain {redeem_url}, or the guest cannot redeem the invitation")
        return value


class StalePolicy(StrictModel):
    inactive_days: Days = Field(90, description="No activity for longer than this → stale")
    never_redeemed_days: Days = Field(30, description="PendingAcceptance for longer than this → never-redeemed")
    notify_sponsors: bool = Field(
        False,
        description="Email each sponsor the list of their guests before acting (needs invitations.sender_mailbox)",
    )
    disable_after_days: Days = Field(14, description="Days between flagging (and notice) and disabling")
    delete_after_days: Days = Field(30, description="Days between disabling and (soft) deleting")


class Exemptions(StrictModel):
    groups: list[str] = Field(
        default_factory=list, description="Group ids or names; members (transitive) are never acted on"
    )
    domains: list[Domain] = Field(default_factory=list, description="Guests from these domains are never acted on")
    users: list[str] = Field(default_factory=list, description="User ids, UPNs or mail addresses never acted on")
    attested_until: dict[str, date] = Field(
        default_factory=dict, description="User id or mail → date a sponsor confirmed the guest is needed until"
    )


class SafetyPolicy(StrictModel):
    max_actions: int = Field(
        50, ge=0, le=100_000, description="A plan with more disable/delete actions is refused whole"
    )
    max_percent: float = Field(5.0, ge=0, le=100, description="…or more than this % of all guests")
    plan_max_age_hours: int = Field(24, ge=1, le=720, description="A saved plan older than this is refused")


class Schedules(StrictModel):
    sweep: Schedule = Field("0 0 6 * * 1", description="Stale-guest sweep (NCRONTAB, UTC): Mondays 06:00")
    report: Schedule = Field("0 0 7 * * 1", description="Weekly cleanup report: Mondays 07:00")
    delta: Schedule = Field("0 0 */6 * * *", description="Delta reconciliation (tokens expire after 7 days)")
    renew_subscriptions: Schedule = Field("0 30 */12 * * *", description="Renew Graph subscriptions")


class Policy(StrictModel):
    """The reviewed definition of guestctl's behaviour. Every key and default is in docs/policy.md."""

    version: Literal[1] = Field(1, description="Policy format version")
    invitations: InvitationPolicy = Field(default_factory=InvitationPolicy)
    stale: StalePolicy = Field(default_factory=StalePolicy)
    exemptions: Exemptions = Field(default_factory=Exemptions)
    safety: SafetyPolicy = Field(default_factory=SafetyPolicy)
    schedules: Schedules = Field(default_factory=Schedules)

    @model_validator(mode="after")
    def _notices_need_a_sender(self) -> Policy:
        if self.stale.notify_sponsors and not self.invitations.sender_mailbox:
            raise ValueError(
                "stale.notify_sponsors is on but invitations.sender_mailbox is not set: name the mailbox that "
                "sends the sponsor notices, or turn the notices off"
            )
        return self

    def digest(self) -> str:
        """Stable id of this exact policy; plans carry it so a changed policy invalidates old plans."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def policy_json_schema() -> dict[str, Any]:
    """JSON Schema for editors (docs/policy.schema.json), generated from the same model."""
    schema = Policy.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "guestctl policy"
    return schema


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (PyYAML silently keeps the last one)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
# Dates stay strings so that pydantic validates them and names the key path of a bad one.
_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_policy(path: Path | None) -> Policy:
    """The policy at `path` (None → safe defaults). Raises PolicyError with one actionable line."""
    if path is None:
        return Policy()
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(f"{name}: file not found", hint="check GUESTCTL_POLICY / --policy") from None
    except (OSError, UnicodeDecodeError) as error:
        raise PolicyError(f"{name}: cannot read: {error}") from None
    try:
        document = yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
        problem = error.problem or error.context or "invalid YAML"
        raise PolicyError(f"{where}: invalid YAML: {problem}", hint="check the indentation and quoting") from None
    except yaml.YAMLError as error:
        raise PolicyError(f"{name}: invalid YAML: {error}") from None
    if document is None:
        return Policy()
    if not isinstance(document, dict):
        raise PolicyError(f"{name}: the policy must be a mapping of sections (got {type(document).__name__})")
    try:
        return Policy.model_validate(document)
    except ValidationError as error:
        raise PolicyError(_policy_error_line(name, error)) from None


def _policy_error_line(name: str, error: ValidationError) -> str:
    problems = error.errors()
    first = problems[0]
    key_path = ".".join(str(part) for part in first["loc"])
    more = f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})" if len(problems) > 1 else ""
    if not key_path:  # a rule across sections: its message names the keys
        return f"{name}: {_lower_first(first['msg'].removeprefix('Value error, '))}{more}"
    if first["type"] == "extra_forbidden":
        message = f"unknown key{_suggestion(first['loc'])}"
    else:
        message = f"{_lower_first(first['msg'].removeprefix('Value error, '))} (got {first.get('input')!r})"
    return f"{name}: {key_path}: {message}{more}"


def _suggestion(loc: tuple[Any, ...]) -> str:
    """' (did you mean ...?)' for a misspelt key, from the model's own field names."""
    model: type[BaseModel] = Policy
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return ""
        model = annotation
    known = list(model.model_fields)
    close = difflib.get_close_matches(str(loc[-1]), known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else f" (known keys: {', '.join(known)})"


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]
