"""Every table guestctl keeps, declared once: its name and what its partitions and rows hold (docs/store.md).

Code takes table names from here, so one list answers "what does guestctl store, and where?" (an export,
a retention rule, a migration). Importing this module has no effects beyond defining its names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    partition: str  # what one partition is
    rows: str  # what its rows hold
    owner: str  # the module that writes it


TABLES: Final[dict[str, Table]] = {}


def _table(name: str, *, partition: str, rows: str, owner: str) -> str:
    TABLES[name] = Table(name, partition, rows, owner)
    return name


AUDIT: Final = _table(
    "audit",
    partition="a month (2025-01): the append-only audit log, read and written through append_audit/read_audit",
    rows="one audit entry per tenant change, keyed by time and id",
    owner="shared.core.audit",
)
LEASES: Final = _table(
    "leases",
    partition="the guarded job: `<table>:<partition>` of the records it works on (e.g. staleactions:sweep-…)",
    rows="`lease`: who holds the job (owner, host, pid) and their last heartbeat",
    owner="shared.store.lease",
)
SIGNING_KEYS: Final = _table(
    "signingkeys", partition="`keys`", rows="one secret key per name (signs saved plans)", owner="shared.store.signing"
)
PACING: Final = _table(
    "pacing",
    partition="a Graph budget's scope: `<graph host>/<tenant>/<client id>`",
    rows="one ledger per dimension (writes, resource_units, …) with every process's live claims",
    owner="shared.graph.shared_budget",
)
SCANS: Final = _table(
    "scans",
    partition="the capability scanning (`stale`)",
    rows="one checkpoint per scan: the nextLink to continue from and the guests seen",
    owner="shared.stale.fetch",
)
STALE_PROGRESS: Final = _table(
    "staleprogress",
    partition="a sweep's scan id",
    rows="`meta` (the sweep's moment, signInActivity used?) and `page-…`: each page's share of the plan",
    owner="shared.stale.sweep",
)
STALE_PLANS: Final = _table(
    "staleplans",
    partition="a kept plan's id",
    rows="`meta` (summary) and the plan's compressed text parts",
    owner="shared.stale.plans",
)
STALE_ACTIONS: Final = _table(
    "staleactions",
    partition="a sweep's run id (sweep-<plan id>), and `<run id>/notices` for its sponsor notices",
    rows="`<kind>:<target id>`: one record per action (the core applier); `notify:<sponsor id>` in the "
    "notices partition: one per sponsor notice (the sponsor's address, how many guests, the links' expiry)",
    owner="shared.core.apply, shared.stale.notify",
)
STALE_GUESTS: Final = _table(
    "staleguests",
    partition="`guests` (stale-guest sweeps) or `retire` (retiring partners' guest accounts)",
    rows="one per guest guestctl has flagged, disabled or deleted: its stage and dates",
    owner="shared.stale.effects",
)
INVITATIONS: Final = _table(
    "invitations",
    partition="an invitation batch's id",
    rows="one per invitation row (keyed by address): its state and what Graph answered",
    owner="shared.invitations.apply",
)
INVITE_BATCHES: Final = _table(
    "invitebatches",
    partition="`batch`",
    rows="one per batch (keyed by batch id): what it was given and its progress",
    owner="shared.invitations.apply",
)
INVITE_RESULTS: Final = _table(
    "inviteresults",
    partition="an invitation batch's id",
    rows="one result per input row (keyed by row number), for the batch's status",
    owner="shared.invitations.batches",
)
REDEMPTIONS: Final = _table(
    "redemptions",
    partition="`guest`",
    rows="one per guest (keyed by user id): its redemption as delta last showed it, its batch, reminders sent",
    owner="shared.redemptions.effects",
)
DELTA_SYNC: Final = _table(
    "deltasync",
    partition="the tracked resource (`users`)",
    rows="`link`: the delta link to continue from and when it was got; `requested`: when a round was last asked for",
    owner="shared.redemptions.service",
)
SUBSCRIPTIONS: Final = _table(
    "subscriptions",
    partition="`graph`",
    rows="`users`: this deployment's Graph subscription (id, expiry, redacted URLs) and its recent history",
    owner="shared.notifications.subscriptions",
)
REMINDER_ACTIONS: Final = _table(
    "reminderactions",
    partition="`reminders` (the reminder run)",
    rows="`<user id>:<invited at>:d<day>`: one record per reminder (the core applier), exactly once",
    owner="shared.redemptions.apply",
)
TENANT_LOOKUPS: Final = _table(
    "tenantlookups",
    partition="`domain`",
    rows="`<mail domain>`: findTenantInformationByDomainName's answer (tenant id and names, or none) and when",
    owner="shared.partners.service",
)
PARTNER_DISCOVERY: Final = _table(
    "partnerdiscovery",
    partition="`latest`",
    rows="`summary-…`: the latest partner discovery as a text (shared.store.text), for the timer and reports",
    owner="shared.partners.service",
)
PARTNER_TRUST_ACTIONS: Final = _table(
    "partnertrustactions",
    partition="a partners run's id (partners-<plan id>)",
    rows="`<create|update>:<partner tenant id>`: one record per partner configuration change (the core applier)",
    owner="shared.core.apply, shared.partners.trust_apply",
)
PARTNER_SIGN_INS: Final = _table(
    "partnersignins",
    partition="a partner's home tenant id",
    rows="`day:<YYYY-MM-DD>`: that day's sign-in tally (replaced by each verification of the day); "
    "`person:<userPrincipalName>`: first and last day seen signing in through direct connect, with their home "
    "object id",
    owner="shared.partners.verify",
)
PARTNER_RETIRE_PLANS: Final = _table(
    "partnerretireplans",
    partition="a kept retirement plan's id",
    rows="`meta` (summary) and the plan's text parts",
    owner="shared.partners.retire_service",
)
PARTNER_RETIRE_ACTIONS: Final = _table(
    "partnerretireactions",
    partition="a retirement run's id (retire-<plan id>)",
    rows="`<flag|disable|delete>:<guest id>`: one record per action (the core applier)",
    owner="shared.core.apply, shared.partners.retire_apply",
)
PARTNER_MIGRATE_ACTIONS: Final = _table(
    "partnermigrateactions",
    partition="a migration run's id (partners-migrate-<run id>)",
    rows="`add:<channel id>/<home object id>`: one record per shared channel membership (the core applier)",
    owner="shared.core.apply, shared.partners.migrate_apply",
)
OFFBOARD_ACTIONS: Final = _table(
    "offboardactions",
    partition="an offboarding run's id (offboard-<16 hex of the HR event id or the manual request>)",
    rows="`<kind>:<target id>:<other id>`: one record per action (the core applier), the scheduled deletion too",
    owner="shared.core.apply, shared.offboarding.apply",
)
OFFBOARDINGS: Final = _table(
    "offboardings",
    partition="`runs` (each offboarding run: scheduled, started, done, cancelled, restored), `deletions` (soft "
    "deletions scheduled for later) or `unsponsored` (guests a leaver left with no sponsor, listed by the sweep)",
    rows="`runs`: one per run id (the worker, the waiting HR event, its provenance, the state); the others one "
    "per guest (keyed by user id): the run, the HR event's provenance, the reason and the date",
    owner="shared.offboarding.ledger, shared.offboarding.effects",
)
HR_EVENTS: Final = _table(
    "hrevents",
    partition="`event`, or `worker` (the index: `<identifier name>:<digest of the value>:<event id>`)",
    rows="`hr-<16 hex>` (from the route and the sender's dedupe key): one HR event as received — the event, its "
    "system, replayable, due_at and status; the row is also the dedupe record, kept at least 7 days",
    owner="shared.offboarding.inbox",
)
REPORT_SNAPSHOTS: Final = _table(
    "reportsnapshots",
    partition="`weekly`",
    rows="`<ISO week>` (2026-W48): that week's report numbers (guests, active, stale, … disabled, redeemed), "
    "written (replaced) by the week's report; the trend charts read the last 26",
    owner="shared.reports.fetch",
)
ATTESTATIONS: Final = _table(
    "attestations",
    partition="`kept` (guests a sponsor or the identity team kept), `used` (attestation tokens already acted on) "
    "or `digests` (the guests behind a digest's keep-all / let-go-all link)",
    rows="`kept`: one per guest (keyed by user id): until, who kept it, when; `used`: one per token nonce, created "
    "conditionally when a POST acts (single use), with who answered, when, and the link's expiry; "
    "`digests`: the digest's guests as a text (shared.store.text), "
    "keyed by the all-link's nonce",
    owner="shared.attestation.records",
)
