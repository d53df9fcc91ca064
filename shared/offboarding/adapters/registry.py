"""The HR systems guestctl reads, by route name (`/api/hr/{system}`): each adapter and its secrets setting."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.offboarding.adapters import bamboohr, deel, hibob, successfactors
from shared.offboarding.adapters.config import AdaptersConfig
from shared.offboarding.events import Received


@dataclass(frozen=True, slots=True)
class Adapter:
    receive: Callable[[Mapping[str, str], bytes, Any, tuple[bytes, ...], datetime], Received]
    secrets_setting: str  # the app setting holding its key(s): at most two, space-separated


ADAPTERS: dict[str, Adapter] = {
    bamboohr.SYSTEM: Adapter(bamboohr.receive, bamboohr.SECRETS_SETTING),
    hibob.SYSTEM: Adapter(hibob.receive, hibob.SECRETS_SETTING),
    deel.SYSTEM: Adapter(deel.receive, deel.SECRETS_SETTING),
    successfactors.SYSTEM: Adapter(successfactors.receive, successfactors.SECRETS_SETTING),
}


def receive_from(
    system: str,
    headers: Mapping[str, str],
    body: bytes,
    config: AdaptersConfig,
    keys: tuple[bytes, ...],
    now: datetime,
) -> Received:
    """What `system`'s adapter makes of one request (KeyError for a system guestctl has no adapter for)."""
    return ADAPTERS[system].receive(headers, body, getattr(config, system), keys, now)
