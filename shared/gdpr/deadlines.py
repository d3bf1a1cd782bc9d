"""Art. 12(3) deadlines: one month from receipt, extendable by two further months if the extension is
recorded within the first month. "One month" is a calendar month; a date that does not exist in the target
month (31 January + 1 month) falls on that month's last day."""

from __future__ import annotations

import calendar
from datetime import datetime

MAX_EXTENSION_MONTHS = 2


def add_months(moment: datetime, months: int) -> datetime:
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def due_at(received_at: datetime, extension_months: int = 0) -> datetime:
    return add_months(received_at, 1 + extension_months)


class ExtensionRefused(ValueError):
    pass


def check_extension(*, received_at: datetime, now: datetime, already_extended: int, months: int) -> None:
    """Raise ExtensionRefused unless `months` more may be added now."""
    if months < 1:
        raise ExtensionRefused("an extension is one or two months")
    if already_extended + months > MAX_EXTENSION_MONTHS:
        raise ExtensionRefused("the deadline can be extended by at most two months in all")
    if now >= due_at(received_at):
        raise ExtensionRefused("an extension must be recorded within the first month after receipt")
