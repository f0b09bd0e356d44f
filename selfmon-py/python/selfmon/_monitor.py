"""``SelfMonitor``: the scan engine, its schedule and its history, for a Python host."""

from __future__ import annotations

import json
import os
import queue
import threading
from datetime import datetime, timezone
from typing import Any, Callable, Dict, Iterator, Mapping, Optional, Union

from . import _selfmon
from ._types import History, MonitorState, ScanEvent, ScanReport

__all__ = ["ScanIterator", "Scheduler", "SelfMonitor"]

PathLike = Union[str, "os.PathLike[str]"]


def _aware(now: Optional[datetime]) -> datetime:
    if now is None:
        return datetime.now(timezone.utc)
    if now.tzinfo is None:
        raise ValueError("pass an aware datetime (e.g. datetime.now(timezone.utc)), not a naive one")
    return now


def _parse_time(text: Optional[str]) -> Optional[datetime]:
    if text is None:
        return None
    return datetime.fromisoformat(text)


# One entry per scan running on a non-daemon thread, so that interpreter shutdown can cancel it.
_joined_scans: "list[SelfMonitor]" = []
_exit_lock = threading.Lock()


def _cancel_scans_at_exit() -> None:
    """Cancels every scan still running on a thread the interpreter's shutdown joins.

    A scan on a worker thread (a thread pool, a web framework's handler) does not see Ctrl-C,
    which only the main thread receives; without this, the shutdown would join that thread and
    wait for the model until the runner's timeout. Daemon threads (the built-in scheduler's) are
    not joined: their scans stop when the interpreter finalizes.
    """
    with _exit_lock:
        monitors = list(_joined_scans)
    for monitor in monitors:
        try:
            monitor._native.cancel()
        except Exception:  # a monitor inherited over fork() refuses; nothing of ours runs there
            pass


def _scan_starts(monitor: "SelfMonitor") -> bool:
    """Registers a scan of ``monitor`` on this thread for :func:`_cancel_scans_at_exit` when the
    shutdown would join this thread; returns whether it did (then :func:`_scan_ends` must follow).

    ``threading``'s exit hooks run before the non-daemon threads are joined, newest first, and a
    thread pool (``concurrent.futures``) joins its workers from such a hook: so the hook is
    registered again whenever another was registered after it, to run before the pool's.
    """
    if threading.current_thread().daemon:
        return False
    with _exit_lock:
        _joined_scans.append(monitor)
        hooks = getattr(threading, "_threading_atexits", None)
        register = getattr(threading, "_register_atexit", None)
        if register is None or hooks is None:  # not CPython >= 3.9: at least the atexit module
            import atexit

            atexit.unregister(_cancel_scans_at_exit)
            atexit.register(_cancel_scans_at_exit)
        elif not hooks or hooks[-1] is not _cancel_scans_at_exit:
            try:
                register(_cancel_scans_at_exit)
            except RuntimeError:  # the interpreter is already shutting down
                pass
    return True


def _scan_ends(monitor: "SelfMonitor") -> None:
    with _exit_lock:
        _joined_scans.remove(monitor)


