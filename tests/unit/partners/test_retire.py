"""The pure matching of a guest to direct connect sign-ins: by the home id migration linked, else by
address; never across home tenants, never an address someone else now signs in with."""

from __future__ import annotations

import pytest

from shared.partners.retire import ADDRESS, HOME_ID, Evidence, SignedIn, TenantSignIns, direct_evidence, home_address
from shared.stale.records import Guest

A = "aaaaaaaa-0000-4000-8000-000000000001"  # the guest's home tenant
B = "aaaaaaaa-0000-4000-8000-000000000002"  # another partner
ID1, ID2 = "eeeeeeee-0000-4000-8000-000000000001", "eeeeeeee-0000-4000-8000-000000000002"
ADDRESSES = {"ann@fabrikam.com"}

SEEN = {
    A: TenantSignIns(
        [
            SignedIn("ann.new@fabrikam.com", ID1, "2026-11-20"),  # Ann, renamed at home
            SignedIn("ann@fabrikam.com", ID1, "2026-11-02"),  # Ann, before the rename
        ]
    ),
    B: TenantSignIns([SignedIn("ann@fabrikam.com", ID2, "2026-11-25")]),
}


@pytest.mark.parametrize(
    ("links", "addresses", "seen", "expected"),
    [
        pytest.param({(A, ID1)}, ADDRESSES, SEEN, Evidence("2026-11-20", HOME_ID, ID1), id="home-id-over-rename"),
        pytest.param({(A, ID1.upper())}, set(), SEEN, Evidence("2026-11-20", HOME_ID, ID1), id="home-id-any-case"),
        pytest.param(set(), ADDRESSES, SEEN, Evidence("2026-11-02", ADDRESS, "ann@fabrikam.com"), id="address"),
        pytest.param(set(), {"Ann@Fabrikam.com"}, SEEN, Evidence("2026-11-02", ADDRESS, "ann@fabrikam.com"), id="case"),
        pytest.param(set(), {"bob@fabrikam.com"}, SEEN, None, id="nobody"),
        pytest.param({(B, ID1)}, set(), SEEN, None, id="link-of-another-tenant"),
        pytest.param({(A, ID2)}, set(), {B: SEEN[B]}, None, id="home-id-seen-in-another-tenant"),
        pytest.param(set(), ADDRESSES, {B: SEEN[B]}, None, id="address-seen-in-another-tenant"),
        pytest.param({(A, ID2)}, ADDRESSES, SEEN, None, id="address-now-someone-else"),
        pytest.param(
            {(A, ID2)},
            ADDRESSES,
            {A: TenantSignIns([SignedIn("ann@fabrikam.com", None, "2026-11-02")])},
            Evidence("2026-11-02", ADDRESS, "ann@fabrikam.com"),
            id="address-whose-home-id-is-unknown",
        ),
        pytest.param({(A, ID1)}, ADDRESSES, {}, None, id="no-sign-ins-kept"),
    ],
)
def test_direct_evidence(
    links: set[tuple[str, str]], addresses: set[str], seen: dict[str, TenantSignIns], expected: Evidence | None
) -> None:
    assert direct_evidence(A, links, addresses, seen) == expected


def test_the_evidence_says_what_matched() -> None:
    assert str(Evidence("2026-11-20", HOME_ID, ID1)) == f"direct connect sign-in on 2026-11-20 by home id {ID1}"
    assert str(Evidence("2026-11-20", ADDRESS, "a@b.com")) == "direct connect sign-in on 2026-11-20 by address a@b.com"


def test_home_addresses_are_the_mail_and_the_one_inside_a_b2b_upn() -> None:
    guest = Guest(id="g", mail="Ann.Alias@Fabrikam.com", user_principal_name="ann_fabrikam.com#EXT#@contoso.com")
    assert home_address(guest) == {"ann.alias@fabrikam.com", "ann@fabrikam.com"}
    assert home_address(Guest(id="m", user_principal_name="member@contoso.com")) == set()
