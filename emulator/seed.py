"""Realistic tenants: a fixed demo tenant and deterministic generated tenants of any size.

Every generated guest gets a profile `kind` (active, stale, pending_stale, ...) recorded in
`tenant.ground_truth`, so tests can compute expected counts independently of the code under test.
"""

from __future__ import annotations

import bisect
import itertools
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from emulator.clock import Clock
from emulator.policy import default_policy
from emulator.tenant import (
    ACCEPTED,
    GUEST,
    MEMBER,
    PENDING,
    Channel,
    ConversationMember,
    DirectoryRole,
    ExternalTenant,
    Group,
    RoleDefinition,
    Tenant,
    User,
)

MSA_TENANT_ID = "9188040d-6c67-4c5b-b112-36a304b66dad"  # the consumer (Microsoft account) tenant
TEAMS_APP_ID = "1fec8e78-bce4-4aaf-ab1b-5451cc387264"
OFFICE_APP_ID = "4765445b-32c6-49b0-83e6-1d93765276ca"
PORTAL_APP_ID = "c44b4083-3bb0-49c1-b47d-974e53cbdf3c"

# Guest profile kinds and their share of generated guests.
GUEST_KINDS: tuple[tuple[str, int], ...] = (
    ("active", 35),  # accepted, successful sign-in in the last 30 days
    ("token_refresh", 5),  # interactive sign-in long ago, non-interactive (token refresh) recently
    ("stale", 20),  # accepted, last sign-in 91-720 days ago
    ("legacy_stale", 5),  # only pre-Dec-2023 data: lastSuccessfulSignInDateTime missing (not backfilled)
    ("no_activity", 5),  # accepted, signInActivity not returned (never signed in since April 2020)
    ("null_activity", 3),  # signInActivity returned with every field null
    ("pending_recent", 8),  # invited 1-25 days ago, not redeemed
    ("pending_stale", 15),  # invited 60-400 days ago, never redeemed
    ("disabled", 4),  # accepted, accountEnabled false, inactive for 100-300 days
)
IDENTITY_KINDS = (("aad", 70), ("otp", 20), ("msa", 10))

FIRST_NAMES = [
    "Adele",
    "Alex",
    "Allan",
    "Amara",
    "Anna",
    "Ben",
    "Bianca",
    "Carlos",
    "Chen",
    "Chloe",
    "Daniel",
    "Diego",
    "Elena",
    "Emil",
    "Eva",
    "Farah",
    "Felix",
    "Grace",
    "Hana",
    "Hiro",
    "Ines",
    "Isaac",
    "Jamal",
    "Jana",
    "Johanna",
    "Jonas",
    "Kai",
    "Karin",
    "Lara",
    "Lee",
    "Lena",
    "Liam",
    "Lucia",
    "Lynne",
    "Malik",
    "Maria",
    "Megan",
    "Mei",
    "Miguel",
    "Mona",
    "Nadia",
    "Nestor",
    "Nina",
    "Noah",
    "Olga",
    "Omar",
    "Patti",
    "Pradeep",
    "Priya",
    "Rafael",
    "Rosa",
    "Sami",
    "Sara",
    "Tariq",
    "Tomas",
    "Uma",
    "Valentina",
    "Wei",
    "Yara",
    "Zoe",
]
LAST_NAMES = [
    "Adams",
    "Ahmed",
    "Alvarez",
    "Andersen",
    "Bauer",
    "Becker",
    "Berg",
    "Brown",
    "Castro",
    "Chen",
    "Costa",
    "Dubois",
    "Eriksen",
    "Fischer",
    "Garcia",
    "Gomez",
    "Hansen",
    "Ito",
    "Jensen",
    "Johansson",
    "Kim",
    "Kowalski",
    "Larsen",
    "Lee",
    "Lindqvist",
    "Lopez",
    "Martin",
    "Meyer",
    "Moreau",
    "Muller",
    "Nakamura",
    "Nguyen",
    "Novak",
    "Okafor",
    "Olsen",
    "Patel",
    "Petrov",
    "Quinn",
    "Rossi",
    "Santos",
    "Schmidt",
    "Silva",
    "Singh",
    "Sorensen",
    "Tanaka",
    "Tran",
    "Vance",
    "Virtanen",
    "Wagner",
    "Weber",
    "Wilson",
    "Yamamoto",
    "Zhang",
]
ORGANISATIONS = (
    ("Fabrikam", "fabrikam.com"),
    ("Northwind Traders", "northwindtraders.com"),
    ("Adventure Works", "adventure-works.com"),
    ("Tailspin Toys", "tailspintoys.com"),
    ("Wingtip Toys", "wingtiptoys.com"),
    ("Litware", "litwareinc.com"),
    ("Woodgrove Bank", "woodgrovebank.com"),
    ("Proseware", "proseware.com"),
    ("Alpine Ski House", "alpineskihouse.com"),
    ("Coho Winery", "cohowinery.com"),
    ("Fourth Coffee", "fourthcoffee.com"),
    ("Lamna Healthcare", "lamnahealthcare.com"),
    ("Relecloud", "relecloud.com"),
    ("Trey Research", "treyresearch.net"),
    ("VanArsdel", "vanarsdelltd.com"),
    ("Wide World Importers", "wideworldimporters.com"),
    ("Blue Yonder Airlines", "blueyonderairlines.com"),
    ("Humongous Insurance", "humongousinsurance.com"),
    ("Lucerne Publishing", "lucernepublishing.com"),
    ("Southridge Video", "southridgevideo.com"),
)
OTP_DOMAINS = ("gmail.com", "yahoo.com", "proton.me", "gmx.de", "icloud.com", "web.de")
MSA_DOMAINS = ("outlook.com", "hotmail.com", "live.com")
JOB_TITLES = (
    "Consultant",
    "Project Manager",
    "Engineer",
    "Designer",
    "Account Manager",
    "Analyst",
    "Auditor",
    "Architect",
    "Developer",
    "Advisor",
)
DEPARTMENTS = ("Sales", "Finance", "Engineering", "Marketing", "Legal", "Operations", "HR", "IT")
ROLE_TEMPLATES = (
    ("Global Administrator", "62e90394-69f5-4237-9190-012177145e10", True),
    ("User Administrator", "fe930be7-5e62-47db-91af-98c3a49a38b1", True),
    ("Helpdesk Administrator", "729827e3-9c14-49f7-bb1b-9608f156bbb8", True),
    ("Teams Administrator", "69091246-20e8-4a56-aa4d-066075b2a7a8", True),
    ("Guest Inviter", "95e79109-95c0-4d8e-aee3-d01accf2d47b", False),
    ("Directory Readers", "88d8e3e3-8f55-4a1e-953a-9b9898b8876b", False),
)

