"""Sponsors who did not answer (docs/reports.md#numbers): which notices the report's "needs a person" lists."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.attestation.records import Answer
from shared.reports.build import unanswered
from shared.stale.notify import SentNotice

SENT = datetime(2026, 11, 9, 6, 0, 5, tzinfo=UTC)
DISABLE = datetime(2026, 11, 23, 6, 0, 0, tzinfo=UTC)  # 14 days later: every link of the notice expires then
AFTER = DISABLE + timedelta(hours=1)
ANN = "0c4f7f7e-0000-4000-8000-00000000000a"
BEN = "0c4f7f7e-0000-4000-8000-00000000000b"
NOTICE = SentNotice(sponsor_id=ANN, mail="ann@contoso.com", guests=3, sent_at=SENT, answer_by=DISABLE)


def answer(sponsor: str = ANN, expires: datetime | None = DISABLE, at: datetime = SENT + timedelta(days=2)) -> Answer:
    return Answer(sponsor_id=sponsor, at=at, expires=expires)


@pytest.mark.parametrize(
    ("answers", "now", "listed"),
    [
        ([], AFTER, True),  # no keep, no let go: listed
        ([answer()], AFTER, False),  # a keep or let go from one of this notice's links
        ([answer(at=DISABLE - timedelta(seconds=1))], AFTER, False),  # at the last moment still counts
        ([answer(sponsor=BEN)], AFTER, True),  # another sponsor answered (the same guests, their own notice)
        ([answer(expires=DISABLE - timedelta(days=7))], AFTER, True),  # a link of the earlier week's notice
        ([answer(expires=None)], AFTER, True),  # an answer that names no notice
        ([], DISABLE - timedelta(seconds=1), False),  # the links still work: the sponsor has time
        ([], DISABLE, True),  # the links stopped working at the disable date
    ],
)
def test_a_sponsor_is_listed_when_no_link_of_their_notice_was_answered(
    answers: list[Answer], now: datetime, listed: bool
) -> None:
    found = unanswered([NOTICE], answers, now)
    assert bool(found) is listed
    if listed:
        (line,) = found
        assert (line.kind, line.subject, line.at) == ("sponsor-no-answer", "ann@contoso.com", SENT)
        assert (
            line.detail
            == "3 guests in the sponsor notice; no keep or let go before the disable date 2026-11-23 06:00 UTC"
        )


def test_each_notice_is_a_line_in_the_order_they_went_out() -> None:
    later = SentNotice(sponsor_id=ANN, mail="", guests=1, sent_at=SENT + timedelta(days=7), answer_by=AFTER)
    found = unanswered([later, NOTICE], [], AFTER)
    assert [(a.subject, a.at) for a in found] == [("ann@contoso.com", SENT), (ANN, later.sent_at)]
    assert found[1].detail.startswith("1 guest in the sponsor notice;")
