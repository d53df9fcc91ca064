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


# --- ambiguous files are refused, with the column or line (issue 9 §5) ------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(
            b"email,email\na@b.com,c@d.com\n",
            "in.csv (header): column 'email' appears twice (columns 1 and 2)",
            id="email-twice",
        ),
        pytest.param(
            b"Email,display_name, EMAIL \na@b.com,A,c@d.com\n",
            "column 'email' appears twice (columns 1 and 3)",
            id="twice-other-case",
        ),
        pytest.param(
            b"email,groups,groups\na@b.com,g,h\n",
            "column 'groups' appears twice (columns 2 and 3)",
            id="any-column-twice",
        ),
        pytest.param(
            b"email,display_name,\na@b.com,A,\n",
            "in.csv (header): column 3 has no name (of 3 columns)",
            id="trailing-comma",
        ),
        pytest.param(b"email,,groups\na@b.com,,g\n", "column 2 has no name", id="empty-name-inside"),
        pytest.param(b"email;display_name;\na@b.com;A;\n", "column 3 has no name", id="trailing-semicolon"),
        pytest.param(
            b'email,display_name\na@b.com,A\nc@d.com,"Unclosed\ne@f.com,E\ng@h.com,G\n',
            "in.csv: line 3: a quote opened on this line is never closed",
            id="unterminated-quote-line",
        ),
        pytest.param(
            b'email,display_name\n"a@b.com\n',
            "line 2: a quote opened on this line is never closed",
            id="unterminated-quote-last-line",
        ),
        pytest.param(
            b'email,message\na@b.com,"multi\nline"\nc@d.com,"open\n',
            "line 4: a quote opened",
            id="line-counts-multiline-cells",
        ),
        pytest.param(b'email,display_name\na@b.com,"A"x\n', "line 2: malformed quoting", id="text-after-closing-quote"),
        pytest.param(
            b'email,message\na@b.com,ok\nc@d.com,"' + b"x" * 140_000 + b'"\n',
            "line 3: a cell is longer than 131,072 characters",
            id="cell-over-csv-field-limit",
        ),
    ],
)
def test_ambiguous_csv_files_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(InputError) as raised:
        parse_rows(data, name="in.csv")
    assert message in raised.value.message
    assert "\n" not in raised.value.one_line()


def test_unknown_columns_are_quoted_short() -> None:
    with pytest.raises(InputError) as raised:
        parse_rows(b"email," + b"x" * 5_000 + b"\na@b.com,1\n", name="in.csv")
    assert len(raised.value.message) < 200


def test_quoted_newlines_and_doubled_quotes_still_read() -> None:
    [one, two] = rows('email,display_name\na@b.com,"Lee, ""Ann""\nJr"\nc@d.com,C\n')
    assert (one.display_name, two.email) == ('Lee, "Ann"\nJr', "c@d.com")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param('{"Email ": "a@b.com", " Display_Name": "A"}', ("a@b.com", "A"), id="keys-trimmed-any-case"),
        pytest.param('{"EMAIL": "a@b.com", "GROUPS": ["g1", "g2"]}', ("a@b.com", None), id="upper-case-keys"),
    ],
)
def test_json_lines_keys_match_like_csv_headers(line: str, expected: tuple[str, str | None]) -> None:
    [row] = rows(line + "\n", json_lines=True)
    assert (row.email, row.display_name) == expected
    assert row.problems == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            '{"email": "a@b.com", "Email": "c@d.com"}', "(line 1): column 'email' appears twice", id="case-dup"
        ),
        pytest.param(
            '{"email": "a@b.com"}\n{"email": "a@b.com", "email": "c@d.com"}',
            "(line 2): column 'email' appears twice",
            id="repeated-key",
        ),
        pytest.param('{"email": "a@b.com", "": "x"}', "(line 1): column 2 has no name", id="empty-key"),
        pytest.param('{"email": "a@b.com", "Group": "x"}', "(line 1): unknown column(s) 'group'", id="unknown-key"),
    ],
)
def test_json_lines_follow_the_csv_column_rules(text: str, message: str) -> None:
    with pytest.raises(InputError) as raised:
        rows(text + "\n", json_lines=True)
    assert message in raised.value.message


@pytest.mark.parametrize("line", ["[]", '["email", "a@b.com"]', "42"])
def test_json_lines_non_objects_are_row_problems(line: str) -> None:
    [row] = rows(line + "\n", json_lines=True)
    assert row.problems == ("line 1 is not a JSON object",)
