"""bench/reconcile.py runs on a tiny size (through spilled sorted runs) and finds every seeded drift,
with no false finding (its figures are printed, not asserted)."""
from __future__ import annotations

import pytest

from bench import reconcile
from hub.reconcile.findings import CLASSES


def test_tiny_reconcile_bench_finds_each_seeded_drift_once(capsys: pytest.CaptureFixture[str]) -> None:
    assert reconcile.main(["--records", "7000", "--run-size", "1000"]) == 0
    result = reconcile.run(7000, run_size=1000)
    assert result["ok"] and result["duplicates"] == 0
    assert set(result["per_class"]) == set(CLASSES)
    assert all(row["seeded"] >= 1 and row["found"] == row["seeded"] and row["false"] == 0
               for row in result["per_class"].values())
    out = capsys.readouterr().out
    assert "peak RSS" in out and "all seeded drifts found" in out


def test_a_missed_drift_is_reported_as_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    real = reconcile.crm_states

    def healed_crm(plan):  # noqa: ANN001, ANN202 - the CRM shows every write-back after all
        for view in real(plan):
            yield view.__class__(view.crm_id, "completed", f"R{int(view.crm_id[1:])}", view.backoffice_system)
    monkeypatch.setattr(reconcile, "crm_states", healed_crm)
    result = reconcile.run(7000, run_size=1000)
    assert not result["ok"]
    assert result["per_class"]["writeback_missing"]["found"] == 0
