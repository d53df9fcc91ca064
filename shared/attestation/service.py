"""What the notice, the HTTP adapters and the CLI call: links for a digest, the GET page, the POST action,
and the identity team's list / grant / revoke.

GET (`show`) reads and never writes: mail scanners and link previewers open every link in an email, so a
GET that acted would keep or let go guests nobody chose. POST (`act`) verifies the token, checks with
Graph that the sponsor still sponsors the guest, marks the token used (a conditional create: exactly one
POST acts), records the decision and audits it. Refusals of genuine tokens are audited too; a forged or
malformed token is only logged (anyone can send one: it must not be able to fill the audit log).
"""

from __future__ import annotations

import getpass
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from shared.attestation import pages, records
from shared.attestation.fetch import SponsoredGuest, display, find_guest, guests_with_sponsors
from shared.attestation.pages import Page
from shared.attestation.records import Kept
from shared.attestation.tokens import (
    Decision,
    ExpiredToken,
    Links,
    Token,
    TokenError,
    attestation_secret,
    new_nonce,
    sign,
    verify,
)
from shared.clock import utc_now
from shared.config import Policy, Settings, load_policy, load_settings
from shared.errors import InputError, UnknownItemError
from shared.graph import Graph, get_graph
from shared.store import AuditEntry, Store, open_state

log = logging.getLogger("guestctl.attestation")

MAX_GRANT_DAYS = 3650


# --- links in the sponsor notice -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DigestLinks:
    per_guest: dict[str, tuple[str, str]]  # guest id → (keep URL, let-go URL)
    keep_all: str | None  # None: a digest of one guest
    let_go_all: str | None


async def digest_links(
    store: Store, links: Links, sponsor_id: str, guests: dict[str, str], *, expires: datetime
) -> DigestLinks:
    """Keep and let-go links for each guest of one sponsor's digest, and for all of them (their list kept in
    the store under each all-link's nonce). Every link expires at the guests' disable date."""

    def token(decision: Decision, guest_id: str | None, nonce: str | None = None) -> str:
        return links.url(
            sign(decision, guest_id=guest_id, sponsor_id=sponsor_id, expires=expires, secret=links.secret, nonce=nonce)
        )

    per_guest = {g: (token(Decision.KEEP, g), token(Decision.LET_GO, g)) for g in guests}
    if len(guests) < 2:
        return DigestLinks(per_guest, None, None)
    all_links = []
    for decision in (Decision.KEEP, Decision.LET_GO):
        nonce = new_nonce()
        await records.save_digest(store, nonce, guests)
        all_links.append(token(decision, None, nonce))
    return DigestLinks(per_guest, all_links[0], all_links[1])


# --- GET and POST ------------------------------------------------------------------------------------------


def _until(policy: Policy, now: datetime) -> date:
    return (now + timedelta(days=policy.attestation.keep_days)).date()


def _token_page(error: TokenError) -> Page:
    return {"forged": pages.FORGED, "expired": pages.EXPIRED}.get(error.page, pages.MALFORMED)


async def show(text: str, *, settings: Settings | None = None, now: datetime | None = None) -> Page:
    """GET: the confirmation page for a link. Reads only: nothing in the store or the tenant changes."""
    now = now or utc_now()
    try:
        token = verify(text, secret=attestation_secret(), now=now)
    except TokenError as error:
        log.warning("attestation link refused on GET: %s", error)
        return _token_page(error)
    settings = settings or load_settings()
    policy = load_policy(settings.policy)
    async with open_state(settings) as store:
        if await records.was_used(store, token.nonce):
            return pages.USED
        guests = await _guests_of(store, get_graph(settings), token)
    if guests is None:
        return pages.refused(404, "Guest not found", "The guest account no longer exists.", "unknown-guest")
    until = f"{_until(policy, now):%Y-%m-%d}"
    disable_on = f"{token.expires:%Y-%m-%d}"
    return pages.confirm(token.decision.value, list(guests.values()), text, until=until, disable_on=disable_on)


async def _guests_of(store: Store, graph: Graph, token: Token) -> dict[str, str] | None:
    """The guests a token is about (id → display): the digest's, or the one guest as Graph has them."""
    if token.for_all:
        return await records.read_digest(store, token.nonce)
    found = (await guests_with_sponsors(graph, [token.guest_id]))[token.guest_id]
    return {found.id: found.display} if found is not None else None


