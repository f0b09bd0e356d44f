"""``LogHandler``: Python ``logging`` records into a CIDX ``logs.db``, written from Rust."""

from __future__ import annotations

import json
import logging
import os
import weakref
from typing import Any, Dict, Optional, Union

from . import _selfmon

__all__ = ["LogHandler"]

# Attributes every LogRecord has; anything else came from ``extra=`` and goes to ``extra_data``.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}
_COLUMNS = ("correlation_id", "user_id", "request_path")

_handlers: "weakref.WeakSet[LogHandler]" = weakref.WeakSet()


def _reopen_after_fork() -> None:
    # The writer thread does not survive fork(), and a lock it held at the fork stays locked in
    # the child: give each handler a new writer (own thread, queue, connection) in the child. The
    # inherited one is dropped untouched: in a process other than its creator's, `_LogWriter`
    # never joins the parent's thread nor takes its locks (it leaks them instead).
    for handler in list(_handlers):
        handler._reopen()


def _suspend_before_fork() -> None:
    # No SQLite connection of the parent's may cross the fork (sqlite.org/howtocorrupt.html 2.6:
    # the child's new connection would share the inherited one's lock state), and no writer
    # thread may be inside SQLite (holding its global locks) at the fork: each writer finishes
    # its batch and closes its connection; records keep being queued.
    for handler in list(_handlers):
        writer = handler._writer
        if writer is not None:
            writer.suspend_for_fork()


def _resume_after_fork_in_parent() -> None:
    for handler in list(_handlers):
        writer = handler._writer
        if writer is not None:
            writer.resume_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_suspend_before_fork,
        after_in_parent=_resume_after_fork_in_parent,
        after_in_child=_reopen_after_fork,
    )


class LogHandler(logging.Handler):
    """A ``logging.Handler`` writing each record as a row of the CIDX ``logs`` table.

    Records are queued and written in batches by a background thread (one transaction per
    batch), so ``emit`` returns at once: the caller never waits for the disk. When the queue is
    full, records below ERROR are dropped at once and ERROR and above wait up to
    ``error_wait_seconds`` for room; every dropped record is counted in :meth:`stats`, and the
    writer adds a ``[SELFMON-QUEUE-001]`` record saying how many were lost to the log itself.

    Columns: ``timestamp`` (the record's creation time, UTC), ``level`` (DEBUG, INFO, WARNING,
    ERROR, CRITICAL), ``source`` (the logger name), ``message`` (the formatted record, with the
    traceback when there is one); ``correlation_id``, ``user_id`` and ``request_path`` from
    ``extra=``; every other ``extra=`` field in ``extra_data`` (JSON). A leading ``[CODE]`` in
    the message, or ``extra={"error_code": ...}``, becomes ``extra_data.error_code``.

    Thread-safe without the handler lock: threads logging at once do not wait for each other.
    Call :meth:`close` (``logging.shutdown`` does) to write what is queued.
    """

    def __init__(
        self,
        path: Union[str, "os.PathLike[str]"],
        level: Union[int, str] = logging.NOTSET,
        *,
        queue_capacity: int = 100_000,
        batch_size: int = 1_000,
        flush_interval_seconds: float = 0.2,
        error_wait_seconds: float = 1.0,
    ) -> None:
        super().__init__(level)
        for name, value in (("queue_capacity", queue_capacity), ("batch_size", batch_size)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, not {value!r}")
        if flush_interval_seconds < 0 or error_wait_seconds < 0:
            raise ValueError("flush_interval_seconds and error_wait_seconds must not be negative")
        self.path = os.fspath(path)
        self._options = (
            queue_capacity,
            batch_size,
            int(flush_interval_seconds * 1000),
            int(error_wait_seconds * 1000),
        )
        self._writer: Optional[_selfmon._LogWriter] = _selfmon._LogWriter(self.path, *self._options)
        self._final_stats: Optional[Dict[str, Any]] = None
        _handlers.add(self)

    def _reopen(self) -> None:
        if self._writer is not None:
            self._writer = _selfmon._LogWriter(self.path, *self._options)

    def handle(self, record: logging.LogRecord) -> Any:
        """Filters and emits ``record`` without taking the handler lock (the writer is
        thread-safe), so logging threads never queue behind each other here."""
        rv = self.filter(record)
        if isinstance(rv, logging.LogRecord):  # Python 3.12+: a filter may replace the record
            record = rv
        if rv:
            self.emit(record)
        return rv

    def emit(self, record: logging.LogRecord) -> None:
        """Queues ``record`` for writing (see the class docstring for what goes where)."""
        writer = self._writer
        if writer is None:
            return
        try:
            message = self.format(record)
            attrs = record.__dict__
            extra = None
            names = attrs.keys() - _STANDARD
            if names:
                fields = {k: attrs[k] for k in names if k not in _COLUMNS}
                if fields:
                    # ensure_ascii=False: a lone surrogate (a non-UTF-8 name) reaches the writer
                    # as text it replaces, not as a "\\udcxx" escape JSON parsers refuse.
                    extra = json.dumps(fields, default=repr, ensure_ascii=False)
            writer.write(
                record.levelno,
                record.name,
                message,
                record.created,
                _text(attrs.get("correlation_id")),
                _text(attrs.get("user_id")),
                _text(attrs.get("request_path")),
                extra,
            )
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def flush(self, timeout: float = 10.0) -> bool:  # type: ignore[override]
        """Waits until every record emitted so far is written (or ``timeout`` seconds pass);
        returns whether it got there."""
        writer = self._writer
        return True if writer is None else bool(writer.flush(timeout))

    def stats(self) -> Dict[str, Any]:
        """Counters: ``enqueued``, ``written``, ``dropped`` (below ERROR, queue full),
        ``dropped_errors`` (ERROR and above, after waiting), ``write_failures`` (batches given up
        on), ``lost_after_write_failure`` (records in them), ``last_error``, ``queued``."""
        writer = self._writer
        if writer is None:
            return dict(self._final_stats or {})
        result: Dict[str, Any] = json.loads(writer.stats_json())
        return result

    def close(self) -> None:
        """Writes what is queued, stops the writer thread and detaches from ``logging``."""
        writer, self._writer = self._writer, None
        if writer is not None:
            final = writer.close()
            if final is not None:
                self._final_stats = json.loads(final)
        _handlers.discard(self)
        super().close()

    def __repr__(self) -> str:
        return f"<selfmon.LogHandler {self.path!r} ({logging.getLevelName(self.level)})>"


def _text(value: Any) -> Optional[str]:
    return None if value is None else str(value)
