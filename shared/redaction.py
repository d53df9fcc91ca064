"""The server's own file paths, named by the settings that hold them, so that a message shown to a caller
(an HTTP error body, a poison-queue reason) can say "the policy file (GUESTCTL_POLICY)" instead.

Light on purpose (no pydantic): the Functions app's HTTP adapters use it on their cold-start path.
"""

from __future__ import annotations

import os
from pathlib import Path

# Settings that hold server paths, and how a public message names them instead.
PATH_SETTINGS = {
    "GUESTCTL_POLICY": "the policy file (GUESTCTL_POLICY)",
    "GUESTCTL_STATE": "the state store (GUESTCTL_STATE)",
}


def without_server_paths(line: str) -> str:
    """`line` with every server path a setting names replaced by that setting's description."""
    for path, name in sorted(_server_paths().items(), key=lambda item: -len(item[0])):
        line = line.replace(path, name)
    return line


def _server_paths() -> dict[str, str]:
    paths = {}
    for setting, name in PATH_SETTINGS.items():
        value = os.environ.get(setting, "").strip()
        if not value or "://" in value:  # a URL (an Azure Tables endpoint) is not a server path
            continue
        paths[value] = name
        paths[str(Path(value).expanduser().resolve())] = name
    return paths