async def act(text: str, *, settings: Settings | None = None, now: datetime | None = None) -> Page:
    """POST: verify, check the sponsor still sponsors each guest, use the token once, record, audit."""
    now = now or utc_now()
    try:
        token = verify(text, secret=attestation_secret(), now=now)
    except ExpiredToken as expired:
        settings = settings or load_settings()
        async with open_state(settings) as store:
            await _audit_refusal(store, expired.token, "expired", now)
        return pages.EXPIRED
    except TokenError as error:
        log.warning("attestation link refused on POST: %s", error)  # not audited: anyone can send one
        return _token_page(error)
    settings = settings or load_settings()
    policy = load_policy(settings.policy)
    async with open_state(settings) as store:
        return await _act(token, get_graph(settings), store, policy, now)


async def _act(token: Token, graph: Graph, store: Store, policy: Policy, now: datetime) -> Page:
    if await records.was_used(store, token.nonce):
        await _audit_refusal(store, token, "already used", now)
        return pages.USED
    wanted = await _guests_of(store, graph, token) if token.for_all else {token.guest_id: token.guest_id}
    if wanted is None:
        await _audit_refusal(store, token, "the digest behind the link is gone", now)
        return pages.EXPIRED
    found = await guests_with_sponsors(graph, list(wanted))
    eligible: list[SponsoredGuest] = []
    refused: list[str] = []
    for guest_id, guest in found.items():
        why = _refusal(guest, token.sponsor_id)
        if why is None and guest is not None:
            eligible.append(guest)
            continue
        refused.append(f"{guest.display if guest else wanted[guest_id]}: {why}")
        await _audit_refusal(store, token, str(why), now, guest_id=guest_id)
    if not eligible:
        if not token.for_all:
            guest = found[token.guest_id]
            if guest is None:
                return pages.refused(404, "Guest not found", "The guest account no longer exists.", "unknown-guest")
            return pages.refused(
                403, "You are no longer this guest's sponsor", f"{guest.display}: {refused[0]}", "not-sponsor"
            )
        return pages.done(token.decision.value, [], refused, until=None)
    sponsor = eligible[0].sponsors[token.sponsor_id]
    used = {
        "at": now.isoformat(),
        "sponsor_id": token.sponsor_id,
        "decision": token.decision.value,
        "expires": token.expires.isoformat(),  # names the notice the link came from (the weekly report)
    }
    if not await records.use(store, token.nonce, used):
        await _audit_refusal(store, token, "already used", now)
        return pages.USED
    try:
        acted = await _record(token, eligible, sponsor, store, policy, now, refused)
    except BaseException:
        await records.unuse(store, token.nonce)  # nothing (or not all) recorded: the sponsor may try again
        raise
    if not acted:
        await records.unuse(store, token.nonce)
    until = f"{_until(policy, now):%Y-%m-%d}"
    return pages.done(token.decision.value, acted, refused, until=until)


def _refusal(guest: SponsoredGuest | None, sponsor_id: str) -> str | None:
    if guest is None:
        return "the guest account no longer exists"
    if guest.user_type != "Guest":
        return f"not a guest account (userType {guest.user_type})"
    if sponsor_id not in guest.sponsors:
        return "you are no longer a sponsor of this guest"
    return None


async def _record(
    token: Token,
    guests: list[SponsoredGuest],
    sponsor: str,
    store: Store,
    policy: Policy,
    now: datetime,
    refused: list[str],
) -> list[str]:
    """Record the decision for each guest (a later decision replaces an earlier one); audited."""
    actor = f"sponsor {sponsor} ({token.sponsor_id}) by attestation link"
    run_id = f"attest-{token.nonce}"
    acted = []
    for guest in guests:
        if token.decision is Decision.KEEP:
            until = _until(policy, now)
            before = await records.keep(store, Kept(guest.id, until, sponsor, now, "sponsor link", guest.display))
            await _audit(
                store,
                "attestation.keep",
                guest.id,
                actor,
                f"kept by {sponsor} until {until:%Y-%m-%d}",
                before,
                {"attested_until": f"{until:%Y-%m-%d}", "by": sponsor},
                run_id,
                now,
            )
            acted.append(guest.display)
            continue
        why = f"let go by {sponsor} on {now:%Y-%m-%d}"
        if not await records.mark_let_go(store, guest.id, why):
            refused.append(f"{guest.display}: not waiting to be disabled (active again, or already disabled)")
            await _audit_refusal(store, token, "not flagged by guestctl now", now, guest_id=guest.id)
            continue
        before = await records.unkeep(store, guest.id)  # the sponsor's latest word stands
        await _audit(store, "attestation.letgo", guest.id, actor, why, before, {"let_go": why}, run_id, now)
        acted.append(guest.display)
    return acted


