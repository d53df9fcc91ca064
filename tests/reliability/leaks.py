"""The secrets scan (docs/reliability.md#secrets-and-privacy): every text guestctl wrote, searched for the secret
values planted or seen during the run, and for the shapes a secret has whatever its value.

Pure: `scan` takes artifacts (a name and a text) and the known values, and returns the findings. Collecting the
artifacts (CLI output, files, store rows, log records, HTTP answers, queue messages) is the test's business.
"""

from __future__ import annotations

import json
import re
import sqlite3
import zlib
from base64 import b64decode
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

# A secret's shape, whatever its value. "Bearer ***" (a masked header) is not a token.
PATTERNS: dict[str, re.Pattern[str]] = {
    "bearer token": re.compile(r"Bearer\s+(?!\*{3})[A-Za-z0-9\-._~+/]{6,}=*", re.IGNORECASE),
    "JWT": re.compile(r"eyJ[A-Za-z0-9_-]{6,}\.eyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]*"),
    "redeem URL": re.compile(r"login\.microsoftonline\.com/redeem|invitations\.microsoft\.com(/|%2F)redeem", re.I),
    "redeem ticket": re.compile(r"[?&](amp;)?ticket(=|%3D)[A-Za-z0-9_-]{8,}", re.IGNORECASE),
    "webhook signature (v1,base64)": re.compile(r"v1,[A-Za-z0-9+/]{43}="),
    "HMAC signature (sha256=hex)": re.compile(r"sha256=[0-9a-fA-F]{64}"),
    "webhook secret (whsec_)": re.compile(r"whsec_[A-Za-z0-9+/]{16,}"),
}
MIN_SECRET_CHARS = 8  # shorter "secrets" would match ordinary text


@dataclass(frozen=True, slots=True)
class Artifact:
    name: str  # where it came from: a file, a command's stderr, a store row, a log record
    text: str
    own: frozenset[str] = frozenset()  # values it may hold: the requester's own (a page echoing its link's token)


@dataclass(frozen=True, slots=True)
class Finding:
    artifact: str
    kind: str
    excerpt: str

    def __str__(self) -> str:
        return f"{self.artifact}: {self.kind}: …{self.excerpt}…"


def forms(value: str) -> set[str]:
    """The ways a value appears in text: as is, percent-encoded (with and without "~"), JSON-escaped."""
    encoded = quote(value, safe="")
    return {value, encoded, encoded.replace("~", "%7E"), json.dumps(value)[1:-1]}


def scan(artifacts: Iterable[Artifact], secrets: dict[str, Iterable[str]]) -> list[Finding]:
    """Every place a known secret value (`secrets`: kind → values) or a secret's shape occurs."""
    needles = [
        (kind, form)
        for kind, values in secrets.items()
        for value in values
        if len(value) >= MIN_SECRET_CHARS
        for form in forms(value)
    ]
    findings = []
    for artifact in artifacts:
        for kind, needle in needles:
            if any(needle in forms(value) for value in artifact.own):
                continue
            at = artifact.text.find(needle)
            if at >= 0:
                findings.append(Finding(artifact.name, kind, _excerpt(artifact.text, at, at + len(needle))))
        for kind, pattern in PATTERNS.items():
            for match in pattern.finditer(artifact.text):
                findings.append(Finding(artifact.name, kind, _excerpt(artifact.text, match.start(), match.end())))
    return findings


def _excerpt(text: str, start: int, end: int) -> str:
    return text[max(0, start - 40) : end + 40].replace("\n", "⏎")


# -- collecting ------------------------------------------------------------------------------------------------
def files(folder: Path) -> Iterator[Artifact]:
    """Every file under `folder`: SQLite databases as their rows, anything else as text."""
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if data.startswith(b"SQLite format 3\x00"):
            yield from sqlite_rows(path)
        elif not path.name.endswith(("-wal", "-shm", "-journal")):
            yield Artifact(str(path.relative_to(folder)), data.decode("utf-8", "replace"))


def sqlite_rows(path: Path) -> Iterator[Artifact]:
    """Every row of every table, and the texts the store keeps compressed (shared/store/text.py) unpacked."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
        tables = [t for (t,) in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in sorted(tables):
            for number, row in enumerate(connection.execute(f'SELECT * FROM "{table}"')):
                yield Artifact(f"{path.name}:{table}#{number}", json.dumps(row, default=repr, ensure_ascii=False))
        if "records" in tables:
            yield from _texts(path.name, connection.execute("SELECT tbl, partition, row, data FROM records"))


def _texts(name: str, rows: Iterable[tuple[str, str, str, str]]) -> Iterator[Artifact]:
    """Each text's parts (`{key}-00000`, … with a base64 zlib run in "z") joined and decompressed."""
    parts: dict[tuple[str, str, str], list[tuple[str, str]]] = {}
    for table, partition, row, data in rows:
        if '"z"' in data:
            key, _, number = row.rpartition("-")
            parts.setdefault((table, partition, key), []).append((number, json.loads(data).get("z", "")))
    for (table, partition, key), pieces in sorted(parts.items()):
        packed = "".join(z for _, z in sorted(pieces))
        try:
            text = zlib.decompress(b64decode(packed)).decode("utf-8", "replace")
        except (ValueError, zlib.error):
            text = packed  # not a complete text: scanned as stored
        yield Artifact(f"{name}:{table}/{partition}/{key} (unpacked)", text)
