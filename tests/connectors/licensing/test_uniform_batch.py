"""A batch of applications is written together, and answers exactly as one by one would."""
from __future__ import annotations

import collections
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import event

from connectors.base import Command, OutcomeStatus
from connectors.licensing.uniform import UniformConnector
from simulators.licensing.backoffice import LicensingBackOffice
from tests.connectors.licensing.conftest import UniformHarness


def _mixed(h: UniformHarness, tag: str) -> list[Command]:
    """Accepted, unknown premises, a payment used twice in the batch, a missing payment."""
    def premises(n: int, ref: str = "PR00001", pay: str | None = None) -> Command:
        return h.make(f"{tag}{n}", "licence.premises", applicant=h.applicant(n),
                      premises_ref=ref, activities=["sale_of_alcohol"],
                      payment_ref=pay or f"PAY-{h.token}-{tag}{n}")
    return [premises(1), premises(2, ref="PR09999"), premises(3, pay=f"PAY-{h.token}-{tag}S"),
            premises(4, pay=f"PAY-{h.token}-{tag}S"),
            h.make(f"{tag}5", "licence.street_trading", applicant=h.applicant(5),
                   pitch="Market Place, pitch 9", commodities="Books"),
            premises(6, ref="PR00002")]


def _answers(outcomes: Sequence[Any]) -> list[tuple[str, str | None, str | None]]:
    return [(o.status.value, o.code, o.field) for o in outcomes]


def test_a_batch_answers_as_one_by_one_would(harness: UniformHarness) -> None:
    connector = harness.connector()
    batch = connector.submit(_mixed(harness, "B"))
    single = [connector.submit([c])[0] for c in _mixed(harness, "S")]
    assert _answers(batch) == _answers(single)
    assert _answers(batch) == [("confirmed", None, None),
                               ("rejected", "unknown-premises", "premises_ref"),
                               ("confirmed", None, None),
                               ("rejected", "payment-already-used", "payment_ref"),
                               ("rejected", "payment-required", "payment_ref"),
                               ("confirmed", None, None)]
    assert batch[2].reference and batch[2].reference in (batch[3].message or "")
    numbers = [int(o.reference.split("/")[1]) for o in batch if o.reference]
    assert numbers == list(range(numbers[0], numbers[0] + 3)), "consecutive, in batch order"
    sent = {c.key: c for c in _mixed(harness, "B")}
    for outcome in batch:
        if outcome.status is OutcomeStatus.CONFIRMED:
            row = harness.office.find_application(outcome.reference or "")
            assert row is not None and row["EXT_REF"] == outcome.key
            assert row["FULL_NAME"] == sent[outcome.key].payload["applicant"]["name"], \
                "each application points at its own applicant"
    again = connector.submit(_mixed(harness, "B"))
    assert [o.reference for o in again if o.status is OutcomeStatus.CONFIRMED] == \
        [o.reference for o in batch if o.status is OutcomeStatus.CONFIRMED]
    assert all(o.message == "already received" for o in again
               if o.status is OutcomeStatus.CONFIRMED), "a resend creates nothing"


def _statements(connector: UniformConnector, commands: list[Command]) -> int:
    counts: collections.Counter[str] = collections.Counter()

    def count(*_: Any) -> None:
        counts["statements"] += 1

    event.listen(connector.engine, "before_cursor_execute", count)
    try:
        outcomes = connector.submit(commands)
    finally:
        event.remove(connector.engine, "before_cursor_execute", count)
    assert {o.status for o in outcomes} == {OutcomeStatus.CONFIRMED}
    return counts["statements"]


def test_statements_per_batch_do_not_grow_with_its_size(harness: UniformHarness) -> None:
    connector = harness.connector()
    connector.check()
    small = _statements(connector, [harness.command(n) for n in range(200, 203)])
    large = _statements(connector, [harness.command(n) for n in range(300, 330)])
    assert large <= small + 2, (small, large)


def test_a_concurrent_writer_of_a_key_sends_the_batch_one_by_one(harness: UniformHarness) -> None:
    commands = [harness.command(n) for n in (90, 91, 92)]
    [first] = harness.connector().submit([commands[1]])

    class Blind(UniformConnector):
        looks = 0

        def _find_many(self, conn: Any, keys: Sequence[str]) -> dict[str, Mapping[str, Any]]:
            self.looks += 1   # the batch's look misses the other worker's insert
            return {} if self.looks == 1 else super()._find_many(conn, keys)

    blind = Blind(harness.config())
    before = harness.effects()
    try:
        outcomes = blind.submit(commands)
    finally:
        blind.close()
    assert [o.status for o in outcomes] == [OutcomeStatus.CONFIRMED] * 3
    assert outcomes[1].reference == first.reference and outcomes[1].message == "already received"
    assert harness.effects() - before == 2
    keys = [r["EXT_REF"] for r in harness.office.applications()]
    assert all(keys.count(c.key) == 1 for c in commands)


def test_a_lock_held_too_long_leaves_the_whole_batch_for_later(harness: UniformHarness) -> None:
    connector = harness.connector(retry_attempts=1)
    before = harness.effects()
    with LicensingBackOffice(harness.db.url).sequence_locked():
        outcomes = connector.submit([harness.command(n) for n in (95, 96)])
    assert {(o.status, o.error_class) for o in outcomes} == {
        (OutcomeStatus.RETRY, "TransientError")}
    assert harness.effects() == before


def test_an_unreadable_reference_refuses_that_command_not_the_batch(
        harness: UniformHarness) -> None:
    """An application the licensing system holds under a reference that is not one (a clerk
    blanked it to "N/A") is never a confirmation: that command is refused for an officer to
    check, the rest of the batch is confirmed, exactly as one by one."""
    from sqlalchemy import update

    connector = harness.connector()
    commands = [harness.command(n) for n in (70, 71, 72)]
    [held] = connector.submit([commands[1]])
    office = harness.office
    with office.engine.begin() as conn:
        conn.execute(update(office.application)
                     .where(office.application.c.APP_REF == held.reference)
                     .values(APP_REF="N/A"))
    batch = connector.submit(commands)
    single = connector.submit([commands[1]])
    assert _answers(batch) == [("confirmed", None, None),
                               ("rejected", "bad-reference", "app_ref"),
                               ("confirmed", None, None)]
    assert _answers(single) == [_answers(batch)[1]]