async def _audit(
    store: Store,
    name: str,
    guest_id: str,
    actor: str,
    reason: str,
    before: Kept | None,
    after: dict[str, str] | None,
    run_id: str | None,
    now: datetime,
) -> None:
    kept = {"attested_until": f"{before.until:%Y-%m-%d}", "by": before.by} if before is not None else None
    entry = AuditEntry(name, guest_id, actor, reason, before=kept, after=after, run_id=run_id, at=now)
    await store.append_audit(entry)


async def _audit_refusal(store: Store, token: Token, why: str, now: datetime, *, guest_id: str | None = None) -> None:
    """A genuine token that did not act: who tried what, and why not (GET never writes this)."""
    target = guest_id or token.guest_id or f"digest {token.nonce}"
    entry = AuditEntry(
        "attestation.refused",
        target,
        f"sponsor {token.sponsor_id} by attestation link",
        f"{token.decision.value} refused: {why}",
        run_id=f"attest-{token.nonce}",
        at=now,
    )
    await store.append_audit(entry)


# --- the identity team: guestctl attest list | grant | revoke --------------------------------------------


def who_asks(by: str | None) -> str:
    return by or getpass.getuser()


async def list_attestations(settings: Settings, *, now: datetime | None = None) -> list[Kept]:
    """Keeps in force (until today or later), soonest to end first."""
    today = (now or utc_now()).date()
    async with open_state(settings) as store:
        kept = await records.list_kept(store)
    return sorted((k for k in kept if k.until >= today), key=lambda k: (k.until, k.guest_id))


async def grant(settings: Settings, guest: str, until: date, *, by: str, now: datetime | None = None) -> Kept:
    """The identity team keeps a guest until `until` (audited with who asked)."""
    now = now or utc_now()
    if until <= now.date():
        raise InputError(f"--until {until}: must be after today ({now.date()})", hint="give a future date")
    if until > now.date() + timedelta(days=MAX_GRANT_DAYS):
        raise InputError(f"--until {until}: more than {MAX_GRANT_DAYS} days ahead", hint="give a nearer date")
    user = await find_guest(get_graph(settings), guest)
    if user is None:
        raise UnknownItemError(f"no user {guest!r} in the tenant", hint="give the guest's object id or UPN")
    if user.get("userType") != "Guest":
        raise InputError(f"{guest} is not a guest (userType {user.get('userType')})", hint="only guests are kept")
    kept = Kept(str(user["id"]).lower(), until, by, now, "guestctl attest grant", display(user))
    async with open_state(settings) as store:
        before = await records.keep(store, kept)
        await _audit(
            store,
            "attestation.grant",
            kept.guest_id,
            f"guestctl attest grant ({by})",
            f"kept by {by} until {until:%Y-%m-%d}",
            before,
            {"attested_until": f"{until:%Y-%m-%d}", "by": by},
            None,
            now,
        )
    return kept


async def revoke(settings: Settings, guest: str, *, by: str, now: datetime | None = None) -> Kept:
    """Remove a keep: the next sweep judges the guest again (audited)."""
    now = now or utc_now()
    user = await find_guest(get_graph(settings), guest)
    guest_id = str(user["id"]).lower() if user is not None else guest.lower()
    async with open_state(settings) as store:
        removed = await records.unkeep(store, guest_id)
        if removed is None:
            raise UnknownItemError(
                f"no attestation for guest {guest!r}", hint="guestctl attest list shows the guests kept"
            )
        await _audit(
            store,
            "attestation.revoke",
            guest_id,
            f"guestctl attest revoke ({by})",
            f"keep revoked by {by}",
            removed,
            None,
            None,
            now,
        )
    return removed
