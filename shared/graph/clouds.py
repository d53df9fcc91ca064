"""Microsoft Graph national cloud endpoints (docs/graph-contract.md#clouds; msgraph_core.NationalClouds).

Each cloud has its own Graph host and its own Entra authority: a token from one cloud is useless in another,
so both are chosen together from `GUESTCTL_CLOUD`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

CloudName = Literal["global", "usgov", "usgov-dod", "china"]


@dataclass(frozen=True, slots=True)
class Cloud:
    name: CloudName
    graph_host: str  # scheme + host, no path
    authority_host: str  # Entra ID sign-in host for azure-identity

    @property
    def graph_url(self) -> str:
        return f"{self.graph_host}/v1.0"

    @property
    def scope(self) -> str:
        """App-only scope: the app's granted application permissions on this cloud's Graph."""
        return f"{self.graph_host}/.default"


CLOUDS: dict[str, Cloud] = {
    "global": Cloud("global", "https://graph.microsoft.com", "login.microsoftonline.com"),
    "usgov": Cloud("usgov", "https://graph.microsoft.us", "login.microsoftonline.us"),
    "usgov-dod": Cloud("usgov-dod", "https://dod-graph.microsoft.us", "login.microsoftonline.us"),
    "china": Cloud("china", "https://microsoftgraph.chinacloudapi.cn", "login.chinacloudapi.cn"),
}
