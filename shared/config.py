"""Settings (where things are: environment / Functions app settings / CLI flags) and Policy (what guestctl
may do: the reviewed, versioned YAML file).

Settings come from `GUESTCTL_*` variables and can be overridden by CLI flags. The policy is validated
strictly — an unknown key, a wrong type or an unsafe value is an error naming the file and the key path —
and has safe defaults when absent, so a typo can never silently widen what guestctl does.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import os
import re
import reprlib
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit, urlunsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    HttpUrl,
    SecretStr,
    Strict,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.errors import MAX_MESSAGE_CHARS, ConfigError, PolicyError, cap
from shared.offboarding.adapters.config import AdaptersConfig

ENV_PREFIX = "GUESTCTL_"
DEFAULT_STATE = ".guestctl/state.db"


# -- settings -----------------------------------------------------------------------------------------------
def _whole_number_text(value: Any) -> Any:
    """Settings arrive as text: "8" is fine, but "1.0" must not quietly become 1 (pydantic's lax int takes it)."""
    if isinstance(value, str) and not re.fullmatch(r"\s*[0-9]+\s*", value):
        raise PydanticCustomError("int_parsing", "Input should be a whole number such as 16")
    return value


WholeNumber = Annotated[int, BeforeValidator(_whole_number_text)]

# Settings fields that are timer schedules: functions/*.py name them `%GUESTCTL_<FIELD>%`, infra/main.bicep sets
# them, and GET /api/health refuses to answer ok while one is unset (the host would not load that timer).
TIMER_SCHEDULES = (
    "sweep_schedule",
    "report_schedule",
    "renew_schedule",
    "delta_schedule",
    "reminders_schedule",
    "hr_requeue_schedule",
    "hr_due_schedule",
    "partner_discovery_schedule",
    "partner_verification_schedule",
)


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
    max_concurrency: WholeNumber = Field(16, ge=1, le=64)
    retry_budget_seconds: float = Field(120.0, gt=0, le=900)
    graph_timeout_seconds: float = Field(
        30.0, gt=0, le=300, description="How long one Graph request waits for its answer before it counts as failed"
    )
    time_scale: float = Field(1.0, gt=0, le=1, description="Shrinks Graph's limit windows (emulator only)")
    sign_in_activity_per_minute: WholeNumber = Field(
        10, ge=1, le=1_000_000, description="Pages of /users with signInActivity per minute (Graph: 10, unconfirmed)"
    )
    shared_budget: Literal["auto", "on", "off"] = Field(
        "auto", description="Share Graph's budget with other processes through the state store (auto: Azure Tables)"
    )
    instances_assumed: WholeNumber = Field(
        40, ge=1, le=1000, description="Budget divisor while the shared budget's store is unreachable"
    )

    paused: bool = Field(
        False,
        description="Functions app: timers do nothing and queue workers hand messages back (docs/operations.md)",
    )
    # The Functions app's scheduled sweep (docs/stale.md, "In Azure Functions").
    sweep_mode: Literal["plan", "apply"] = Field("plan", description="Timer sweeps: keep the plan, or apply it")
    sweep_time_budget: float = Field(
        420.0, ge=0, le=540, description="Seconds one invocation plans before handing over (10-minute timeout)"
    )
    # Every timer's schedule is an app setting the Functions host resolves (`%GUESTCTL_<NAME>_SCHEDULE%` in
    # functions/*.py; NCRONTAB, UTC: Flex has no time zones). infra/main.bicep sets each to the default below.
    sweep_schedule: str = Field("0 0 6 * * 1", description="NCRONTAB (UTC) of the timer sweep; the host reads it")
    report_schedule: str = Field(
        "0 0 7 * * 1", description="NCRONTAB (UTC) of the weekly report's timer; the host reads it"
    )
    renew_schedule: str = Field(
        "0 30 */12 * * *", description="Graph subscription renewal timer (subscriptions last under 3 days)"
    )
    delta_schedule: str = Field(
        "0 0 */6 * * *", description="Delta round without notifications (delta tokens last 7 days)"
    )
    reminders_schedule: str = Field(
        "0 0 9 * * *", description="Invitation reminders: daily 09:00 (reminders fall on whole days)"
    )
    hr_requeue_schedule: str = Field(
        "0 */5 * * * *", description="HR events that lost their queue message are queued again"
    )
    hr_due_schedule: str = Field(
        "0 */15 * * * *", description="Scheduled HR events whose effective date has come (a day: 15 min is on time)"
    )
    partner_discovery_schedule: str = Field(
        "0 0 5 * * *", description="Partner discovery: daily, before the working day in Europe"
    )
    partner_verification_schedule: str = Field(
        "0 30 5 * * *", description="Partner verification and retirement plan: after discovery (lookups cached)"
    )
    notification_delivery: Literal["webhook", "eventgrid"] = Field(
        "webhook", description="How Graph delivers change notifications: to our webhook, or via Event Grid to a queue"
    )
    notification_url: str | None = Field(
        None,
        description="webhook: https://<app>/api/graph/notifications?code=<function key>; "
        "eventgrid: EventGrid:?azuresubscriptionid=…&resourcegroup=…&partnertopic=…&location=…",
    )
    lifecycle_url: str | None = Field(
        None,
        description="Lifecycle notifications' URL; default: /api/graph/lifecycle beside the webhook, or the same "
        "EventGrid: URL",
    )
    delta_min_interval: float = Field(
        30.0, ge=0, le=600, description="Seconds between notification-driven delta rounds (a burst becomes few)"
    )
    notification_secret: SecretStr | None = Field(
        None, max_length=128, description="clientState of our subscriptions (a secret, at most 128 characters)"
    )

    @field_validator(*TIMER_SCHEDULES)
    @classmethod
    def _check_schedule(cls, value: str) -> str:
        return check_ncrontab(value)

    @field_validator("sweep_mode", mode="before")
    @classmethod
    def _mode_in_any_case(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("graph_url")
    @classmethod
    def _check_graph_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an absolute http(s) URL such as https://graph.microsoft.com/v1.0")
        return value.rstrip("/")

    def shown(self) -> dict[str, Any]:
        """The settings as `config check` prints them: keys in the state location and a password in the Graph
        URL are hidden, since the output is pasted into tickets and chats."""
        from shared.store.location import redact

        shown = self.model_dump(mode="json")
        shown["state"] = redact(self.state)
        shown["graph_url"] = redact_url(self.graph_url) if self.graph_url else None
        for name in ("notification_url", "lifecycle_url"):
            shown[name] = redact_url(shown[name]) if shown[name] else None
        return shown

    def is_loopback_graph(self) -> bool:
        return urlsplit(self.graph_url or "").hostname in ("127.0.0.1", "localhost", "::1")

    def check_functions_app(self) -> None:
        """What the Functions app needs beyond `check`: the timers' schedules, which the host resolves from app
        settings (`%GUESTCTL_SWEEP_SCHEDULE%`, … have no default in the host; without one its timer does not
        load)."""
        for name in TIMER_SCHEDULES:
            if name not in self.model_fields_set:
                field = type(self).model_fields[name]
                raise ConfigError(
                    f"{ENV_PREFIX}{name.upper()}: not set: the Functions host reads a timer's schedule from it",
                    hint=f"set the app setting, e.g. to {field.default} ({field.description})",
                )

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
                f" (got {redact_url(self.graph_url) if self.graph_url else 'the ' + self.cloud + ' cloud'})",
                hint="set GUESTCTL_GRAPH_URL=http://127.0.0.1:8765/v1.0, or use GUESTCTL_AUTH=default",
            )
        for name, url in (("NOTIFICATION_URL", self.notification_url), ("LIFECYCLE_URL", self.lifecycle_url)):
            problem = notification_url_problem(self.notification_delivery, url) if url else None
            if problem:
                raise ConfigError(f"{ENV_PREFIX}{name}: {problem}", hint=f"see {ENV_PREFIX}NOTIFICATION_DELIVERY")
        if self.graph_url and urlsplit(self.graph_url).scheme == "http" and not self.is_loopback_graph():
            raise ConfigError(
                "GUESTCTL_GRAPH_URL: plain http is only allowed for a loopback emulator"
                f" (got {redact_url(self.graph_url)})",
                hint="use https",
            )


EVENT_GRID_PARAMETERS = ("azuresubscriptionid", "resourcegroup", "partnertopic", "location")


def notification_url_problem(delivery: str, url: str) -> str | None:
    """What is wrong with a subscription's notification URL for this delivery mode, or None."""
    if delivery == "eventgrid":
        if not url.startswith("EventGrid:?"):
            return "with Event Grid delivery it is EventGrid:?azuresubscriptionid=…&resourcegroup=…&partnertopic=…"
        given = parse_qs(url.partition("?")[2])
        missing = [name for name in EVENT_GRID_PARAMETERS if not given.get(name)]
        return f"the EventGrid: URL lacks {', '.join(missing)}" if missing else None
    parts = urlsplit(url)
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        return "Graph delivers only to https URLs (plain http only to a loopback address, for tests)"
    return None


SECRET_QUERY_KEYS = frozenset({"code", "sig", "key", "token", "secret", "password"})


def redact_url(url: str) -> str:
    """`url` with the password of any user:password@ part and secret query values (a function key's `code`,
    a SAS `sig`) hidden: an emulator, proxy or webhook URL may carry one."""
    parts = urlsplit(url)
    if parts.query:
        query = [(k, "<redacted>" if k.lower() in SECRET_QUERY_KEYS else v) for k, v in parse_qsl(parts.query, True)]
        parts = parts._replace(query=urlencode(query, safe="<>:/"))
    if parts.password is None:
        return urlunsplit(parts)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:<redacted>@{host}"))


PAUSED_SETTING = ENV_PREFIX + "PAUSED"
NOT_PAUSED = frozenset({"", "0", "off", "f", "false", "n", "no"})  # pydantic's false words, and unset


def paused_now() -> bool:
    """GUESTCTL_PAUSED as the Functions app's triggers read it: straight from the environment, so pausing
    works while other settings are broken, and anything but a clear false pauses (fail closed). Settings.paused
    reads the same setting strictly, so `config check` and GET /api/health name a value that is neither."""
    return os.environ.get(PAUSED_SETTING, "").strip().lower() not in NOT_PAUSED


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with CLI overrides (None = not given). Errors name the variable."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        settings = Settings(**given)
    except ValidationError as error:
        first = error.errors()[0]
        name = ENV_PREFIX + str(first["loc"][0]).upper()
        value = first.get("input")
        if first["loc"][0] == "graph_url" and isinstance(value, str):
            value = redact_url(value)
        raise ConfigError(
            f"{name}: {_lower_first(first['msg'].removeprefix('Value error, '))} (got {_quote(value)})",
            hint=f"fix the environment variable / app setting {name} or the matching --flag",
        ) from None
    settings.check()
    return settings


# -- policy ---------------------------------------------------------------------------------------------------
MAX_POLICY_BYTES = 1024 * 1024  # a real policy is a few kilobytes
MAX_YAML_DEPTH = 20  # a policy needs 4 levels
MAX_YAML_ALIASES = 50  # enough to reuse a list or two, not enough to build a bomb
MAX_YAML_VALUES = 10_000  # keys, values and list items, aliases expanded: bounds a hostile file's cost
MAX_PROBLEMS = 5  # problems listed in one error line
PROBLEM_CHARS = 64  # each of them at least this long when the line has to be shared
MAX_QUOTED = 80  # characters of a quoted input value in an error


def domain_name(value: str) -> str:
    """`value` as a lower-case DNS name, or ValueError."""
    value = value.strip().lower().lstrip("@")
    labels = value.split(".")
    if len(labels) < 2 or not all(labels) or any(not label.replace("-", "").isalnum() for label in labels):
        raise ValueError("not a domain name (expected e.g. fabrikam.com)")
    return value


def _exact_int(value: Any) -> Any:
    """Literal[1] alone lets True and 1.0 through (they compare equal to 1), even in strict mode."""
    if type(value) is not int:
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_date(value: Any) -> Any:
    """Only YYYY-MM-DD text (the YAML loader keeps dates as text) or a date: never a number or a datetime."""
    if type(value) is date or (isinstance(value, str) and _ISO_DATE.fullmatch(value)):
        return value
    raise PydanticCustomError("date_type", "Input should be a valid date")


Domain = Annotated[str, AfterValidator(domain_name)]
Days = Annotated[int, Field(ge=1, le=3650)]
IsoDate = Annotated[date, Strict(False), BeforeValidator(_iso_date)]  # strict date would refuse the text
NCRONTAB_FIELDS = (  # name, lowest, highest, names (the first name is `lowest`)
    ("second", 0, 59, ()),
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day", 1, 31, ()),
    ("month", 1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")),
    ("day-of-week", 0, 6, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")),
)
_NUMBER = re.compile(r"[0-9]{1,4}")


def check_ncrontab(expression: str) -> str:
    """Azure Functions timers use six-field NCRONTAB; the host refuses a bad one only when the app starts."""
    fields = expression.split()
    if len(fields) != len(NCRONTAB_FIELDS):
        raise ValueError(
            f"must be a six-field NCRONTAB expression like '0 0 6 * * 1' (second minute hour day month "
            f"day-of-week), got {len(fields)} field{'' if len(fields) == 1 else 's'}"
        )
    for text, (name, lowest, highest, names) in zip(fields, NCRONTAB_FIELDS, strict=True):
        for part in text.split(","):
            problem = _ncrontab_part(part, lowest, highest, names)
            if problem:
                raise ValueError(f"{name} field: {_clip(part, 20)!r} {problem}")
    return expression


def _ncrontab_part(part: str, lowest: int, highest: int, names: tuple[str, ...]) -> str | None:
    """Why one comma-separated part of a field is wrong (None: it is fine): *, a, a-b, */n or a-b/n."""
    span, slash, step = part.partition("/")
    if slash and not (_NUMBER.fullmatch(step) and int(step) >= 1):
        return "has a step that is not a whole number of at least 1"
    if span == "*":
        return None
    first, dash, last = span.partition("-")
    if slash and not dash:
        return "has a step without '*' or a range before it (write e.g. */5 or 0-30/5)"
    numbers = []
    for value in (first, last) if dash else (first,):
        if _NUMBER.fullmatch(value):
            number = int(value)
        elif value.lower() in names:
            number = names.index(value.lower()) + lowest
        else:
            kinds = f"a number or a name like {names[1].title()}" if names else "a number"
            return f"is not *, {kinds}, a range a-b or a step */n"
        if not lowest <= number <= highest:
            return f"is outside {lowest}-{highest}"
        numbers.append(number)
    if numbers != sorted(numbers):
        return "is a range that runs backwards"
    return None


Schedule = Annotated[str, AfterValidator(check_ncrontab)]


class StrictModel(BaseModel):
    """Strict types: YAML's yes/on are booleans, and a boolean, 14.5 or "30" must not quietly become a number."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


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
    sender_mailbox: str | None = Field(
        None, description="Mailbox (UPN or id) that sends our own emails (a draft, then sent: exactly once)"
    )
    reminders: list[Days] = Field(
        default_factory=list,
        max_length=10,
        description="Days after the invitation to remind a guest who has not redeemed, e.g. [3, 7, 14]; "
        "empty: no reminders",
    )

    @field_validator("reminders")
    @classmethod
    def _increasing(cls, value: list[int]) -> list[int]:
        if any(later <= earlier for earlier, later in itertools.pairwise(value)):
            raise ValueError("must be increasing day numbers, each once, e.g. [3, 7, 14]")
        return value

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
    attested_until: dict[str, IsoDate] = Field(
        default_factory=dict, description="User id or mail → date a sponsor confirmed the guest is needed until"
    )


class AttestationPolicy(StrictModel):
    keep_days: Days = Field(
        180, description="A sponsor's keep (docs/attestation.md) exempts the guest from sweeps for this many days"
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


_GUID_TEXT = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _object_id(value: str) -> str:
    if not _GUID_TEXT.fullmatch(value.strip()):
        raise ValueError("not an object id (expected a GUID such as 0b9b8e2e-8a4c-4c2b-9f3e-1a2b3c4d5e6f)")
    return value.strip().lower()


def _tenant(value: str) -> str:
    """A partner tenant: its id (a GUID) or one of its verified domains (resolved when planning)."""
    text = value.strip()
    if _GUID_TEXT.fullmatch(text):
        return text.lower()
    try:
        return domain_name(text)
    except ValueError:
        raise ValueError("not a tenant id (a GUID) or a domain name such as fabrikam.com") from None


ObjectId = Annotated[str, AfterValidator(_object_id)]
TenantRef = Annotated[str, AfterValidator(_tenant)]
DIRECT_CONNECT_APPLICATIONS = ("Office365", "AllApplications")


def _unique(value: list[str], what: str) -> list[str]:
    repeated = sorted({item for item in value if value.count(item) > 1})
    if repeated:
        raise ValueError(f"lists {what} {', '.join(repeated[:3])} more than once")
    return value


class DirectConnectScope(StrictModel):
    """Who and which applications one direction of B2B direct connect covers."""

    users: Literal["all"] | list[ObjectId] = Field(
        default_factory=list, description='"all", or user object ids (inbound: in the partner\'s tenant)'
    )
    groups: list[ObjectId] = Field(
        default_factory=list, description="Group object ids (inbound: in the partner's tenant; outbound: ours)"
    )
    applications: list[Literal["Office365", "AllApplications"]] = Field(
        default_factory=lambda: ["Office365"],
        min_length=1,
        description="Office365 (Teams shared channels) or AllApplications",
    )

    @model_validator(mode="after")
    def _names_someone(self) -> DirectConnectScope:
        if self.users == "all" and self.groups:
            raise ValueError('users is "all": leave groups empty (all users already includes them)')
        if self.users != "all" and not self.users and not self.groups:
            raise ValueError('names nobody: set users to "all", or list user or group object ids')
        if self.users != "all":
            _unique(self.users, "user")
        _unique(self.groups, "group")
        _unique(list(self.applications), "application")
        return self


class InboundTrust(StrictModel):
    mfa: bool = Field(False, description="Accept the partner's MFA (needed when Conditional Access requires MFA)")
    compliant_device: bool = Field(False, description="Accept the partner's compliant-device claims")
    hybrid_joined: bool = Field(False, description="Accept the partner's hybrid Entra-joined device claims")


class ChannelToCreate(StrictModel):
    """A shared channel guestctl creates in the team when the team has none of that name (migration)."""

    create: str = Field(
        min_length=1,
        max_length=50,
        description="Display name of the shared channel to create (Graph allows 50 characters); an existing "
        "shared channel of that name is used instead",
    )
    description: str | None = Field(None, max_length=1024, description="The new channel's description")

    @field_validator("create")
    @classmethod
    def _trimmed(cls, value: str) -> str:
        if value != value.strip():
            raise ValueError("the channel name starts or ends with a space: remove it")
        return value


_NAME_FORM, _CREATE_FORM = "<channel>", "<channel to create>"  # left out of error key paths


def _channel_form(value: Any) -> str:
    return _CREATE_FORM if isinstance(value, dict | ChannelToCreate) else _NAME_FORM


# an existing shared channel (id or display name), or {create: NAME}: one error for the form written, not both
ChannelRef = Annotated[
    Annotated[Annotated[str, Field(min_length=1, max_length=256)], Tag(_NAME_FORM)]
    | Annotated[ChannelToCreate, Tag(_CREATE_FORM)],
    Discriminator(_channel_form),
]


class PartnerTrust(StrictModel):
    """One partner tenant's B2B direct connect settings, as reviewed desired state."""

    tenant: TenantRef = Field(description="The partner's tenant id, or a domain of theirs (resolved when planning)")
    name: str | None = Field(None, max_length=120, description="A label for people (plans, instructions)")
    inbound: DirectConnectScope = Field(description="Their users who may use our Teams shared channels")
    trust: InboundTrust | None = Field(
        None, description="Claims from their tenant we accept; unset: inboundTrust is left as it is"
    )
    outbound: DirectConnectScope | None = Field(
        None, description="Our users who may use their shared channels; unset: left as it is"
    )
    channels: dict[Annotated[str, Field(min_length=1, max_length=256)], ChannelRef] = Field(
        default_factory=dict,
        max_length=200,
        description="Migration: team (id or display name) → the shared channel (id or display name) that the "
        "partner's Teams-only guests of that team join with their home identity, or {create: NAME} to create "
        "a shared channel of that name in the team when it has none",
    )
    home_ids: Literal["file", "app"] = Field(
        "file",
        description="Migration: where the home object ids of the partner's people come from: `file`, the id file "
        "their admin's `guestctl partners accept` wrote (`partners migrate --ids FILE`); `app`, read from their "
        "tenant by our multi-tenant app, which their admin consented with User.Read.All there "
        "(`partners migrate --tenant TENANT`)",
    )


class PartnersPolicy(StrictModel):
    tenants: list[PartnerTrust] = Field(
        default_factory=list, max_length=500, description="Partner tenants whose direct connect settings we manage"
    )
    retire_after_days: int = Field(
        0,
        ge=0,
        le=3650,
        description="Retire a Teams-only guest of a named partner this many days after our trust for the partner "
        "was applied, even if not seen signing in through direct connect; 0: only after such a sign-in",
    )

    max_moves: int = Field(
        200,
        ge=1,
        le=100_000,
        description="The blast-radius cap of one migration run: the most people it moves into shared channels; "
        "a larger plan is refused whole (migrations add access, so they have their own cap, apart from safety)",
    )

    @field_validator("tenants")
    @classmethod
    def _each_once(cls, value: list[PartnerTrust]) -> list[PartnerTrust]:
        _unique([partner.tenant for partner in value], "tenant")
        return value


def _address(value: str) -> str:
    text = value.strip()
    local, at, domain = text.rpartition("@")
    if not at or not local or any(c.isspace() for c in text):
        raise ValueError(f"not an email address (got {_clip(text, 60)!r}; expected e.g. identity-team@contoso.com)")
    domain_name(domain)
    return text


class ReportsPolicy(StrictModel):
    """`reports`: who receives the weekly cleanup report (docs/reports.md)."""

    recipients: list[Annotated[str, AfterValidator(_address)]] = Field(
        default_factory=list,
        max_length=50,
        description="Addresses the weekly report is emailed to (`guestctl report --send`, the Functions timer), "
        "from invitations.sender_mailbox; empty: the report is only written",
    )


class OffboardingPolicy(StrictModel):
    """`offboarding`: what an HR leaver event does here (docs/offboarding.md)."""

    delete_after_days: Days = Field(
        30, description="Days between disabling a departed guest worker and its (soft) deletion"
    )
    fallback_sponsor: str | None = Field(
        None,
        min_length=1,
        max_length=256,
        description="User object id or UPN who inherits a leaver's guests when the leaver has no manager; "
        "unset: such guests are left without that sponsor and flagged for review",
    )
    adapters: AdaptersConfig = Field(
        default_factory=AdaptersConfig, description="Each HR system's field names and terminated values"
    )


class Policy(StrictModel):
    """The reviewed definition of guestctl's behaviour. Every key and default is in docs/policy.md."""

    version: Annotated[Literal[1], BeforeValidator(_exact_int)] = Field(1, description="Policy format version")
    invitations: InvitationPolicy = Field(default_factory=InvitationPolicy)
    stale: StalePolicy = Field(default_factory=StalePolicy)
    exemptions: Exemptions = Field(default_factory=Exemptions)
    attestation: AttestationPolicy = Field(default_factory=AttestationPolicy)
    safety: SafetyPolicy = Field(default_factory=SafetyPolicy)
    schedules: Schedules = Field(default_factory=Schedules)
    partners: PartnersPolicy = Field(default_factory=PartnersPolicy)
    offboarding: OffboardingPolicy = Field(default_factory=OffboardingPolicy)
    reports: ReportsPolicy = Field(default_factory=ReportsPolicy)

    @model_validator(mode="after")
    def _notices_need_a_sender(self) -> Policy:
        if self.stale.notify_sponsors and not self.invitations.sender_mailbox:
            raise ValueError(
                "stale.notify_sponsors is on but invitations.sender_mailbox is not set: name the mailbox that "
                "sends the sponsor notices, or turn the notices off"
            )
        return self

    @model_validator(mode="after")
    def _reports_need_a_sender(self) -> Policy:
        if self.reports.recipients and not self.invitations.sender_mailbox:
            raise ValueError(
                "reports.recipients is set but invitations.sender_mailbox is not: name the mailbox that sends "
                "the weekly report, or leave reports.recipients empty"
            )
        return self

    @model_validator(mode="after")
    def _reminders_before_never_redeemed(self) -> Policy:
        late = [day for day in self.invitations.reminders if day >= self.stale.never_redeemed_days]
        if late:
            raise ValueError(
                f"invitations.reminders {late} fall on or after stale.never_redeemed_days "
                f"({self.stale.never_redeemed_days}), when the sweep flags the guest as never redeemed: remind "
                "earlier, or raise stale.never_redeemed_days"
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


class _Refused(yaml.MarkedYAMLError):
    """A loader limit or an unsupported YAML feature: not a syntax slip, so it carries its own hint."""

    def __init__(self, problem: str, mark: yaml.Mark | None, hint: str) -> None:
        super().__init__(problem=problem, problem_mark=mark)
        self.hint = hint


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (PyYAML silently keeps the last one), merge keys, and documents
    that are too deep or expand too far through aliases (a 400-byte "billion laughs" file is billions of values).
    Limits are checked while composing, before anything is expanded, so a hostile file fails at once."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0
        self._values = 0
        self._sizes: dict[int, int] = {}  # id(node) → how many values it stands for, aliases expanded

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_YAML_ALIASES:
                raise _Refused(
                    f"more than {MAX_YAML_ALIASES} aliases (*name)", event.start_mark, "write the values out"
                )
            anchored = self.anchors.get(event.anchor)
            if anchored is not None and id(anchored) not in self._sizes:
                raise _Refused("an alias inside the value it refers to", event.start_mark, "remove the alias")
            self._count(self._sizes[id(anchored)] if anchored is not None else 0, event.start_mark)
            return super().compose_node(parent, index)
        self._count(1, event.start_mark)
        self._depth += 1
        if self._depth > MAX_YAML_DEPTH:
            raise _Refused(f"nested more than {MAX_YAML_DEPTH} levels deep", event.start_mark, "flatten the file")
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        else:
            children = []
        self._sizes[id(node)] = 1 + sum(self._sizes[id(child)] for child in children)
        return node

    def _count(self, values: int, mark: yaml.Mark) -> None:
        """Counts values as they are composed (an alias counts all it expands to): refuses at once past the cap."""
        self._values += values
        if self._values > MAX_YAML_VALUES:
            hint = "a policy needs far fewer; check for aliases (*name) that repeat large values"
            raise _Refused(f"more than {MAX_YAML_VALUES} values (aliases expanded)", mark, hint)


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            raise _Refused(
                "merge keys (<<) are not supported", key_node.start_mark, "write the keys out in each section"
            )
        if not isinstance(key_node, yaml.ScalarNode):  # `? [a, b]` or `? {a: b}`: a list or mapping as a key
            raise _Refused("a key that is a list or mapping", key_node.start_mark, "keys are plain names")
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {_quote(key)}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
# Dates stay text so that pydantic validates them and names the key path of a bad one. Numbers are plain
# decimal only: YAML 1.1 reads 030 as 24 (octal) and 1:30 as 90 (base 60); here they stay text and are refused.
_RESOLVED_HERE = ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _RESOLVED_HERE]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"), list("-+0123456789")
)
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$"),
    list("-+.0123456789"),
)


def load_policy(path: Path | None) -> Policy:
    """The policy at `path` (None → safe defaults). Raises PolicyError with one actionable line."""
    if path is None:
        return Policy()
    name = str(path)
    try:
        with path.open("rb") as file:
            data = file.read(MAX_POLICY_BYTES + 1)
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise PolicyError(f"{name}: file not found", hint="check GUESTCTL_POLICY / --policy") from None
    except (OSError, UnicodeDecodeError) as error:
        raise PolicyError(f"{name}: cannot read: {_clip(str(error), 200)}") from None
    if len(data) > MAX_POLICY_BYTES:
        raise PolicyError(
            f"{name}: larger than {MAX_POLICY_BYTES // 1024} KiB, the most a policy file may be",
            hint="a policy is a few kilobytes; check that GUESTCTL_POLICY / --policy names the right file",
        )
    try:
        document = yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
        problem = _clip(error.problem or error.context or "invalid YAML", 200)
        if isinstance(error, _Refused):
            raise PolicyError(f"{where}: refused: {problem}", hint=f"{error.hint} (docs/policy.md)") from None
        raise PolicyError(f"{where}: invalid YAML: {problem}", hint="check the indentation and quoting") from None
    except yaml.YAMLError as error:
        raise PolicyError(f"{name}: invalid YAML: {_clip(str(error), 200)}") from None
    if document is None:
        return Policy()
    if not isinstance(document, dict):
        raise PolicyError(f"{name}: the policy must be a mapping of sections (got {type(document).__name__})")
    try:
        return Policy.model_validate(document)
    except ValidationError as error:
        raise PolicyError(_policy_error_line(name, error)) from None


def _policy_error_line(name: str, error: ValidationError) -> str:
    """Up to MAX_PROBLEMS problems, each with its key path, on one bounded line."""
    problems = error.errors()
    # each problem gets its share of the line, so that all of them and the count fit (errors.cap)
    listed = problems[:MAX_PROBLEMS]
    share = max(PROBLEM_CHARS, (MAX_MESSAGE_CHARS - len(name) - 40) // len(listed) - 2)
    shown = "; ".join(cap(_policy_problem(problem), share) for problem in listed)
    hidden = len(problems) - MAX_PROBLEMS
    more = f" (and {hidden} more problem{'s' if hidden > 1 else ''})" if hidden > 0 else ""
    return f"{name}: {shown}{more}"


# What a strict type error expected, by pydantic's error type.
_EXPECTED = {
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "string_type": "text",
    "list_type": "a list",
    "dict_type": "a mapping of keys to values",
    "model_type": "a mapping of keys",
    "date_type": "a date written YYYY-MM-DD",
    "url_type": "a URL",
}


def _policy_problem(problem: Any) -> str:
    loc = tuple(part for part in problem["loc"] if part not in (_NAME_FORM, _CREATE_FORM))
    message = _lower_first(problem["msg"].removeprefix("Value error, "))
    if not loc:  # a rule across sections: its message names the keys
        return message
    key_path = _clip(".".join(_clip(str(part), 40) for part in loc), 120)
    if problem["type"] == "extra_forbidden":
        return f"{key_path}: unknown key{_suggestion(loc)}"
    value = problem.get("input")
    expected = _EXPECTED.get(problem["type"])
    if expected is None:
        return f"{key_path}: {message} (got {_quote(value)})"
    unit = ""
    if problem["type"] == "int_type":  # the keys say their unit: inactive_days, plan_max_age_hours
        unit = {"days": " number of days", "hours": " number of hours"}.get(str(loc[-1]).rpartition("_")[2], "")
    return f"{key_path}: expected {expected}{unit}, got {_described(value, expected)}"


def _described(value: Any, expected: str) -> str:
    """What a YAML value of the wrong type is, and why YAML made it that type."""
    if isinstance(value, bool):
        quote = " — put text in quotes" if expected == "text" else ""
        return f"a boolean (yes/no/on/off/true/false are booleans in YAML){quote}"
    if value is None:
        return "nothing (an empty value is null in YAML)"
    if isinstance(value, int | float):
        kind = "an integer" if isinstance(value, int) else "a decimal number"
        quote = " — put text in quotes" if expected == "text" else ""
        return f"{kind} ({_quote(value)}){quote}"
    if isinstance(value, str):
        if expected in ("an integer", "a number"):
            return f"text {_quote(value)} (write plain decimal digits without quotes)"
        return f"text {_quote(value)}"
    return {list: "a list", dict: "a mapping"}.get(type(value), type(value).__name__)


def _quote(value: Any) -> str:
    """repr() of a value from the file, bounded however large or deep it is."""
    return _clip(_REPR.repr(value), MAX_QUOTED)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


_REPR = reprlib.Repr()
_REPR.maxstring = MAX_QUOTED
_REPR.maxother = MAX_QUOTED
_REPR.maxlevel = 2


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
