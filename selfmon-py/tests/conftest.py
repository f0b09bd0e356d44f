"""Shared fixtures: a generated CIDX logs.db, a configuration around it, process inspection."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

import pytest

import selfmon

FIXTURES = Path(__file__).parent / "fixtures"

LOGS_DDL = """CREATE TABLE IF NOT EXISTS logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    timestamp TEXT NOT NULL,
    level TEXT NOT NULL,
    source TEXT,
    message TEXT,
    correlation_id TEXT,
    user_id TEXT,
    request_path TEXT,
    extra_data TEXT,
    alias TEXT,
    node_id TEXT,
    created_at TEXT
)"""

# Three problems the offline runner files (a coded error, a traceback, a CRITICAL) and noise.
SEED = [
    ("ERROR", "cidx.git", "[GIT-SYNC-001] git fetch failed for /srv/golden/alpha: exit status 128"),
    ("ERROR", "cidx.api", 'Traceback (most recent call last):\n  File "api.py", line 3\nValueError: bad ref'),
    ("CRITICAL", "cidx.db", "[DB-LOCK-003] database is locked after 5 retries"),
    ("INFO", "cidx.http", "GET /health 200 in 3ms"),
]


_SQL = r"""
import json, sqlite3, sys
path, query, params = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
con = sqlite3.connect(path)
con.row_factory = sqlite3.Row
try:
    rows = [dict(r) for r in con.execute(query, params)]
    con.commit()
finally:
    con.close()
print(json.dumps(rows))
"""


def sql(path: Path, query: str, params: Sequence[Any] = ()) -> List[Dict[str, Any]]:
    """Runs one statement on a SQLite file in a separate process; its rows as dicts.

    Never in this process: the selfmon module links its own SQLite, and two SQLite libraries in
    one process drop each other's POSIX locks (sqlite.org/howtocorrupt.html, section 2.2.1) — CI
    saw a SIGBUS when the test read the state file with Python's sqlite3 during a scan.
    """
    out = subprocess.run(
        [sys.executable, "-c", _SQL, str(path), query, json.dumps(list(params))],
        check=True,
        capture_output=True,
        text=True,
    )
    rows: List[Dict[str, Any]] = json.loads(out.stdout)
    return rows


class Env:
    """A temporary server: logs.db, selfmon's state file, a dry-run issues folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.logs = root / "logs.db"
        self.state = root / "state.db"
        self.issues = root / "issues"
        sql(self.logs, LOGS_DDL)

    def log(self, level: str, source: str, message: str) -> None:
        sql(
            self.logs,
            "INSERT INTO logs (timestamp, level, source, message) VALUES (datetime('now'), ?, ?, ?)",
            (level, source, message),
        )

    def seed(self) -> None:
        for level, source, message in SEED:
            self.log(level, source, message)

    def config(self, **overrides: Any) -> Dict[str, Any]:
        cfg: Dict[str, Any] = {
            "enabled": True,
            "max_new_issues_per_scan": 20,
            "logs": {"path": str(self.logs)},
            "state": {"path": str(self.state)},
            "runner": {"kind": "offline"},
            "tracker": {"kind": "dry-run", "dir": str(self.issues)},
        }
        cfg.update(overrides)
        return cfg

    def slow_runner(self, secs: int = 30) -> Dict[str, Any]:
        """A copy of the slow fixture runner under this env's folder, so its processes are ours."""
        # The runner passes the child a scrubbed environment, so the delay goes into the script.
        binary = self.root / "runner-slow.sh"
        text = (FIXTURES / "runner-slow.sh").read_text()
        binary.write_text(text.replace("${SELFMON_TEST_SLOW_SECS:-30}", str(secs)))
        binary.chmod(0o755)
        return {"kind": "claude", "binary": str(binary), "timeout_secs": 600}

    def issue_files(self) -> List[Path]:
        return sorted(self.issues.glob("*.md")) if self.issues.is_dir() else []

    def scan_statuses(self) -> List[str]:
        return [r["status"] for r in sql(self.state, "SELECT status FROM self_monitoring_scans")]


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)


def processes_mentioning(text: str) -> List[int]:
    """Pids of live processes whose command line contains ``text`` (zombies excluded)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            status = (entry / "stat").read_text()
        except OSError:
            continue
        state = status.rsplit(")", 1)[-1].split()[0] if ")" in status else "?"
        if text in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def wait_until(cond: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Background:
    """Runs a callable in a thread, keeping its result or exception."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.result: Any = None
        self.error: Optional[BaseException] = None
        self.thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self.thread.start()

    def _run(self, fn: Callable[[], Any]) -> None:
        try:
            self.result = fn()
        except BaseException as e:
            self.error = e

    def join(self, timeout: float = 60.0) -> "Background":
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "background call did not finish"
        return self


@pytest.fixture
def background() -> Iterator[Callable[[Callable[[], Any]], Background]]:
    started: List[Background] = []

    def start(fn: Callable[[], Any]) -> Background:
        b = Background(fn)
        started.append(b)
        return b

    yield start
    for b in started:
        b.thread.join(60)