class SelfMonitor:
    """The selfmon engine embedded in this process.

    Build it with :meth:`from_config`. Every method is thread-safe; :meth:`scan` releases the GIL
    for the whole scan, so the host's other threads keep running.

    A monitor belongs to the process that created it: in a child forked after its creation
    (multiprocessing, gunicorn --preload, celery prefork) every method raises
    :class:`selfmon.Error` with ``kind == "forked"`` (``cancel`` returns False) — its SQLite
    connection must not cross ``fork()`` and its runtime threads do not exist there. Create the
    monitor in the child.
    """

    __slots__ = ("_native", "_scheduler", "_lock")

    def __init__(self, native: "_selfmon._Monitor") -> None:
        """Use :meth:`from_config`."""
        self._native = native
        self._scheduler: Optional[Scheduler] = None
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config: Union[PathLike, Mapping[str, Any]]) -> "SelfMonitor":
        """Builds a monitor from the configuration the ``selfmon`` CLI reads.

        ``config`` is the path of the JSON file (``//`` comment lines allowed; relative paths are
        relative to its folder) or the same document as a dict (relative paths are relative to the
        current directory). Sections: the monitoring settings at the top level, ``logs``,
        ``state``, ``runner`` (``offline`` or ``claude``) and ``tracker`` (``folder``: issues
        as Markdown files in a local folder, not a preview; or ``github``). Secrets come from
        the environment variables the configuration names.

        Raises :class:`selfmon.ConfigError` with ``.problems`` (every problem, each with its
        ``field`` path) when the configuration is invalid.
        """
        if isinstance(config, Mapping):
            try:
                text = json.dumps(config)
            except (TypeError, ValueError) as e:
                err = _selfmon.ConfigError(f"the configuration is not JSON-serialisable: {e}")
                err.kind = "config"
                err.retryable = False
                err.chain = [str(err)]
                err.problems = [{"field": "<root>", "reason": str(e)}]
                raise err from e
            return cls(_selfmon._Monitor.from_json(text))
        return cls(_selfmon._Monitor.from_path(os.fspath(config)))

    def scan(
        self,
        dry_run: bool = False,
        trigger: str = "manual",
        on_event: Optional[Callable[[ScanEvent], Any]] = None,
    ) -> ScanReport:
        """Runs one scan and returns its report, releasing the GIL throughout.

        ``dry_run=True`` files nothing (the report says what would have been filed).
        ``trigger`` is ``"manual"`` or ``"scheduled"``. ``on_event`` is called in this thread with
        each :class:`ScanEvent`; if it raises, the scan is cancelled and the exception propagates.

        :meth:`cancel` (from any thread) ends the scan with :class:`selfmon.CancelledError`;
        Ctrl-C ends it and raises ``KeyboardInterrupt`` when this is the main thread (Python
        delivers signals only there). A scan on another thread (a thread pool) is cancelled when
        the interpreter shuts down (after Ctrl-C in the main thread, or a normal exit), before the
        worker threads are joined, so the host does not wait for the model. Another scan holding
        the lease raises :class:`selfmon.LeaseHeldError`.
        """
        callback = None
        if on_event is not None:
            user = on_event

            def callback(text: str) -> None:
                user(ScanEvent(json.loads(text)))

        joined = _scan_starts(self)
        try:
            return ScanReport(json.loads(self._native.scan(bool(dry_run), trigger, callback)))
        finally:
            if joined:
                _scan_ends(self)

    def iter_scan(self, dry_run: bool = False, trigger: str = "manual") -> "ScanIterator":
        """Starts a scan in a background thread and returns an iterator of its events.

        Iterate to receive each :class:`ScanEvent`; afterwards ``.report`` is the
        :class:`ScanReport` (or iteration raised the scan's error). Leaving the loop early or
        Ctrl-C cancels the scan.
        """
        return ScanIterator(self, bool(dry_run), trigger)

    def cancel(self) -> bool:
        """Asks every scan this object is running to stop; returns whether one was running.

        Safe from any thread. The scan ends with :class:`selfmon.CancelledError`.
        """
        return bool(self._native.cancel())

    def next_scan_at(self, now: Optional[datetime] = None) -> Optional[datetime]:
        """When the next scheduled scan is due (aware UTC), or ``None`` when disabled.

        The latest scan's start plus ``cadence_minutes``; ``now`` when no scan ever ran. Dry runs
        do not count (unless ``dry_run`` is configured); after a failed scan the next is due one
        minute after it ended, doubling with each failure in a row up to ``cadence_minutes``.
        """
        return _parse_time(self._native.next_scan_at(_aware(now).isoformat()))

    def is_due(self, now: Optional[datetime] = None) -> bool:
        """Whether a scheduled scan is due at ``now`` (default: the current time)."""
        now = _aware(now)
        due = self.next_scan_at(now)
        return due is not None and due <= now

    def state(self) -> MonitorState:
        """Idle or running (here or in another process), the last scan, and the schedule."""
        raw: Dict[str, Any] = json.loads(self._native.state_json())
        nxt = self._native.next_scan_at(datetime.now(timezone.utc).isoformat())
        raw["next_scan_at"] = nxt
        return MonitorState(raw)

    def history(self, scans: int = 20, issues: int = 20, page: int = 0) -> History:
        """One page of scans and of filed issues, newest first, with their totals.

        ``scans`` and ``issues`` are the page sizes (at most 500 each); ``page`` counts from 0.
        ``History.to_dict()`` is what ``selfmon history --json`` prints.
        """
        for name, value in (("scans", scans), ("issues", issues), ("page", page)):
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative int, not {value!r}")
        raw = json.loads(self._native.history_json(scans, issues, page))
        return History(raw, page, scans, issues)

    def scan_report(self, scan_id: str) -> Optional[ScanReport]:
        """The stored report of one scan: every signature's fate, every finding's outcome with
        its reason, rejections, deferrals, the digest as sent (``.to_dict()`` is what
        ``selfmon history show SCAN_ID --json`` prints); ``None`` when there is no such scan."""
        if not isinstance(scan_id, str) or not scan_id:
            raise ValueError(f"scan_id must be a non-empty str, not {scan_id!r}")
        raw = self._native.scan_report_json(scan_id)
        return None if raw is None else ScanReport(json.loads(raw))

    @property
    def config(self) -> Dict[str, Any]:
        """The monitoring settings in effect (a copy)."""
        result: Dict[str, Any] = json.loads(self._native.config_json())
        return result

    def start_scheduler(self, poll_seconds: float = 30.0) -> "Scheduler":
        """Starts the built-in scheduler: a daemon thread that runs a scheduled scan whenever
        :meth:`is_due`, for hosts without a job queue of their own. Idempotent."""
        with self._lock:
            if self._scheduler is None or not self._scheduler.is_alive():
                self._scheduler = Scheduler(self, poll_seconds)
                self._scheduler.start()
            return self._scheduler

    def stop_scheduler(self, timeout: Optional[float] = None) -> None:
        """Stops the built-in scheduler, cancelling a scan it is running, and waits for it."""
        with self._lock:
            scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            scheduler.stop(timeout)

    def close(self) -> None:
        """Stops the scheduler and cancels running scans. The object stays usable."""
        self.stop_scheduler()
        self.cancel()

    def __enter__(self) -> "SelfMonitor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        try:
            state = self._native.state_json()
        except _selfmon.Error as e:  # e.g. in a forked child
            return f"<selfmon.SelfMonitor unusable here: {e}>"
        return f"<selfmon.SelfMonitor state={state!r}>"


