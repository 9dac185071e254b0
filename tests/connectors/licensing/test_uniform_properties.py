"""Property: the licensing connector reads every application row the licensing system's schema
allows (optional columns NULL, statuses in any case, odd text in columns it does not use), sets
aside a row whose needed value is unusable (a finding naming the column), and never reports a
reference that is not one."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert

from connectors.licensing.uniform import UniformConfig, UniformConnector
from simulators.licensing.backoffice import LicensingBackOffice

BASE = datetime(2026, 3, 1, 9, 0)
PROFILE = settings(max_examples=40, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow,
                                          HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LicensingBackOffice]:
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('lic-prop')) / 'uniform.db'}"
    back_office = LicensingBackOffice(url)
    back_office.install()
    yield back_office
    back_office.close()


@st.composite
def rows(draw: st.DrawFn) -> list[dict[str, object]]:
    out = []
    for n in range(draw(st.integers(0, 6))):
        row: dict[str, object] = {
            "APP_REF": f"26/{n:05d}/PREM", "EXT_REF": f"key-{n}", "LIC_TYPE": "PREM",
            "APPLICANT_NAME": draw(st.sampled_from(["A Name", "<b>x</b>", ""])),
            "STATUS": draw(st.sampled_from(["GRANTED", "refused", "FURTHER_INFO", " granted "])),
            "DECISION_DATE": draw(st.sampled_from([None, date(2026, 2, 27)])),
            "LAST_UPDATED": BASE + timedelta(minutes=draw(st.integers(-30, 30))),
            "ACTIVITY": draw(st.sampled_from([None, "", "alcohol,music", "\u2603"])),
            "PAYMENT_REF": draw(st.sampled_from([None, "PAY-1"])),
            "FEE_PENCE": draw(st.sampled_from([None, 0, 37000])),
            "DECISION_NOTE": draw(st.sampled_from([None, "", "see file"]))}
        if draw(st.integers(0, 3)) == 0:
            column = draw(st.sampled_from(["APP_REF", "STATUS"]))
            if column == "APP_REF":   # unique, as the primary key must be
                row["APP_REF"] = draw(st.sampled_from([" " * (n + 1), f"<i>{n}</i>",
                                                       "None" if n == 0 else f"null{n}<"]))
            else:
                row["STATUS"] = draw(st.sampled_from(["", " ", "<i>x</i>"]))
            row["_bad"] = column.lower()
        out.append(row)
    return out


def _holding(office: LicensingBackOffice,
             generated: list[dict[str, object]]) -> tuple[UniformConnector, list]:
    """The back office's application table holding just ``generated`` (the ``_``-keys are the
    test's own notes), and a connector to it whose findings land in the list returned with it."""
    with office.engine.begin() as conn:
        conn.execute(delete(office.application))
        for row in generated:
            conn.execute(insert(office.application).values(
                **{k: v for k, v in row.items() if not k.startswith("_")}))
    connector = UniformConnector(UniformConfig(url=office.url, retry_attempts=1))
    findings: list = []
    connector.report = findings.append
    return connector, findings


@PROFILE
@given(generated=rows())
def test_rows_are_read_or_set_aside_naming_the_column(office: LicensingBackOffice,
                                                      generated: list[dict[str, object]]) -> None:
    connector, findings = _holding(office, generated)
    since = (BASE - timedelta(minutes=10)).replace(tzinfo=timezone.utc)
    try:
        updates = connector.fetch_updates(since)
    finally:
        connector.close()
    recent = [r for r in generated
              if r["LAST_UPDATED"] > since.replace(tzinfo=None)]  # type: ignore[operator]
    good = [r for r in recent if "_bad" not in r]
    assert sorted((u.reference, u.status, u.key) for u in updates) == sorted(
        (r["APP_REF"], str(r["STATUS"]).strip().upper(), r["EXT_REF"]) for r in good)
    assert sorted(f.field for f in findings) == sorted(str(r["_bad"]) for r in recent
                                                       if "_bad" in r)
    for update in updates:
        assert update.crm_status in ("closed", "open", None)


@st.composite
def keyed_rows(draw: st.DrawFn) -> list[dict[str, object]]:
    """Application rows as the schema allows them: any EXT_REF text up to 64 characters (mixed
    case, non-ASCII), NULL keys (staff-made rows), NULL applicant party, unknown licence types."""
    keys = draw(st.lists(st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]),
                                 min_size=1, max_size=64), max_size=12, unique=True))
    out = []
    for n, key in enumerate(keys + [None] * draw(st.integers(0, 2))):
        row: dict[str, object] = {
            "APP_REF": f"26/{n:05d}/X", "EXT_REF": key,
            "LIC_TYPE": draw(st.sampled_from(["PREM", "STR", "HCD", "ZZZ"])),
            "APPLICANT_NAME": draw(st.sampled_from(["A Name", "<b>x</b>", ""])),
            "STATUS": draw(st.sampled_from(["RECEIVED", "granted", " REFUSED "])),
            "LAST_UPDATED": BASE + timedelta(minutes=draw(st.integers(-30, 30))),
            "ACTIVITY": draw(st.sampled_from([None, "", "sale_of_alcohol,late_night_refreshment"])),
            "SITE_DESC": draw(st.sampled_from([None, "Market Square"])),
            "PAYMENT_REF": draw(st.sampled_from([None, "PAY-1"])),
            "PARTY_ID": draw(st.sampled_from([None, 999999]))}
        if key is not None and draw(st.integers(0, 4)) == 0:
            row["STATUS"], row["_bad"] = draw(st.sampled_from(["", "<i>x</i>"])), "status"
        out.append(row)
    return out


@PROFILE
@given(generated=keyed_rows(), page_size=st.integers(1, 5),
       since_minutes=st.none() | st.integers(-40, 40))
def test_records_list_every_keyed_row_once_in_key_order(office: LicensingBackOffice,
                                                        generated: list[dict[str, object]],
                                                        page_size: int,
                                                        since_minutes: int | None) -> None:
    connector, findings = _holding(office, generated)
    since = None if since_minutes is None else \
        (BASE + timedelta(minutes=since_minutes)).replace(tzinfo=timezone.utc)
    try:
        listed = list(connector.records(since=since, page_size=page_size))
    finally:
        connector.close()
    wanted = [r for r in generated if r["EXT_REF"] is not None
              and (since is None or r["LAST_UPDATED"] >= since.replace(tzinfo=None))]  # type: ignore[operator]
    good = [r for r in wanted if "_bad" not in r]
    assert [r.key for r in listed] == sorted(str(r["EXT_REF"]) for r in good), \
        "each keyed row once, in code-point order of the key, across pages"
    assert [f.field for f in findings] == ["status"] * (len(wanted) - len(good))
    for record in listed:
        assert record.status == record.status.strip().upper()
        assert record.changed_at is not None and record.changed_at.tzinfo is not None
        if record.operation is None:
            assert record.fields == {}, "an unknown licence type has no payload model"
        else:
            assert record.fields["applicant.address"] is None, "no applicant row: no address"
            assert "driving_licence_number" not in record.fields or \
                record.operation.endswith("driver")
