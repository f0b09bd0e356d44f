"""`cancel()` and Ctrl-C during a slow runner: no child process, no RUNNING scan, a free lease."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

import selfmon
from conftest import Env, processes_mentioning, wait_until


def assert_clean_after_interrupt(env: Env, cfg: dict) -> None:
    # The runner's process group (bash and its `sleep`) is gone.
    wait_until(lambda: not processes_mentioning(str(env.root / "runner-slow.sh")), "the runner to exit", 15)
    assert not processes_mentioning(str(env.root)), "a child process outlived the scan"
    # The scan is recorded as interrupted, not left RUNNING.
    assert env.scan_statuses() == ["FAILURE"]
    # The lease is free: the next scan (the offline runner now) runs at once and reads the same records.
    cfg = dict(cfg, runner={"kind": "offline"})
    report = selfmon.SelfMonitor.from_config(cfg).scan()
    assert report.record.status == "SUCCESS"
    assert report.record.log_id_start == 0 and report.record.issues_created == 3


def test_cancel_from_another_thread_stops_the_scan_cleanly(env: Env, background) -> None:
    env.seed()
    cfg = env.config(runner=env.slow_runner(secs=60))
    monitor = selfmon.SelfMonitor.from_config(cfg)
    in_analysis = threading.Event()

    def on_event(e: selfmon.ScanEvent) -> None:
        if e.event == "digested":
            in_analysis.set()

    scan = background(lambda: monitor.scan(on_event=on_event))
    assert in_analysis.wait(30)
    wait_until(lambda: bool(processes_mentioning(str(env.root / "runner-slow.sh"))), "the runner to start")
    started = time.monotonic()
    assert monitor.cancel() is True
    scan.join(60)
    assert isinstance(scan.error, selfmon.CancelledError), scan.error
    assert scan.error.kind == "cancelled"
    assert time.monotonic() - started < 50, "cancel waited for the runner's 60 s sleep"
    history = monitor.history()
    assert "interrupt" in (history.scans.items[0].error_message or "")
    assert_clean_after_interrupt(env, cfg)


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="needs the main thread")
def test_ctrl_c_in_the_calling_thread_raises_keyboard_interrupt_after_a_clean_stop(env: Env) -> None:
    env.seed()
    cfg = env.config(runner=env.slow_runner(secs=60))
    monitor = selfmon.SelfMonitor.from_config(cfg)

    def interrupt_when_analysing(e: selfmon.ScanEvent) -> None:
        if e.event == "digested":
            def later() -> None:
                wait_until(lambda: bool(processes_mentioning(str(env.root / "runner-slow.sh"))), "the runner")
                os.kill(os.getpid(), signal.SIGINT)
            threading.Thread(target=later, daemon=True).start()

    with pytest.raises(KeyboardInterrupt):
        monitor.scan(on_event=interrupt_when_analysing)
    assert not monitor.state().running_here
    assert_clean_after_interrupt(env, cfg)


def test_leaving_iter_scan_early_cancels_the_scan(env: Env) -> None:
    env.seed()
    cfg = env.config(runner=env.slow_runner(secs=60))
    it = selfmon.SelfMonitor.from_config(cfg).iter_scan()
    for event in it:
        if event.event == "digested":
            break
    it.close()
    assert_clean_after_interrupt(env, cfg)


POOL_HOST = """
import json, os, signal, sys, threading, time, selfmon
from concurrent.futures import ThreadPoolExecutor
monitor = selfmon.SelfMonitor.from_config(json.loads(sys.argv[1]))
analysing = threading.Event()
pool = ThreadPoolExecutor(1)  # as a web framework runs a sync handler
scan = pool.submit(monitor.scan, on_event=lambda e: e.event == "digested" and analysing.set())
if not analysing.wait(60):
    sys.exit("the scan never reached the analysis")
print("analysing", flush=True)
os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C: only the main thread sees it
time.sleep(600)
"""


def test_ctrl_c_stops_a_scan_running_on_a_worker_thread_when_the_host_exits(env: Env) -> None:
    import json
    import subprocess
    import sys

    env.seed()
    # The model would take 10 minutes; the host must not wait for it.
    cfg = env.config(runner=env.slow_runner(secs=600))
    host = subprocess.run(
        [sys.executable, "-c", POOL_HOST, json.dumps(cfg)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert host.stdout.strip() == "analysing", (host.stdout, host.stderr)
    assert host.returncode != 0 and "KeyboardInterrupt" in host.stderr, host.stderr
    assert "panicked" not in host.stderr, host.stderr
    assert_clean_after_interrupt(env, cfg)
