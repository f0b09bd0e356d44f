"""`selfmon.LogHandler`: Python logging into a CIDX logs.db, nothing lost, read back by selfmon."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Iterator

import pytest

import selfmon
from conftest import Env, sql

THREADS = 8
PER_THREAD = 100_000


@pytest.fixture
def logger(request: pytest.FixtureRequest) -> Iterator[logging.Logger]:
    log = logging.getLogger(f"selfmon.test.{request.node.name}")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    yield log
    for h in list(log.handlers):
        log.removeHandler(h)
        h.close()


def test_eight_threads_logging_lose_no_record_and_the_log_source_reads_them_all(
    env: Env, logger: logging.Logger
) -> None:
    handler = selfmon.LogHandler(env.logs)
    logger.addHandler(handler)
    barrier = threading.Barrier(THREADS)

    def work(t: int) -> None:
        barrier.wait()
        for i in range(PER_THREAD):
            logger.info("worker %d handled item %d", t, i)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert handler.flush(timeout=120)
    stats = handler.stats()
    total = THREADS * PER_THREAD
    assert stats["dropped"] == 0 and stats["dropped_errors"] == 0, stats
    assert stats["written"] == total and stats["lost_after_write_failure"] == 0, stats
    handler.close()

    counts = sql(env.logs, "SELECT count(*) AS n, count(DISTINCT message) AS d FROM logs")[0]
    assert (counts["n"], counts["d"]) == (total, total)
    kinds = sql(env.logs, "SELECT DISTINCT level, source FROM logs")
    assert [(k["level"], k["source"]) for k in kinds] == [("INFO", logger.name)]

    # selfmon's own SQLite log source reads every one of them back.
    cfg = env.config()
    cfg["logs"] = {"path": str(env.logs), "min_level": "INFO"}
    cfg["max_records_per_scan"] = total
    report = selfmon.SelfMonitor.from_config(cfg).scan(dry_run=True)
    assert report.record.records_read == total
    assert report.record.log_id_end == total


def test_columns_codes_extras_and_tracebacks_land_where_cidx_expects(
    env: Env, logger: logging.Logger
) -> None:
    handler = selfmon.LogHandler(env.logs)
    logger.addHandler(handler)
    logger.warning("[GIT-SYNC-001] fetch failed", extra={"correlation_id": "c-1", "user_id": 42, "request_path": "/api/x", "repo": "alpha"})
    logger.error("no code here", extra={"error_code": "DB-LOCK-003"})
    try:
        raise ValueError("bad ref")
    except ValueError:
        logger.exception("sync crashed")
    logger.debug("debug is kept too")
    handler.close()
    rows = sql(env.logs, "SELECT * FROM logs ORDER BY id")
    assert [r["level"] for r in rows] == ["WARNING", "ERROR", "ERROR", "DEBUG"]
    first = rows[0]
    assert (first["correlation_id"], first["user_id"], first["request_path"]) == ("c-1", "42", "/api/x")
    assert json.loads(first["extra_data"]) == {"repo": "alpha", "error_code": "GIT-SYNC-001"}
    assert json.loads(rows[1]["extra_data"]) == {"error_code": "DB-LOCK-003"}
    assert "Traceback" in rows[2]["message"] and "ValueError: bad ref" in rows[2]["message"]
    assert first["timestamp"].endswith("Z") and first["source"] == logger.name


def test_records_logged_through_the_handler_are_triaged_by_a_scan(env: Env, logger: logging.Logger) -> None:
    handler = selfmon.LogHandler(env.logs)
    logger.addHandler(handler)
    logger.critical("[DB-LOCK-003] database is locked after 5 retries")
    handler.close()
    report = selfmon.SelfMonitor.from_config(env.config()).scan()
    assert report.record.issues_created == 1


def test_a_full_queue_counts_every_drop_and_reports_it_in_the_log(env: Env, logger: logging.Logger) -> None:
    # A queue of one and a writer that waits a long time between batches: most records drop.
    handler = selfmon.LogHandler(env.logs, queue_capacity=1, batch_size=1, flush_interval_seconds=5.0, error_wait_seconds=0.0)
    logger.addHandler(handler)
    for i in range(50):
        logger.info("record %d", i)
    logger.error("an error that finds the queue full")
    final = handler.stats()
    handler.close()
    final = handler.stats()
    assert final["enqueued"] + final["dropped"] + final["dropped_errors"] == 51, final
    assert final["dropped"] > 0, final
    notes = [r["message"] for r in sql(env.logs, "SELECT message FROM logs WHERE message LIKE '[SELFMON-QUEUE-001]%'")]
    assert notes, "the drop was not reported in the log"


def test_closing_twice_and_logging_after_close_are_harmless(env: Env, logger: logging.Logger) -> None:
    handler = selfmon.LogHandler(env.logs)
    logger.addHandler(handler)
    logger.info("before")
    handler.close()
    handler.close()
    logger.info("after close: ignored")
    assert handler.stats()["written"] == 1


def test_invalid_options_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        selfmon.LogHandler(tmp_path / "logs.db", queue_capacity=0)


def test_a_record_holding_a_non_utf8_file_name_is_written_not_dropped(env: Env, logger: logging.Logger) -> None:
    # Review M11: a lone surrogate (what os.listdir / sys.argv give for a non-UTF-8 name) raised
    # inside the writer; the ERROR record was lost and stats() counted nothing.
    import os
    name = os.fsdecode(b"report-\xe9t\xe9.csv")
    handler = selfmon.LogHandler(env.logs)
    logger.addHandler(handler)
    logger.error("cannot open %s: permission denied", name, extra={"path": name, "request_path": name})
    handler.close()
    stats = handler.stats()
    assert stats["written"] == 1 and stats["enqueued"] == 1, stats
    rows = sql(env.logs, "SELECT message, request_path, extra_data FROM logs")
    assert len(rows) == 1, rows
    assert rows[0]["message"] == "cannot open report-\ufffdt\ufffd.csv: permission denied", rows
    assert rows[0]["request_path"] == "report-\ufffdt\ufffd.csv", rows
    assert json.loads(rows[0]["extra_data"]) == {"path": "report-\ufffdt\ufffd.csv"}, rows
