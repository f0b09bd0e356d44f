"""Type stubs of the native module ``selfmon._selfmon`` (use the ``selfmon`` package instead)."""

from typing import Any, Callable, Dict, List, Optional

__version__: str

class Error(Exception):
    """Base class of every selfmon exception."""

    kind: str
    """What happened: ``config``, ``parse``, ``lease_held``, ``adapter``, ``invalid_analysis``,
    ``cancelled``, ``panic``, ..."""
    retryable: bool
    """Whether the same call may succeed later."""
    chain: List[str]
    """The error's message and each cause's, outermost first."""

class ConfigError(Error):
    """The configuration is invalid."""

    problems: List[Dict[str, str]]
    """Every problem: ``{"field": "tracker.dir", "reason": "must not be empty"}``."""

class LeaseHeldError(Error):
    """Another scan holds the single-flight lease; retry later."""

    owner: str
    holder: str
    """Who holds it, for people: ``"pid 42 on host-a"``."""
    since: str
    expires_at: str

class LogSourceError(Error):
    """The log source (logs.db) failed."""

class RunnerError(Error):
    """The analysis runner failed or returned nothing usable."""

class TrackerError(Error):
    """The issue tracker failed."""

class StateError(Error):
    """selfmon's state store failed."""

class CancelledError(Error):
    """The scan was cancelled."""

class InternalError(Error):
    """A bug in selfmon (a Rust panic)."""

class _Monitor:
    @staticmethod
    def from_path(path: str) -> "_Monitor": ...
    @staticmethod
    def from_json(text: str) -> "_Monitor": ...
    def scan(
        self, dry_run: bool, trigger: str, on_event: Optional[Callable[[str], Any]] = None
    ) -> str: ...
    def cancel(self) -> bool: ...
    def is_scanning(self) -> bool: ...
    def next_scan_at(self, now: str) -> Optional[str]: ...
    def state_json(self) -> str: ...
    def history_json(self, scans: int, issues: int, page: int) -> str: ...
    def scan_report_json(self, scan_id: str) -> Optional[str]: ...
    def config_json(self) -> str: ...

class _LogWriter:
    def __init__(
        self,
        path: str,
        queue_capacity: int,
        batch_size: int,
        flush_interval_ms: int,
        error_wait_ms: int,
    ) -> None: ...
    def write(
        self,
        levelno: int,
        source: str,
        message: str,
        created: float,
        correlation_id: Optional[str] = None,
        user_id: Optional[str] = None,
        request_path: Optional[str] = None,
        extra_json: Optional[str] = None,
    ) -> bool: ...
    def flush(self, timeout: float) -> bool: ...
    def stats_json(self) -> str: ...
    def close(self) -> Optional[str]: ...
    def suspend_for_fork(self) -> None: ...
    def resume_after_fork(self) -> bool: ...
