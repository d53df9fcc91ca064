"""A capability package's names, each imported from its module on first use (PEP 562).

`import shared.<capability>.rules` (pure) then does not load the Graph client or the store, and the
package's `__init__.py` stays a list of names.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def names_from(package: str, homes: dict[str, str]) -> Callable[[str], Any]:
    """The package's `__getattr__`: `homes` maps each name to the module (in `package`) that defines it."""

    def getattr_(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{home}"), name)

    return getattr_
