"""``python -m bench --lanes N`` reaches the SOAP connectors the ceiling builds (fix 10's A/B)."""
from __future__ import annotations

from pathlib import Path

import pytest

from bench import suite, systems


@pytest.mark.parametrize("lanes", [None, 1, 6])
def test_the_lanes_option_sets_the_soap_connectors_concurrent_sends(
        lanes: int | None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(systems, "LANES", lanes)
    revenues = systems.RevenuesSystem(None, tmp_path)._connector("http://127.0.0.1:9/soap")  # type: ignore[arg-type]
    waste = systems.WasteSystem(None, tmp_path)._connector("http://127.0.0.1:9/soap")  # type: ignore[arg-type]
    expected = 4 if lanes is None else lanes     # the connectors' own default, or the option
    assert revenues.config.concurrent_sends == expected
    assert waste.config.concurrent_sends == expected


def test_lanes_below_one_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(systems, "LANES", None)
    with pytest.raises(SystemExit):
        suite.main(["--only", "ceiling", "--lanes", "0"])
