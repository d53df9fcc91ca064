"""Every table the code uses is declared once in shared/store/registry.py."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from shared.store.registry import TABLES
from shared.store.rules import TABLE_NAME_PATTERN

ROOT = Path(__file__).resolve().parents[2]


def table_constants() -> dict[str, str]:
    """`<NAME>TABLE = "literal"` in shared/ and functions/: where each table name is written as text."""
    found = {}
    for path in [*(ROOT / "shared").rglob("*.py"), *(ROOT / "functions").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            target = node.target if isinstance(node, ast.AnnAssign) else None
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
            value = getattr(node, "value", None)
            if isinstance(target, ast.Name) and target.id.endswith("TABLE") and isinstance(value, ast.Constant):
                found[f"{path.relative_to(ROOT)}:{target.id}"] = value.value
    return found


def test_every_table_name_written_in_the_code_is_registered() -> None:
    unregistered = {where: name for where, name in table_constants().items() if name not in TABLES}
    assert unregistered == {}


def test_registered_names_are_valid_table_names() -> None:
    assert all(TABLE_NAME_PATTERN.fullmatch(name) for name in TABLES)
    assert all(table.name == name and table.partition and table.rows for name, table in TABLES.items())


def test_the_registry_imports_no_backend() -> None:
    probe = "import sys, shared.store.registry; print(sorted(m for m in sys.modules if m.startswith('azure')))"
    loaded = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"


def test_docs_list_every_table() -> None:
    """docs/store.md's table list is the registry's: a new table is documented where people look."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "store.md").read_text()
    missing = [name for name in TABLES if f"| `{name}` |" not in doc]
    assert missing == [], f"add these tables to docs/store.md: {missing}"
