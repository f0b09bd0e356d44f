"""Scans from Python: the report, progress, the GIL, scheduling helpers."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta, timezone

import selfmon
from conftest import Env


def test_first_scan_files_the_expected_issues_and_a_second_scan_files_none(env: Env) -> None:
    env.seed()
    monitor = selfmon.SelfMonitor.from_config(env.config())

    first = monitor.scan()
    assert first.record.status == "SUCCESS"
    assert first.record.issues_created == 3
    titles = sorted(o.title for o in first.outcomes if o.outcome == "filed")
    assert any("GIT-SYNC-001" in t for t in titles), titles
    assert any("DB-LOCK-003" in t for t in titles), titles
    assert any("ValueError" in t for t in titles), titles
    assert [i.number for i in first.filed] == [1, 2, 3]
    assert len(env.issue_files()) == 3

    second = monitor.scan()
    assert second.record.status == "SUCCESS"
    assert second.record.issues_created == 0
    assert second.filed == []
    assert len(env.issue_files()) == 3


def test_the_report_has_typed_attributes_and_to_dict_is_the_cli_json_shape(env: Env) -> None:
    env.seed()
    report = selfmon.SelfMonitor.from_config(env.config()).scan(trigger="scheduled")
    r = report.record
    assert isinstance(r.started_at, datetime) and r.started_at.tzinfo is not None
    assert isinstance(r.completed_at, datetime) and r.completed_at >= r.started_at
    assert r.trigger == "scheduled"
    assert r.duplicates.total == 0
    assert r.duration_seconds is not None and r.duration_seconds >= 0
    assert report.scan_id == r.scan_id
    d = report.to_dict()
    assert set(d) >= {"record", "outcomes", "rejected", "reconciled"}
    assert d["record"]["started_at"].endswith("Z")
    # A plain JSON document: it round-trips, and changing the copy leaves the report alone.
    assert json.loads(json.dumps(d)) == d
    d["record"]["issues_created"] = -1
    assert report.record.issues_created == 3


def test_dry_run_files_nothing_and_is_marked(env: Env) -> None:
    env.seed()
    report = selfmon.SelfMonitor.from_config(env.config()).scan(dry_run=True)
    assert report.record.dry_run is True
    assert env.issue_files() == []
    assert {o.outcome for o in report.outcomes} == {"would_file"}


def test_progress_callback_sees_every_stage_in_order(env: Env) -> None:
    env.seed()
    events = []
    report = selfmon.SelfMonitor.from_config(env.config()).scan(on_event=events.append)
    kinds = [e.event for e in events]
    assert kinds[0] == "started" and kinds[-1] == "finished", kinds
    assert kinds.count("issue_filed") == 3
    assert events[-1].record.scan_id == report.scan_id
    assert all(e.scan_id == report.scan_id for e in events)


def test_a_raising_progress_callback_stops_the_scan_and_propagates(env: Env) -> None:
    env.seed()
    monitor = selfmon.SelfMonitor.from_config(env.config())

    class Stop(Exception):
        pass

    def on_event(e: selfmon.ScanEvent) -> None:
        if e.event == "started":
            raise Stop()

    try:
        monitor.scan(on_event=on_event)
    except Stop:
        pass
    else:
        raise AssertionError("the callback's exception did not propagate")


def test_iter_scan_yields_events_then_holds_the_report(env: Env) -> None:
    env.seed()
    it = selfmon.SelfMonitor.from_config(env.config()).iter_scan()
    kinds = [e.event for e in it]
    assert kinds[0] == "started" and kinds[-1] == "finished"
    assert it.report is not None and it.report.record.issues_created == 3


def test_a_python_thread_keeps_running_while_a_slow_scan_waits(env: Env) -> None:
    """The scan releases the GIL: a pure-Python counter advances while the runner is busy."""
    env.seed()
    monitor = selfmon.SelfMonitor.from_config(env.config(runner=env.slow_runner(secs=2)))
    counter = [0]
    stop = threading.Event()

    def count() -> None:
        while not stop.is_set():
            counter[0] += 1

    t = threading.Thread(target=count, daemon=True)
    t.start()
    marks = {}

    def on_event(e: selfmon.ScanEvent) -> None:
        marks[e.event] = counter[0]

    try:
        monitor.scan(on_event=on_event)
    finally:
        stop.set()
        t.join()
    # Between the digest and the runner's answer (two seconds of `sleep`) the counter ran.
    assert marks["analysed"] - marks["digested"] > 10_000, marks


def test_next_scan_at_is_due_and_state_follow_the_cadence(env: Env) -> None:
    env.seed()
    monitor = selfmon.SelfMonitor.from_config(env.config(cadence_minutes=30))
    now = datetime.now(timezone.utc)
    assert monitor.next_scan_at(now) == now
    assert monitor.is_due(now)
    assert monitor.state().state == "idle" and monitor.state().last_scan is None

    report = monitor.scan()
    started = report.record.started_at
    assert monitor.next_scan_at() == started + timedelta(minutes=30)
    assert not monitor.is_due(started + timedelta(minutes=29))
    assert monitor.is_due(started + timedelta(minutes=30))
    state = monitor.state()
    assert state.state == "idle" and not state.running_here
    assert state.last_scan is not None and state.last_scan.scan_id == report.scan_id
    assert state.next_scan_at == started + timedelta(minutes=30)


def test_a_disabled_monitor_is_never_due(env: Env) -> None:
    monitor = selfmon.SelfMonitor.from_config(env.config(enabled=False))
    assert monitor.next_scan_at() is None
    assert not monitor.is_due()


def test_naive_datetimes_are_refused(env: Env) -> None:
    monitor = selfmon.SelfMonitor.from_config(env.config())
    try:
        monitor.is_due(datetime.now())
    except ValueError as e:
        assert "aware" in str(e)
    else:
        raise AssertionError("a naive datetime was accepted")


def test_state_is_running_while_a_scan_runs(env: Env, background) -> None:
    env.seed()
    monitor = selfmon.SelfMonitor.from_config(env.config(runner=env.slow_runner(secs=2)))
    scan = background(monitor.scan)
    deadline = time.monotonic() + 30
    while monitor.state().state != "running":
        assert time.monotonic() < deadline, "the scan never showed as running"
        time.sleep(0.02)
    assert monitor.state().running_here
    scan.join()
    assert scan.error is None, scan.error
    assert monitor.state().state == "idle"


def test_the_built_in_scheduler_runs_a_due_scan(env: Env) -> None:
    env.seed()
    monitor = selfmon.SelfMonitor.from_config(env.config())
    scheduler = monitor.start_scheduler(poll_seconds=0.05)
    try:
        deadline = time.monotonic() + 30
        while [s.status for s in monitor.history().scans] != ["SUCCESS"]:
            assert time.monotonic() < deadline, "the scheduler never scanned"
            time.sleep(0.05)
    finally:
        monitor.stop_scheduler(timeout=30)
    assert not scheduler.is_alive()
    scans = monitor.history().scans
    # Due once: the cadence (60 minutes) keeps it from scanning again.
    assert scans.total == 1
    assert scans.items[0].trigger == "scheduled"
    assert scheduler.last_error is None
