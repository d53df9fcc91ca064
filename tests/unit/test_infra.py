"""infra/*.bicep against the code and the docs: every app setting the code reads is set (or documented as
optional), every queue/table/container the code names is declared, the role assignments are the ones
infra/README.md lists, and nothing secret is in settings or outputs. Templates are parsed with pycep-parser
(the Bicep compiler cannot be installed offline). Each check returns its problems, so a test that mutates a
copy can show the check fails when one side changes."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from pycep import BicepParser

from shared.attestation import tokens
from shared.config import ENV_PREFIX, TIMER_SCHEDULES, Settings
from shared.notifications import inbox as notifications_inbox
from shared.offboarding import signatures
from shared.offboarding.adapters.registry import ADAPTERS
from shared.store.registry import TABLES

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
README = INFRA / "README.md"
GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
SITE = "Microsoft.Web/sites"
ROLE_ASSIGNMENT = "Microsoft.Authorization/roleAssignments"
VAULT_REFERENCE = "@Microsoft.KeyVault("


# -- reading the templates -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def templates() -> dict[str, dict[str, Any]]:
    return {path.name: BicepParser().parse(text=path.read_text(encoding="utf-8")) for path in INFRA.glob("*.bicep")}


@pytest.fixture(scope="module")
def main(templates: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return templates["main.bicep"]


def body(resource: dict[str, Any]) -> dict[str, Any]:
    """A resource's properties, under a loop or condition or not."""
    config = resource["config"]
    return config["config"] if "config" in config and ("loop_type" in config or "condition" in config) else config


