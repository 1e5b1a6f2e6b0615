"""The WHERE builder numbers parameters in order, skips absent filters, and builds keyset bounds."""

from __future__ import annotations

from datetime import UTC, datetime

from libs.db.query import Where


def test_parameters_are_numbered_in_order_and_absent_filters_skipped() -> None:
    when = datetime(2026, 1, 1, tzinfo=UTC)
    where = Where("account_sid = {}", "AC1").add_if("status = {}", None).add_if("room_sid = {}", "RM1")
    where.after(("date_created", "sid"), (when, "CJ9"))
    assert where.sql == "account_sid = $1 AND room_sid = $2 AND (date_created, sid) > ($3, $4)"
    assert where.args == ["AC1", "RM1", when, "CJ9"]
    assert where.arg(51) == "$5"


def test_no_conditions_is_true_and_no_cursor_adds_nothing() -> None:
    where = Where().after(("date_created", "sid"), None)
    assert where.sql == "TRUE"
    assert where.args == []


def test_a_fragment_may_take_several_values() -> None:
    where = Where("date_created BETWEEN {} AND {}", 1, 2)
    assert where.sql == "date_created BETWEEN $1 AND $2"
