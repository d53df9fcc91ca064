"""The repository stands on its own: no tracked file points outside it, and every documentation link works.

A reader who clones the repository must be able to follow every reference in it. So no tracked text file
names the team kit the project started from (its fact sheets, design and style notes) or an absolute path
on a build machine, no Markdown link leaves the repository or points at a missing file, and every
`docs/<page>.md#<anchor>` that code or docs cite names a heading that exists.

The forbidden names are assembled from pieces so that this file does not contain them itself.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Names of documents that live outside the repository (the team kit). Matched case-insensitively.
OUTSIDE_NAMES = [
    "graph" + "-facts",
    "platform" + "-notes",
    "facts" + "-next",
]
# Matched case-sensitively: the lower-case docs/architecture.md is ours.
OUTSIDE_NAMES_EXACT = [
    "ARCHITECTURE" + ".md",
    "ARCHITECTURE" + " §",
    "STYLE" + ".md",
]
OUTSIDE_PATHS = [
    ".." + "/shared",  # the team kit beside the checkout
    "/" + "work/",  # the build machines' checkouts
]
# Absolute paths of one machine have no place in documentation.
OUTSIDE_PATHS_IN_DOCS = ["/" + "tmp/", "/" + "home/", "/" + "Users/", "file" + "://"]

MARKDOWN_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
FENCE = re.compile(r"^\s*(```|~~~).*?^\s*\1", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
# `docs/graph-contract.md#throttling` in a comment, or `graph-contract.md#throttling` in a doc.
CITED_ANCHOR = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[\w.-]+\.md)#([\w-]+)")
HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
EXPLICIT_ANCHOR = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"")


@cache
def tracked_files() -> tuple[Path, ...]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    listing = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, text=True
    ).stdout.split("\0")
    return tuple(ROOT / name for name in listing if name and (ROOT / name).is_file())


def text_files() -> Iterator[tuple[Path, str]]:
    for path in tracked_files():
        data = path.read_bytes()
        if b"\0" in data:
            continue
        try:
            yield path, data.decode("utf-8")
        except UnicodeDecodeError:
            continue


def markdown_files() -> Iterator[tuple[Path, str]]:
    for path, text in text_files():
        if path.suffix == ".md":
            yield path, text


def where(path: Path, text: str, index: int, root: Path = ROOT) -> str:
    line = text.count("\n", 0, index) + 1
    return f"{path.relative_to(root)}:{line}"


def prose(markdown: str) -> str:
    """Markdown without code blocks and code spans (same length, so positions still give line numbers)."""

    def blank(match: re.Match[str]) -> str:
        return re.sub(r"[^\n]", " ", match.group(0))

    return INLINE_CODE.sub(blank, FENCE.sub(blank, markdown))


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading keeps its text
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    text = path.read_text(encoding="utf-8")
    found: set[str] = set(EXPLICIT_ANCHOR.findall(text))
    seen: dict[str, int] = {}
    unfenced = FENCE.sub("", text)
    for heading in HEADING.findall(unfenced):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return frozenset(found)


def outside_references(path: Path, text: str, root: Path = ROOT) -> list[str]:
    """Every mention in `text` of a document or path outside the repository."""
    found = []
    lowered = text.lower()
    for name in OUTSIDE_NAMES:
        for match in re.finditer(re.escape(name.lower()), lowered):
            found.append(f"{where(path, text, match.start(), root)}: names {name!r}")
    names = OUTSIDE_NAMES_EXACT + OUTSIDE_PATHS + (OUTSIDE_PATHS_IN_DOCS if path.suffix == ".md" else [])
    for name in names:
        for match in re.finditer(re.escape(name), text):
            found.append(f"{where(path, text, match.start(), root)}: names {name!r}")
    return found


def link_targets(text: str) -> Iterator[tuple[int, str]]:
    visible = prose(text)
    for pattern in (MARKDOWN_LINK, REFERENCE_LINK):
        for match in pattern.finditer(visible):
            yield match.start(), match.group(1)


def link_problems(path: Path, text: str, root: Path = ROOT) -> list[str]:
    """Relative links in a Markdown file that leave `root`, miss their file, or miss their heading."""
    found = []
    for index, target in link_targets(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
            continue  # a URL
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        place = where(path, text, index, root)
        if not resolved.is_relative_to(root):
            found.append(f"{place}: {target} leaves the repository")
        elif not resolved.exists():
            found.append(f"{place}: {target} does not exist")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            found.append(f"{place}: {target} has no heading #{anchor}")
    return found


def citation_problems(path: Path, text: str, root: Path = ROOT) -> list[str]:
    """`docs/graph-contract.md#throttling` in a comment or doc must name a page and a heading that exist."""
    found = []
    for match in CITED_ANCHOR.finditer(text):
        page, anchor = match.groups()
        candidates = [(path.parent / page).resolve(), (root / page).resolve(), (root / "docs" / page).resolve()]
        existing = [candidate for candidate in candidates if candidate.is_relative_to(root) and candidate.exists()]
        place = where(path, text, match.start(), root)
        if not existing:
            found.append(f"{place}: {page} does not exist")
        elif not any(anchor in anchors(candidate) for candidate in existing):
            found.append(f"{place}: {page} has no heading #{anchor}")
    return found


def test_no_file_points_outside_the_repository() -> None:
    problems = [problem for path, text in text_files() for problem in outside_references(path, text)]
    assert not problems, "references to files outside the repository:\n" + "\n".join(problems)


def test_every_relative_markdown_link_points_at_a_file_in_the_repository() -> None:
    problems = [problem for path, text in markdown_files() for problem in link_problems(path, text)]
    assert not problems, "broken Markdown links:\n" + "\n".join(problems)


def test_cited_doc_anchors_exist() -> None:
    # This file cites made-up pages on purpose (the self-check below), so it is left out here.
    files = [(path, text) for path, text in text_files() if path != Path(__file__).resolve()]
    problems = [problem for path, text in files for problem in citation_problems(path, text)]
    assert not problems, "citations of missing pages or headings:\n" + "\n".join(problems)


def test_the_checks_catch_what_they_are_for(tmp_path: Path) -> None:
    """The forbidden names are assembled from pieces; a small fake repository shows they still bite."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "guide.md").write_text("# Guide\n\n## Adding a capability, step by step\n")
    page = tmp_path / "README.md"
    text = (
        f"See {OUTSIDE_NAMES[0]} §5, {OUTSIDE_NAMES_EXACT[0]} and {OUTSIDE_PATHS[0]}/x.md;\n"
        "docs/architecture.md is ours.\n"
        "[ok](docs/guide.md#adding-a-capability-step-by-step) [top](#readme) `[code](nowhere.md)`\n"
        "[up](../outside.md) [gone](docs/missing.md) [anchor](docs/guide.md#nope) [web](https://example.com/x)\n"
        "\n[ref]: docs/missing-too.md\n"
        f"{OUTSIDE_PATHS_IN_DOCS[0]}scratch\n"
    )
    page.write_text("# Readme\n" + text)
    outside = outside_references(page, page.read_text(), tmp_path)
    assert len(outside) == 4, outside
    links = link_problems(page, page.read_text(), tmp_path)
    assert [problem.split(": ", 1)[1] for problem in links] == [
        "../outside.md leaves the repository",
        "docs/missing.md does not exist",
        "docs/guide.md#nope has no heading #nope",
        "docs/missing-too.md does not exist",
    ]
    cited = citation_problems(page, "docs/guide.md#nope docs/guide.md#guide other.md#x", tmp_path)
    assert [problem.split(": ", 1)[1] for problem in cited] == [
        "docs/guide.md has no heading #nope",
        "other.md does not exist",
    ]
    assert slug("State store (`shared/store/`)") == "state-store-sharedstore"
