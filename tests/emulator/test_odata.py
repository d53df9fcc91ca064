"""The $filter compiler on its own: advanced detection, rejections, and agreement with a brute-force check."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.errors import GraphError
from emulator.odata import compile_filter, decode_token, encode_token
from emulator.schema import USER
from emulator.seed import seed_tenant
from emulator.views import USER_ACCESSORS
from tests.support.emulator import NOW

TENANT = seed_tenant(21, guests=120, members=10, now=NOW)
USERS = list(TENANT.users.values())


@pytest.mark.parametrize(
    ("text", "advanced"),
    [
        pytest.param("userType eq 'Guest'", False, id="eq-default"),
        pytest.param("userType in ('Guest')", False, id="in-default"),
        pytest.param("userType ne 'Guest'", True, id="ne-advanced"),
        pytest.param("not (accountEnabled eq true)", True, id="not-advanced"),
        pytest.param("userType eq null", True, id="eq-null-advanced"),
        pytest.param("endsWith(userPrincipalName,'x')", True, id="endsWith-advanced"),
        pytest.param("startsWith(mail,'a') eq true", False, id="function-eq-true"),
        pytest.param("companyName eq 'Fabrikam'", True, id="advanced-only-property"),
    ],
)
def test_advanced_detection(text: str, advanced: bool) -> None:
    assert compile_filter(text, USER, USER_ACCESSORS).advanced is advanced


@pytest.mark.parametrize(
    ("text", "index"),
    [
        pytest.param("id eq 'abc'", ("id", ["abc"]), id="id-eq"),
        pytest.param("mail in ('a@b.c','d@e.f')", ("mail", ["a@b.c", "d@e.f"]), id="mail-in"),
        pytest.param("userPrincipalName eq 'x' and userType eq 'Guest'", ("userprincipalname", ["x"]), id="and"),
        pytest.param("id eq 'a' or id eq 'b'", ("id", ["a", "b"]), id="or-of-ids"),
        pytest.param("userType eq 'Guest'", ("usertype", ["Guest"]), id="any-eq-is-a-hint"),
        pytest.param("id eq 'a' or mail eq 'b'", None, id="or-of-two-properties"),
    ],
)
def test_index_hints(text: str, index: tuple | None) -> None:
    assert compile_filter(text, USER, USER_ACCESSORS).index == index


@pytest.mark.parametrize(
    "text",
    [
        "userType eq 'Guest' and",
        "(userType eq 'Guest'",
        "userType eq 'Guest')",
        "userType = 'Guest'",
        "startsWith(displayName)",
        "identities/all(c:c/issuer eq 'mail')",
        "'Guest' eq userType",
    ],
)
def test_malformed_filters_raise_400(text: str) -> None:
    with pytest.raises(GraphError) as raised:
        compile_filter(text, USER, USER_ACCESSORS)
    assert raised.value.status == 400


def test_string_literal_quote_escaping() -> None:
    compiled = compile_filter("displayName eq 'O''Brien'", USER, USER_ACCESSORS)
    assert compiled.index == ("displayname", ["O'Brien"])


def test_tokens_round_trip_and_garbage_is_400() -> None:
    assert decode_token(encode_token({"p": 3, "e": "x"})) == {"p": 3, "e": "x"}
    with pytest.raises(GraphError):
        decode_token("%%%")


CLAUSES = st.sampled_from(
    [
        ("userType eq 'Guest'", lambda u: u.userType == "Guest"),
        ("accountEnabled eq true", lambda u: u.accountEnabled is True),
        ("externalUserState eq 'PendingAcceptance'", lambda u: u.externalUserState == "PendingAcceptance"),
        ("createdDateTime ge 2024-06-01T00:00:00Z", lambda u: u.createdDateTime >= "2024-06-01T00:00:00Z"),
        ("startsWith(mail,'m')", lambda u: (u.mail or "").lower().startswith("m")),
        ("creationType eq 'Invitation'", lambda u: u.creationType == "Invitation"),
    ]
)


@settings(max_examples=60, deadline=None)
@given(st.lists(CLAUSES, min_size=1, max_size=4), st.lists(st.booleans(), min_size=3, max_size=3))
def test_compiled_filters_agree_with_a_brute_force_check(clauses: list, joins: list[bool]) -> None:
    text = clauses[0][0]
    checks = [clauses[0][1]]
    ops = []
    for (clause, check), use_and in zip(clauses[1:], joins, strict=False):
        text += (" and " if use_and else " or ") + clause
        checks.append(check)
        ops.append(use_and)
    predicate = compile_filter(text, USER, USER_ACCESSORS).predicate

    def brute(user: object) -> bool:
        # OData precedence: 'and' binds tighter than 'or'.
        groups = [[checks[0]]]
        for check, use_and in zip(checks[1:], ops, strict=True):
            if use_and:
                groups[-1].append(check)
            else:
                groups.append([check])
        return any(all(c(user) for c in group) for group in groups)

    assert [u.id for u in USERS if predicate(u)] == [u.id for u in USERS if brute(u)]
