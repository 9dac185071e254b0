"""AcademyConnector over a real OpenSSH sshd: delivery, faults, answers, archive, host keys."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import paramiko
import pytest

from connectors.base import Command, OutcomeStatus
from connectors.benefits import fileformat as ff
from connectors.benefits.academy import AcademyConfig, AcademyConnector
from connectors.errors import PermanentError
from simulators.benefits.sample import EMPLOYED_CLAIM
from tests.connectors.benefits.harness import SYSTEM, AcademyHarness, make_exchange

pytestmark = pytest.mark.sshd


def _names(folder: Path) -> list[str]:
    """Exchange files in a folder (not the hub's own dot-files such as its seen-files record)."""
    return sorted(p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def _ago(**delta: float) -> datetime:
    return datetime.now(timezone.utc) - timedelta(**delta)


def test_delivery_is_one_verified_file_under_its_final_name(harness: AcademyHarness) -> None:
    commands = [harness.command(n) for n in range(1, 4)]
    before = datetime.now(timezone.utc)
    outcomes = harness.connector(response_due_minutes=90).submit(commands)
    [name] = _names(harness.backoffice.inbound)
    assert ff.is_complete_name(name) and name.startswith("COC_")
    parsed = ff.parse_change_file((harness.backoffice.inbound / name).read_bytes())
    assert [r.record_id for r in parsed.records] == [c.key for c in commands]
    assert all(o.status is OutcomeStatus.AWAITING and o.reference == name for o in outcomes)
    due = datetime.fromisoformat(outcomes[0].details["due_by"])
    assert before + timedelta(minutes=90) <= due <= datetime.now(timezone.utc) + timedelta(minutes=90)


def test_invalid_payload_is_rejected_and_the_rest_delivered(harness: AcademyHarness) -> None:
    bad = Command(key="cmd-bad", system=SYSTEM, operation="hb.income_change", case_ref="CRM-1",
                  payload={"claim_ref": "HB123", "effective_from": "2026-01-01",
                           "income_type": "earnings", "amount": "10.00", "frequency": "weekly"})
    outcomes = harness.connector().submit([bad, harness.command(1)])
    assert outcomes[0].status is OutcomeStatus.REJECTED and outcomes[0].field == "claim_ref"
    assert outcomes[1].status is OutcomeStatus.AWAITING
    [name] = _names(harness.backoffice.inbound)
    assert len(ff.parse_change_file((harness.backoffice.inbound / name).read_bytes()).records) == 1


def test_connection_dropped_mid_upload_leaves_no_partial_file_and_the_retry_completes(
        harness: AcademyHarness) -> None:
    commands = [harness.command(n) for n in range(1, 401)]   # several upload chunks
    connector = harness.connector()
    seen_partial: list[list[str]] = []
    progress: list[int] = []

    def drop_once(written: int) -> None:
        progress.append(written)
        if not seen_partial:
            seen_partial.append(_names(harness.backoffice.inbound))
            harness.sshd.kill_current_sftp_server()   # the server side of the channel dies

    connector.upload_progress = drop_once
    outcomes = connector.submit(commands)
    assert [n for n in seen_partial[0] if ff.is_complete_name(n)] == [], "only a temporary name"
    assert progress.count(progress[0]) == 2, "the upload was cut and started again"
    assert {o.status for o in outcomes} == {OutcomeStatus.AWAITING}
    [name] = _names(harness.backoffice.inbound)   # the retry's file; no temporary file left over
    assert ff.is_complete_name(name)
    harness.settle()
    assert harness.effects() == len(commands)


def test_failed_upload_is_invisible_to_the_back_office_and_a_later_submit_delivers(
        harness: AcademyHarness) -> None:
    commands = [harness.command(n) for n in range(1, 301)]
    connector = harness.connector(retry_attempts=1)
    connector.upload_progress = lambda written: harness.sshd.kill_current_sftp_server()
    outcomes = connector.submit(commands)
    assert {o.status for o in outcomes} == {OutcomeStatus.RETRY}
    assert outcomes[0].error_class == "TransientError"
    report = harness.backoffice.process()
    assert report.files == 0 and harness.effects() == 0, "a partial upload is never processed"

    again = harness.connector().submit(commands)
    assert {o.status for o in again} == {OutcomeStatus.AWAITING}
    assert [n for n in _names(harness.backoffice.inbound) if ff.is_temporary_name(n)] == []
    harness.settle()
    assert harness.effects() == len(commands)


def test_server_refusing_every_session_gives_retry_outcomes(harness: AcademyHarness) -> None:
    harness.fail_next(10)
    outcomes = harness.connector(retry_attempts=2).submit([harness.command(1)])
    assert outcomes[0].status is OutcomeStatus.RETRY and outcomes[0].code == "connection"
    harness.fail_next(0)


def test_answers_resolve_awaiting_commands(harness: AcademyHarness) -> None:
    ok, bad = harness.command(1), harness.rejected_command()
    ended_early = Command(key="cmd-stopped", system=SYSTEM, operation="hb.stopped_work",
                          case_ref="CRM-7", payload={"claim_ref": EMPLOYED_CLAIM,
                                                     "ended_on": "2026-01-15", "employer": "X Ltd"})
    connector = harness.connector()
    since = _ago(seconds=5)
    connector.submit([ok, bad, ended_early])
    harness.settle()
    answers = {u.key: u for u in connector.fetch_updates(since)}
    assert answers[ok.key].resolves is OutcomeStatus.CONFIRMED
    assert answers[ok.key].reference == ok.payload["claim_ref"]
    assert answers[bad.key].resolves is OutcomeStatus.REJECTED
    assert answers[bad.key].message.startswith("UNKNOWN_CLAIM")
    assert answers[ended_early.key].message.startswith("END_BEFORE_START")
    assert harness.effects() == 1


def test_fetch_archives_only_what_since_covers_and_loses_nothing_on_a_crash(
        harness: AcademyHarness) -> None:
    connector = harness.connector()
    since = _ago(seconds=5)
    command = harness.command(1)
    connector.submit([command])
    harness.settle()
    first = connector.fetch_updates(since)
    # The hub "crashed" before storing: the same call returns the same answer again.
    assert connector.fetch_updates(since) == first
    assert _names(harness.backoffice.outbound), "nothing archived while the cursor is before it"
    cursor = max(u.changed_at for u in first)
    assert connector.fetch_updates(cursor) == []
    assert _names(harness.backoffice.outbound) == []
    assert len([n for n in _names(harness.backoffice.archive) if ff.is_complete_name(n)]) == 1
    # Answered keys are found in the archive: no second upload, the final outcome at once.
    [again] = connector.submit([command])
    assert again.status is OutcomeStatus.CONFIRMED and again.reference == "HB0000002"
    assert _names(harness.backoffice.inbound) == []


def test_a_line_dated_before_the_cursor_in_a_later_file_is_not_lost(harness: AcademyHarness) -> None:
    """Staff changes are written in a nightly file; another file already moved the cursor past
    the earliest of them."""
    connector = harness.connector()
    t0 = _ago(hours=3)
    outbound = harness.backoffice.outbound

    def status_file(name: str, *changes: tuple[str, datetime]) -> None:
        lines = [ff.StatusChange(event, "HB0000003", "", "UNDER_REVIEW", at) for event, at in changes]
        (outbound / name).write_bytes(ff.build_response_file(name[:-4], changes[-1][1],
                                                             status_changes=lines))

    status_file("RSP_1.csv", ("EV-MID", t0 + timedelta(hours=1)))
    first = connector.fetch_updates(t0)
    cursor = max(u.changed_at for u in first)          # what the hub stores
    status_file("RSP_2.csv", ("EV-EARLY", t0 + timedelta(minutes=30)),
                ("EV-LATE", t0 + timedelta(hours=2)))
    second = connector.fetch_updates(cursor)
    seen = {u.update_id for u in first + second}
    assert len(seen) == 3, "the early staff change in the later file was skipped"
    cursor = max(u.changed_at for u in second)
    assert connector.fetch_updates(cursor) == []
    assert _names(outbound) == [] and len(_names(harness.backoffice.archive)) == 2


def test_maybe_sent_key_still_in_inbound_is_not_uploaded_twice(harness: AcademyHarness) -> None:
    command = harness.command(1)
    connector = harness.connector()
    [first] = connector.submit([command])
    unsure = Command(**{**command.__dict__, "maybe_sent": True})
    [second] = connector.submit([unsure])
    assert second.status is OutcomeStatus.AWAITING and second.reference == first.reference
    assert len(_names(harness.backoffice.inbound)) == 1


def test_overlapping_files_give_one_effect_and_one_answer(harness: AcademyHarness) -> None:
    command = harness.command(1)
    connector = harness.connector()
    since = _ago(seconds=5)
    [outcome] = connector.submit([command])
    inbound = harness.backoffice.inbound
    data = (inbound / outcome.reference).read_bytes()
    harness.settle()
    (inbound / "COC_overlap.csv").write_bytes(data)    # the same record in a later file
    report = harness.backoffice.process()
    assert report.duplicates == 1 and harness.effects() == 1
    assert len(_names(harness.backoffice.outbound)) == 2, "answered twice (files overlap)"
    answers = [u for u in connector.fetch_updates(since) if u.key == command.key]
    assert len(answers) == 1


def test_late_answer_arrives_after_the_delay(sshd_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    clock = [datetime.now(timezone.utc)]
    backoffice = make_exchange(sshd_server, tmp_path, response_delay_seconds=3600,
                               clock=lambda: clock[0])
    harness = AcademyHarness(sshd_server, backoffice)
    connector = harness.connector()
    since = _ago(seconds=5)
    [outcome] = connector.submit([harness.command(1)])
    harness.settle()
    assert harness.effects() == 1
    assert [u for u in connector.fetch_updates(since) if u.resolves] == [], "not answered yet"
    clock[0] += timedelta(hours=1, seconds=1)
    harness.settle()
    assert datetime.fromisoformat(outcome.details["due_by"]) > datetime.now(timezone.utc)
    [answer] = connector.fetch_updates(since)
    assert answer.resolves is OutcomeStatus.CONFIRMED and answer.key == outcome.key


def test_staff_change_is_a_status_update_with_crm_status(harness: AcademyHarness) -> None:
    connector = harness.connector()
    since = _ago(seconds=5)
    harness.backoffice.staff_change("HB0000003", "UNDER_REVIEW", "evidence checked")
    harness.settle()
    [update] = connector.fetch_updates(since)
    assert (update.reference, update.status, update.crm_status, update.resolves) == \
        ("HB0000003", "UNDER_REVIEW", "open", None)


def test_unknown_host_key_is_permanent(harness: AcademyHarness, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(PermanentError) as info:
        harness.connector(known_hosts_path=str(empty)).check()
    assert info.value.code == "unknown-host-key"
    outcomes = harness.connector(known_hosts_path=str(empty)).submit([harness.command(1)])
    assert outcomes[0].status is OutcomeStatus.RETRY and outcomes[0].error_class == "PermanentError"


def test_host_key_string_instead_of_a_known_hosts_file(harness: AcademyHarness) -> None:
    harness.connector(known_hosts_path=None, host_key=harness.sshd.host_key_line).check()


def test_missing_folder_is_a_permanent_error(harness: AcademyHarness) -> None:
    with pytest.raises(PermanentError) as info:
        harness.connector(outbound_dir="no-such-folder").check()
    assert info.value.code == "no-such-path"


def test_slow_server_times_out(harness: AcademyHarness) -> None:
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)   # accepts TCP but never speaks SSH
    try:
        started = datetime.now(timezone.utc)
        outcomes = harness.connector(port=silent.getsockname()[1], timeout_seconds=0.5,
                                     retry_attempts=1).submit([harness.command(1)])
        assert outcomes[0].status is OutcomeStatus.RETRY
        assert datetime.now(timezone.utc) - started < timedelta(seconds=10)
    finally:
        silent.close()


def test_config_from_connection_maps_fields_and_allowlists_extras(caplog) -> None:  # type: ignore[no-untyped-def]
    config = AcademyConfig.from_connection(
        host="sftp.example", port=2222, login="hub", password="pw",
        extra={"known_hosts_path": "/etc/hub/known_hosts", "inbound_dir": "in",
               "response_due_minutes": 30, "surprise": "x"})
    assert (config.host, config.port, config.username, config.inbound_dir) == \
        ("sftp.example", 2222, "hub", "in")
    assert config.password is not None and config.password.get_secret_value() == "pw"
    assert "surprise" in caplog.text and "pw" not in repr(config)
    with pytest.raises(PermanentError):
        AcademyConfig.from_connection(host="sftp.example", login="hub", password="pw")  # no host key
    with pytest.raises(PermanentError):
        AcademyConfig.from_connection(host="sftp.example", login="hub",
                                      extra={"known_hosts_path": "/x"})          # no credentials


def test_connector_identity() -> None:
    assert AcademyConnector.system_id() == "benefits_academy" == AcademyConnector.default_conn_id
    from connectors import catalog

    assert catalog.connector_class("benefits_academy") is AcademyConnector
    assert set(catalog.operations("benefits_academy")) == {
        "hb.new_address", "hb.household_change", "hb.income_change", "hb.started_work",
        "hb.stopped_work"}


def _ssh_connections() -> list[paramiko.Transport]:
    return [t for t in threading.enumerate() if isinstance(t, paramiko.Transport) and t.is_alive()]


def test_one_connection_serves_the_calls_and_close_ends_it(harness: AcademyHarness) -> None:
    before = set(_ssh_connections())
    connector = harness.connector()
    connector.submit([harness.command(1)])
    connector.submit([harness.command(2)])
    connector.fetch_updates(_ago(minutes=1))
    opened = [t for t in _ssh_connections() if t not in before]
    assert len(opened) == 1, "each call should reuse the connection kept open"
    connector.close()
    opened[0].join(timeout=2)
    assert not opened[0].is_alive(), "close() left the SSH connection open"


def test_a_dropped_connection_is_replaced_on_the_next_call(harness: AcademyHarness) -> None:
    connector = harness.connector()
    connector.submit([harness.command(1)])
    kept = connector._kept
    assert kept is not None
    kept.close()                       # the server or the network ended it between batches
    [outcome] = connector.submit([harness.command(2)])
    assert outcome.status is OutcomeStatus.AWAITING
    assert connector._kept is not None and connector._kept is not kept
    connector.close()


def _response_file(name: str, rows: list[list[str]], at: datetime) -> bytes:
    return ff._build(ff.RESPONSE_FILE_TYPE, name.removesuffix(".csv"), at, rows)


def _drop_outbound(harness: AcademyHarness, name: str, data: bytes) -> None:
    (harness.backoffice.outbound / name).write_bytes(data)


def test_a_late_file_dated_before_the_cursor_is_returned_before_it_is_archived(
        harness: AcademyHarness) -> None:
    connector = harness.connector()
    cursor = _ago(minutes=1)
    old = cursor - timedelta(hours=2)
    _drop_outbound(harness, "RSP_late.csv", _response_file("RSP_late.csv", [
        ["S", "EV1", "HB0000001", "", "RECALCULATED", old.isoformat(), "late"]], old))
    [update] = connector.fetch_updates(cursor)     # never returned before: returned whole
    assert update.status == "RECALCULATED" and update.changed_at == old
    assert _names(harness.backoffice.outbound) == ["RSP_late.csv"], "not archived unread"
    assert [u.update_id for u in connector.fetch_updates(cursor)] == [update.update_id], \
        "the same cursor: the hub may not have stored it yet"
    assert connector.fetch_updates(cursor + timedelta(seconds=1)) == []
    assert _names(harness.backoffice.outbound) == [], "the cursor moved on: archived now"


def test_a_bad_line_is_set_aside_with_a_finding_and_the_rest_is_used(
        harness: AcademyHarness) -> None:
    connector = harness.connector()
    findings: list = []
    connector.report = findings.append
    at = _ago(seconds=30)
    _drop_outbound(harness, "RSP_mixed.csv", _response_file("RSP_mixed.csv", [
        ["R", "k-ok", "h1", "ACCEPTED", "HB0000001", "", "", at.isoformat()],
        ["R", "k-bad", "h2", "MAYBE", "HB0000001", "", "", at.isoformat()],
        ["S", "EV9", "HB0000002", "", "UNDER_REVIEW", "yesterday", "x"],
        ["R", "k-none", "h3", "ACCEPTED", "None", "", "", at.isoformat()],
        ["X", "a future line type", "ignored"],
        ["S", "EV2", "HB0000002", "", "UNDER_REVIEW", at.isoformat(), "", "an extra column"],
    ], at))
    updates = connector.fetch_updates(at - timedelta(seconds=1))
    assert sorted(u.key or u.reference for u in updates) == ["HB0000002", "k-ok"]
    assert sorted((f.entry, f.field) for f in findings) == [
        ("RSP_mixed.csv line 3", "result"), ("RSP_mixed.csv line 4", "changed_at"),
        ("RSP_mixed.csv line 5", "claim_ref")]
    assert all(f.kind == "entry_set_aside" and f.system == "benefits_academy" for f in findings)


@pytest.mark.parametrize("damage", ["checksum", "too large"])
def test_an_unreadable_file_is_quarantined_once_with_a_finding(harness: AcademyHarness,
                                                               damage: str) -> None:
    connector = harness.connector(max_answer_bytes=4096)
    findings: list = []
    connector.report = findings.append
    at = _ago(seconds=30)
    rows = [["S", f"EV{n}", "HB0000001", "", "RECALCULATED", at.isoformat(), "x" * 60]
            for n in range(3 if damage == "checksum" else 200)]
    data = _response_file("RSP_bad.csv", rows, at)
    if damage == "checksum":
        data = data.replace(b"EV1,", b"EV7,")
    _drop_outbound(harness, "RSP_bad.csv", data)
    assert connector.fetch_updates(at - timedelta(minutes=1)) == []
    assert _names(harness.backoffice.outbound) == []
    assert _names(harness.backoffice.root / "quarantine") == ["RSP_bad.csv"]
    [finding] = findings
    assert finding.kind == "file_quarantined" and finding.entry.startswith("RSP_bad.csv")
    if damage == "checksum":
        assert finding.entry == "RSP_bad.csv line 5", "the trailer line is named"
    assert connector.fetch_updates(at - timedelta(minutes=1)) == [] and len(findings) == 1
