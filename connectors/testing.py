"""The standard checks every connector passes, in the spirit of the Singer SDK's built-in tap tests.

In a connector's test module, provide a ``contract_harness`` fixture (a ``ContractHarness`` wired to
the connector's simulator or recorded fixtures) and add one line::

    class TestNorthgateContract(ConnectorContractSuite): ...

For a simulator built on ``simulators/kit.py``, ``tests/support/harness.py``'s ``SimulatorHarness``
holds the common parts (serving it in a thread, admin calls, effects, faults, the clock, the staff
change); a harness then adds only the connector, one accepted and one refused command.

Each check below states one promise of the contract in ``connectors.base``.

Harness rules (what the back office, its simulator and the harness must do for the suite to mean
anything; a connector that needs them bent is wrong, not the suite):

1. **Effects are the back office's own count.** ``effects()`` counts changes the back office
   applied, read from its state (not from the connector or the hub): creates and cancellations,
   never reads, look-ups, tokens or notes. The same command three times is one effect.
2. **A fault fails a call before or after applying it, never half.** ``fail_next(n)`` fails the
   next ``n`` calls transiently (HTTP 5xx/429, a SOAP Server fault): nothing is applied. A timeout
   fault applies the call and then withholds the answer (an unknown outcome): the connector must
   look before it creates again.
3. **Updates exclude the hub's own changes.** ``fetch_updates`` returns changes made by back-office
   staff (or other systems), never the hub's create, note or cancellation: the back office's actor
   (API client, user name) tells them apart. The create of ``command(n)`` is not an update.
4. **"since" is strict.** ``fetch_updates(since)`` returns changes made *after* ``since``, never at
   it: the hub stores the newest ``changed_at`` it saw as its cursor and asks again from there (with
   an overlap it de-duplicates by ``update_id``), so a change at exactly ``since`` was already seen.
5. **Times need sub-second precision, in UTC.** ``changed_at`` carries at least milliseconds and a
   time zone; a back office with whole seconds (or local times without an offset) must be
   converted so that two changes in the same second stay distinct and ordered. Simulators stamp
   with microseconds from a clock that never repeats a value (``simulators.kit.Clock``).
6. **Update ids are stable.** The same change fetched twice has the same ``update_id``; two changes
   to one record have different ones.
7. **A refusal names the field, never the value.** ``rejected_command()`` is refused by the back
   office itself (not by the connector's own validation) for a reason it states; the outcome's
   message and every log line carry codes, references and field names only.
8. **Distinct ``n``, distinct records.** ``command(n)`` gives a new key and a new back-office record
   for each ``n`` in each harness instance (a fresh prefix per test), so tests never share state.
9. **Real sockets.** The connector talks to its simulator (or recorded fixtures) over the real
   protocol: HTTP, SSH/SFTP, SQL. No patched client.
10. **Records are the back office's own.** ``records()`` reads the back office's list (a listing
    operation, a table, an extract file), never the connector's memory of what it sent: a
    fresh connector instance finds what another one created. Each created record is listed
    once, under the back office's reference and the command's key, with the fields the back
    office holds named and shaped as ``connectors.fields.flat_fields`` of the validated payload
    (so reconciliation can compare them with what was sent). Records that carry no hub key (made
    by staff) may be listed with ``key=None``.
    ``records()`` is optional like ``snapshot()``: a connector whose back office cannot list its
    records leaves the base method, which raises ``NotImplementedError``; the records checks
    are then skipped for it (saying so) and reconciliation cannot compare that system's records.
11. **Records page.** ``records(page_size=n)`` asks for at most ``n`` per request and follows
    the back office's paging to the end, listing nothing twice across a page boundary; a
    connector that says ``records_sorted_by_key`` yields ascending keys (``None`` last).
    A ``page_size`` above what the back office allows is capped (``page_size_for``); below 1
    it is ``PermanentError(code="config")``; any ``since`` answers or raises a classified
    error; nothing else escapes (the guard wraps the iteration, not only the call).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Protocol

import pytest

from connectors.base import BackOfficeRecord, Command, Connector, Outcome, OutcomeStatus, Update
from connectors.errors import ConnectorError, PermanentError
from connectors.fields import flat_fields


class ContractHarness(Protocol):
    """What a connector's test module supplies to run the contract suite."""

    personal_values: Sequence[str]
    """Personal data carried by the commands below; none of it may reach a log record."""

    def connector(self) -> Connector: ...

    def connector_with_bad_credentials(self) -> Connector: ...

    def command(self, n: int) -> Command:
        """A command the back office accepts; distinct ``n`` give distinct keys and records."""

    def rejected_command(self) -> Command:
        """A well-formed command the back office refuses (unknown account, bad code...)."""

    def effects(self) -> int:
        """How many changes the back office has applied so far, from its own state (rule 1)."""

    def fail_next(self, calls: int) -> None:
        """Make the back office fail the next ``calls`` requests transiently, applying nothing
        (rule 2)."""

    def change_in_backoffice(self, outcome: Outcome) -> None:
        """Make one later change (by back-office staff, not the hub's user) to the record behind
        ``outcome``, stamped after every change before it (rules 3 to 5)."""

    def settle(self) -> None:
        """Let an asynchronous back office answer what was delivered (process the files now).
        Does nothing for synchronous systems."""


