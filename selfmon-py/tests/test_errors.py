"""Every error kind arrives as its own `selfmon.Error` subclass with `.kind`, `.retryable`,
`.chain`; configuration errors name every field."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Dict

import pytest

import selfmon
from conftest import FIXTURES, Env, sql


def raised(fn: Any, cls: type) -> Any:
    with pytest.raises(cls) as info:
        fn()
    e = info.value
    assert isinstance(e, selfmon.Error)
    assert isinstance(e.kind, str) and e.kind
    assert isinstance(e.retryable, bool)
    assert isinstance(e.chain, list) and e.chain and all(isinstance(c, str) for c in e.chain)
    return e


def test_every_problem_of_a_config_dict_is_listed_with_its_field_path(env: Env) -> None:
    cfg = env.config(cadence_minutes=0, max_digest_bytes=1)
    cfg["tracker"] = {"kind": "dry-run", "dir": ""}
    e = raised(lambda: selfmon.SelfMonitor.from_config(cfg), selfmon.ConfigError)
    fields = {p["field"] for p in e.problems}
    assert {"cadence_minutes", "max_digest_bytes", "tracker.dir"} <= fields, e.problems
    assert all(p["reason"] for p in e.problems)
    assert e.kind == "config" and not e.retryable
    assert "cadence_minutes" in str(e)


def test_a_type_error_in_a_section_names_the_nested_field(env: Env) -> None:
    cfg = env.config()
    cfg["logs"] = {"path": str(env.logs), "busy_timeout_ms": "soon"}
    e = raised(lambda: selfmon.SelfMonitor.from_config(cfg), selfmon.ConfigError)
    assert [p["field"] for p in e.problems] == ["logs.busy_timeout_ms"], e.problems


def test_a_config_file_error_names_the_field(env: Env, tmp_path: Path) -> None:
    cfg: Dict[str, Any] = env.config()
    cfg["dedup"] = {"related_threshold": "high"}
    path = tmp_path / "selfmon.json"
    path.write_text("// a comment line\n" + json.dumps(cfg, indent=2))
    e = raised(lambda: selfmon.SelfMonitor.from_config(path), selfmon.ConfigError)
    assert e.problems[0]["field"] == "dedup.related_threshold", e.problems


def test_a_config_file_with_relative_paths_resolves_them_from_its_folder(env: Env) -> None:
    env.seed()
    path = env.root / "selfmon.json"
    path.write_text(json.dumps({
        "logs": {"path": "logs.db"},
        "state": {"path": "state.db"},
        "tracker": {"kind": "dry-run", "dir": "issues"},
    }))
    report = selfmon.SelfMonitor.from_config(str(path)).scan()
    assert report.record.issues_created == 3
    assert len(env.issue_files()) == 3


def test_a_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    e = raised(lambda: selfmon.SelfMonitor.from_config(tmp_path / "nope.json"), selfmon.ConfigError)
    assert "nope.json" in str(e)


def test_an_unserialisable_config_dict_is_a_config_error(env: Env) -> None:
    e = raised(lambda: selfmon.SelfMonitor.from_config(env.config(enabled=object())), selfmon.ConfigError)
    assert e.problems


def test_a_held_lease_is_lease_held_and_retryable(env: Env, background) -> None:
    env.seed()
    cfg = env.config(runner=env.slow_runner(secs=3))
    first = selfmon.SelfMonitor.from_config(cfg)
    running = background(first.scan)
    deadline = time.monotonic() + 30
    while not env.state.exists() or "RUNNING" not in env.scan_statuses():
        assert time.monotonic() < deadline, "the first scan never started"
        time.sleep(0.02)
    e = raised(selfmon.SelfMonitor.from_config(cfg).scan, selfmon.LeaseHeldError)
    assert e.retryable and e.kind == "lease_held"
    assert e.owner and e.expires_at and e.since and e.holder
    running.join()
    assert running.error is None, running.error


def test_an_unreadable_log_source_is_a_log_source_error(env: Env) -> None:
    env.seed()
    monitor = selfmon.SelfMonitor.from_config(env.config())
    sql(env.logs, "DROP TABLE logs")
    e = raised(monitor.scan, selfmon.LogSourceError)
    assert e.kind == "adapter"
    assert env.scan_statuses() == ["FAILURE"]


def test_a_failing_runner_is_a_runner_error(env: Env) -> None:
    env.seed()
    runner = {"kind": "claude", "binary": str(FIXTURES / "runner-broken.sh"), "timeout_secs": 60}
    e = raised(selfmon.SelfMonitor.from_config(env.config(runner=runner)).scan, selfmon.RunnerError)
    assert any("exit" in c or "fail" in c for c in e.chain), e.chain


def test_a_failing_tracker_is_a_tracker_error(env: Env) -> None:
    env.seed()
    monitor = selfmon.SelfMonitor.from_config(env.config())
    # The dry-run tracker cannot write into a folder that has become a file.
    env.issues.rmdir() if env.issues.is_dir() else None
    env.issues.write_text("not a folder")
    e = raised(monitor.scan, selfmon.TrackerError)
    assert e.kind == "adapter"


def test_a_broken_state_store_is_a_state_error(env: Env) -> None:
    env.seed()
    monitor = selfmon.SelfMonitor.from_config(env.config())
    sql(env.state, "DROP TABLE self_monitoring_scans")
    raised(monitor.scan, selfmon.StateError)


def test_a_rust_panic_becomes_an_internal_error_not_a_crash() -> None:
    e = raised(lambda: selfmon._selfmon._panic_for_tests("boom"), selfmon.InternalError)
    assert e.kind == "panic" and "boom" in str(e)


def test_cancel_outside_a_scan_reports_nothing_was_running(env: Env) -> None:
    assert selfmon.SelfMonitor.from_config(env.config()).cancel() is False


def test_every_exception_class_is_a_selfmon_error() -> None:
    for cls in (
        selfmon.ConfigError,
        selfmon.LeaseHeldError,
        selfmon.LogSourceError,
        selfmon.RunnerError,
        selfmon.TrackerError,
        selfmon.StateError,
        selfmon.CancelledError,
        selfmon.InternalError,
    ):
        assert issubclass(cls, selfmon.Error) and issubclass(cls, Exception)


def test_a_type_error_in_a_top_level_field_of_a_dict_names_that_field(env: Env) -> None:
    # Review M12: reported as field `<root>` with a column in JSON the user never wrote.
    e = raised(lambda: selfmon.SelfMonitor.from_config(env.config(cadence_minutes="60")), selfmon.ConfigError)
    assert [p["field"] for p in e.problems] == ["cadence_minutes"], e.problems
    assert "line 1 column" not in e.problems[0]["reason"], e.problems


def test_text_after_the_closing_brace_of_a_config_file_is_a_config_error(env: Env, tmp_path: Path) -> None:
    # Review M14: the pasted second tracker was silently ignored.
    path = tmp_path / "selfmon.json"
    path.write_text(json.dumps(env.config()) + ',"enabled": true, "tracker": {"kind": "github"} }\n')
    e = raised(lambda: selfmon.SelfMonitor.from_config(path), selfmon.ConfigError)
    assert e.problems[0]["field"] == "<root>", e.problems
    assert "closing" in e.problems[0]["reason"], e.problems
