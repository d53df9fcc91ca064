"""Choosing a backend from one setting, and describing that setting without its secrets."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

from shared.errors import ConfigError
from shared.store.protocol import Clock, Store, utc_now
from shared.store.rules import check_prefix
from shared.store.sqlite import MEMORY

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

    from shared.config import Settings

DEFAULT_LOCATION: Final = ".guestctl/state.db"
ACCEPTED_FORMS: Final = (
    "a file path for SQLite (default .guestctl/state.db, or :memory:); "
    "an Azure Storage connection string (UseDevelopmentStorage=true, or one with AccountName= or "
    "TableEndpoint=); or https://<account>.table.core.windows.net with a managed identity"
)
# Bounded so that a dead endpoint fails in seconds, not after azure-core's default 10 retries.
CLIENT_OPTIONS: Final = {"retry_total": 3, "retry_backoff_max": 8, "connection_timeout": 10, "read_timeout": 60}
DEVELOPMENT_STORAGE: Final = "UseDevelopmentStorage=true"
_AZURITE_TABLE_ENDPOINT: Final = "http://127.0.0.1:10002/devstoreaccount1"
_SECRET_SETTINGS: Final = frozenset({"accountkey", "sharedaccesssignature"})
_SECRET_PATTERN: Final = re.compile(r"(?i)\b(accountkey|sharedaccesssignature|sig)\s*=\s*[^;&\s]*")
_SETTING_START: Final = re.compile(r"\s*[A-Za-z][A-Za-z0-9]*\s*=")
_TABLE_HOST: Final = re.compile(r"[a-z0-9]{3,24}\.table\.[a-z0-9.-]+")


class LocationKind(Enum):
    SQLITE = "sqlite"
    CONNECTION_STRING = "connection string"
    TABLE_ENDPOINT = "table endpoint"


@dataclass(frozen=True, slots=True)
class Location:
    kind: LocationKind
    value: str  # the path, the (normalised) connection string, or the endpoint URL
    description: str  # safe to print


def parse_location(location: str) -> Location:
    """Classify a store location; ConfigError (without secrets) if it is none of the accepted forms."""
    if not isinstance(location, str) or not location.strip():
        raise ConfigError("the state store location is empty", hint=f"use {ACCEPTED_FORMS}")
    text = location.strip()
    if _SETTING_START.match(text):
        return _parse_connection_string(text)
    if "://" in text:
        return _parse_endpoint(text)
    if text == MEMORY:
        return Location(LocationKind.SQLITE, MEMORY, "SQLite in memory (nothing is kept after the process ends)")
    path = Path(text).expanduser()
    return Location(LocationKind.SQLITE, str(path), f"SQLite file {path.absolute()}")


def describe_location(location: str) -> str:
    """What `location` points at, for people and logs: account keys and SAS tokens are never shown."""
    try:
        return parse_location(location).description
    except ConfigError:
        return f"unrecognised state store location {redact(str(location))!r}"


def redact(text: str) -> str:
    """Hide account keys and SAS signatures in any text that may contain a connection string."""
    return _SECRET_PATTERN.sub(lambda match: f"{match.group(1)}=<redacted>", text)


def open_store(
    location: str = DEFAULT_LOCATION,
    *,
    prefix: str = "guestctl",
    credential: AsyncTokenCredential | None = None,
    clock: Clock = utc_now,
) -> Store:
    """Open the store `location` names. Nothing is connected or created until the first call.

    `credential` (azure-identity's async managed identity or DefaultAzureCredential) is used only for
    the https:// endpoint form; connection strings carry their own key or SAS.
    """
    parsed = parse_location(location)
    check_prefix(prefix)
    if parsed.kind is LocationKind.SQLITE:
        from shared.store.sqlite import SqliteStore

        return SqliteStore(parsed.value, prefix=prefix, clock=clock)

    from azure.data.tables.aio import TableServiceClient  # off the import path of SQLite users

    from shared.store.tables import AzureTablesStore

    if parsed.kind is LocationKind.CONNECTION_STRING:
        try:
            service = TableServiceClient.from_connection_string(parsed.value, **CLIENT_OPTIONS)
        except (ValueError, TypeError) as error:
            raise ConfigError(
                f"state store connection string is not usable ({parsed.description}): {redact(str(error))}",
                hint=f"use {ACCEPTED_FORMS}",
            ) from None
    else:
        if credential is None:
            raise ConfigError(
                f"{parsed.description} needs a credential",
                hint="pass azure-identity's ManagedIdentityCredential or DefaultAzureCredential (async)",
            )
        service = TableServiceClient(endpoint=parsed.value, credential=credential, **CLIENT_OPTIONS)
    return AzureTablesStore(service, description=parsed.description, prefix=prefix, clock=clock)


def open_state(settings: Settings, *, clock: Clock = utc_now) -> Store:
    """The store GUESTCTL_STATE names, with the deployment's identity for the https:// endpoint form."""
    credential = None
    if parse_location(settings.state).kind is LocationKind.TABLE_ENDPOINT:
        from shared.credentials import azure_credential
        from shared.graph.clouds import CLOUDS

        credential = azure_credential(
            settings.auth,
            client_id=settings.client_id,
            tenant_id=settings.tenant_id,
            authority=CLOUDS[settings.cloud].authority_host,
        )
    return open_store(settings.state, prefix=settings.state_prefix, credential=credential, clock=clock)


def _parse_connection_string(text: str) -> Location:
    settings: dict[str, str] = {}
    for part in text.split(";"):
        if not part.strip():
            continue
        name, separator, value = part.partition("=")
        if not separator:
            raise _unrecognised(text, "a connection string is name=value pairs separated by ';'")
        settings[name.strip().lower()] = value.strip()
    if settings.get("usedevelopmentstorage", "").lower() == "true":
        return Location(
            LocationKind.CONNECTION_STRING,
            DEVELOPMENT_STORAGE,
            f"Azurite at {_AZURITE_TABLE_ENDPOINT} ({DEVELOPMENT_STORAGE})",
        )
    if "accountname" not in settings and "tableendpoint" not in settings:
        raise _unrecognised(text, "the connection string has neither AccountName= nor TableEndpoint=")
    endpoint = settings.get("tableendpoint") or (
        f"{settings.get('defaultendpointsprotocol', 'https')}://{settings['accountname']}"
        f".table.{settings.get('endpointsuffix', 'core.windows.net')}"
    )
    if "accountkey" in settings:
        authentication = "account key"
    elif "sharedaccesssignature" in settings:
        authentication = "SAS token"
    else:
        authentication = "no key or SAS"
    description = f"Azure Table Storage at {_without_query(endpoint)} (connection string, {authentication})"
    return Location(LocationKind.CONNECTION_STRING, text, description)


def _parse_endpoint(text: str) -> Location:
    try:
        url = urlsplit(text)
        host = url.hostname or ""
    except ValueError:
        raise _unrecognised(text, "it is not a valid URL") from None
    if url.scheme != "https" or not _TABLE_HOST.fullmatch(host) or url.port is not None:
        raise _unrecognised(text, "an endpoint URL must look like https://<account>.table.core.windows.net")
    if url.query or url.username or url.password or url.path.strip("/"):
        raise _unrecognised(
            text, "give the bare endpoint: no path, SAS token or user name (the credential authenticates)"
        )
    endpoint = f"https://{host}"
    return Location(
        LocationKind.TABLE_ENDPOINT, endpoint, f"Azure Table Storage at {endpoint} (Microsoft Entra ID credential)"
    )


def _without_query(url: str) -> str:
    return url.split("?", 1)[0].rstrip("/")


def _unrecognised(text: str, reason: str) -> ConfigError:
    return ConfigError(f"state store location {redact(text)!r} is not usable: {reason}", hint=f"use {ACCEPTED_FORMS}")