def _submit(harness: ContractHarness, connector: Connector, commands: list[Command]) -> list[Outcome]:
    """Submit and, for asynchronous back offices, wait for their answers: the final outcomes."""
    since = datetime.now(timezone.utc) - timedelta(seconds=5)
    outcomes = connector.submit(commands)
    assert [o.key for o in outcomes] == [c.key for c in commands], "one outcome per command, in order"
    if not any(o.status is OutcomeStatus.AWAITING for o in outcomes):
        return outcomes
    harness.settle()
    answers = {u.key: u for u in connector.fetch_updates(since) if u.resolves is not None}
    final = []
    for outcome in outcomes:
        answer = answers.get(outcome.key)
        if outcome.status is OutcomeStatus.AWAITING and answer is not None:
            outcome = Outcome(key=outcome.key, status=answer.resolves, reference=answer.reference,
                              message=answer.message)
        final.append(outcome)
    return final


class ConnectorContractSuite:
    """Subclass in a connector's tests; needs a ``contract_harness`` fixture."""

    def test_check_passes(self, contract_harness: ContractHarness) -> None:
        contract_harness.connector().check()

    def test_check_fails_cleanly_on_bad_credentials(self, contract_harness: ContractHarness) -> None:
        with pytest.raises(PermanentError) as info:
            contract_harness.connector_with_bad_credentials().check()
        assert info.value.__cause__ is not None or info.value.code, "keep the cause or a code"

    def test_submit_confirms_and_returns_reference(self, contract_harness: ContractHarness) -> None:
        [outcome] = _submit(contract_harness, contract_harness.connector(), [contract_harness.command(1)])
        assert outcome.status is OutcomeStatus.CONFIRMED, outcome
        assert outcome.reference, "a confirmed outcome carries the back office's reference"

    def test_submit_is_idempotent(self, contract_harness: ContractHarness) -> None:
        connector = contract_harness.connector()
        command = contract_harness.command(2)
        before = contract_harness.effects()
        [first] = _submit(contract_harness, connector, [command])
        [again] = _submit(contract_harness, connector, [command])
        unsure = Command(**{**command.__dict__, "maybe_sent": True})
        [looked] = _submit(contract_harness, connector, [unsure])
        assert first.status is again.status is looked.status is OutcomeStatus.CONFIRMED
        assert first.reference == again.reference == looked.reference
        assert contract_harness.effects() - before == 1, "the same command three times: one effect"

    def test_rejected_record_does_not_stop_the_batch(self, contract_harness: ContractHarness) -> None:
        batch = [contract_harness.command(3), contract_harness.rejected_command(),
                 contract_harness.command(4)]
        outcomes = _submit(contract_harness, contract_harness.connector(), batch)
        assert [o.status for o in outcomes] == [OutcomeStatus.CONFIRMED, OutcomeStatus.REJECTED,
                                                OutcomeStatus.CONFIRMED]
        assert outcomes[1].message, "a rejection says why"

    def test_transient_fault_is_retried_then_succeeds(self, contract_harness: ContractHarness) -> None:
        connector = contract_harness.connector()
        before = contract_harness.effects()
        contract_harness.fail_next(1)
        [outcome] = _submit(contract_harness, connector, [contract_harness.command(5)])
        assert outcome.status is OutcomeStatus.CONFIRMED, outcome
        assert contract_harness.effects() - before == 1

    def test_fetch_updates_returns_each_change_once(self, contract_harness: ContractHarness) -> None:
        """The staff change comes back once, the hub's own create does not (rule 3), and asking
        again from the newest ``changed_at`` returns nothing (rules 4 and 5)."""
        connector = contract_harness.connector()
        since = datetime.now(timezone.utc) - timedelta(seconds=1)
        [created] = _submit(contract_harness, connector, [contract_harness.command(6)])
        assert created.status is OutcomeStatus.CONFIRMED
        time.sleep(0.01)
        contract_harness.change_in_backoffice(created)
        first = [u for u in connector.fetch_updates(since) if u.resolves is None]
        mine = [u for u in first if u.reference == created.reference]
        assert len(mine) == 1, f"expected the one staff change, got {mine}"
        assert len({u.update_id for u in first}) == len(first), "update ids are unique"
        cursor = max(u.changed_at for u in first)
        later = [u for u in connector.fetch_updates(cursor)
                 if u.reference == created.reference and u.resolves is None]
        assert later == [], "a change already fetched is not returned after its time"
        assert isinstance(mine[0], Update) and mine[0].status

    def test_no_personal_data_in_logs(self, contract_harness: ContractHarness,
                                      caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level(logging.DEBUG)
        connector = contract_harness.connector()
        connector.check()
        _submit(contract_harness, connector,
                [contract_harness.command(7), contract_harness.rejected_command()])
        connector.fetch_updates(datetime.now(timezone.utc) - timedelta(minutes=5))
        text = caplog.text + "".join(str(r.args) for r in caplog.records)
        leaked = [v for v in contract_harness.personal_values if v and v in text]
        assert not leaked, f"personal data reached the logs ({len(leaked)} values)"

    # -- records(): the back office's list, for reconciliation (rules 10 and 11) -----------------
    def test_records_return_what_submit_created(self, contract_harness: ContractHarness) -> None:
        """A fresh connector lists each created record once, under its key and reference, with
        the fields the back office holds equal to what was sent (rule 10)."""
        _skip_without_records(contract_harness.connector())
        commands = [contract_harness.command(20), contract_harness.command(21)]
        outcomes = _submit(contract_harness, contract_harness.connector(), commands)
        assert all(o.status is OutcomeStatus.CONFIRMED for o in outcomes), outcomes
        reader = contract_harness.connector()
        since = datetime.now(timezone.utc) - timedelta(days=1)
        for listed in (list(reader.records()), list(reader.records(since=since))):
            by_key = _by_key(listed, [c.key for c in commands])
            for command, outcome in zip(commands, outcomes):
                [record] = by_key[command.key]
                assert record.reference == outcome.reference, record.reference
                assert record.status, "a record carries the back office's status word"
                assert record.fields, "a record carries the fields the back office holds"
                expected = flat_fields(reader.validate(command))
                unknown = sorted(set(record.fields) - set(expected))
                assert not unknown, f"fields not named as in the payload model: {unknown}"
                differ = sorted(n for n, v in record.fields.items() if expected[n] != v)
                assert not differ, f"fields differ from what was sent: {differ}"
                if record.operation is not None:
                    assert record.operation == command.operation
                if record.changed_at is not None:
                    assert record.changed_at.utcoffset() is not None, "aware times only"

    def test_records_page_across_page_boundaries(self, contract_harness: ContractHarness) -> None:
        """More records than one page: each listed once, in key order when promised (rule 11)."""
        _skip_without_records(contract_harness.connector())
        commands = [contract_harness.command(n) for n in (22, 23, 24)]
        outcomes = _submit(contract_harness, contract_harness.connector(), commands)
        assert all(o.status is OutcomeStatus.CONFIRMED for o in outcomes), outcomes
        reader = contract_harness.connector()
        for page_size in (1, 2):
            listed = list(reader.records(page_size=page_size))
            assert len(listed) > page_size, "the listing spans several pages"
            by_key = _by_key(listed, [c.key for c in commands])
            assert all(len(by_key[c.key]) == 1 for c in commands), "each record listed once"
            references = [r.reference for r in listed]
            assert len(references) == len(set(references)), "nothing listed twice"
            if type(reader).records_sorted_by_key:
                keys = [r.key for r in listed]
                assert keys == sorted(keys, key=lambda k: (k is None, k or "")), "key order"

    def test_records_hostile_input_is_classified(self, contract_harness: ContractHarness) -> None:
        connector = contract_harness.connector()
        for page_size in (0, -1, 10**9):
            _classified(lambda: list(connector.records(page_size=page_size)))
        for since in (datetime(2000, 1, 1), datetime(9999, 1, 1, tzinfo=timezone.utc),
                      datetime.now(timezone.utc) + timedelta(days=3650)):
            _classified(lambda: list(connector.records(since=since, page_size=3)))

    # -- hostile input: every failure classified -------------------------------------------------
    def test_no_unclassified_exception_escapes(self, contract_harness: ContractHarness) -> None:
        """Whatever a contract method is given, it answers or raises a ``connectors.errors``
        class (the guard's ``internal`` code means a defect escaped unclassified)."""
        connector = contract_harness.connector()
        real = contract_harness.command(8)
        junk_values: list[object] = [None, "", "\x00", "<b>x</b>", "9" * 400, -1, 10**30, [], {}]
        commands = [Command(key=f"{real.key}-op", system=real.system, operation="no.such.operation",
                            payload={}, case_ref=real.case_ref)]
        for n, value in enumerate(junk_values):
            commands.append(Command(key=f"{real.key}-j{n}", system=real.system,
                                    operation=real.operation, case_ref=real.case_ref,
                                    payload={k: value for k in real.payload}))
        outcomes = _classified(lambda: connector.submit(commands)) or []
        assert len(outcomes) in (0, len(commands))
        for outcome in outcomes:
            assert outcome.status is OutcomeStatus.REJECTED, outcome
            assert outcome.code != "internal" and outcome.message, outcome
        for since in (datetime(2000, 1, 1), datetime(9999, 1, 1, tzinfo=timezone.utc),
                      datetime.now(timezone.utc) + timedelta(days=3650)):
            _classified(lambda: connector.fetch_updates(since))
        names = ("uprn", "postcode", "service", "from", "account_ref", "premises_ref",
                 "reference", "key")
        hostile_params: list[dict[str, object]] = [{}, {"x": 1}] + [
            {name: value for name in names} for value in junk_values]
        for kind in (*type(connector).lookup_kinds, "no.such.lookup"):
            for params in hostile_params:
                _classified(lambda: connector.lookup(kind, params))
        _classified(lambda: connector.snapshot(["", "\x00", "k" * 500, "<b>k</b>", real.key]))


def _skip_without_records(connector: Connector) -> None:
    if type(connector).records is Connector.records:
        pytest.skip(f"{type(connector).__name__} does not list its records (records() is optional)")


def _by_key(records: list[BackOfficeRecord], keys: Sequence[str]) -> dict[str, list[BackOfficeRecord]]:
    found: dict[str, list[BackOfficeRecord]] = {key: [] for key in keys}
    for record in records:
        assert isinstance(record, BackOfficeRecord), type(record)
        if record.key in found:
            found[record.key].append(record)
    missing = [key for key, listed in found.items() if not listed]
    assert not missing, f"created records not listed: {missing}"
    return found


def _classified(call):  # type: ignore[no-untyped-def]
    """``call()``'s result, or None when it raised a classified error (or NotImplementedError
    for a look-up the connector does not have); any other exception fails the check."""
    try:
        return call()
    except NotImplementedError:
        return None
    except ConnectorError as exc:
        assert exc.code != "internal", (
            f"an unclassified {exc.__cause__} escaped: {exc.message}")
        return None
