"""A tenant with five partner organisations for partner discovery, built with the emulator's seed API.

- Fabrikam (fabrikam.com, fabrikam.co.uk): the large one: 10 Teams-only guests, one in another group, one
  holding a directory role; no direct connect configured → migrate.
- Tailspin (tailspin.com): 3 of 4 guests use an app → keep guests.
- consumer mail (gmail.com) → no tenant; also a Microsoft account guest of a company domain (non-Entra
  identity) and a pending guest of a domain no tenant has verified.
- Northwind (northwind.com): configured on our side, their admin never enables outbound (no direct
  connect sign-ins) → awaiting partner.
- Woodgrove (woodgrove.com): configured, with direct connect sign-ins → already configured.

For migration: team Project X has the shared channel "Project X Partners"; team Project Y has no shared
channel (nobody but its owner; a test puts people in it); a member user, `OWNER`, owns both. Fabrikam's and
Northwind's people have home-tenant users (`home_id(mail)`); f9 has left Fabrikam, so their home account is
disabled. Fabrikam allows us outbound, Northwind never does. Fabrikam's admin consented our multi-tenant app
(its directory answers our app's tokens for their tenant), Northwind's did not. `home_tenant(now)` is
Fabrikam's own tenant, where their admin runs `guestctl partners accept`: every Fabrikam person, f9 disabled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from emulator.seed import days_before, empty_tenant, make_sign_in, make_user
from emulator.tenant import Channel, ExternalTenant, Group, Tenant

FABRIKAM = "aaaaaaaa-0000-4000-8000-000000000001"
TAILSPIN = "aaaaaaaa-0000-4000-8000-000000000002"
NORTHWIND = "aaaaaaaa-0000-4000-8000-000000000003"
WOODGROVE = "aaaaaaaa-0000-4000-8000-000000000004"
SHARED_CHANNEL = "19:aaaa0000000040008000000000000001@thread.tacv2"
TEAM_Y = "cccccccc-0000-4000-8000-000000000003"
OWNER = "dddddddd-0000-4000-8000-00000000000f"
FABRIKAM_PEOPLE = [*(f"f{n}@{'fabrikam.co.uk' if n < 2 else 'fabrikam.com'}" for n in range(10)),
                   "f.other@fabrikam.com", "f.admin@fabrikam.com"]  # fmt: skip
NORTHWIND_PEOPLE = [f"n{n}@northwind.com" for n in range(3)]
EXPENSES_APP = "bbbbbbbb-0000-4000-8000-000000000001"
DIRECT_CONNECT_INBOUND = {
    "b2bDirectConnectInbound": {
        "usersAndGroups": {"accessType": "allowed", "targets": [{"target": "AllUsers", "targetType": "user"}]},
        "applications": {"accessType": "allowed", "targets": [{"target": "Office365", "targetType": "application"}]},
    }
}


@dataclass
class PartnerTenant:
    tenant: Tenant
    guests: dict[str, list[str]] = field(default_factory=dict)  # organisation → guest ids
    role_holder: str = ""


def _guest(tenant: Tenant, mail: str, now: datetime, *, days: int, active: bool, **fields: object) -> str:
    activity = {"lastSuccessfulSignInDateTime": days_before(now, 5 if active else 200)}
    return make_user(
        tenant,
        userType="Guest",
        mail=mail,
        createdDateTime=days_before(now, days),
        signInActivity=activity,
        **fields,
    ).id


def home_id(mail: str) -> str:
    """The person's object id in their home tenant (stable, so both tenants agree on it)."""
    people = FABRIKAM_PEOPLE + NORTHWIND_PEOPLE
    return f"eeeeeeee-0000-4000-8000-{people.index(mail):012d}"


def home_tenant(now: datetime) -> Tenant:
    """Fabrikam's own tenant: its people as members (f9 has left: disabled), nothing else."""
    tenant = empty_tenant(now)
    tenant.id = FABRIKAM  # empty_tenant's id is fixed: ours would be the same
    for mail in FABRIKAM_PEOPLE:
        make_user(tenant, id=home_id(mail), mail=mail, userPrincipalName=mail, accountEnabled=not left(mail))
    return tenant


def left(mail: str) -> bool:
    """f9 has left Fabrikam: their home account is disabled."""
    return mail.startswith("f9@")


