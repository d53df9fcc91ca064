"""The pure rules of configuring trust: desired settings, the per-property diff, the 25 KB size check, the
plan's digest, the partner's instructions, and the policy's `partners` section."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.config import PartnerTrust, Policy
from shared.errors import InputError, PolicyError
from shared.partners.trust import (
    POLICY_SIZE_LIMIT,
    ActionKind,
    EditedPlanError,
    Plan,
    desired_settings,
    make_plan,
    property_changes,
    same,
)
from shared.partners.trust_effects import find_tenant
from shared.partners.trust_instructions import Parties, instruction_blocks, to_html, to_markdown

NOW = datetime(2026, 3, 1, tzinfo=UTC)
THEM = "0f77b40a-f8fa-46ff-ac08-41748c83b747"
OTHER = "3454dfcd-bbc8-4c4c-9db2-cf6d4b4101b5"
GROUP = "6f546279-4da5-4b53-a095-09ea0cef9971"
ALL = {"accessType": "allowed", "targets": [{"target": "AllUsers", "targetType": "user"}]}
O365 = {"accessType": "allowed", "targets": [{"target": "Office365", "targetType": "application"}]}
DEFAULT = {"isServiceDefault": True, "b2bDirectConnectInbound": {"usersAndGroups": ALL, "applications": O365}}


def entry(**fields: Any) -> PartnerTrust:
    return PartnerTrust.model_validate({"tenant": THEM, "inbound": {"users": "all"}, **fields})


def partner(**properties: Any) -> dict[str, Any]:
    base = {"tenantId": THEM, "inboundTrust": None, "b2bDirectConnectInbound": None, "b2bDirectConnectOutbound": None}
    return {**base, **properties}


def plan_for(current: list[dict[str, Any]], *entries: PartnerTrust) -> Plan:
    named = [(e.tenant, e.name or e.tenant, e) for e in entries]
    return make_plan(
        now=NOW, tenant_id=None, policy_digest="sha256:x", default=DEFAULT, partners_now=current, named=named
    )


@pytest.mark.parametrize("domain", ["fab\x05rikam.com", "fabrikam", "a'b.com", "fabrikam.com/x"])
def test_a_domain_that_is_no_domain_is_refused_before_graph(domain: str) -> None:
    """`partners migrate --tenant` passes it into Graph's URL: a control character was an InvalidURL (exit 70)."""
    with pytest.raises(InputError, match=r"is not a tenant id \(a GUID\) or a domain name"):
        asyncio.run(find_tenant(None, domain=domain))  # type: ignore[arg-type]  (no Graph call is made)


@pytest.mark.parametrize(
    ("current", "fields", "expected"),
    [
        pytest.param(None, {}, [("b2bDirectConnectInbound", None)], id="no-configuration-sets-inbound-only"),
        pytest.param(
            partner(b2bDirectConnectInbound={"usersAndGroups": ALL, "applications": O365}),
            {},
            [],
            id="already-as-wanted-no-change",
        ),
        pytest.param(
            partner(
                b2bDirectConnectInbound={
                    "usersAndGroups": {"accessType": "allowed", "targets": [{"target": GROUP, "targetType": "group"}]},
                    "applications": O365,
                }
            ),
            {},
            [
                (
                    "b2bDirectConnectInbound.usersAndGroups",
                    {"accessType": "allowed", "targets": [{"target": GROUP, "targetType": "group"}]},
                )
            ],
            id="only-the-changed-part-of-a-setting",
        ),
        pytest.param(
            partner(
                inboundTrust={
                    "isMfaAccepted": False,
                    "isCompliantDeviceAccepted": True,
                    "isHybridAzureADJoinedDeviceAccepted": False,
                }
            ),
            {"trust": {"mfa": True, "compliant_device": True}},
            [("b2bDirectConnectInbound", None), ("inboundTrust.isMfaAccepted", False)],
            id="only-the-changed-trust-flag",
        ),
        pytest.param(
            partner(b2bCollaborationInbound={"usersAndGroups": ALL}),
            {"outbound": {"groups": [GROUP]}},
            [("b2bDirectConnectInbound", None), ("b2bDirectConnectOutbound", None)],
            id="outbound-when-named-collaboration-never",
        ),
    ],
)
def test_property_changes(
    current: dict[str, Any] | None, fields: dict[str, Any], expected: list[tuple[str, Any]]
) -> None:
    changes = property_changes(current, desired_settings(entry(**fields)))
    assert [(c.property, c.from_) for c in changes] == expected


