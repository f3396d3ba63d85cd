"""The end-of-suite log check can fail: it finds a seeded value in any log file, rotated ones too."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import scan_logs


def test_scan_logs_reports_where_a_seeded_value_appears(tmp_path: Path) -> None:
    (tmp_path / "rasa.log").write_text("started\nInbound SMS SM1 from +1******0100\n")
    (tmp_path / "backend.log.1").write_text("ok\nreply to +12025550100: please stop texting me\n")
    leaks = scan_logs(tmp_path, ["+12025550100", "please stop texting me"])
    assert leaks == ["backend.log.1:2: reply to <seeded>: <seeded>"]
    assert scan_logs(tmp_path, ["Quillon"]) == []