DEMO_GUESTS, DEMO_MEMBERS = 40, 15


_DAY_PREFIX: dict[int, str] = {}


def _iso(epoch: float) -> str:
    """Graph's timestamp format; the date part is cached because generation formats ~500,000 of them."""
    day, seconds = divmod(int(epoch), 86400)
    prefix = _DAY_PREFIX.get(day)
    if prefix is None:
        prefix = _DAY_PREFIX[day] = time.strftime("%Y-%m-%dT", time.gmtime(day * 86400))
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    return f"{prefix}{hours:02d}:{minutes:02d}:{seconds:02d}Z"


@dataclass(slots=True)
class _Org:
    name: str
    domain: str
    external: ExternalTenant


class _Generator:
    def __init__(self, seed: int | str, now: datetime) -> None:
        self.rng = random.Random(seed)
        self.now = now
        self.now_epoch = now.timestamp()
        self.used_addresses: set[str] = set()
        self._kinds = [k for k, _ in GUEST_KINDS]
        self._kind_weights = list(itertools.accumulate(w for _, w in GUEST_KINDS))
        self._ids = [k for k, _ in IDENTITY_KINDS]
        self._id_weights = list(itertools.accumulate(w for _, w in IDENTITY_KINDS))
        self.last_success: dict[str, float] = {}  # user id -> epoch, for the sign-in log

    def uuid(self) -> str:
        """A random (version 4) UUID drawn from the seeded generator."""
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"

    def pick(self, cumulative: list[float], names: list[str]) -> str:
        return names[bisect.bisect_right(cumulative, self.rng.random() * cumulative[-1])]

    def days_ago(self, low: float, high: float) -> float:
        return self.now_epoch - self.rng.uniform(low, high) * 86400

    def person(self) -> tuple[str, str]:
        return self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)

    def address(self, first: str, last: str, domain: str) -> str:
        base = f"{first}.{last}".lower()
        candidate = f"{base}@{domain}"
        counter = 1
        while candidate in self.used_addresses:
            counter += 1
            candidate = f"{base}{counter}@{domain}"
        self.used_addresses.add(candidate)
        return candidate

    # ---- tenant skeleton ----------------------------------------------------------------------
    def tenant(self) -> Tenant:
        tenant = Tenant(tenant_id=self.uuid(), clock=Clock(self.now))
        tenant.policy_default = default_policy()
        for name, template, privileged in ROLE_TEMPLATES:
            tenant.add_role(DirectoryRole(self.uuid(), name, f"{name} role", template, privileged))
        return tenant

    def organisations(self, tenant: Tenant, count: int) -> list[_Org]:
        orgs: list[_Org] = []
        for index in range(count):
            name, domain = ORGANISATIONS[index % len(ORGANISATIONS)]
            if index >= len(ORGANISATIONS):
                round_number = index // len(ORGANISATIONS) + 1
                name = f"{name} {round_number}"
                stem, tld = domain.rsplit(".", 1)
                domain = f"{stem}{round_number}.{tld}"
            initial = name.split()[0].lower()
            external = ExternalTenant(
                tenant_id=self.uuid(),
                display_name=name,
                default_domain=domain,
                domains=(domain, f"{initial}{index}.onmicrosoft.com"),
                direct_connect_outbound=index % 3 == 0,
            )
            tenant.add_external_tenant(external)
            orgs.append(_Org(name, domain, external))
        return orgs

    # ---- people -------------------------------------------------------------------------------
    def member(self, tenant: Tenant, first: str | None = None, last: str | None = None, job: str | None = None) -> User:
        if first is None or last is None:
            first, last = self.person()
        domain = tenant.verified_domains[0]
        address = self.address(first, last, domain)
        created = self.days_ago(200, 2500)
        recent = self.days_ago(0, 6)
        request_id = self.uuid()
        user = User(
            id=self.uuid(),
            displayName=f"{first} {last}",
            givenName=first,
            surname=last,
            userPrincipalName=address,
            mail=address,
            userType=MEMBER,
            jobTitle=job or self.rng.choice(JOB_TITLES),
            department=self.rng.choice(DEPARTMENTS),
            officeLocation=self.rng.choice(("Seattle", "London", "Berlin", "Singapore")),
            businessPhones=(f"+1 425 555 {self.rng.randint(100, 999):04d}",),
            preferredLanguage="en-US",
            usageLocation="US",
            identities=(("userPrincipalName", tenant.domain, address),),
            createdDateTime=_iso(created),
            companyName="Contoso",
            sign_in=(_iso(recent), request_id, _iso(recent), request_id, _iso(recent), request_id),
        )
        return tenant.add_user(user, record=False)

    def external_member(self, tenant: Tenant, org: _Org) -> User:
        """A B2B user invited as Member: creationType Invitation but userType Member (never a guest)."""
        first, last = self.person()
        address = self.address(first, last, org.domain)
        upn = f"{address.replace('@', '_')}#EXT#@{tenant.domain}"
        created = self.days_ago(100, 900)
        seen = self.days_ago(0, 20)
        request_id = self.uuid()
        user = User(
            id=self.uuid(),
            displayName=f"{first} {last}",
            givenName=first,
            surname=last,
            userPrincipalName=upn,
            mail=address,
            otherMails=(address,),
            userType=MEMBER,
            identities=(("userPrincipalName", tenant.domain, upn), ("federated", "ExternalAzureAD", None)),
            creationType="Invitation",
            externalUserState=ACCEPTED,
            externalUserStateChangeDateTime=_iso(created + 86400),
            createdDateTime=_iso(created),
            companyName=org.name,
            home_tenant_id=org.external.tenant_id,
            sign_in=(_iso(seen), request_id, None, None, _iso(seen), request_id),
        )
        return tenant.add_user(user, record=False)

    def guest(
        self, tenant: Tenant, orgs: list[_Org], sponsors: list[User], record: bool = False
    ) -> tuple[User, str, str, str | None]:
        rng = self.rng
        kind = self.pick(self._kind_weights, self._kinds)
        identity_kind = self.pick(self._id_weights, self._ids)
        first, last = self.person()
        org: _Org | None = None
        if identity_kind == "aad" and orgs:
            org = orgs[min(int(rng.paretovariate(1.2)) - 1, len(orgs) - 1)]  # a few big partners
            domain = org.domain
        elif identity_kind == "msa":
            domain = rng.choice(MSA_DOMAINS)
        else:
            identity_kind = "otp"
            domain = rng.choice(OTP_DOMAINS)
        address = self.address(first, last, domain)
        upn = f"{address.replace('@', '_')}#EXT#@{tenant.domain}"
        identities: tuple[tuple[str, str, str | None], ...] = (("userPrincipalName", tenant.domain, upn),)
        pending = kind.startswith("pending")
        if not pending:
            federated = {
                "aad": ("federated", "ExternalAzureAD", None),
                "msa": ("federated", "MicrosoftAccount", None),
                "otp": ("federated", "mail", address),
            }[identity_kind]
            identities = (*identities, federated)

        sign_in: tuple[str | None, ...] | None = None
        enabled = True
        self._earliest = None
        self._success = None
        if kind == "pending_recent":
            created = self.days_ago(1, 25)
        elif kind == "pending_stale":
            created = self.days_ago(60, 400)
        else:
            if kind == "active":
                last_seen = self.days_ago(0, 30)
                interactive = last_seen - rng.uniform(0, 10) * 86400
                sign_in = self._activity(interactive, last_seen, last_seen)
            elif kind == "token_refresh":
                interactive = self.days_ago(120, 300)
                refresh = self.days_ago(0, 14)
                sign_in = self._activity(interactive, refresh, refresh)
            elif kind == "stale":
                last_seen = self.days_ago(91, 720)
                sign_in = self._activity(last_seen, last_seen - rng.uniform(0, 5) * 86400, last_seen)
            elif kind == "legacy_stale":
                last_seen = datetime(2023, 11, 30, tzinfo=UTC).timestamp() - rng.uniform(0, 900) * 86400
                sign_in = (_iso(last_seen), self.uuid(), None, None, None, None)
                self._earliest = last_seen
            elif kind == "null_activity":
                sign_in = (None, None, None, None, None, None)
            elif kind == "disabled":
                enabled = False
                last_seen = self.days_ago(100, 300)
                sign_in = self._activity(last_seen, last_seen, last_seen)
            if self._earliest is not None:
                created = self._earliest - rng.uniform(1, 400) * 86400
            else:
                created = self.days_ago(400, 2000)
        if kind == "no_activity":
            # signInActivity is not returned for users who last signed in before April 2020.
            created = datetime(2020, 3, 1, tzinfo=UTC).timestamp() - rng.uniform(0, 400) * 86400
        state = PENDING if pending else ACCEPTED
        created_text = _iso(created)
        state_changed = created_text if pending else _iso(created + rng.uniform(0.01, 10) * 86400)
        chosen_sponsors: tuple[str, ...] = ()
        if sponsors and rng.random() < 0.8:
            chosen_sponsors = tuple(
                dict.fromkeys(s.id for s in rng.sample(sponsors, min(len(sponsors), rng.choice((1, 1, 2)))))
            )
        user = User(
            id=self.uuid(),
            displayName=f"{first} {last}" + (f" ({org.name})" if org and rng.random() < 0.3 else ""),
            givenName=first,
            surname=last,
            userPrincipalName=upn,
            mail=address,
            otherMails=(address,),
            userType=GUEST,
            identities=identities,
            creationType="Invitation",
            externalUserState=state,
            externalUserStateChangeDateTime=state_changed,
            createdDateTime=created_text,
            accountEnabled=enabled,
            companyName=org.name if org else None,
            jobTitle=rng.choice(JOB_TITLES) if org else None,
            sign_in=sign_in,
            sponsors=chosen_sponsors,
            home_tenant_id=org.external.tenant_id if org else (MSA_TENANT_ID if identity_kind == "msa" else None),
        )
        tenant.add_user(user, record=record)
        if self._success is not None:
            self.last_success[user.id] = self._success
        return user, kind, identity_kind, org.domain if org else None

    def _activity(self, interactive: float, non_interactive: float, success: float) -> tuple[str | None, ...]:
        """signInActivity values; equal moments share one string and one request id (one sign-in event)."""
        events: dict[float, tuple[str, str]] = {}
        for moment in (interactive, non_interactive, success):
            if moment not in events:
                events[moment] = (_iso(moment), self.uuid())
        self._earliest = min(interactive, non_interactive, success)
        self._success = success
        return (*events[interactive], *events[non_interactive], *events[success])