def partner_tenant(now: datetime) -> PartnerTenant:
    """The five-partner tenant (see the module docstring); partner configurations are made through Graph by
    the test (`DIRECT_CONNECT_INBOUND` for Northwind and Woodgrove)."""
    tenant = empty_tenant(now)
    for tenant_id, name, domains in (
        (FABRIKAM, "Fabrikam", ("fabrikam.com", "fabrikam.co.uk")),
        (TAILSPIN, "Tailspin Toys", ("tailspin.com",)),
        (NORTHWIND, "Northwind Traders", ("northwind.com",)),
        (WOODGROVE, "Woodgrove Bank", ("woodgrove.com",)),
    ):
        external = tenant.add_external_tenant(ExternalTenant(tenant_id, name, domains[0], domains))
        people = {FABRIKAM: FABRIKAM_PEOPLE, NORTHWIND: NORTHWIND_PEOPLE}.get(tenant_id, [])
        external.users.update(
            {home_id(m): {"displayName": m.split("@")[0], "mail": m, "accountEnabled": not left(m)} for m in people}
        )
        external.direct_connect_outbound = external.app_consented = tenant_id == FABRIKAM
    team = tenant.add_group(Group("cccccccc-0000-4000-8000-000000000001", "Project X", days_before(now, 900),
                                  resourceProvisioningOptions=("Team",)))  # fmt: skip
    tenant.channels[SHARED_CHANNEL] = Channel(
        SHARED_CHANNEL, team.id, "Project X Partners", "shared", days_before(now, 800)
    )
    other = tenant.add_group(Group("cccccccc-0000-4000-8000-000000000002", "Finance share", days_before(now, 900)))
    team_y = tenant.add_group(Group(TEAM_Y, "Project Y", days_before(now, 100), resourceProvisioningOptions=("Team",)))
    make_user(tenant, id=OWNER, mail="owner@contoso.com", userPrincipalName="owner@contoso.com")
    for owned in (team, team_y):
        tenant.add_member(owned, OWNER)
        owned.owners[OWNER] = None
    built = PartnerTenant(tenant)

    def add(org: str, mail: str, *, days: int = 400, active: bool = True, **fields: object) -> str:
        user_id = _guest(tenant, mail, now, days=days, active=active, **fields)
        built.guests.setdefault(org, []).append(user_id)
        return user_id

    for n in range(10):
        domain = "fabrikam.co.uk" if n < 2 else "fabrikam.com"
        tenant.add_member(team, add("fabrikam", f"f{n}@{domain}", days=300 + 10 * n, active=n < 7))
    tenant.add_member(other, add("fabrikam", "f.other@fabrikam.com"))
    built.role_holder = add("fabrikam", "f.admin@fabrikam.com")
    tenant.add_member(team, built.role_holder)
    tenant.assign_role(
        next(r for r in tenant.roles.values() if r.displayName == "Directory Readers"), built.role_holder
    )

    for n in range(4):
        user_id = add("tailspin", f"t{n}@tailspin.com")
        tenant.add_member(team, user_id)
        if n < 3:
            tenant.assign_app_role(user_id, resource_id=EXPENSES_APP, resource_display_name="Expenses")
    mail_identity = [{"signInType": "federated", "issuer": "mail", "issuerAssignedId": None}]
    add("consumer", "ann@gmail.com", identities=mail_identity)
    add("consumer", "cy@gmail.com", externalUserState="PendingAcceptance", active=False)
    add("other", "bob@litware.com", identities=[{"signInType": "federated", "issuer": "MicrosoftAccount"}])
    add("other", "eve@unknown-org.example", externalUserState="PendingAcceptance")
    for n in range(3):
        tenant.add_member(team, add("northwind", f"n{n}@northwind.com"))
    for n in range(2):
        tenant.add_member(team, add("woodgrove", f"w{n}@woodgrove.com"))
    for n in range(3):  # direct connect sign-ins of Woodgrove's home users; B2B sign-ins of Fabrikam's guests
        when = (now - timedelta(days=n + 1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        tenant.add_sign_in(
            make_sign_in(tenant, entry_id=f"dc{n}", created=when, user_id=f"dddddddd-0000-4000-8000-00000000000{n}",
                         display_name="W", principal_name=f"w{n}@woodgrove.com", access_type="b2bDirectConnect",
                         home_tenant_id=WOODGROVE, user_type="member")
        )  # fmt: skip
        guest = built.guests["fabrikam"][n]
        tenant.add_sign_in(
            make_sign_in(tenant, entry_id=f"gc{n}", created=when, user_id=guest, display_name="F",
                         principal_name=f"f{n}@fabrikam.com", access_type="b2bCollaboration",
                         home_tenant_id=FABRIKAM, user_type="guest")
        )  # fmt: skip
    return built