_DONE = object()


class ScanIterator(Iterator[ScanEvent]):
    """The events of a scan running in a background thread (see ``SelfMonitor.iter_scan``)."""

    def __init__(self, monitor: SelfMonitor, dry_run: bool, trigger: str) -> None:
        self._monitor = monitor
        self._events: "queue.Queue[Any]" = queue.Queue()
        self.report: Optional[ScanReport] = None
        """The report, once iteration finished."""
        self._error: Optional[BaseException] = None
        self._finished = False
        self._thread = threading.Thread(
            target=self._run, args=(dry_run, trigger), name="selfmon-scan", daemon=True
        )
        self._thread.start()

    def _run(self, dry_run: bool, trigger: str) -> None:
        try:
            self.report = self._monitor.scan(dry_run, trigger, on_event=self._events.put)
        except BaseException as e:  # handed to the iterating thread
            self._error = e
        finally:
            self._events.put(_DONE)

    def __iter__(self) -> "ScanIterator":
        return self

    def __next__(self) -> ScanEvent:
        if self._finished:
            raise StopIteration
        try:
            # A timeout keeps the wait interruptible by Ctrl-C on every Python version.
            while True:
                try:
                    item = self._events.get(timeout=0.2)
                    break
                except queue.Empty:
                    continue
        except BaseException:
            self.close()
            raise
        if item is _DONE:
            self._finished = True
            self._thread.join()
            if self._error is not None:
                raise self._error
            raise StopIteration
        event: ScanEvent = item
        return event

    def close(self) -> None:
        """Cancels the scan if it still runs and waits for it to stop."""
        if not self._finished:
            self._monitor.cancel()
            self._thread.join()
            self._finished = True

    def __del__(self) -> None:
        if not getattr(self, "_finished", True):
            self._monitor.cancel()


class Scheduler(threading.Thread):
    """The built-in scheduler thread (see ``SelfMonitor.start_scheduler``).

    ``last_error`` holds the exception of the latest failed scheduled scan, if any;
    ``scans_run`` counts the scans it started.
    """

    def __init__(self, monitor: SelfMonitor, poll_seconds: float) -> None:
        super().__init__(name="selfmon-scheduler", daemon=True)
        if poll_seconds <= 0:
            raise ValueError("poll_seconds must be positive")
        self._monitor = monitor
        self._poll = poll_seconds
        self._stop_event = threading.Event()
        self.last_error: Optional[BaseException] = None
        self.scans_run = 0
        self._scanning = False

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                if self._monitor.is_due():
                    self.scans_run += 1
                    self._scanning = True
                    try:
                        self._monitor.scan(trigger="scheduled")
                    finally:
                        self._scanning = False
                    self.last_error = None
            except _selfmon.LeaseHeldError:
                pass  # another process is scanning; try again next poll
            except Exception as e:  # kept for the host to inspect; the loop goes on
                self.last_error = e
            self._stop_event.wait(self._poll)

    def stop(self, timeout: Optional[float] = None) -> None:
        """Stops after the current poll, cancelling a running scheduled scan."""
        self._stop_event.set()
        if self._scanning:
            self._monitor.cancel()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)