def seed_tenant(
    seed: int | str = "demo",
    guests: int | None = None,
    members: int | None = None,
    *,
    now: datetime | None = None,
    sign_in_log_limit: int = 10_000,
) -> Tenant:
    """Build a tenant. `"demo"`: the small fixed demo tenant; any other seed: generated, deterministic.

    Dates are relative to `now` (default: the current time, to the minute), so the same seed gives the
    same tenant shape on any day and the same bytes for the same `now`.
    """
    if now is None:
        now = datetime.now(UTC).replace(second=0, microsecond=0)
    if seed == "demo":
        guests = DEMO_GUESTS if guests is None else guests
        members = DEMO_MEMBERS if members is None else members
    guests = 200 if guests is None else guests
    members = max(10, guests // 20) if members is None else members
    gen = _Generator(seed, now)
    tenant = gen.tenant()
    org_count = 5 if seed == "demo" else max(5, min(200, guests // 250))
    orgs = gen.organisations(tenant, org_count)

    named = (
        ("Adele", "Vance", "IT Administrator"),
        ("Megan", "Bowen", "Marketing Manager"),
        ("Nestor", "Wilke", "Director of Operations"),
        ("Patti", "Fernandez", "President"),
        ("Lynne", "Robbins", "Planner"),
    )
    member_users: list[User] = []
    for index in range(members):
        if index < len(named):
            member_users.append(gen.member(tenant, *named[index]))
        else:
            member_users.append(gen.member(tenant))
    roles = {role.displayName: role for role in tenant.roles.values()}
    if member_users:
        tenant.assign_role(roles["Global Administrator"], member_users[0].id)
    if len(member_users) > 1:
        tenant.assign_role(roles["User Administrator"], member_users[1].id)
        tenant.assign_role(roles["Guest Inviter"], member_users[1].id)
    if len(member_users) > 2:
        tenant.assign_role(roles["Teams Administrator"], member_users[2].id)
    external_members = [gen.external_member(tenant, orgs[i % len(orgs)]) for i in range(max(1, members // 10))]

    sponsors = member_users[: max(1, min(len(member_users), 25))]
    kinds: dict[str, str] = {}
    identity_kinds: dict[str, str] = {}
    org_of: dict[str, str | None] = {}
    guest_users: list[User] = []
    for _ in range(guests):
        user, kind, identity_kind, org_domain = gen.guest(tenant, orgs, sponsors)
        guest_users.append(user)
        kinds[user.id] = kind
        identity_kinds[user.id] = identity_kind
        org_of[user.id] = org_domain

    # Guests holding directory roles: they must never be touched by cleanup.
    role_holders = [u for u in guest_users if kinds[u.id] == "stale"][: max(1, guests // 500)] if guests else []
    for index, user in enumerate(role_holders):
        role = roles["Directory Readers"] if index % 2 == 0 else roles["Helpdesk Administrator"]
        tenant.assign_role(role, user.id)

    groups = _groups(gen, tenant, member_users, guest_users, orgs, kinds)
    _direct_connect_people(gen, orgs)
    _sign_in_log(gen, tenant, member_users, guest_users, orgs, sign_in_log_limit)
    # After everything else, from its own random stream: the rest of the tenant is what it was before
    # these role forms existed.
    holder_ids = {u.id for u in role_holders}
    hidden = _hidden_role_holders(seed, gen.now, tenant, [u for u in guest_users if u.id not in holder_ids], kinds)
    tenant.ground_truth = {
        "seed": seed,
        "now": _iso(gen.now_epoch),
        "guest_kinds": kinds,
        "identity_kinds": identity_kinds,
        "guest_orgs": org_of,
        "members": [u.id for u in member_users],
        "external_members": [u.id for u in external_members],
        "admins": [member_users[i].id for i in range(min(3, len(member_users)))],
        "role_holding_guests": [u.id for u in role_holders],  # activated directoryRole members
        "eligible_role_guests": hidden["eligible"],  # PIM eligibility only
        "scoped_role_guests": hidden["scoped"],  # built-in role scoped to an administrative unit only
        "custom_role_guests": hidden["custom"],  # tenant-wide custom role only
        # Guests holding a role in any form, and every principal (users and groups) with any assignment
        # or eligibility: what Tenant.all_role_principals() returns at seeding time.
        "all_role_holding_guests": [u.id for u in role_holders]
        + hidden["eligible"]
        + hidden["scoped"]
        + hidden["custom"],
        "role_principals": sorted(tenant.all_role_principals()),
        "administrative_units": hidden["administrative_units"],
        "custom_roles": hidden["custom_roles"],
        "partners": [
            {
                "tenantId": o.external.tenant_id,
                "displayName": o.name,
                "domain": o.domain,
                "directConnectOutbound": o.external.direct_connect_outbound,
            }
            for o in orgs
        ],
        "groups": groups,
    }
    tenant.journal_reset()
    return tenant


CUSTOM_ROLE = (
    "Partner Access Reviewer",
    "Reads guest accounts and their sponsors for partner access reviews (custom role)",
    ("microsoft.directory/users/standard/read", "microsoft.directory/users/sponsors/read"),
)


def _hidden_role_holders(
    seed: int | str, now: datetime, tenant: Tenant, candidates: list[User], kinds: dict[str, str]
) -> dict[str, Any]:
    """A few stale guests who hold a role only in a form /directoryRoles does not show: a PIM
    eligibility, an administrative-unit scoped built-in role, a custom role."""
    rng = random.Random(f"{seed}/role-management")

    def new_uuid() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    au_name = "Partner Guests"
    au_id = new_uuid()
    name, description, actions = CUSTOM_ROLE
    custom = tenant.add_role_definition(
        RoleDefinition(new_uuid(), name, description, False, "", allowedResourceActions=actions)
    )
    custom.templateId = custom.id
    stale = [u for u in candidates if kinds[u.id] == "stale"]
    each = max(1, len(kinds) // 1000) if kinds else 0
    chosen = {"eligible": stale[:each], "scoped": stale[each : 2 * each], "custom": stale[2 * each : 3 * each]}
    now_epoch = now.timestamp()
    for index, user in enumerate(chosen["eligible"]):
        role = "User Administrator" if index % 2 == 0 else "Global Administrator"
        start = datetime.fromtimestamp(now_epoch - rng.uniform(60, 400) * 86400, UTC).replace(microsecond=0)
        end = None if index % 2 == 0 else start + timedelta(days=730)
        tenant.make_eligible(role, user.id, "/", start=start, end=end, eligibility_id=new_uuid())
    for user in chosen["scoped"]:
        tenant.assign_role_scoped(
            "Helpdesk Administrator", user.id, f"/administrativeUnits/{au_id}", assignment_id=new_uuid()
        )
    for user in chosen["custom"]:
        tenant.assign_role_scoped(custom, user.id, "/", assignment_id=new_uuid())
    result: dict[str, Any] = {key: [u.id for u in users] for key, users in chosen.items()}
    result["administrative_units"] = {au_name: au_id}
    result["custom_roles"] = {name: custom.id}
    return result


def _groups(
    gen: _Generator, tenant: Tenant, members: list[User], guests: list[User], orgs: list[_Org], kinds: dict[str, str]
) -> dict[str, str]:
    rng = gen.rng
    now = gen.now_epoch

    def group(
        name: str, *, team: bool = False, dynamic: bool = False, security: bool = True, description: str | None = None
    ) -> Group:
        nickname = "".join(ch for ch in name.lower() if ch.isalnum())
        unified = team or not security
        created = gen.days_ago(300, 1500)
        return tenant.add_group(
            Group(
                id=gen.uuid(),
                displayName=name,
                description=description or name,
                createdDateTime=_iso(created),
                mail=f"{nickname}@{tenant.verified_domains[0]}" if unified else None,
                mailEnabled=unified,
                mailNickname=nickname,
                securityEnabled=security and not unified,
                groupTypes=(("Unified",) if unified else ()) + (("DynamicMembership",) if dynamic else ()),
                resourceProvisioningOptions=("Team",) if team else (),
                membershipRule='(user.userType -eq "Guest")' if dynamic else None,
                visibility="Private" if unified else None,
            )
        )

    ids: dict[str, str] = {}
    all_partners = group("All Partners", description="Every partner who works with Contoso")
    finance = group("Finance Partners", description="Auditors and finance partners")
    exempt = group("Guest Cleanup Exemptions", description="Guests exempt from automated cleanup")
    executives = group("Executives")
    dynamic = group("All Guests (dynamic)", dynamic=True)
    phoenix = group("Project Phoenix", team=True, security=False, description="Project Phoenix team")
    supplier = group("Supplier Collaboration", team=True, security=False)
    tenant.add_member(all_partners, finance.id)  # nested: finance partners are transitively all partners
    for user in members[:4]:
        tenant.add_member(executives, user.id)
    for user in members[: max(3, len(members) // 3)]:
        tenant.add_member(phoenix, user.id)
        tenant.add_member(supplier, user.id)
    for team in (phoenix, supplier):
        team.owners[members[0].id] = None  # a team has an owner (one of its members)
    for user in guests:
        tenant.add_member(dynamic, user.id)
        roll = rng.random()
        if roll < 0.3:
            tenant.add_member(all_partners, user.id)
        elif roll < 0.38:
            tenant.add_member(finance, user.id)
        if rng.random() < 0.1:
            tenant.add_member(phoenix, user.id)
        elif rng.random() < 0.1:
            tenant.add_member(supplier, user.id)
        if kinds[user.id] in ("stale", "pending_stale") and rng.random() < 0.03:
            tenant.add_member(exempt, user.id)
    by_home: dict[str | None, list[User]] = {}
    for user in guests:
        by_home.setdefault(user.home_tenant_id, []).append(user)
    for org in orgs[:20]:
        partner_group = group(f"Partner - {org.name}")
        ids[partner_group.displayName] = partner_group.id
        for user in by_home.get(org.external.tenant_id, ()):
            tenant.add_member(partner_group, user.id)
    for item in (all_partners, finance, exempt, executives, dynamic, phoenix, supplier):
        ids[item.displayName] = item.id

    created = _iso(now - 200 * 86400)
    for team, names in (
        (phoenix, (("General", "standard"), ("Phoenix Design", "private"), ("Phoenix Partners", "shared"))),
        (supplier, (("General", "standard"), ("Supplier Shared", "shared"))),
    ):
        for name, membership in names:
            channel = Channel(
                id=f"19:{gen.uuid().replace('-', '')}@thread.tacv2",
                team_id=team.id,
                displayName=name,
                membershipType=membership,
                createdDateTime=created,
            )
            if membership != "standard":
                for user in members[:2]:
                    membership_id = gen.uuid()
                    channel.members[membership_id] = ConversationMember(
                        id=membership_id,
                        userId=user.id,
                        displayName=user.displayName,
                        email=user.mail,
                        tenantId=tenant.id,
                        roles=("owner",),
                        visibleHistoryStartDateTime="0001-01-01T00:00:00Z",
                    )
            tenant.channels[channel.id] = channel
            ids[f"{team.displayName}/{name}"] = channel.id
    return ids


def _direct_connect_people(gen: _Generator, orgs: list[_Org]) -> None:
    """Home-tenant users of each partner, the identities B2B direct connect adds to shared channels."""
    for org in orgs:
        for _ in range(5):
            first, last = gen.person()
            object_id = gen.uuid()
            org.external.users[object_id] = {
                "displayName": f"{first} {last}",
                "mail": gen.address(first, last, org.domain),
            }


def _sign_in_log(
    gen: _Generator, tenant: Tenant, members: list[User], guests: list[User], orgs: list[_Org], limit: int
) -> None:
    """Plan entries as small tuples, cap them, then build only the dicts that are kept (less memory churn)."""
    rng = gen.rng
    horizon = gen.now_epoch - 30 * 86400  # 30-day retention (docs/graph-contract.md#sign-in-logs)
    plans: list[tuple[User | None, float, str, str | None, int, tuple[str, dict[str, str]] | None]] = []
    for user in guests:
        when = gen.last_success.get(user.id)
        if when is None or when < horizon:
            continue
        plans.append((user, when, "b2bCollaboration", user.home_tenant_id, 0, None))
        if rng.random() < 0.3:
            failed = when - rng.uniform(0, 5) * 86400
            if failed > horizon:
                plans.append((user, failed, "b2bCollaboration", user.home_tenant_id, 50126, None))
    for user in members:
        for _ in range(2):
            plans.append((user, gen.days_ago(0, 29), "none", tenant.id, 0, None))
    direct: list[tuple[User | None, float, str, str | None, int, tuple[str, dict[str, str]] | None]] = []
    for org in orgs:
        for object_id, profile in org.external.users.items():
            if rng.random() < 0.6:
                error = 0 if rng.random() < 0.9 else 90071
                direct.append(
                    (None, gen.days_ago(0, 29), "b2bDirectConnect", org.external.tenant_id, error, (object_id, profile))
                )
    room = max(limit - len(direct), 0)
    if len(plans) > room:
        plans = rng.sample(plans, room)
    entries: list[dict[str, Any]] = []
    for user, when, access, home, error, person in [*plans, *direct][: max(limit, 0)]:
        entry = _sign_in_entry(gen, tenant, user, when, access, home, error, MFA_HOME if person else None)
        if person is not None:
            object_id, profile = person
            entry.update(
                {"userId": object_id, "userDisplayName": profile["displayName"], "userPrincipalName": profile["mail"]}
            )
        entries.append(entry)
    entries.sort(key=lambda e: e["createdDateTime"])
    tenant.sign_ins = entries


def _sign_in_entry(
    gen: _Generator,
    tenant: Tenant,
    user: User | None,
    when: float,
    access: str,
    home_tenant: str | None,
    error_code: int,
    mfa: str | None = None,
) -> dict[str, Any]:
    rng = gen.rng
    app_id, app_name = rng.choice(
        ((TEAMS_APP_ID, "Microsoft Teams"), (OFFICE_APP_ID, "OfficeHome"), (PORTAL_APP_ID, "Azure Portal"))
    )
    return make_sign_in(
        tenant,
        entry_id=gen.uuid(),
        created=_iso(when),
        user_id=user.id if user else "",
        display_name=user.displayName if user else "",
        principal_name=user.userPrincipalName if user else "",
        access_type=access,
        home_tenant_id=home_tenant or MSA_TENANT_ID,
        user_type="member" if user is not None and user.userType == MEMBER else "guest",
        error_code=error_code,
        app_id=app_id,
        app_name=app_name,
        ip=f"203.0.113.{rng.randint(1, 254)}",
        correlation_id=gen.uuid(),
        mfa=mfa,
    )


# Shared (never mutated) parts of sign-in entries: 20,000 log entries would otherwise hold 20,000 copies.
_SUCCESS = {"errorCode": 0, "failureReason": None, "additionalDetails": None}
_INTERACTIVE = ["interactiveUser"]
_NON_INTERACTIVE = ["nonInteractiveUser"]
_LOCATION = {"city": "Redmond", "state": "Washington", "countryOrRegion": "US"}
_DEVICE = {
    "deviceId": "",
    "displayName": None,
    "operatingSystem": "Windows 10",
    "browser": "Edge 120.0.0",
    "isCompliant": False,
    "isManaged": False,
    "trustType": None,
}
# status.failureReason of the codes the emulator logs (Microsoft Entra authentication and authorization error
# codes; docs/graph-contract.md#sign-in-logs); any other code gets a generic reason.
FAILURE_REASONS = {
    50126: "Invalid username or password or Invalid on-premise username or password.",
    90071: "An admin from {org} must update their access settings to accept inbound multifactor authentication.",
    500212: "The user's administrator has set an outbound access policy that doesn't allow access to the "
    "resource tenant.",
    500213: "The resource tenant's cross-tenant access policy doesn't allow this user to access this tenant.",
}
POLICY_REFUSALS = (500212, 500213)  # refused by cross-tenant access settings before any authentication step
MFA_HOME = "home"  # a required MFA satisfied by the home tenant's claim (None: MFA not required)
SINGLE_FACTOR, MULTI_FACTOR = "singleFactorAuthentication", "multiFactorAuthentication"


def _authentication_steps(created: str, error_code: int, mfa: str | None) -> list[dict[str, Any]]:
    """authenticationDetails: the password step, then the MFA step of a successful MFA sign-in (from home)."""
    if error_code in POLICY_REFUSALS:
        return []
    steps = [
        {
            "authenticationStepDateTime": created,
            "authenticationMethod": "Password",
            "authenticationMethodDetail": "Password in the cloud",
            "succeeded": error_code != 50126,
            "authenticationStepResultDetail": "Correct password" if error_code != 50126 else FAILURE_REASONS[50126],
            "authenticationStepRequirement": "Primary authentication",
        }
    ]
    if mfa == MFA_HOME and error_code == 0:
        steps.append(
            {
                "authenticationStepDateTime": created,
                "authenticationMethod": "Previously satisfied",
                "authenticationMethodDetail": None,
                "succeeded": True,
                "authenticationStepResultDetail": "MFA requirement satisfied by claim in the token",
                "authenticationStepRequirement": "Multifactor authentication",
            }
        )
    return steps


def make_sign_in(
    tenant: Tenant,
    *,
    entry_id: str,
    created: str,
    user_id: str,
    display_name: str | None,
    principal_name: str | None,
    access_type: str,
    home_tenant_id: str,
    user_type: str,
    error_code: int = 0,
    app_id: str = TEAMS_APP_ID,
    app_name: str = "Microsoft Teams",
    ip: str = "203.0.113.10",
    correlation_id: str | None = None,
    interactive: bool = True,
    mfa: str | None = None,
) -> dict[str, Any]:
    """A signIn log entry with the fields docs/graph-contract.md#sign-in-logs lists.

    `mfa`: None when MFA was not required; MFA_HOME when it was, to be satisfied by the claim in the home
    tenant's token (trusted through inboundTrust.isMfaAccepted; a failed sign-in has no MFA step).
    """
    if error_code == 0:
        status = _SUCCESS
    else:
        reason = FAILURE_REASONS.get(error_code, "Sign-in failed").format(org=tenant.display_name)
        status = {"errorCode": error_code, "failureReason": reason, "additionalDetails": None}
    return {
        "id": entry_id,
        "createdDateTime": created,
        "userDisplayName": display_name,
        "userPrincipalName": principal_name,
        "userId": user_id,
        "appId": app_id,
        "appDisplayName": app_name,
        "ipAddress": ip,
        "clientAppUsed": "Browser",
        "correlationId": correlation_id or entry_id,
        # MFA is required by a Conditional Access policy: applied (success, or failure when not satisfied)
        "conditionalAccessStatus": "notApplied" if mfa is None else "success" if error_code == 0 else "failure",
        "isInteractive": interactive,
        "riskDetail": "none",
        "riskLevelAggregated": "none",
        "riskLevelDuringSignIn": "none",
        "riskState": "none",
        "resourceDisplayName": "Microsoft Teams" if app_id == TEAMS_APP_ID else "Office 365 Exchange Online",
        "resourceId": "00000003-0000-0ff1-ce00-000000000000",
        "status": status,
        "authenticationRequirement": SINGLE_FACTOR if mfa is None else MULTI_FACTOR,
        "authenticationDetails": _authentication_steps(created, error_code, mfa),
        "crossTenantAccessType": access_type,
        "homeTenantId": home_tenant_id,
        "homeTenantName": "",
        "resourceTenantId": tenant.id,
        "userType": user_type,
        "signInEventTypes": _INTERACTIVE if interactive else _NON_INTERACTIVE,
        "location": _LOCATION,
        "deviceDetail": _DEVICE,
    }


def add_guests(tenant: Tenant, count: int, seed: int | str = 1) -> list[str]:
    """Generate more guests into an existing tenant (they count as new users for delta and webhooks)."""
    gen = _Generator(f"{seed}/{tenant.id}/{len(tenant.user_slots)}", tenant.now())
    gen.used_addresses = {u.mail.lower() for u in tenant.users.values() if u.mail}
    orgs = [_Org(e.display_name, e.default_domain, e) for e in tenant.external_tenants.values()]
    sponsors = [u for u in tenant.users.values() if u.userType == MEMBER and u.creationType is None][:25]
    truth = tenant.ground_truth
    ids: list[str] = []
    for _ in range(count):
        user, kind, identity_kind, org_domain = gen.guest(tenant, orgs, sponsors, record=True)
        truth.setdefault("guest_kinds", {})[user.id] = kind
        truth.setdefault("identity_kinds", {})[user.id] = identity_kind
        truth.setdefault("guest_orgs", {})[user.id] = org_domain
        ids.append(user.id)
    return ids


def make_user(tenant: Tenant, **fields: Any) -> User:
    """Create one user from Graph-named fields (control API `POST /_emulator/users`)."""
    user_type = fields.get("userType", MEMBER)
    now = tenant.now_iso()
    mail = fields.get("mail")
    display_name = fields.get("displayName") or (mail.split("@")[0] if mail else "User")
    if user_type == GUEST or fields.get("creationType") == "Invitation":
        if not mail:
            raise ValueError("a guest needs a mail address")
        upn = fields.get("userPrincipalName") or f"{mail.replace('@', '_')}#EXT#@{tenant.domain}"
        state = fields.get("externalUserState", ACCEPTED)
        external = tenant.external_tenant_for_domain(mail.rsplit("@", 1)[-1])
        identities: tuple[tuple[str, str, str | None], ...] = (("userPrincipalName", tenant.domain, upn),)
        if state == ACCEPTED:
            identities += (("federated", "ExternalAzureAD" if external else "mail", None if external else mail),)
        defaults: dict[str, Any] = dict(
            creationType="Invitation",
            externalUserState=state,
            externalUserStateChangeDateTime=fields.get("externalUserStateChangeDateTime")
            or fields.get("createdDateTime")
            or now,
            otherMails=(mail,),
            identities=identities,
            home_tenant_id=external.tenant_id if external else None,
        )
    else:
        upn = (
            fields.get("userPrincipalName")
            or mail
            or f"{display_name.replace(' ', '.').lower()}@{tenant.verified_domains[0]}"
        )
        defaults = dict(identities=(("userPrincipalName", tenant.domain, upn),))
    if "otherMails" in fields:
        defaults["otherMails"] = tuple(str(a) for a in fields["otherMails"])
    if "identities" in fields:
        defaults["identities"] = tuple(
            (i["signInType"], i["issuer"], i.get("issuerAssignedId")) for i in fields["identities"]
        )
    activity = fields.get("signInActivity")
    sign_in = None
    if activity is not None:
        from emulator.tenant import SIGN_IN_FIELDS

        sign_in = tuple(activity.get(name) for name in SIGN_IN_FIELDS)
    user = User(
        id=fields.get("id") or str(uuid.uuid4()),
        displayName=display_name,
        userPrincipalName=upn,
        userType=user_type,
        mail=mail,
        givenName=fields.get("givenName"),
        surname=fields.get("surname"),
        jobTitle=fields.get("jobTitle"),
        companyName=fields.get("companyName"),
        department=fields.get("department"),
        createdDateTime=fields.get("createdDateTime") or now,
        accountEnabled=fields.get("accountEnabled", True),
        employeeLeaveDateTime=fields.get("employeeLeaveDateTime"),
        sign_in=sign_in,
        sponsors=tuple(s.lower() for s in fields.get("sponsors", ())),
        **defaults,
    )
    if "proxyAddresses" in fields:
        # Read-only in Graph (Exchange and directory sync write them), so seeding is the only way in.
        user.extra = {"proxyAddresses": tuple(str(a) for a in fields["proxyAddresses"])}
    if fields.get("employeeId") is not None:
        user.extra = {**(user.extra or {}), "employeeId": str(fields["employeeId"])}
    added = tenant.add_user(user)
    if fields.get("manager"):
        manager = str(fields["manager"]).lower()
        if manager not in tenant.users:
            raise ValueError(f"manager {manager} is not a user of the tenant")
        tenant.managers[added.id] = manager
    return added


def empty_tenant(now: datetime | None = None) -> Tenant:
    """A tenant with roles and the default policy but no people (for focused tests)."""
    gen = _Generator("empty", now or datetime.now(UTC).replace(microsecond=0))
    tenant = gen.tenant()
    tenant.ground_truth = {"seed": "empty", "guest_kinds": {}}
    return tenant


def days_before(now: datetime, days: float) -> str:
    return (now - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
