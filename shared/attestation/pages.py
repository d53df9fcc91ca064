"""The pages a sponsor sees: plain HTML, no scripts, no external resources, nothing to load from elsewhere.

Pure: a page is made from what the service found. Every value is HTML-escaped. The response headers
(`HEADERS`) forbid scripts, framing and sending the link (it carries the token) as a referrer.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass, field

HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Robots-Tag": "noindex, nofollow",
}
STYLE = (
    "body{font-family:Segoe UI,Helvetica,Arial,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;"
    "line-height:1.5;color:#1b1b1b;background:#fff}h1{font-size:1.4rem}li{margin:.2rem 0}"
    "button{font-size:1rem;padding:.6rem 1.2rem;border:0;border-radius:4px;background:#0f6cbd;color:#fff}"
    "@media (prefers-color-scheme:dark){body{color:#eee;background:#1b1b1b}}"
)
ACTION_WORDS = {"keep": "Keep", "letgo": "Let go"}


@dataclass(frozen=True, slots=True)
class Page:
    """What the HTTP adapter sends: a status, a title, paragraphs, an optional list, an optional form."""

    status: int
    title: str
    paragraphs: tuple[str, ...] = ()
    items: tuple[str, ...] = ()
    form_token: str | None = None  # set: a POST form carrying this token
    button: str = ""
    outcome: str = ""  # a short machine word for logs and tests: shown, kept, let-go, expired, used, …
    extra: dict[str, str] = field(default_factory=dict)

    def html(self) -> str:
        parts = [
            "<!doctype html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            '<meta name="referrer" content="no-referrer">',
            f"<title>{html.escape(self.title)}</title><style>{STYLE}</style></head><body>",
            f"<h1>{html.escape(self.title)}</h1>",
            *(f"<p>{html.escape(p)}</p>" for p in self.paragraphs),
        ]
        if self.items:
            parts.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in self.items) + "</ul>")
        if self.form_token is not None:
            parts.append(
                '<form method="post" action="attest">'
                f'<input type="hidden" name="token" value="{html.escape(self.form_token, quote=True)}">'
                f'<button type="submit">{html.escape(self.button)}</button></form>'
            )
        parts.append("</body></html>")
        return "\n".join(parts)


def confirm(decision: str, guests: Iterable[str], token: str, *, until: str | None, disable_on: str) -> Page:
    """GET: what the button would do. Nothing has changed yet (mail scanners open every link)."""
    shown = tuple(guests)
    who = shown[0] if len(shown) == 1 else f"these {len(shown)} guests"
    if decision == "keep":
        title = f"Keep {who}?"
        what = f"They keep their access until {until}; the cleanup sweep leaves them alone until then."
    else:
        title = f"Let {who} go?"
        what = "Their account is disabled at the next cleanup sweep, then deleted after the grace period."
    return Page(
        200,
        title,
        (what, "Nothing has changed yet: confirm with the button."),
        shown if len(shown) > 1 else (),
        form_token=token,
        button=f"{ACTION_WORDS[decision]}" + ("" if len(shown) == 1 else f" all {len(shown)}"),
        outcome="shown",
    )


def done(decision: str, acted: list[str], refused: list[str], *, until: str | None) -> Page:
    """POST: what was recorded, and for whom it was not (no longer their sponsor, not flagged, gone)."""
    if decision == "keep":
        title = "Kept" if acted else "Nothing was kept"
        said = f"Recorded: kept until {until}. The cleanup sweep leaves them alone until then."
    else:
        title = "Let go" if acted else "Nothing was changed"
        said = "Recorded: disabled at the next cleanup sweep (still only while inactive), then deleted later."
    paragraphs = [said] if acted else []
    if refused:
        paragraphs.append("Not changed: " + "; ".join(refused))
    return Page(200 if acted else 409, title, tuple(paragraphs), tuple(acted), outcome="done" if acted else "refused")


def refused(status: int, title: str, why: str, outcome: str) -> Page:
    return Page(status, title, (why, "Nothing was changed."), outcome=outcome)


MALFORMED = refused(
    400,
    "This link is incomplete",
    "The link is not a complete attestation link: it may have been cut in two by the email program. Open it "
    "from the email again, or copy all of it.",
    "malformed",
)
FORGED = refused(
    403,
    "This link is not valid",
    "The link was not made by this guestctl, or it was changed after it was sent.",
    "forged",
)
EXPIRED = refused(
    410,
    "This link has expired",
    "The link was valid until the guest's disable date. Ask your identity team if someone still needs access.",
    "expired",
)
USED = refused(409, "This link was already used", "Each link works once, and this one has been used.", "used")
NOT_CONFIGURED = refused(
    503,
    "Attestation is not available",
    "This service is not set up to accept answers right now. Ask your identity team.",
    "not-configured",
)
UNAVAILABLE = refused(
    503, "Please try again later", "The directory or the state store could not be reached.", "unavailable"
)