def test_target_order_and_case_are_not_a_change() -> None:
    listed = [{"target": GROUP.upper(), "targetType": "group"}, {"target": THEM, "targetType": "user"}]
    assert same({"accessType": "allowed", "targets": listed}, {"accessType": "allowed", "targets": listed[::-1]})


def test_plan_never_names_an_unnamed_partner_and_measures_the_size() -> None:
    untouched = {**partner(), "tenantId": OTHER, "inboundTrust": {"isMfaAccepted": True}}
    plan = plan_for([untouched], entry(trust={"mfa": True}))
    assert [(p.tenant_id, p.kind) for p in plan.partners] == [(THEM, ActionKind.CREATE)]
    assert plan.size_before < plan.size_after < POLICY_SIZE_LIMIT
    assert plan.refused is None


def test_plan_over_25_kb_is_refused() -> None:
    users = [f"{i:08x}-0000-4000-8000-000000000000" for i in range(600)]
    plan = plan_for([], entry(inbound={"users": users}))
    assert plan.size_after > POLICY_SIZE_LIMIT
    assert plan.refused is not None
    assert "25 KB" in plan.refused


def test_an_edited_plan_does_not_match_its_digest() -> None:
    body = plan_for([], entry()).to_json()
    assert Plan.from_json(body).digest() == body["digest"]
    body["partners"][0]["body"]["b2bDirectConnectInbound"]["usersAndGroups"]["accessType"] = "blocked"
    with pytest.raises(EditedPlanError):
        Plan.from_json(body)


def test_instructions_name_our_tenant_their_users_and_the_outbound_setting() -> None:
    parties = Parties("573e587b-7d71-4d95-b54f-aa25a966a6f0", "Contoso", THEM, "Fabrikam")
    blocks = instruction_blocks(parties, entry(inbound={"groups": [GROUP]}, outbound={"users": "all"}))
    markdown, page = to_markdown(blocks), to_html(blocks)
    for text in (markdown, page):
        assert parties.our_tenant_id in text
        assert GROUP in text
        assert "b2bDirectConnectOutbound" in text
    assert "b2bDirectConnectInbound" in markdown  # two-way: they let our users in too
    assert "<script" not in to_html(instruction_blocks(Parties("x", "<script>", THEM, "F"), entry()))


@pytest.mark.parametrize(
    ("tenants", "problem"),
    [
        pytest.param([{"tenant": "not a tenant", "inbound": {"users": "all"}}], "not a tenant id", id="bad-tenant"),
        pytest.param([{"tenant": THEM, "inbound": {}}], "names nobody", id="inbound-names-nobody"),
        pytest.param([{"tenant": THEM, "inbound": {"groups": ["marketing"]}}], "not an object id", id="group-not-guid"),
        pytest.param(
            [{"tenant": THEM, "inbound": {"users": "all"}}, {"tenant": THEM.upper(), "inbound": {"users": "all"}}],
            "more than once",
            id="duplicate-tenant",
        ),
        pytest.param(
            [{"tenant": THEM, "inbound": {"users": "all", "applications": ["Teams"]}}], "Office365", id="unknown-app"
        ),
        pytest.param(
            [{"tenant": THEM, "inbound": {"users": "all"}, "trust": {"mfa": "yes"}}],
            "expected true or false",
            id="strict",
        ),
    ],
)
def test_policy_partners_section_is_strict(tmp_path: Any, tenants: list[Any], problem: str) -> None:
    import yaml

    from shared.config import load_policy

    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump({"partners": {"tenants": tenants}}))
    with pytest.raises(PolicyError, match=problem):
        load_policy(path)


def test_policy_partners_section_takes_a_domain_in_any_case() -> None:
    policy = Policy.model_validate({"partners": {"tenants": [{"tenant": "Fabrikam.COM", "inbound": {"users": "all"}}]}})
    assert policy.partners.tenants[0].tenant == "fabrikam.com"
