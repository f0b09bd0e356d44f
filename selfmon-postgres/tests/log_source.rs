//! PgLogSource against a real PostgreSQL server.

mod support;

use selfmon_core::{Level, LogRecord, LogSource, NumericLevels};
use selfmon_postgres::{Error, PgLogSource, PgLogSourceOptions};
use support::{insert, test_db};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_log_source_passes_the_core_conformance_suite() {
    let Some(db) = test_db().await else { return };
    db.create_logs().await;
    let records = selfmon_core::conformance::sample_records();
    let ids = insert(&db.client, &records, "node-a").await;
    assert_eq!(ids, (1..=12).collect::<Vec<i64>>());
    let source = PgLogSource::connect(db.url.clone(), db.log_options())
        .await
        .expect("connect");
    selfmon_core::conformance::log_source(&source, &records, Level::Warning).await;
    let all = PgLogSource::connect(
        db.url.clone(),
        PgLogSourceOptions {
            min_level: Level::Debug,
            ..db.log_options()
        },
    )
    .await
    .expect("connect");
    selfmon_core::conformance::log_source(&all, &records, Level::Debug).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_committed_after_a_later_id_is_read_once_not_skipped() {
    let Some(db) = test_db().await else { return };
    db.create_logs().await;
    insert(&db.client, &[LogRecord::new(0, Level::Error, "first")], "a").await;
    // The scheduler's source has looked at the table before (every read and connect observes).
    let source = PgLogSource::connect(db.url.clone(), db.log_options())
        .await
        .expect("connect");

    // Node b takes id 2 in a transaction it keeps open; node c commits id 3.
    let mut slow = db.connect().await;
    let tx = slow.transaction().await.expect("begin");
    let held = insert(&tx, &[LogRecord::new(0, Level::Error, "late")], "b").await;
    let fast = db.connect().await;
    let committed = insert(&fast, &[LogRecord::new(0, Level::Error, "early")], "c").await;
    assert_eq!((held[0], committed[0]), (2, 3));

    // A scan while id 2 is in flight must not move the cursor past it.
    let page = source.read_after(0, 100).await.expect("read during");
    let ids: Vec<i64> = page.records.iter().map(|r| r.id).collect();
    assert_eq!(ids, [1], "only what is below the in-flight id is read");
    assert_eq!(
        page.scanned_through, 1,
        "the cursor stops below the in-flight id"
    );
    let cursor = page.scanned_through;

    tx.commit().await.expect("commit late");
    let page = source.read_after(cursor, 100).await.expect("read after");
    let ids: Vec<i64> = page.records.iter().map(|r| r.id).collect();
    assert_eq!(ids, [2, 3], "the late record is read, once, with the rest");
    assert_eq!(page.records[0].node_id.as_deref(), Some("b"));
    assert_eq!(page.scanned_through, 3);
    let again = source.read_after(3, 100).await.expect("read past");
    assert!(again.records.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_source_reads_nothing_past_an_open_writer_until_it_commits() {
    let Some(db) = test_db().await else { return };
    db.create_logs().await;
    let mut slow = db.connect().await;
    let tx = slow.transaction().await.expect("begin");
    insert(&tx, &[LogRecord::new(0, Level::Error, "late")], "b").await;
    insert(&db.client, &[LogRecord::new(0, Level::Error, "early")], "c").await;
    let source = PgLogSource::connect(db.url.clone(), db.log_options())
        .await
        .expect("connect");
    let page = source.read_after(0, 100).await.expect("read during");
    assert!(page.records.is_empty(), "nothing is proven final yet");
    assert_eq!(page.scanned_through, 0, "the cursor does not move");
    tx.commit().await.expect("commit");
    let page = source.read_after(0, 100).await.expect("read after");
    let ids: Vec<i64> = page.records.iter().map(|r| r.id).collect();
    assert_eq!(ids, [1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_back_insert_leaves_a_gap_the_cursor_passes() {
    let Some(db) = test_db().await else { return };
    db.create_logs().await;
    let source = PgLogSource::connect(db.url.clone(), db.log_options())
        .await
        .expect("connect");
    insert(&db.client, &[LogRecord::new(0, Level::Error, "kept")], "a").await;
    let mut c = db.connect().await;
    let tx = c.transaction().await.expect("begin");
    insert(&tx, &[LogRecord::new(0, Level::Error, "gone")], "a").await;
    tx.rollback().await.expect("rollback");
    insert(&db.client, &[LogRecord::new(0, Level::Error, "kept")], "a").await;
    let page = source.read_after(0, 100).await.expect("read");
    let ids: Vec<i64> = page.records.iter().map(|r| r.id).collect();
    assert_eq!(ids, [1, 3]);
    assert_eq!(page.scanned_through, 3);
    assert_eq!(
        page.missing_before_first, 0,
        "a rollback gap is not retention"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trailing_rolled_back_ids_never_put_the_cursor_past_max_id() {
    let Some(db) = test_db().await else { return };
    db.create_logs().await;
    let source = PgLogSource::connect(db.url.clone(), db.log_options())
        .await
        .expect("connect");
    insert(&db.client, &[LogRecord::new(0, Level::Error, "kept")], "a").await;
    let mut c = db.connect().await;
    let tx = c.transaction().await.expect("begin");
    insert(&tx, &[LogRecord::new(0, Level::Error, "gone")], "a").await;
    tx.rollback().await.expect("rollback");
    let page = source.read_after(0, 100).await.expect("read");
    assert_eq!(page.scanned_through, 1);
    assert_eq!(source.max_id().await.expect("max"), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_deleted_by_retention_are_reported_as_a_gap() {
    let Some(db) = test_db().await else { return };
    db.create_logs().await;
    let recs: Vec<LogRecord> = (0..5)
        .map(|_| LogRecord::new(0, Level::Error, "x"))
        .collect();
    insert(&db.client, &recs, "a").await;
    db.client
        .batch_execute("DELETE FROM logs WHERE id <= 3")
        .await
        .expect("retention");
    let source = PgLogSource::connect(db.url.clone(), db.log_options())
        .await
        .expect("connect");
    let page = source.read_after(1, 100).await.expect("read");
    assert_eq!(page.missing_before_first, 2);
    assert_eq!(page.records.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_without_optional_columns_and_with_odd_values_is_read() {
    let Some(db) = test_db().await else { return };
    db.client
        .batch_execute(
            "CREATE TABLE logs (id BIGSERIAL PRIMARY KEY, level TEXT, message TEXT, extra_data JSONB);
             INSERT INTO logs (level, message, extra_data) VALUES
               ('LOUD', 'odd level', '{\"k\": 1}'), (NULL, 'no level', NULL), ('warn', 'alias', '[1]');",
        )
        .await
        .expect("seed");
    let source = PgLogSource::connect(db.url.clone(), db.log_options())
        .await
        .expect("connect");
    let page = source.read_after(0, 100).await.expect("read");
    assert_eq!(page.records.len(), 3);
    assert_eq!(page.records[0].level, Level::Error);
    assert_eq!(
        page.records[0].extra_data,
        serde_json::json!({"k": 1, "_original_level": "LOUD"})
    );
    assert_eq!(page.records[1].level, Level::Error);
    assert_eq!(page.records[2].level, Level::Warning);
    assert_eq!(page.records[2].node_id, None);
    assert!(source.describe().location.contains("logs"));
    assert!(!source.describe().location.contains("password"));
}

/// Review4 F14: pino/bunyan write 30 for info; on Python's scale it was read as WARNING and
/// could be filed. With `numeric_levels: pino` numbers mean what pino means, in an INTEGER
/// column and a TEXT one, and the SQL filter agrees: a page of two rows is not used up by the
/// `30` (info) rows, it reaches the `40` (warn) after them. Python's scale is unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numeric_levels_are_read_and_filtered_on_the_configured_scale() {
    let Some(db) = test_db().await else { return };
    for (table, column) in [("logs_int", "INTEGER"), ("logs_text", "TEXT")] {
        db.client
            .batch_execute(&format!(
                "CREATE TABLE {table} (id BIGSERIAL PRIMARY KEY, level {column}, message TEXT);
                 INSERT INTO {table} (level, message) VALUES
                   ('30', 'info'), ('30', 'info again'), ('20', 'debug'), ('40', 'warn'),
                   ('50', 'error'), ('60', 'fatal'), ('55', 'between');"
            ))
            .await
            .expect("seed");
        for (scale, expected) in [
            (
                NumericLevels::Python,
                &[
                    ("info", Level::Warning),
                    ("info again", Level::Warning),
                    ("warn", Level::Error),
                    ("error", Level::Critical),
                    ("fatal", Level::Critical),
                    ("between", Level::Critical),
                ][..],
            ),
            (
                NumericLevels::Pino,
                &[
                    ("warn", Level::Warning),
                    ("error", Level::Error),
                    ("fatal", Level::Critical),
                    ("between", Level::Error),
                ][..],
            ),
        ] {
            let source = PgLogSource::connect(
                db.url.clone(),
                PgLogSourceOptions {
                    table: table.into(),
                    numeric_levels: scale,
                    ..db.log_options()
                },
            )
            .await
            .expect("connect");
            let page = source.read_after(0, 100).await.expect("read");
            let got: Vec<(&str, Level)> = page
                .records
                .iter()
                .map(|r| (r.message.as_str(), r.level))
                .collect();
            assert_eq!(got, expected, "{scale}, {column}");
            assert_eq!(page.scanned_through, 7, "{scale}, {column}");
            let first_two: Vec<String> = source
                .read_after(0, 2)
                .await
                .expect("read two")
                .records
                .into_iter()
                .map(|r| r.message)
                .collect();
            let expected_two: Vec<&str> = expected.iter().take(2).map(|(m, _)| *m).collect();
            assert_eq!(first_two, expected_two, "{scale}, {column}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_table_or_column_is_named_at_connect() {
    let Some(db) = test_db().await else { return };
    let err = PgLogSource::connect(db.url.clone(), db.log_options())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::MissingTable { .. }), "{err}");
    db.client
        .batch_execute("CREATE TABLE logs (id SERIAL PRIMARY KEY, msg TEXT)")
        .await
        .expect("create");
    let err = PgLogSource::connect(db.url.clone(), db.log_options())
        .await
        .unwrap_err();
    match err {
        Error::MissingColumns { missing, .. } => assert_eq!(missing, ["level", "message"]),
        other => panic!("expected MissingColumns, got {other}"),
    }
}

/// Review4 F7: ids read in pages after a cursor must not repeat (rows sharing an id at a page
/// boundary would be skipped): a table whose `id` neither comes from a sequence nor has a unique
/// index of its own is refused, saying what to do; a unique index makes it acceptable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_table_whose_id_may_repeat_is_refused_naming_the_fix() {
    let Some(db) = test_db().await else { return };
    db.client
        .batch_execute(
            "CREATE TABLE logs (id BIGINT NOT NULL, level TEXT, message TEXT, UNIQUE (id, level));
             CREATE UNIQUE INDEX logs_some_ids ON logs(id) WHERE level = 'ERROR'",
        )
        .await
        .expect("create");
    let err = PgLogSource::connect(db.url.clone(), db.log_options())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NonUniqueLogId { .. }), "{err:?}");
    assert!(!err.is_retryable());
    let text = err.to_string();
    assert!(
        text.contains("PRIMARY KEY")
            && text.contains("ADD CONSTRAINT \"logs_id_unique\" UNIQUE (id)")
            && text.contains("skipped"),
        "{text}"
    );
    db.client
        .batch_execute("CREATE UNIQUE INDEX logs_id ON logs(id)")
        .await
        .expect("index");
    PgLogSource::connect(db.url.clone(), db.log_options())
        .await
        .expect("a unique index on id alone is enough");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_connection_is_replaced_on_the_next_read() {
    let Some(db) = test_db().await else { return };
    db.create_logs().await;
    insert(&db.client, &[LogRecord::new(0, Level::Error, "x")], "a").await;
    let name = format!("reader-{}", db.schema);
    let source = PgLogSource::connect(db.url.with_application_name(&name), db.log_options())
        .await
        .expect("connect");
    let cut: i64 = db
        .client
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE application_name = $1",
            &[&name],
        )
        .await
        .expect("terminate")
        .get(0);
    assert_eq!(cut, 1);
    // Whatever the first call after the cut does, a retry succeeds.
    let first = source.read_after(0, 10).await;
    let page = match first {
        Ok(p) => p,
        Err(e) => {
            assert!(e.is_retryable(), "a cut connection is retryable: {e}");
            source
                .read_after(0, 10)
                .await
                .expect("second read reconnects")
        }
    };
    assert_eq!(page.records.len(), 1);
}

/// Writers on four connections commit and roll back small batches with pauses inside their
/// transactions while a reader pages through with a cursor: every committed record is read
/// exactly once, none that rolled back is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_and_a_paging_reader_see_every_committed_record_exactly_once() {
    let Some(db) = test_db().await else { return };
    db.create_logs().await;
    let source = PgLogSource::connect(
        db.url.clone(),
        PgLogSourceOptions {
            horizon_wait_ms: 5,
            ..db.log_options()
        },
    )
    .await
    .expect("connect");
    let mut writers = Vec::new();
    for w in 0..4u64 {
        let mut client = db.connect().await;
        writers.push(tokio::spawn(async move {
            let mut committed = Vec::new();
            let mut seed = w * 7919 + 13;
            for _ in 0..40 {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let rows = 1 + (seed >> 60) as usize % 3;
                let tx = client.transaction().await.expect("begin");
                let recs: Vec<LogRecord> = (0..rows)
                    .map(|_| LogRecord::new(0, Level::Error, "w"))
                    .collect();
                let ids = insert(&tx, &recs, &format!("node-{w}")).await;
                tokio::time::sleep(std::time::Duration::from_millis((seed >> 56) % 15)).await;
                if (seed >> 40) % 5 == 0 {
                    tx.rollback().await.expect("rollback");
                } else {
                    tx.commit().await.expect("commit");
                    committed.extend(ids);
                }
            }
            committed
        }));
    }
    let mut cursor = 0;
    let mut seen = Vec::new();
    let mut done = false;
    loop {
        let page = source.read_after(cursor, 7).await.expect("read");
        for r in &page.records {
            assert!(r.id > cursor);
            seen.push(r.id);
        }
        cursor = page.scanned_through.max(cursor);
        if done && page.records.is_empty() {
            break;
        }
        if writers.iter().all(|w| w.is_finished()) {
            done = true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    let mut committed = Vec::new();
    for w in writers {
        committed.extend(w.await.expect("writer"));
    }
    committed.sort_unstable();
    let mut sorted = seen.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), seen.len(), "a record was read twice");
    assert_eq!(
        sorted, committed,
        "every committed record is read, nothing else"
    );
}

/// Inserts one ERROR row into `table` (a table, a partition, a view) and returns its id.
async fn insert_into(
    client: &impl tokio_postgres::GenericClient,
    table: &str,
    message: &str,
    node: &str,
) -> i64 {
    let row = client
        .query_one(
            &format!(
                "INSERT INTO {table} (timestamp, level, message, node_id)
                 VALUES ('2026-12-07T12:00:00', 'ERROR', $1, $2) RETURNING id"
            ),
            &[&message, &node],
        )
        .await
        .expect("insert log row");
    i64::from(row.get::<_, i32>(0))
}

/// Ids read from `after` on: while a writer of `written` holds id 2 open and id 3 is committed,
/// only id 1 is read and the cursor stays below 2; once it commits, 2 and 3 are.
async fn an_out_of_order_commit_is_not_skipped(
    db: &support::TestDb,
    source: &PgLogSource,
    written: &str,
    direct: &str,
) {
    assert_eq!(insert_into(&db.client, written, "first", "a").await, 1);
    source.commit_horizon().await.expect("a look at the table");
    let mut slow = db.connect().await;
    let tx = slow.transaction().await.expect("begin");
    assert_eq!(insert_into(&tx, direct, "late", "b").await, 2);
    assert_eq!(insert_into(&db.client, written, "early", "c").await, 3);

    let page = source.read_after(0, 100).await.expect("read during");
    let ids: Vec<i64> = page.records.iter().map(|r| r.id).collect();
    assert_eq!(ids, [1], "only what is below the in-flight id is read");
    assert_eq!(page.scanned_through, 1, "the cursor stops below it");

    tx.commit().await.expect("commit late");
    let page = source.read_after(1, 100).await.expect("read after");
    let ids: Vec<i64> = page.records.iter().map(|r| r.id).collect();
    assert_eq!(ids, [2, 3], "the late record is read, once");
}

/// The cluster table partitioned by day, with two partitions.
const PARTITIONED_LOGS_DDL: &str = "CREATE TABLE logs (
    id SERIAL,
    timestamp TEXT NOT NULL,
    level TEXT NOT NULL,
    source TEXT,
    message TEXT,
    correlation_id TEXT,
    user_id TEXT,
    request_path TEXT,
    extra_data TEXT,
    node_id TEXT,
    day DATE NOT NULL DEFAULT DATE '2026-12-07',
    PRIMARY KEY (id, day)
) PARTITION BY RANGE (day);
CREATE TABLE logs_2026_12_06 PARTITION OF logs FOR VALUES FROM ('2026-12-06') TO ('2026-12-07');
CREATE TABLE logs_2026_12_07 PARTITION OF logs FOR VALUES FROM ('2026-12-07') TO ('2026-12-08');";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_log_table_is_read_in_commit_order_even_when_nodes_insert_into_a_partition() {
    let Some(db) = test_db().await else { return };
    db.client
        .batch_execute(PARTITIONED_LOGS_DDL)
        .await
        .expect("create partitioned logs");
    let source = PgLogSource::connect(db.url.clone(), db.log_options())
        .await
        .expect("a partitioned table is accepted");
    // A node writing straight into today's partition takes no write lock on the parent.
    an_out_of_order_commit_is_not_skipped(&db, &source, "logs", "logs_2026_12_07").await;

    db.client
        .batch_execute("TRUNCATE logs; ALTER SEQUENCE logs_id_seq RESTART")
        .await
        .expect("empty");
    let records = selfmon_core::conformance::sample_records();
    insert(&db.client, &records, "node-a").await;
    let fresh = PgLogSource::connect(db.url.clone(), db.log_options())
        .await
        .expect("connect");
    selfmon_core::conformance::log_source(&fresh, &records, Level::Warning).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_over_the_log_table_is_read_in_commit_order_of_the_table_underneath() {
    let Some(db) = test_db().await else { return };
    db.client
        .batch_execute(&format!(
            "{}; CREATE VIEW logs AS SELECT * FROM logs_base WHERE level <> 'TRACE'",
            selfmon_postgres::LOGS_TABLE_DDL.replace("EXISTS logs", "EXISTS logs_base")
        ))
        .await
        .expect("create view");
    let source = PgLogSource::connect(db.url.clone(), db.log_options())
        .await
        .expect("a view is accepted");
    assert!(
        source.describe().schema.starts_with("VIEW (over "),
        "{}",
        source.describe().schema
    );
    // Nodes write to the table; selfmon reads the view.
    an_out_of_order_commit_is_not_skipped(&db, &source, "logs_base", "logs_base").await;

    db.client
        .batch_execute("TRUNCATE logs_base; ALTER SEQUENCE logs_base_id_seq RESTART")
        .await
        .expect("empty");
    let records = selfmon_core::conformance::sample_records();
    insert(&db.client, &records, "node-a").await;
    let fresh = PgLogSource::connect(db.url.clone(), db.log_options())
        .await
        .expect("connect");
    selfmon_core::conformance::log_source(&fresh, &records, Level::Warning).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_over_tables_with_different_id_sequences_is_refused_saying_why() {
    let Some(db) = test_db().await else { return };
    db.client
        .batch_execute(&format!(
            "{}; {}; CREATE VIEW logs AS SELECT * FROM logs_a UNION ALL SELECT * FROM logs_b",
            selfmon_postgres::LOGS_TABLE_DDL.replace("EXISTS logs", "EXISTS logs_a"),
            selfmon_postgres::LOGS_TABLE_DDL.replace("EXISTS logs", "EXISTS logs_b"),
        ))
        .await
        .expect("create view");
    let err = PgLogSource::connect(db.url.clone(), db.log_options())
        .await
        .unwrap_err();
    match &err {
        Error::UnsupportedLogView { reason, .. } => {
            assert!(
                reason.contains("logs_a_id_seq") && reason.contains("logs_b_id_seq"),
                "{reason}"
            )
        }
        other => panic!("expected UnsupportedLogView, got {other}"),
    }
    assert!(
        err.to_string()
            .contains("point `table` at the log table itself"),
        "{err}"
    );
}
