"""selfmon for Python hosts: self-triage for servers, embedded in-process.

selfmon reads the log records your server wrote since the last scan, works out what is actually
wrong, and files actionable, non-duplicate issues, keeping a history of every scan and issue.

- :class:`SelfMonitor` runs scans (``scan``, ``iter_scan``, ``cancel``), tells a host's own queue
  when one is due (``next_scan_at``, ``is_due``, ``state``) or schedules them itself
  (``start_scheduler``), and reads the history (``history``).
- :class:`LogHandler` writes Python ``logging`` records into a CIDX ``logs.db``.
- Every error is a :class:`selfmon.Error` with ``.kind``, ``.retryable`` and ``.chain``.

Example::

    import selfmon
    monitor = selfmon.SelfMonitor.from_config("selfmon.json")
    report = monitor.scan(dry_run=True)
    print(report.record.issues_created, [i.url for i in report.filed])
"""

from ._selfmon import (
    CancelledError,
    ConfigError,
    Error,
    InternalError,
    LeaseHeldError,
    LogSourceError,
    RunnerError,
    StateError,
    TrackerError,
    __version__,
)
from ._handler import LogHandler
from ._monitor import ScanIterator, Scheduler, SelfMonitor
from ._types import (
    DuplicateCounts,
    FiledIssue,
    FindingOutcome,
    History,
    IssueRef,
    MonitorState,
    Page,
    RejectedFinding,
    ScanEvent,
    ScanRecord,
    ScanReport,
)

__all__ = [
    "CancelledError",
    "ConfigError",
    "DuplicateCounts",
    "Error",
    "FiledIssue",
    "FindingOutcome",
    "History",
    "InternalError",
    "IssueRef",
    "LeaseHeldError",
    "LogHandler",
    "LogSourceError",
    "MonitorState",
    "Page",
    "RejectedFinding",
    "RunnerError",
    "ScanEvent",
    "ScanIterator",
    "ScanRecord",
    "ScanReport",
    "Scheduler",
    "SelfMonitor",
    "StateError",
    "TrackerError",
    "__version__",
]
