"""Bad input, everywhere a byte enters (docs/reliability.md#bad-input): the strategies and the checks.

Strategies mix near-valid inputs (a valid document with one field removed, retyped or stretched; truncated;
another encoding; a BOM) with random bytes: near-valid inputs get past the first parser and find real bugs.
Each property counts its examples and collects violations instead of stopping at the first, so the figures
say how many inputs were tried and every problem found is listed at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from tests.reliability.figures import Figures, profile

HUGE = 200_000  # characters: past every limit guestctl documents for a field, a line or a message
ODD_TEXT = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\n",
    "line one\nline two",
    "ünïcödé 😀 ‮",
    "x" * HUGE,
    "-1",
    "0",
    "99999999999999999999999",
    "1e309",
    "NaN",
    "null",
    "true",
    "../../../etc/passwd",
    "C:\\Windows\\win.ini",
    "%s%n{0}${x}",
    "<script>alert(1)</script>",
    "'; DROP TABLE records; --",
    "00000000-0000-0000-0000-000000000000",
    "2026-02-30",
    "9999-12-31T23:59:59Z",
]
ODD = st.sampled_from(ODD_TEXT) | st.text(max_size=24)
ODD_VALUES: list[Any] = [None, True, False, 0, -1, 2**64, 1.5, -0.0, [], {}, [None], {"": None}, *ODD_TEXT[:8]]


def fuzz_settings(*, short: int = 25, full: int = 400) -> settings:
    """`short` examples in CI (derandomized: the same inputs every run), `full` for scripts/reliability --full."""
    return settings(
        max_examples=short if profile() == "short" else full,
        deadline=None,
        derandomize=True,
        database=None,
        phases=(Phase.explicit, Phase.generate),  # violations are collected, not raised: nothing to shrink
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )


@dataclass
class Fuzz:
    """One property's tally: the examples it really ran and what went wrong in them."""

    flow: str
    examples: int = 0
    violations: list[str] = field(default_factory=list)

    def violation(self, what: str, example: object) -> None:
        self.violations.append(f"{what} — input {_short(example)}")

    def report(self, figures: Figures) -> None:
        figures.add(self.flow, fuzz_examples=self.examples, violations=len(self.violations))
        assert self.examples > 0
        assert self.violations == [], f"{len(self.violations)} violation(s), first: " + "\n".join(self.violations[:5])


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 300 else f"{text[:300]}… ({len(text):,} characters)"


# ---- near-valid documents -------------------------------------------------------------------------------


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON-like document (the root is ())."""
    found = [prefix]
    if isinstance(doc, dict):
        for key, inner in doc.items():
            found.extend(_paths(inner, (*prefix, key)))
    elif isinstance(doc, list):
        for index, inner in enumerate(doc):
            found.extend(_paths(inner, (*prefix, index)))
    return found


def _replace(doc: Any, path: tuple[Any, ...], change: Callable[[Any, Any], None]) -> Any:
    """A deep copy of `doc` with `change(parent, key)` applied at `path` (not the root)."""
    copy = json.loads(json.dumps(doc, default=str))
    parent = copy
    for key in path[:-1]:
        parent = parent[key]
    change(parent, path[-1])
    return copy


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


@st.composite
def mutated(draw: st.DrawFn, doc: Any) -> Any:
    """`doc` itself, or with one place removed, retyped, stretched or given a stranger's key."""
    places = [p for p in _paths(doc) if p]
    how = draw(st.sampled_from(["keep", "remove", "retype", "retype", "text", "extra"]))
    if how == "keep" or not places:
        return doc
    path = draw(st.sampled_from(places))
    if how == "remove":
        return _replace(doc, path, lambda parent, key: parent.pop(key))
    if how == "extra":
        target = path[:-1]
        key = draw(st.sampled_from(["unexpected", "", "$ref", "__proto__", "x" * 300]))
        value = draw(st.sampled_from(ODD_VALUES) | json_values)

        def add(parent: Any, at: Any) -> None:
            inner = parent[at]
            if isinstance(inner, dict):
                inner[key] = value
            elif isinstance(inner, list):
                inner.append(value)
            else:
                parent[at] = {key: value}

        return _replace(doc, target, add) if target else {**doc, key: value} if isinstance(doc, dict) else doc
    value = draw(st.sampled_from(ODD_TEXT) if how == "text" else st.sampled_from(ODD_VALUES) | json_values)

    def put(parent: Any, key: Any) -> None:
        parent[key] = value

    return _replace(doc, path, put)


@st.composite
def encoded(draw: st.DrawFn, text: str) -> bytes:
    """`text` as bytes, usually UTF-8; sometimes with a BOM, in UTF-16 or Latin-1, cut short, or with a stray
    byte or NUL inside."""
    how = draw(st.sampled_from(["utf-8", "utf-8", "utf-8", "bom", "utf-16", "latin-1", "cut", "stray", "crlf"]))
    data = text.encode("utf-8")
    if how == "bom":
        return b"\xef\xbb\xbf" + data
    if how == "utf-16":
        return text.encode("utf-16")
    if how == "latin-1":
        return text.encode("latin-1", "replace")
    if how == "crlf":
        return data.replace(b"\n", b"\r\n")
    if not data:
        return data
    at = draw(st.integers(0, len(data) - 1))
    if how == "cut":
        return data[:at]
    return data[:at] + draw(st.sampled_from([b"\x00", b"\xff", b"\xc3", b'"', b"\n", b","])) + data[at:]


def near_valid_json(doc: Any) -> st.SearchStrategy[bytes]:
    """A JSON document near `doc` (see `mutated`, `encoded`), or random bytes."""
    return st.one_of(
        mutated(doc).flatmap(lambda d: encoded(json.dumps(d, ensure_ascii=False, default=str))),
        random_bytes,
    )


