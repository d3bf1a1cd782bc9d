"""shared/gdpr/deadlines.py: Art. 12(3) month arithmetic and the extension rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.gdpr.deadlines import ExtensionRefused, add_months, check_extension, due_at


def at(year: int, month: int, day: int, hour: int = 9) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


@pytest.mark.parametrize(("received", "months", "expected"), [
    (at(2026, 1, 31), 1, at(2026, 2, 28)),  # no 31 February: the month's last day
    (at(2028, 1, 31), 1, at(2028, 2, 29)),  # leap year
    (at(2026, 3, 31), 1, at(2026, 4, 30)),
    (at(2026, 1, 30), 1, at(2026, 2, 28)),
    (at(2026, 2, 28), 1, at(2026, 3, 28)),  # from a month's end, the same day number, not the end
    (at(2026, 12, 15), 1, at(2027, 1, 15)),  # across the year
    (at(2026, 11, 30), 3, at(2027, 2, 28)),
    (at(2026, 3, 3), 0, at(2026, 3, 3)),
])
def test_add_months(received: datetime, months: int, expected: datetime) -> None:
    assert add_months(received, months) == expected


def test_due_is_one_month_plus_extension_and_keeps_the_time() -> None:
    received = datetime(2026, 1, 31, 23, 59, tzinfo=UTC)
    assert due_at(received) == datetime(2026, 2, 28, 23, 59, tzinfo=UTC)
    assert due_at(received, 2) == datetime(2026, 4, 30, 23, 59, tzinfo=UTC)


def test_extension_only_within_the_first_month_and_two_months_in_all() -> None:
    received = at(2026, 1, 31)
    check_extension(received_at=received, now=received + timedelta(days=27), already_extended=0, months=2)
    check_extension(received_at=received, now=received + timedelta(days=1), already_extended=1, months=1)
    with pytest.raises(ExtensionRefused):  # 28 February 09:00 is the first month's end
        check_extension(received_at=received, now=at(2026, 2, 28), already_extended=0, months=1)
    with pytest.raises(ExtensionRefused):
        check_extension(received_at=received, now=received, already_extended=1, months=2)
    with pytest.raises(ExtensionRefused):
        check_extension(received_at=received, now=received, already_extended=0, months=0)
