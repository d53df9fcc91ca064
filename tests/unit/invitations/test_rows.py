"""Reading invitation files: what makes a file unusable, what only makes a row invalid."""

from __future__ import annotations

import pytest

from shared.errors import InputError
from shared.invitations.rows import InvitationRow, parse_rows

HEADER = "email,display_name,redirect_url,groups,sponsors,message,send_email\n"


def rows(text: str, json_lines: bool = False) -> list[InvitationRow]:
    return parse_rows(text.encode("utf-8"), name="in.csv", json_lines=json_lines)


def test_full_csv_row() -> None:
    [row] = rows(HEADER + 'ann@fabrikam.com,Ann Lee,https://x.example,"Finance;g-2",boss@contoso.com,Hi,false\n')
    assert row == InvitationRow(
        1, "ann@fabrikam.com", "Ann Lee", "https://x.example", ("Finance", "g-2"), ("boss@contoso.com",), "Hi", False
    )


@pytest.mark.parametrize(
    ("data", "expected_emails"),
    [
        pytest.param(b"\xef\xbb\xbfemail\na@b.com\n", ["a@b.com"], id="utf8-bom"),
        pytest.param(b'email;groups\na@b.com;"g1;g2"\n', ["a@b.com"], id="semicolon-delimited"),
        pytest.param(b"Email , Display_Name\na@b.com,A\n", ["a@b.com"], id="header-case-and-spaces"),
        pytest.param(b"email\na@b.com\n\n,\nc@d.com\n", ["a@b.com", "c@d.com"], id="blank-lines-skipped"),
        pytest.param(b"email\r\na@b.com\r\n", ["a@b.com"], id="crlf"),
    ],
)
def test_csv_variants(data: bytes, expected_emails: list[str]) -> None:
    assert [r.email for r in parse_rows(data, name="in.csv")] == expected_emails


def test_semicolon_file_keeps_quoted_group_lists() -> None:
    [row] = parse_rows(b'email;groups\na@b.com;"g1;g2"\n', name="in.csv")
    assert row.groups == ("g1", "g2")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(b"email,group\na@b.com,x\n", "unknown column(s) 'group'", id="unknown-column-named"),
        pytest.param(b"mail\na@b.com\n", "unknown column(s) 'mail'", id="no-email-column"),
        pytest.param(b"display_name\nAnn\n", "no 'email' column", id="email-column-missing"),
        pytest.param(b"email\n", "no rows to invite", id="header-only"),
        pytest.param(b"email\n\xff\xfe\n", "not UTF-8", id="not-utf8"),
    ],
)
def test_unusable_files(data: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_rows(data, name="in.csv")


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        pytest.param("a@b.com,,,,,,maybe", "send_email must be true or false (got 'maybe')", id="bad-bool"),
        pytest.param("a@b.com,,,,,,,extra", "1 cell(s) beyond the header", id="too-many-cells"),
    ],
)
def test_row_problems_stay_on_the_row(line: str, problem: str) -> None:
    [row] = rows(HEADER + line + "\n")
    assert row.problems == (problem,)


def test_json_lines() -> None:
    text = '{"email": "a@b.com", "groups": ["g1", "g2"], "send_email": true}\n\nnot json\n[1]\n'
    parsed = rows(text, json_lines=True)
    assert [(r.row, r.email, r.groups, r.send_email) for r in parsed[:1]] == [(1, "a@b.com", ("g1", "g2"), True)]
    assert parsed[1].problems == ("line 3 is not JSON: Expecting value",)
    assert parsed[2].problems == ("line 4 is not a JSON object",)


def test_json_lines_unknown_key_makes_the_file_unusable() -> None:
    with pytest.raises(InputError, match=r"line 2\): unknown column\(s\) 'gruops'"):
        rows('{"email": "a@b.com"}\n{"email": "c@d.com", "gruops": "x"}\n', json_lines=True)
