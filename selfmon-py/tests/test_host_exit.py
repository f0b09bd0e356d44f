"""A host that exits while the built-in scheduler (a daemon thread) is scanning: a clean exit."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from conftest import Env, processes_mentioning, wait_until

HOST = textwrap.dedent(
    """
    import json, sys, time, selfmon
    m = selfmon.SelfMonitor.from_config(json.loads(sys.argv[1]))
    m.start_scheduler(poll_seconds=0.05)
    deadline = time.monotonic() + 60
    while m.state().state != "running" and time.monotonic() < deadline:
        time.sleep(0.02)
    print("scanning" if m.state().state == "running" else "never scanned", flush=True)
    # Objects for the interpreter to free while it finalizes: a window of the length of a big
    # host's teardown, in which the daemon thread's next signal poll falls.
    junk = [[i] for i in range(3_000_000)]
    time.sleep(0.3)  # the scan waits for the model, polling for signals: exit now
    """
)


def test_a_host_exiting_while_the_scheduler_scans_exits_silently(env: Env) -> None:
    import json

    env.seed()
    cfg = env.config(runner=env.slow_runner(120))
    # The exit races the daemon thread's next poll: three runs (each showed the panic before the fix).
    for run in range(3):
        # A state file per run: an interrupted scan delays the next scheduled one by a minute.
        cfg["state"] = {"path": str(env.root / f"state-{run}.db")}
        host = subprocess.run(
            [sys.executable, "-c", HOST, json.dumps(cfg)],
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert host.stdout.strip() == "scanning", (run, host.stdout, host.stderr)
        assert host.returncode == 0, (run, host.stderr)
        assert "panicked" not in host.stderr and "not initialized" not in host.stderr, (
            run,
            host.stderr,
        )
        # The model process does not outlive the host (parent-death signal).
        wait_until(
            lambda: not processes_mentioning(str(env.root / "runner-slow.sh")),
            "the runner to exit",
            30,
        )
