"""Partners: move long-term partners from guest accounts to B2B direct connect (docs/partners.md).

Names only: each is imported from its module on first use, so `import shared.partners.rules` (pure) does
not load the Graph client or the store.
"""

from __future__ import annotations

from shared.core.names import names_from

_HOMES = {
    "Discovery": "report",
    "Partner": "report",
    "Recommendation": "rules",
    "Verdict": "rules",
    "discover": "service",
    "discover_with": "service",
    "latest_discovery": "service",
}

__all__ = sorted(_HOMES)

__getattr__ = names_from(__name__, _HOMES)
