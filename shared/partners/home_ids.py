"""Home ids read from the partner's tenant by our multi-tenant app (`home_ids: app`), instead of their id file.

Only the candidates' own addresses are looked up — never the partner's whole directory: the addresses our
guest accounts of them carry (mail, otherMails, the one inside the #EXT# userPrincipalName; the same ones
`migrate.match_home` matches on) go into `mail in (...)` and `userPrincipalName in (...)` filters of at most
15 values each (docs/graph-contract.md#advanced-queries). What comes back becomes the same `HomeUser` records
an id file gives (members with an enabled account only, `accept.home_user`), in an `IdsFile` built in memory,
so planning does not change. Its `created_at` is the day (UTC): the same answer on the same day is the same
run (a rerun finishes it), and the next day's is a new run, which tries people the partner's outbound
blocked again — what a new id file does on the file path.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Final

from shared.credentials import app_client_id
from shared.errors import CredentialError, PermissionDeniedError
from shared.graph import Graph
from shared.graph.odata import chunks, literals
from shared.partners.accept import HomeUser, IdsFile, home_user
from shared.partners.migrate import guest_addresses
from shared.partners.records import Guest

APP_SELECT: Final = "id,mail,userPrincipalName,otherMails,accountEnabled,userType"
APP_SCOPE: Final = {"read_by": "app"}  # the in-memory id file's scope: read by our app, not chosen by them
MATCHED_ON: Final = ("mail", "userPrincipalName")
PERMISSION: Final = "User.Read.All"


def candidate_addresses(guests: Iterable[Guest]) -> list[str]:
    """Every address the candidates are known by, once, sorted (stable requests for the same guests)."""
    return sorted({address for guest in guests for address in guest_addresses(guest)})


async def read_home_users(partner: Graph, addresses: list[str]) -> list[HomeUser]:
    """The partner's users whose mail or userPrincipalName is one of `addresses`, by filter only."""
    found: dict[str, HomeUser] = {}
    for prop in MATCHED_ON:
        for chunk in chunks(addresses):
            params = {"$filter": f"{prop} in ({literals(chunk)})", "$select": APP_SELECT, "$top": 999}
            async for page in partner.pages("/users", params=params):
                for item in page.items:
                    if (user := home_user(item)) is not None:
                        found.setdefault(user.id, user)
    return sorted(found.values(), key=lambda user: user.id)


def ids_from_app(partner_tenant: str, our_tenant: str | None, users: list[HomeUser], now: datetime) -> IdsFile:
    """The id file the app's answer amounts to (see the module docstring for `created_at`). The partner's
    outbound setting is not readable with User.Read.All: `outbound_applied` is assumed, and an add their
    outbound refuses is reported `blocked` when applying, as on the file path."""
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return IdsFile(partner_tenant, (our_tenant or "").lower(), day, dict(APP_SCOPE), True, tuple(users))


async def home_users_via_app(partner: Graph, label: str, guests: Iterable[Guest]) -> list[HomeUser]:
    """`read_home_users` with the partner's refusals said as what their admin must do."""
    tenant = partner.options.tenant_id or ""
    client_id = app_client_id(partner.options.client_id) or "<our app's client id>"
    consent_url = f"https://{partner.options.cloud.authority_host}/{tenant}/adminconsent?client_id={client_id}"
    try:
        return await read_home_users(partner, candidate_addresses(guests))
    except CredentialError as error:
        refused = _token_refusal(error)
        if refused is None:  # not Entra refusing a token for their tenant (e.g. a token for ours): as it is
            raise
        raise _no_consent(label, tenant, client_id, consent_url, refused) from error
    except PermissionDeniedError as error:
        if error.status == 401:  # the emulator's stand-in for a refused token (it has no token endpoint)
            raise _no_consent(label, tenant, client_id, consent_url, error.message) from error
        raise PermissionDeniedError(
            f"partner {label} ({tenant}): our app may not read users there ({error.status} {error.code})",
            hint=f"their admin must grant the application permission {PERMISSION} to app {client_id} in their "
            f"tenant (admin consent: {consent_url}); nothing was changed",
            status=error.status,
            code=error.code,
        ) from error


def _token_refusal(error: CredentialError) -> str | None:
    """Entra's own first line (AADSTS…) when azure-identity could not get a token, else None."""
    from azure.core.exceptions import ClientAuthenticationError

    cause = error.__cause__
    if not isinstance(cause, ClientAuthenticationError):
        return None
    return (str(cause.message or cause).strip().splitlines() or [type(cause).__name__])[0]


def _no_consent(label: str, tenant: str, client_id: str, url: str, detail: str) -> CredentialError:
    return CredentialError(
        f"partner {label} ({tenant}): no token of our app for their tenant: {detail[:200]}",
        hint=f"their admin must grant admin consent to app {client_id} in tenant {tenant} ({PERMISSION}): {url}; "
        "or use their id file (home_ids: file); nothing was changed",
    )
