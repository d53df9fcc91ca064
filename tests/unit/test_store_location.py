"""open_store's location forms, and that no secret ever reaches a description or an error."""

from __future__ import annotations

import pytest

from shared.errors import ConfigError, StoreLocationError
from shared.store import describe_location, open_store, parse_location
from shared.store.location import LocationKind

KEY = "c2VjcmV0LWFjY291bnQta2V5LXRoYXQtbXVzdC1uZXZlci1sZWFr"
SIGNATURE = "sig=SeCrEtSiGnAtUrE"


@pytest.mark.parametrize(
    ("location", "kind", "description"),
    [
        pytest.param(":memory:", LocationKind.SQLITE, "SQLite in memory", id="memory"),
        pytest.param("UseDevelopmentStorage=true", LocationKind.CONNECTION_STRING, "Azurite at", id="azurite"),
        pytest.param(
            f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={KEY};EndpointSuffix=core.windows.net",
            LocationKind.CONNECTION_STRING,
            "Azure Table Storage at https://acct.table.core.windows.net (connection string, account key)",
            id="account-key",
        ),
        pytest.param(
            f"TableEndpoint=https://acct.table.core.windows.net/;SharedAccessSignature=sv=2022&{SIGNATURE}",
            LocationKind.CONNECTION_STRING,
            "(connection string, SAS token)",
            id="sas",
        ),
        pytest.param(
            "https://acct.table.core.windows.net",
            LocationKind.TABLE_ENDPOINT,
            "(Microsoft Entra ID credential)",
            id="endpoint",
        ),
        pytest.param(".guestctl/state.db", LocationKind.SQLITE, "SQLite file /", id="relative-path"),
    ],
)
def test_accepted_locations(location: str, kind: LocationKind, description: str) -> None:
    parsed = parse_location(location)

    assert parsed.kind is kind
    assert description in parsed.description
    assert KEY not in parsed.description
    assert SIGNATURE not in parsed.description


@pytest.mark.parametrize(
    "location",
    [
        pytest.param("", id="empty"),
        pytest.param(f"AccountKey={KEY}", id="connection-string-without-account"),
        pytest.param("http://acct.table.core.windows.net", id="plain-http"),
        pytest.param("https://acct.blob.core.windows.net", id="not-a-table-endpoint"),
        pytest.param(f"https://acct.table.core.windows.net/?{SIGNATURE}", id="sas-url"),
    ],
)
def test_unusable_locations_name_the_accepted_forms_without_secrets(location: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_location(location)

    assert "connection string" in caught.value.one_line()
    assert KEY not in caught.value.one_line()
    assert SIGNATURE not in caught.value.one_line()
    assert KEY not in describe_location(location)


def test_an_endpoint_needs_a_credential() -> None:
    with pytest.raises(ConfigError, match="needs a credential"):
        open_store("https://acct.table.core.windows.net")


def test_a_bad_prefix_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="prefix"):
        open_store(":memory:", prefix="Guest-Ctl")


@pytest.mark.parametrize(
    ("state", "backend"),
    [
        pytest.param("state.db", "SqliteStore", id="path-is-sqlite"),
        pytest.param("UseDevelopmentStorage=true", "AzureTablesStore", id="connection-string-is-tables"),
        pytest.param("https://acme.table.core.windows.net", "AzureTablesStore", id="endpoint-uses-identity"),
    ],
)
async def test_open_state_follows_the_settings(tmp_path, monkeypatch, state: str, backend: str) -> None:
    from shared.config import load_settings
    from shared.store import open_state

    monkeypatch.chdir(tmp_path)
    store = open_state(load_settings(state=state, state_prefix="deploy1"))
    assert type(store).__name__ == backend
    await store.close()


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        pytest.param(lambda folder: folder / "a-file" / "state.db", "a-file is not a folder", id="parent-is-a-file"),
        pytest.param(lambda folder: folder / "notes.db", "cannot open: file is not a database", id="not-a-database"),
    ],
)
async def test_a_state_path_that_cannot_work_is_a_setting_to_fix(tmp_path, make, expected: str) -> None:
    (tmp_path / "a-file").write_text("text\n")
    (tmp_path / "notes.db").write_text("not a database\n" * 100)
    path = make(tmp_path)
    async with open_store(str(path)) as store:
        with pytest.raises(StoreLocationError) as raised:
            await store.upsert("things", "p", "r", {"x": 1})
    line = raised.value.one_line()
    assert line.startswith(f"state file {path}: ")
    assert expected in line
    assert "set GUESTCTL_STATE" in line
    assert int(raised.value.exit_code) == 2, "not an outage: a scheduler must not retry it"
