"""`SelfMonitor.history`: pages with totals, the same document as `selfmon history --json`."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime

import pytest

import selfmon
from conftest import Env


def cli_history(env: Env, scans: int, issues: int) -> dict:
    binary = os.environ.get("SELFMON_BIN")
    if not binary:
        pytest.skip("SELFMON_BIN is not set (.ci/test-python.sh sets it to the selfmon binary)")
    out = subprocess.run(
        [binary, "history", "--state", str(env.state), "--scans", str(scans), "--issues", str(issues), "--json"],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)


def populated(env: Env) -> selfmon.SelfMonitor:
    monitor = selfmon.SelfMonitor.from_config(env.config())
    env.seed()
    monitor.scan()
    monitor.scan()
    env.log("CRITICAL", "cidx.index", "[INDEX-WRITE-002] index writer crashed: disk full")
    monitor.scan(trigger="scheduled")
    env.log("ERROR", "cidx.auth", "[AUTH-TOKEN-004] token refresh failed for user 17")
    monitor.scan()
    return monitor


def test_history_matches_the_cli_json(env: Env) -> None:
    monitor = populated(env)
    for scans, issues in ((2, 2), (10, 10), (1, 5)):
        assert monitor.history(scans=scans, issues=issues).to_dict() == cli_history(env, scans, issues)


def test_pages_partition_the_full_list_and_carry_totals(env: Env) -> None:
    monitor = populated(env)
    everything = monitor.history(scans=100, issues=100)
    assert everything.scans.total == 4 and len(everything.scans) == 4
    assert everything.issues.total == 5 and len(everything.issues) == 5
    ids = [s.scan_id for s in everything.scans]
    numbers = [i.issue.number for i in everything.issues]
    paged_ids, paged_numbers = [], []
    for page in range(3):
        h = monitor.history(scans=2, issues=2, page=page)
        assert h.scans.total == 4 and h.issues.total == 5
        assert h.scan_pages == 2 and h.issue_pages == 3
        paged_ids += [s.scan_id for s in h.scans]
        paged_numbers += [i.issue.number for i in h.issues]
    assert paged_ids == ids
    assert paged_numbers == numbers
    # Newest first.
    starts = [s.started_at for s in everything.scans]
    assert starts == sorted(starts, reverse=True)
    assert all(isinstance(t, datetime) for t in starts)


def test_history_items_are_typed_for_templates(env: Env) -> None:
    monitor = populated(env)
    issue = monitor.history(issues=1).issues.items[0]
    assert isinstance(issue.issue.number, int)
    assert issue.issue.state == "open"
    assert isinstance(issue.created_at, datetime)
    assert issue.error_codes == ["AUTH-TOKEN-004"]
    assert issue.occurrences >= 1


def test_a_bad_page_argument_is_refused(env: Env) -> None:
    monitor = selfmon.SelfMonitor.from_config(env.config())
    with pytest.raises(ValueError):
        monitor.history(page=-1)


def test_scan_report_explains_a_scan_like_the_cli(env: Env) -> None:
    env.seed()
    monitor = selfmon.SelfMonitor.from_config(env.config())
    report = monitor.scan()
    stored = monitor.scan_report(report.scan_id)
    assert stored is not None
    assert stored.scan_id == report.scan_id
    assert stored.to_dict()["details_recorded"] is True
    assert [o.outcome for o in stored.outcomes] == [o.outcome for o in report.outcomes]
    assert stored.to_dict()["signatures"], "every signature's fate is kept"
    assert monitor.scan_report("no-such-scan") is None