def resources(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {name: body(r) for name, r in template["resources"].items() if r["type"] == type_}


def variable(template: dict[str, Any], name: str) -> Any:
    return template["variables"][name]["value"]


def app_settings(template: dict[str, Any]) -> dict[str, Any]:
    sites = list(resources(template, SITE).values())
    settings = [site.get("properties", {}).get("siteConfig", {}).get("appSettings", []) for site in sites]
    return {item["name"]: item["value"] for items in settings for item in items}  # existing sites have none


def leaves(value: Any) -> list[Any]:
    """Every literal inside a parsed expression (strings, numbers), in order."""
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in leaves(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in leaves(item)]
    return [value]


def outcomes(value: Any) -> list[Any]:
    """The values a setting can take: both branches of a `cond ? a : b`, else the value itself."""
    operator = value.get("operator", {}) if isinstance(value, dict) else {}
    if operator.get("type") == "conditional":
        return [*outcomes(operator["operands"]["true_value"]), *outcomes(operator["operands"]["false_value"])]
    return [value]


def readme_table(heading: str) -> list[list[str]]:
    """The rows of the first table under `## heading` in infra/README.md, cells without backticks."""
    section = README.read_text(encoding="utf-8").split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")][2:]
    return [[cell.strip().strip("`") for cell in row.strip("|").split("|")] for row in rows]


# -- what the code uses --------------------------------------------------------------------------------------
def settings_the_code_reads() -> set[str]:
    """Settings fields, the secrets and URLs read from os.environ, and the timers' %SETTING% schedules."""
    names = {ENV_PREFIX + field.upper() for field in Settings.model_fields}
    names |= {notifications_inbox.SECRET_SETTING, tokens.SECRET_SETTING, tokens.URL_SETTING}
    names |= {signatures.SECRETS_SETTING, *(adapter.secrets_setting for adapter in ADAPTERS.values())}
    for path in (ROOT / "functions").glob("*.py"):
        names |= set(re.findall(r"%([A-Z][A-Z0-9_]*)%", path.read_text(encoding="utf-8")))
    return names


def binding_list(functions: dict[str, func.FunctionBuilder]) -> list[dict[str, Any]]:
    return [b for f in functions.values() for b in json.loads(f.get_function_json())["bindings"]]


def storage_names(functions: dict[str, func.FunctionBuilder]) -> dict[str, set[str]]:
    """Queues, blob containers and storage connections the bindings name; each triggered queue's poison queue."""
    found: dict[str, set[str]] = {"queues": set(), "containers": set(), "connections": set()}
    for binding in binding_list(functions):
        if "queueName" in binding:
            found["queues"].add(binding["queueName"])
            if binding["type"] == "queueTrigger":
                found["queues"].add(binding["queueName"] + "-poison")
        if binding["type"].startswith("blob"):
            found["containers"].add(binding["path"].split("/")[0])
            if binding["type"] == "blobTrigger":
                found["queues"].add("webjobs-blobtrigger-poison")
        if binding.get("connection"):
            found["connections"].add(binding["connection"])
    return found


# -- checks (each returns its problems) ----------------------------------------------------------------------
def unset_settings(template: dict[str, Any], code_settings: set[str]) -> list[str]:
    optional = {row[0] for row in readme_table("Optional settings")}
    return sorted(code_settings - set(app_settings(template)) - optional)


def undeclared_names(template: dict[str, Any], used: dict[str, set[str]], tables: set[str]) -> list[str]:
    declared = {
        "queues": set(variable(template, "queueNames")),
        "containers": set(variable(template, "containerNames")),
        "tables": set(variable(template, "tableNames")),
    }
    problems = [f"queue {name}" for name in sorted(used["queues"] - declared["queues"])]
    problems += [f"container {name}" for name in sorted(used["containers"] - declared["containers"])]
    problems += [f"table {name}" for name in sorted(tables ^ declared["tables"])]
    settings = app_settings(template)
    for connection in sorted(used["connections"]):
        for suffix in ("accountName", "credential", "clientId"):
            if f"{connection}__{suffix}" not in settings:
                problems.append(f"setting {connection}__{suffix}")
    return problems


def role_assignments(template: dict[str, Any]) -> set[tuple[str, str, str]]:
    """(role definition id, scope, principal) of each role assignment in the template."""
    found = set()
    for assignment in resources(template, ROLE_ASSIGNMENT).values():
        (role,) = [leaf for leaf in leaves(assignment["properties"]["roleDefinitionId"]) if GUID.fullmatch(str(leaf))]
        accessors = leaves(assignment["properties"]["principalId"])
        principal = ".".join(str(leaf) for leaf in accessors if leaf != "property_accessor")
        found.add((role, assignment["scope"], principal))
    return found


def documented_roles() -> set[tuple[str, str, str]]:
    return {(row[1], row[2], row[3]) for row in readme_table("Role assignments")}


def blob_endpoint(template: dict[str, Any]) -> str | None:
    """The one place a key may be read: the blobs extension endpoint Event Grid calls (blobtrigger.bicep), a
    WebHook destination's URL, which Event Grid returns only as its base URL on reads."""
    for subscription in resources(template, "Microsoft.EventGrid/systemTopics/eventSubscriptions").values():
        destination = subscription["properties"]["destination"]
        if destination["endpointType"] == "WebHook":
            return str(destination["properties"]["endpointUrl"])
    return None


def secrets_in_view(template: dict[str, Any]) -> list[str]:
    """Keys or secrets where they would be readable: listKeys/connection strings anywhere, a secret setting
    that is not a Key Vault reference, an output that names a key or secret."""
    problems = []
    scanned = copy.deepcopy(template)  # the blobs endpoint is checked exactly by its own test
    for subscription in resources(scanned, "Microsoft.EventGrid/systemTopics/eventSubscriptions").values():
        if subscription["properties"]["destination"]["endpointType"] == "WebHook":
            subscription["properties"]["destination"]["properties"]["endpointUrl"] = "the blobs endpoint"
    text = json.dumps(scanned)
    for marker in ("listKeys", "listkeys", "AccountKey", "SharedAccessSignature", "listSecrets"):
        if marker in text:
            problems.append(f"{marker} in the template")
    references = {name for name, var in template["variables"].items() if str(var["value"]).startswith(VAULT_REFERENCE)}
    for name, value in app_settings(template).items():
        if re.search(r"SECRET|PASSWORD|KEY", name) and name != "GUESTCTL_CLIENT_ID":
            for leaf in outcomes(value):
                literal = isinstance(leaf, str) and (leaf.startswith(VAULT_REFERENCE) or leaf == "")
                referenced = isinstance(leaf, str) and any(leaf.startswith("${" + ref + "}") for ref in references)
                if not (literal or referenced):
                    problems.append(f"setting {name} holds {str(leaf)[:40]!r}, not a Key Vault reference")
    for name, output in template.get("outputs", {}).items():
        if re.search(r"key|secret|password|connection", name.lower().replace("keyvault", "")):
            problems.append(f"output {name}")
        if re.search(r"ConnectionString|listKeys|secret", json.dumps(output["value"]), re.IGNORECASE):
            problems.append(f"output {name} exposes {json.dumps(output['value'])[:60]}")
    return problems


# -- tests ---------------------------------------------------------------------------------------------------
def test_every_template_parses(templates: dict[str, dict[str, Any]]) -> None:
    assert {"main.bicep", "eventgrid.bicep"} <= set(templates)
    assert all(template["resources"] for template in templates.values())


def test_every_setting_the_code_reads_is_set_or_documented_optional(main: dict[str, Any]) -> None:
    assert unset_settings(main, settings_the_code_reads()) == []


def test_optional_settings_are_settings_the_code_reads() -> None:
    """infra/README.md's optional list must not hide a typo: each row names a real setting."""
    assert {row[0] for row in readme_table("Optional settings")} <= settings_the_code_reads()


def test_a_new_setting_in_the_code_is_reported(main: dict[str, Any]) -> None:
    assert unset_settings(main, {*settings_the_code_reads(), "GUESTCTL_SOMETHING_NEW"}) == ["GUESTCTL_SOMETHING_NEW"]
    removed = copy.deepcopy(main)
    site = next(iter(resources(removed, SITE).values()))
    site["properties"]["siteConfig"]["appSettings"] = [
        s for s in site["properties"]["siteConfig"]["appSettings"] if s["name"] != "GUESTCTL_SWEEP_SCHEDULE"
    ]
    assert unset_settings(removed, settings_the_code_reads()) == ["GUESTCTL_SWEEP_SCHEDULE"]


def schedule_mismatches(template: dict[str, Any]) -> list[str]:
    """Timer schedules the template does not set to a parameter whose default is the Settings default."""
    settings, parameters = app_settings(template), template["parameters"]
    problems = []
    for field in TIMER_SCHEDULES:
        name, default = ENV_PREFIX + field.upper(), Settings.model_fields[field].default
        value = settings.get(name)
        deployed = parameters[value]["default"] if isinstance(value, str) and value in parameters else value
        if deployed != default:
            problems.append(f"{name}: {deployed!r}, not {default!r}")
    return problems


def test_every_timer_schedule_is_set_to_its_default_by_a_parameter(main: dict[str, Any]) -> None:
    """A redeploy with no parameters gives every timer today's schedule; an operator can override each."""
    in_bindings = {
        name
        for path in (ROOT / "functions").glob("*.py")
        for name in re.findall(r"%([A-Z][A-Z0-9_]*)%", path.read_text(encoding="utf-8"))
    }
    assert in_bindings == {ENV_PREFIX + field.upper() for field in TIMER_SCHEDULES}
    assert schedule_mismatches(main) == []
    mutated = copy.deepcopy(main)
    mutated["parameters"]["hrDueSchedule"]["default"] = "0 0 * * * *"
    assert schedule_mismatches(mutated) == ["GUESTCTL_HR_DUE_SCHEDULE: '0 0 * * * *', not '0 */15 * * * *'"]


def test_every_queue_container_table_and_connection_is_declared(
    main: dict[str, Any], functions: dict[str, func.FunctionBuilder]
) -> None:
    used = storage_names(functions)
    assert used["queues"]
    assert used["containers"]
    assert used["connections"] == {"AzureWebJobsStorage"}
    assert undeclared_names(main, used, set(TABLES)) == []


def test_a_queue_removed_from_the_template_or_a_table_added_to_the_code_is_reported(
    main: dict[str, Any], functions: dict[str, func.FunctionBuilder]
) -> None:
    used = storage_names(functions)
    mutated = copy.deepcopy(main)
    mutated["variables"]["queueNames"]["value"].remove("hr-events-poison")
    assert undeclared_names(mutated, used, set(TABLES)) == ["queue hr-events-poison"]
    assert undeclared_names(main, used, {*TABLES, "newtable"}) == ["table newtable"]
    assert undeclared_names(main, {**used, "connections": {"Other"}}, set(TABLES)) == [
        "setting Other__accountName",
        "setting Other__credential",
        "setting Other__clientId",
    ]


def test_the_tables_carry_the_state_prefix(main: dict[str, Any]) -> None:
    (tables,) = resources(main, "Microsoft.Storage/storageAccounts/tableServices/tables").values()
    assert tables["name"] == "${statePrefix}${name}"
    assert app_settings(main)["GUESTCTL_STATE_PREFIX"] == "statePrefix"


def test_event_grid_delivers_into_the_queue_and_container_main_declares(templates: dict[str, dict[str, Any]]) -> None:
    eventgrid, main = templates["eventgrid.bicep"], templates["main.bicep"]
    assert variable(eventgrid, "queueName") == "graph-notifications"
    assert variable(eventgrid, "queueName") in variable(main, "queueNames")
    assert variable(eventgrid, "deadLetterContainer") in variable(main, "containerNames")
    (subscription,) = resources(eventgrid, "Microsoft.EventGrid/partnerTopics/eventSubscriptions").values()
    properties = subscription["properties"]
    assert properties["eventDeliverySchema"] == "CloudEventSchemaV1_0"
    for part in (properties["deliveryWithResourceIdentity"], properties["deadLetterWithResourceIdentity"]):
        assert part["identity"]["type"] == "UserAssigned"
    assert properties["deliveryWithResourceIdentity"]["destination"]["endpointType"] == "StorageQueue"
    assert properties["deadLetterWithResourceIdentity"]["deadLetterDestination"]["endpointType"] == "StorageBlob"


def test_role_assignments_are_the_documented_ones(templates: dict[str, dict[str, Any]]) -> None:
    found = set().union(*(role_assignments(t) for t in templates.values() if "resources" in t))
    assert found == documented_roles()
    assert all(
        scope != "resourceGroup" and principal == "identity.properties.principalId" for _, scope, principal in found
    )


def test_a_broader_role_scope_is_reported(main: dict[str, Any]) -> None:
    mutated = copy.deepcopy(main)
    next(iter(resources(mutated, ROLE_ASSIGNMENT).values()))["scope"] = "resourceGroup()"
    assert role_assignments(mutated) != documented_roles()


def test_no_keys_or_secrets_in_settings_or_outputs(templates: dict[str, dict[str, Any]]) -> None:
    for template in templates.values():
        assert secrets_in_view(template) == []
    assert {"identityPrincipalId", "identityClientId", "functionAppName", "storageAccountName"} <= set(
        templates["main.bicep"]["outputs"]
    )


def test_a_secret_value_in_a_setting_or_output_is_reported(main: dict[str, Any]) -> None:
    mutated = copy.deepcopy(main)
    site = next(iter(resources(mutated, SITE).values()))
    for setting in site["properties"]["siteConfig"]["appSettings"]:
        if setting["name"] == "GUESTCTL_NOTIFICATION_SECRET":
            setting["value"] = "hunter2-but-longer"
    mutated["outputs"]["storageKey"] = {"type": "string", "value": "listKeys(storage.id, '2023-05-01')"}
    assert secrets_in_view(mutated) == [
        "listKeys in the template",
        "setting GUESTCTL_NOTIFICATION_SECRET holds 'hunter2-but-longer', not a Key Vault reference",
        "output storageKey",
        "output storageKey exposes \"listKeys(storage.id, '2023-05-01')\"",
    ]


def test_the_site_is_https_only_without_ftp_on_tls_1_2(main: dict[str, Any]) -> None:
    (site,) = resources(main, SITE).values()
    properties = site["properties"]
    assert properties["httpsOnly"] is True
    assert properties["siteConfig"]["ftpsState"] == "Disabled"
    assert properties["siteConfig"]["minTlsVersion"] == "1.2"
    assert properties["keyVaultReferenceIdentity"] == {
        "operator": {"type": "property_accessor", "operands": {"operand_1": "identity", "operand_2": "id"}}
    }
    assert site["identity"]["type"] == "UserAssigned"
    config = properties["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "3.11"}
    assert config["deployment"]["storage"]["authentication"]["type"] == "UserAssignedIdentity"
    assert config["scaleAndConcurrency"]["alwaysReady"] == [{"name": "http", "instanceCount": 1}]
    assert variable(main, "maximumInstanceCount") == 40
    assert app_settings(main)["GUESTCTL_INSTANCES_ASSUMED"]["function"]["parameters"] == {
        "value_to_convert": "maximumInstanceCount"
    }


def test_storage_takes_no_keys_and_tls_1_2(main: dict[str, Any]) -> None:
    (storage,) = resources(main, "Microsoft.Storage/storageAccounts").values()
    properties = storage["properties"]
    assert properties["allowSharedKeyAccess"] is False
    assert properties["minimumTlsVersion"] == "TLS1_2"
    assert properties["allowBlobPublicAccess"] is False
    (insights,) = resources(main, "Microsoft.Insights/components").values()
    assert insights["properties"]["DisableLocalAuth"] is True
    (vault,) = resources(main, "Microsoft.KeyVault/vaults").values()
    assert vault["properties"]["enableRbacAuthorization"] is True


def test_the_drop_folder_events_reach_the_blob_trigger_the_code_declares(
    templates: dict[str, dict[str, Any]], functions: dict[str, func.FunctionBuilder]
) -> None:
    """Flex Consumption's blob trigger is called by Event Grid: blobtrigger.bicep subscribes the function and
    container the code names, and dead-letters to a container main.bicep declares."""
    blobs, main = templates["blobtrigger.bicep"], templates["main.bicep"]
    (name,) = [n for n in functions if any(b["type"] == "blobTrigger" for b in binding_list({n: functions[n]}))]
    (trigger,) = [b for b in binding_list({name: functions[name]}) if b["type"] == "blobTrigger"]
    assert trigger["source"] == "EventGrid"
    assert variable(blobs, "functionName") == name
    assert variable(blobs, "inboxContainer") == trigger["path"].split("/")[0]
    assert {variable(blobs, "inboxContainer"), variable(blobs, "deadLetterContainer")} <= set(
        variable(main, "containerNames")
    )
    (subscription,) = resources(blobs, "Microsoft.EventGrid/systemTopics/eventSubscriptions").values()
    properties = subscription["properties"]
    assert properties["filter"] == {
        "includedEventTypes": ["Microsoft.Storage.BlobCreated"],
        "subjectBeginsWith": "/blobServices/default/containers/${inboxContainer}/",
    }
    assert blob_endpoint(blobs) == (
        "https://${app.properties.defaultHostName}/runtime/webhooks/blobs?functionName=Host.Functions.${functionName}"
        "&code=${listKeys('${app.id}/host/default', '2024-04-01').systemKeys.blobs_extension}"
    )
    dead_letter = properties["deadLetterWithResourceIdentity"]
    assert dead_letter["identity"]["type"] == "UserAssigned"
    assert dead_letter["deadLetterDestination"]["properties"]["blobContainerName"] == "${deadLetterContainer}" or (
        dead_letter["deadLetterDestination"]["properties"]["blobContainerName"] == "deadLetterContainer"
    )
    assert "outputs" not in blobs or blobs["outputs"] == {}


def test_a_key_read_anywhere_but_the_blobs_endpoint_is_reported(templates: dict[str, dict[str, Any]]) -> None:
    mutated = copy.deepcopy(templates["blobtrigger.bicep"])
    (subscription,) = resources(mutated, "Microsoft.EventGrid/systemTopics/eventSubscriptions").values()
    subscription["properties"]["labels"] = [blob_endpoint(mutated)]
    assert secrets_in_view(mutated) == ["listKeys in the template"]


def documented_alerts() -> list[str]:
    """The alert names of docs/operations.md's table "What each alert means", in order."""
    text = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    section = text.split("## What each alert means\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")][2:]
    return [row.strip("|").split("|")[0].strip().strip("`") for row in rows]


def test_every_alert_is_documented_and_every_documented_alert_exists(main: dict[str, Any]) -> None:
    names = [alert["name"] for alert in variable(main, "alerts")]
    assert names == documented_alerts()
    (rules,) = resources(main, "Microsoft.Insights/scheduledQueryRules").values()
    assert rules["name"] == "${appName}-${alert.name}"
    assert rules["properties"]["scopes"] == ["workspace.id"] or "workspace" in json.dumps(rules["properties"]["scopes"])
    mutated = copy.deepcopy(main)
    mutated["variables"]["alerts"]["value"].pop()
    assert [alert["name"] for alert in variable(mutated, "alerts")] != documented_alerts()


def test_the_alerts_look_for_what_the_app_logs(main: dict[str, Any]) -> None:
    """Each alert's quoted text occurs in the code (a message reworded in the code would silence its alert)."""
    code = "\n".join(
        path.read_text(encoding="utf-8") for path in [*ROOT.glob("functions/*.py"), *ROOT.glob("shared/**/*.py")]
    )
    host_lines = {"MaxDequeueCount", "401", "renew_subscriptions"}  # the Functions host's, or status codes
    for alert in variable(main, "alerts"):
        quoted = re.findall(r'has "([^"]+)"', alert["query"])
        missing = [text for text in quoted if text not in host_lines and text not in code]
        assert missing == [], alert["name"]


PAUSED = {
    "operator": {
        "type": "conditional",
        "operands": {"condition": "paused", "true_value": "true", "false_value": "false"},
    }
}


def unpaused_workers(template: dict[str, Any], functions: dict[str, func.FunctionBuilder]) -> list[str]:
    """Queue workers the `paused` parameter does not disable (their messages would be handed back until they
    reach the poison queue), and Disabled settings for functions that are not queue workers."""
    workers = {
        name for name in functions if any(b["type"] == "queueTrigger" for b in binding_list({name: functions[name]}))
    }
    settings = app_settings(template)
    disabled = {
        name.split(".")[1] for name in settings if name.startswith("AzureWebJobs.") and name.endswith(".Disabled")
    }
    problems = [
        f"{name}: not disabled while paused"
        for name in sorted(workers)
        if settings.get(f"AzureWebJobs.{name}.Disabled") != PAUSED
    ]
    problems += [f"{name}: disabled but not a queue worker" for name in sorted(disabled - workers)]
    if settings.get("GUESTCTL_PAUSED") != PAUSED:
        problems.append("GUESTCTL_PAUSED: not the paused parameter")
    return problems


def test_a_redeploy_keeps_pause_and_policy_and_pausing_disables_every_queue_worker(
    main: dict[str, Any], functions: dict[str, func.FunctionBuilder]
) -> None:
    assert unpaused_workers(main, functions) == []
    assert app_settings(main)["GUESTCTL_POLICY"] == "policyPath"
    assert main["parameters"]["paused"]["default"] is False
    mutated = copy.deepcopy(main)
    site = next(iter(resources(mutated, SITE).values()))
    site["properties"]["siteConfig"]["appSettings"] = [
        s
        for s in site["properties"]["siteConfig"]["appSettings"]
        if s["name"] != "AzureWebJobs.hr_events_worker.Disabled"
    ]
    assert unpaused_workers(mutated, functions) == ["hr_events_worker: not disabled while paused"]
