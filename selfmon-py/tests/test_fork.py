"""Forking hosts (multiprocessing's "fork" start method, gunicorn --preload, celery prefork).

Every child here runs under a deadline: the parent polls ``os.waitpid`` and kills a child that
has not exited, so a regression (a child hanging in ``os.fork()`` or in ``scan()``) fails the test
instead of hanging the suite. The deadline is a hang guard, not a timing assertion.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import signal
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

import selfmon
from conftest import Env, sql

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork"),
    # Python 3.12+ warns that forking a process with threads may deadlock: what is tested here.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

HANG_GUARD = 60.0  # seconds; generous for a loaded CI machine


def run_forked(child: Callable[[], int]) -> int:
    """Forks; the child runs ``child()`` and exits with its result (70 on an exception, with the
    traceback on stderr). Returns the child's exit status; fails the test if the child has not
    exited within HANG_GUARD seconds (it is killed)."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 70
        try:
            code = child()
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            os._exit(code)
    deadline = time.monotonic() + HANG_GUARD
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"the forked child {pid} hung (killed after {HANG_GUARD:.0f} s)")
        time.sleep(0.02)


@pytest.fixture
def logger(request: pytest.FixtureRequest) -> Iterator[logging.Logger]:
    log = logging.getLogger(f"selfmon.test.{request.node.name}")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    yield log
    for h in list(log.handlers):
        log.removeHandler(h)
        h.close()


def open_descriptors_of(path: Path) -> int:
    """How many of this process's file descriptors are open on ``path``."""
    target = os.path.realpath(path)
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            n += os.readlink(f"/proc/self/fd/{fd}") == target
        except OSError:
            pass
    return n


def messages(env: Env) -> list:
    return [r["message"] for r in sql(env.logs, "SELECT message FROM logs ORDER BY id")]


def test_a_child_forked_with_a_log_handler_returns_from_fork_and_writes_with_its_own_writer(
    env: Env, logger: logging.Logger
) -> None:
    handler = selfmon.LogHandler(env.logs)
    logger.addHandler(handler)
    logger.error("parent before the fork")
    assert handler.flush(timeout=60)

    def child() -> int:
        # No connection of the parent's writer crossed the fork: the one logs.db descriptor is
        # the child's own writer's (sqlite.org/howtocorrupt.html, 2.6).
        if os.path.isdir("/proc/self/fd") and open_descriptors_of(env.logs) != 1:
            return 5
        logger.error("child %d", os.getpid())
        if not handler.flush(timeout=60):
            return 3
        stats = handler.stats()  # the child's own writer: one record, written
        return 0 if (stats["enqueued"], stats["written"]) == (1, 1) else 4

    assert run_forked(child) == 0
    assert run_forked(lambda: 0) == 0  # a child that does nothing at all

    # The parent's writer is untouched by its children.
    logger.error("parent after the forks")
    assert handler.flush(timeout=60)
    assert handler.stats()["written"] == 2
    handler.close()
    found = messages(env)
    assert found[0] == "parent before the fork" and found[-1] == "parent after the forks"
    assert len([m for m in found if m.startswith("child ")]) == 1, found


def _log_from_a_pool_worker(path: str, name: str) -> None:
    log = logging.getLogger(name)
    log.error("multiprocessing child %d", os.getpid())
    for h in log.handlers:
        if isinstance(h, selfmon.LogHandler) and not h.flush(timeout=60):
            raise SystemExit(3)


def test_multiprocessing_fork_children_start_log_and_exit(
    env: Env, logger: logging.Logger
) -> None:
    handler = selfmon.LogHandler(env.logs)
    logger.addHandler(handler)
    ctx = multiprocessing.get_context("fork")
    procs = [
        ctx.Process(target=_log_from_a_pool_worker, args=(str(env.logs), logger.name))
        for _ in range(3)
    ]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join(HANG_GUARD)
        hung = [p.pid for p in procs if p.exitcode is None]
        assert not hung, f"forked children hung: {hung}"
        assert [p.exitcode for p in procs] == [0, 0, 0]
    finally:
        for p in procs:
            if p.exitcode is None:
                p.kill()
                p.join()
    handler.close()
    assert len([m for m in messages(env) if m.startswith("multiprocessing child ")]) == 3


def test_a_monitor_made_before_a_fork_refuses_in_the_child_and_one_made_after_scans(
    env: Env, tmp_path: Path
) -> None:
    env.seed()
    monitor = selfmon.SelfMonitor.from_config(env.config())
    assert monitor.scan(dry_run=True).record.status == "SUCCESS"
    report = tmp_path / "child.json"

    def child() -> int:
        outcome = {}
        for name, call in (
            ("scan", lambda: monitor.scan(dry_run=True)),
            ("history", lambda: monitor.history()),
            ("state", lambda: monitor.state()),
        ):
            try:
                call()
                outcome[name] = "returned"
            except selfmon.Error as e:
                outcome[name] = [e.kind, str(e)]
        outcome["cancel"] = monitor.cancel()
        # The advice of the error: a monitor made in the child works.
        fresh = selfmon.SelfMonitor.from_config(env.config())
        outcome["fresh"] = fresh.scan(dry_run=True).record.status
        report.write_text(json.dumps(outcome))
        return 0

    assert run_forked(child) == 0
    outcome = json.loads(report.read_text())
    for name in ("scan", "history", "state"):
        kind, message = outcome[name]
        assert kind == "forked", outcome
        assert f"created in process {os.getpid()} before a fork" in message, message
        assert "create the SelfMonitor after forking" in message, message
    assert outcome["cancel"] is False
    assert outcome["fresh"] == "SUCCESS"
    # The parent's monitor still works after its child is gone.
    assert monitor.scan(dry_run=True).record.status == "SUCCESS"