random_bytes = st.one_of(
    st.binary(max_size=400),
    st.text(max_size=200).map(str.encode),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.sampled_from([b"", b"\x00" * 64, b"{", b"[", b"null", b'"' * 3, b"\xef\xbb\xbf", b"x" * HUGE]),
)


# ---- invitation files (CSV, JSON lines) ---------------------------------------------------------------

CSV = (Path(__file__).resolve().parents[2] / "examples" / "invitations.csv").read_text()
ROWS = [
    {"email": "ann.lee@fabrikam.com", "display_name": "Ann Lee", "groups": ["Finance Partners"], "send_email": True},
    {"email": "raj@northwindtraders.com", "redirect_url": "https://myapps.microsoft.com", "sponsors": ["x@y.com"]},
]


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    """The example CSV with one cell, row or header changed, another delimiter, a huge cell; or random bytes."""
    lines = CSV.splitlines()
    how = draw(st.sampled_from(["cell", "cell", "header", "row", "delimiter", "huge", "random"]))
    if how == "random":
        return draw(random_bytes)
    at = draw(st.integers(1, len(lines) - 1))
    if how == "cell":
        cells = lines[at].split(",")
        cells[draw(st.integers(0, len(cells) - 1))] = draw(ODD).replace("\n", " ")[:2000]
        lines[at] = ",".join(cells)
    elif how == "header":
        header = lines[0].split(",")
        header[draw(st.integers(0, len(header) - 1))] = draw(st.sampled_from(["", "Email", "email", "e-mail", "ü"]))
        lines[0] = ",".join(header)
    elif how == "row":
        lines[at] = draw(st.sampled_from(['"unclosed,quote', ",,,,,,,,,,,,", "a", "\x00,\x00", "x" * HUGE]))
    elif how == "delimiter":
        lines = [line.replace(",", draw(st.sampled_from([";", "\t", "|"]))) for line in lines]
    else:
        lines.append("huge@fabrikam.com," + "N" * HUGE + ",,,,,")
    return draw(encoded("\n".join(lines) + "\n"))


@st.composite
def json_lines_files(draw: st.DrawFn) -> bytes:
    rows = [draw(near_valid_json(row)) for row in ROWS]
    return b"\n".join(rows) + b"\n"


# ---- what must not change --------------------------------------------------------------------------------


def store_digest(path: Path, *, audited: str | None = None) -> str:
    """A digest of every row of the SQLite store at `path`: equal digests, no change (an absent store and one
    with empty tables are alike). `audited`: an audit action a refusal writes by design
    (docs/attestation.md#audit), left out with the counter its entries advance."""
    digest = hashlib.sha256()
    if not path.exists():
        return digest.hexdigest()
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        for table in tables:
            if audited and table == "counters":
                continue
            for row in sorted(repr(r) for r in db.execute(f'SELECT * FROM "{table}"')):
                if not (audited and table == "audit" and f'"{audited}"' in row):
                    digest.update(f"{table} {row}".encode())
    return digest.hexdigest()


# ---- in-process CLI ----------------------------------------------------------------------------------------


@dataclass
class Ran:
    code: int | str | None
    out: str
    err: str


def run_cli(argv: list[str]) -> Ran:
    """`guestctl ARGV` in process, through `cli.main` as the console script runs it (a child process each would
    cost a second; hundreds of examples need milliseconds)."""
    from shared import cli

    out, err = io.StringIO(), io.StringIO()
    saved = sys.argv
    sys.argv = ["guestctl", *argv]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                cli.main()
                code: int | str | None = 0
            except SystemExit as exited:
                code = exited.code
    finally:
        sys.argv = saved
    return Ran(code, out.getvalue(), err.getvalue())


DOCUMENTED_EXIT_CODES = {0, 1, 2, 3, 4, 130}


def cli_problems(ran: Ran, inputs: list[str]) -> list[str]:
    """What is wrong with how guestctl ended: a traceback, exit 70 or an undocumented code, an error that is not
    exactly one `error:` line, or one that echoes a long input whole."""
    problems = []
    code = ran.code if isinstance(ran.code, int) else (0 if ran.code is None else -1)
    if code not in DOCUMENTED_EXIT_CODES:
        problems.append(f"exit {ran.code!r}: {_first_error(ran.err)}")
    if "Traceback" in ran.err or "Traceback" in ran.out:
        problems.append("a traceback")
    if code >= 2 and not _is_help(ran):
        errors = [line for line in ran.err.splitlines() if line.startswith("error:")]
        if len(errors) != 1:
            problems.append(f"{len(errors)} error lines: {_short(ran.err[:600])}")
        elif len(errors[0]) > 1_500:
            problems.append(f"an error line of {len(errors[0]):,} characters")
    for value in inputs:
        if len(value) > 600 and value in ran.err:
            problems.append("the error echoes a long input whole")
    return problems


def _is_help(ran: Ran) -> bool:
    """Bare `guestctl` or a group without its command prints the help and exits 2 (docs/cli.md)."""
    return ran.code == 2 and "Usage:" in ran.err + ran.out and "error:" not in ran.err


def _first_error(err: str) -> str:
    return next((line for line in err.splitlines() if line.startswith("error:")), err[-300:])


def tenant_mark(emulator: Any) -> tuple[int, str | None]:
    """What changes when anything in the emulated tenant changes: the users' change journal and the last write
    request (groups, channels, cross-tenant policies, mail are written through requests; a `$batch`'s writes
    are logged as its inner requests)."""
    writes = [e for e in list(emulator.state.request_log) if e["method"] != "GET" and not e["path"].endswith("$batch")]
    return emulator.tenant.journal_position, writes[-1]["request_id"] if writes else None
