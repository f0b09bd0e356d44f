//! SqliteLogSource against real logs.db files in temp directories.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rusqlite::{params, Connection};
use selfmon_core::{Level, LogSource, NumericLevels};
use selfmon_sqlite::log_source::{ORIGINAL_LEVEL_KEY, RAW_EXTRA_KEY};
use selfmon_sqlite::{create_logs_table, Error, LogSourceOptions, SqliteLogSource};

fn new_logs_db(path: &Path) -> Connection {
    let conn = Connection::open(path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    create_logs_table(&conn).unwrap();
    conn
}

fn insert(conn: &Connection, level: &str, message: &str) -> i64 {
    conn.execute(
        "INSERT INTO logs (timestamp, level, source, message, extra_data) VALUES (?1, ?2, ?3, ?4, ?5)",
        params!["2025-01-01T00:00:00Z", level, "svc.module", message, None::<String>],
    )
    .unwrap();
    conn.last_insert_rowid()
}

fn open(path: &Path) -> SqliteLogSource {
    SqliteLogSource::open(path, LogSourceOptions::default()).unwrap()
}

#[tokio::test]
async fn reads_warning_and_above_after_the_cursor_in_id_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs.db");
    let conn = new_logs_db(&path);
    for (level, msg) in [
        ("INFO", "a"),
        ("WARNING", "b"),
        ("ERROR", "c"),
        ("debug", "d"),
        ("critical", "e"),
        ("Warn", "f"),
    ] {
        insert(&conn, level, msg);
    }
    let src = open(&path);
    let page = src.read_after(0, 100).await.unwrap();
    let got: Vec<(i64, Level, &str)> = page
        .records
        .iter()
        .map(|r| (r.id, r.level, r.message.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (2, Level::Warning, "b"),
            (3, Level::Error, "c"),
            (5, Level::Critical, "e"),
            (6, Level::Warning, "f")
        ]
    );
    assert_eq!(page.scanned_through, 6);
    assert_eq!(page.missing_before_first, 0);
    let after = src.read_after(3, 100).await.unwrap();
    assert_eq!(
        after.records.iter().map(|r| r.id).collect::<Vec<_>>(),
        [5, 6]
    );
}

#[tokio::test]
async fn levels_in_any_spelling_are_filtered_as_their_normal_form() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs.db");
    let conn = new_logs_db(&path);
    let levels = [
        "INFO", " info ", "Info", "DEBUG", " notice", "WARNING", " warning", "Warn", "ERR",
        "error ", "CRITICAL", "fatal", "INFO ",
    ];
    for (i, level) in levels.iter().enumerate() {
        insert(&conn, level, &i.to_string());
    }
    let page = open(&path).read_after(0, 100).await.unwrap();
    let got: Vec<&str> = page.records.iter().map(|r| r.message.as_str()).collect();
    // Everything at WARNING and above, however written; nothing below.
    assert_eq!(got, ["5", "6", "7", "8", "9", "10", "11"]);
    assert_eq!(page.scanned_through, levels.len() as i64);
}

#[tokio::test]
async fn python_numeric_one_letter_and_library_levels_are_filtered_as_their_level() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs.db");
    let conn = new_logs_db(&path);
    // A Python host that stores `levelno`, glog/Android letters, java.util.logging, logrus.
    let rows: [(rusqlite::types::Value, bool); 12] = [
        (20.into(), false),
        ("20".to_string().into(), false),
        (30.into(), true),
        (50.into(), true),
        ("I".to_string().into(), false),
        ("w".to_string().into(), true),
        ("E".to_string().into(), true),
        ("SEVERE".to_string().into(), true),
        ("verbose".to_string().into(), false),
        ("ERRO".to_string().into(), true),
        ("25".to_string().into(), true),
        ("OK".to_string().into(), true),
    ];
    for (i, (level, _)) in rows.iter().enumerate() {
        conn.execute(
            "INSERT INTO logs (timestamp, level, source, message) VALUES ('t', ?1, 's', ?2)",
            params![level, i.to_string()],
        )
        .unwrap();
    }
    let page = open(&path).read_after(0, 100).await.unwrap();
    let got: Vec<&str> = page.records.iter().map(|r| r.message.as_str()).collect();
    let expected: Vec<String> = rows
        .iter()
        .enumerate()
        .filter(|(_, (_, kept))| *kept)
        .map(|(i, _)| i.to_string())
        .collect();
    assert_eq!(
        got, expected,
        "INFO-level spellings are filtered out, unknown ones kept"
    );
    let levels: Vec<Level> = page.records.iter().map(|r| r.level).collect();
    assert_eq!(
        levels,
        [
            Level::Warning,
            Level::Critical,
            Level::Warning,
            Level::Error,
            Level::Error,
            Level::Error,
            Level::Error,
            Level::Error
        ],
        "30 is WARNING and 50 CRITICAL (Python); unknown levels (25, OK) are read as ERROR"
    );
}

#[tokio::test]
async fn scanned_through_counts_rows_the_level_filter_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs.db");
    let conn = new_logs_db(&path);
    insert(&conn, "ERROR", "x");
    for _ in 0..10 {
        insert(&conn, "INFO", "noise");
    }
    let page = open(&path).read_after(0, 100).await.unwrap();
    assert_eq!(page.records.len(), 1);
    assert_eq!(page.scanned_through, 11);
    let next = open(&path).read_after(11, 100).await.unwrap();
    assert!(next.records.is_empty());
    assert_eq!(
        next.scanned_through, 11,
        "nothing new: scanned_through equals the cursor"
    );
}

#[tokio::test]
async fn a_full_page_stops_at_its_last_record_and_limits_are_capped_by_page_size() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs.db");
    let conn = new_logs_db(&path);
    for i in 0..25 {
        insert(&conn, if i % 2 == 0 { "ERROR" } else { "INFO" }, "m");
    }
    let src = SqliteLogSource::open(
        &path,
        LogSourceOptions {
            page_size: 5,
            ..LogSourceOptions::default()
        },
    )
    .unwrap();
    let mut cursor = 0;
    let mut ids = Vec::new();
    loop {
        let page = src.read_after(cursor, 1_000).await.unwrap();
        assert!(page.records.len() <= 5, "page size bounds every page");
        ids.extend(page.records.iter().map(|r| r.id));
        if page.scanned_through == cursor {
            break;
        }
        cursor = page.scanned_through;
    }
    assert_eq!(ids, (1..=25).step_by(2).collect::<Vec<i64>>());
    assert_eq!(cursor, 25);
}

#[tokio::test]
async fn older_files_without_optional_columns_and_with_nulls_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs.db");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TABLE logs (id INTEGER PRIMARY KEY AUTOINCREMENT, timestamp TEXT NOT NULL,
         level TEXT NOT NULL, source TEXT, message TEXT, something_new BLOB);
         INSERT INTO logs (timestamp, level, source, message) VALUES ('t1', 'ERROR', NULL, NULL);
         INSERT INTO logs (timestamp, level, source, message) VALUES ('t2', 'ERROR', 'svc', 'boom');",
    )
    .unwrap();
    let page = open(&path).read_after(0, 10).await.unwrap();
    assert_eq!(page.records.len(), 2);
    let first = &page.records[0];
    assert_eq!(first.source, None);
    assert_eq!(first.message, "");
    assert_eq!(first.correlation_id, None);
    assert_eq!(first.extra_data, serde_json::Value::Null);
    assert_eq!(page.records[1].source.as_deref(), Some("svc"));
    assert_eq!(page.records[1].timestamp, "t2");
}

#[test]
fn a_missing_table_or_required_column_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let no_table = dir.path().join("empty.db");
    Connection::open(&no_table)
        .unwrap()
        .execute_batch("CREATE TABLE other (x)")
        .unwrap();
    let err = SqliteLogSource::open(&no_table, LogSourceOptions::default()).unwrap_err();
    assert!(
        matches!(&err, Error::MissingTable { table, .. } if table == "logs"),
        "{err}"
    );
    assert!(err.to_string().contains("`logs`"));

    let no_level = dir.path().join("nolevel.db");
    Connection::open(&no_level)
        .unwrap()
        .execute_batch("CREATE TABLE logs (id INTEGER PRIMARY KEY, timestamp TEXT)")
        .unwrap();
    let err = SqliteLogSource::open(&no_level, LogSourceOptions::default()).unwrap_err();
    match &err {
        Error::MissingColumns { missing, .. } => assert_eq!(missing, &["level", "message"]),
        other => panic!("unexpected {other}"),
    }
    let core = err.into_core(selfmon_core::Component::LogSource);
    assert!(!core.is_retryable());

    let err = SqliteLogSource::open(dir.path().join("absent.db"), LogSourceOptions::default())
        .unwrap_err();
    assert!(matches!(err, Error::Open { .. }), "{err}");

    let garbage = dir.path().join("garbage.db");
    std::fs::write(
        &garbage,
        b"this is not a database, not at all, not even close......",
    )
    .unwrap();
    assert!(SqliteLogSource::open(&garbage, LogSourceOptions::default()).is_err());
}

/// A logs.db whose pages were damaged after it was written (a disk fault, a bad copy): the read
/// fails with a typed, non-retryable error that says the file is damaged and how to check it, and
/// nothing panics.
#[tokio::test]
async fn a_logs_db_damaged_after_it_was_written_fails_the_read_saying_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs.db");
    {
        let conn = new_logs_db(&path);
        conn.pragma_update(None, "journal_mode", "DELETE").unwrap();
        let filler = "x".repeat(300);
        conn.execute_batch("BEGIN").unwrap();
        for i in 0..2_000 {
            insert(&conn, "ERROR", &format!("failure {i} {filler}"));
        }
        conn.execute_batch("COMMIT").unwrap();
    }
    // Every page but the first (the schema) overwritten: an invalid b-tree page type for SQLite.
    let mut bytes = std::fs::read(&path).unwrap();
    let page = 4096;
    assert!(bytes.len() > 8 * page, "the table spans many pages");
    for b in &mut bytes[page..] {
        *b = 0xFF;
    }
    std::fs::write(&path, &bytes).unwrap();

    let err = match SqliteLogSource::open(&path, LogSourceOptions::default()) {
        Err(e) => e,
        Ok(source) => source
            .read_after_checked(0, 10_000)
            .await
            .expect_err("a damaged file cannot be read"),
    };
    let text = err.to_string();
    assert!(
        !err.is_retryable(),
        "retrying a damaged file cannot help: {text}"
    );
    assert!(
        text.contains("damaged") && text.contains("PRAGMA integrity_check"),
        "the message says what is wrong and what to do: {text}"
    );
}

#[tokio::test]
async fn a_text_or_real_id_fails_the_read_naming_the_row_type_and_the_fix() {
    for (bad, found) in [("'abc'", "text"), ("7.5", "a real number")] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs.db");
        let conn = Connection::open(&path).unwrap();
        // `id` without INTEGER PRIMARY KEY (unique, but typeless): SQLite stores whatever it is
        // given.
        conn.execute_batch(&format!(
            "CREATE TABLE logs (id UNIQUE, timestamp TEXT, level TEXT, source TEXT, message TEXT);
             INSERT INTO logs VALUES (1, 't', 'ERROR', 's', 'one');
             INSERT INTO logs VALUES ({bad}, 't', 'ERROR', 's', 'poison');"
        ))
        .unwrap();
        let err = open(&path)
            .read_after_checked(0, 100)
            .await
            .expect_err("a row the cursor cannot place is an error, not skipped");
        let text = err.to_string();
        assert!(
            matches!(err, Error::NonIntegerLogId { .. }),
            "{found}: a typed error, not rusqlite's \"Invalid column type\": {err:?}"
        );
        assert!(!err.is_retryable(), "{text}");
        assert!(
            text.contains(found)
                && text.contains("INTEGER PRIMARY KEY")
                && text.contains("typeof(id)"),
            "{text}"
        );
    }
}

/// Review4 F7: with ids 1,2,2,2,3 and pages of 2, the second page asked `id > 2` and two records
/// were never read. A table whose `id` may repeat is refused, saying what to do; one whose ids
/// are kept unique (the rowid, a primary key, a UNIQUE index) is read.
#[tokio::test]
async fn a_logs_table_whose_id_may_repeat_is_refused_naming_the_fix() {
    let refused = [
        "CREATE TABLE logs (id INTEGER, timestamp TEXT, level TEXT, message TEXT)",
        // An index that does not make `id` unique by itself, or only some rows.
        "CREATE TABLE logs (id INTEGER, level TEXT, message TEXT, UNIQUE (id, level))",
        "CREATE TABLE logs (id INTEGER, level TEXT, message TEXT);
         CREATE UNIQUE INDEX partial_id ON logs(id) WHERE level = 'ERROR';
         CREATE INDEX plain_id ON logs(id)",
        "CREATE TABLE logs (id INTEGER, level TEXT, message TEXT, PRIMARY KEY (id, level))",
    ];
    for ddl in refused {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs.db");
        Connection::open(&path).unwrap().execute_batch(ddl).unwrap();
        let err = SqliteLogSource::open(&path, LogSourceOptions::default())
            .expect_err("a table whose ids may repeat is refused at open");
        assert!(
            matches!(err, Error::NonUniqueLogId { .. }),
            "{ddl}: {err:?}"
        );
        assert!(!err.is_retryable());
        let text = err.to_string();
        assert!(
            text.contains("INTEGER PRIMARY KEY")
                && text.contains("CREATE UNIQUE INDEX logs_id_unique ON logs(id)")
                && text.contains("skipped"),
            "{text}"
        );
    }
    let accepted = [
        "CREATE TABLE logs (id INTEGER PRIMARY KEY, level TEXT, message TEXT)",
        "CREATE TABLE logs (ID integer primary key autoincrement, level TEXT, message TEXT)",
        "CREATE TABLE logs (id INTEGER NOT NULL UNIQUE, level TEXT, message TEXT)",
        "CREATE TABLE logs (id BIGINT PRIMARY KEY, level TEXT, message TEXT)",
        "CREATE TABLE logs (id INTEGER PRIMARY KEY, level TEXT, message TEXT) WITHOUT ROWID",
        "CREATE TABLE logs (id INTEGER, level TEXT, message TEXT);
         CREATE UNIQUE INDEX logs_id_unique ON logs(id)",
    ];
    for ddl in accepted {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(ddl).unwrap();
        for id in 1..=5 {
            conn.execute(
                "INSERT INTO logs (id, level, message) VALUES (?1, 'ERROR', 'm')",
                [id],
            )
            .unwrap();
        }
        let src = SqliteLogSource::open(
            &path,
            LogSourceOptions {
                page_size: 2,
                ..LogSourceOptions::default()
            },
        )
        .unwrap_or_else(|e| panic!("{ddl}: {e}"));
        let (mut after, mut ids) = (0, Vec::new());
        loop {
            let page = src.read_after(after, 2).await.unwrap();
            if page.scanned_through == after {
                break;
            }
            ids.extend(page.records.iter().map(|r| r.id));
            after = page.scanned_through;
        }
        assert_eq!(ids, [1, 2, 3, 4, 5], "{ddl}");
    }
}

/// Review4 F14: pino's/bunyan's fatal (60) was read as ERROR, below Python's 50 (CRITICAL).
/// Numbers are read on Python's scale, whether stored as text or as integers; above 50 is
/// CRITICAL; syslog's 0..7 are no level: ERROR, the original kept, nothing dropped.
#[tokio::test]
async fn numeric_levels_are_read_on_pythons_scale_and_above_50_as_critical() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs.db");
    let conn = Connection::open(&path).unwrap();
    // No type on `level`: text stays text, numbers stay integers.
    conn.execute_batch(
        "CREATE TABLE logs (id INTEGER PRIMARY KEY, level, message TEXT);
         INSERT INTO logs (level, message) VALUES ('60', 'fatal as text');
         INSERT INTO logs (level, message) VALUES (60, 'fatal as a number');
         INSERT INTO logs (level, message) VALUES (50, 'critical as a number');
         INSERT INTO logs (level, message) VALUES (20, 'info as a number');
         INSERT INTO logs (level, message) VALUES (30, 'warning as a number');
         INSERT INTO logs (level, message) VALUES (6, 'syslog info');",
    )
    .unwrap();
    let page = open(&path).read_after(0, 100).await.unwrap();
    let got: Vec<(&str, Level)> = page
        .records
        .iter()
        .map(|r| (r.message.as_str(), r.level))
        .collect();
    assert_eq!(
        got,
        [
            ("fatal as text", Level::Critical),
            ("fatal as a number", Level::Critical),
            ("critical as a number", Level::Critical),
            ("warning as a number", Level::Warning),
            ("syslog info", Level::Error),
        ]
    );
    assert_eq!(
        page.records[4].extra_data[ORIGINAL_LEVEL_KEY],
        serde_json::json!("6")
    );
}

/// Review4 F14: pino/bunyan write 30 for info; on Python's scale it was read as WARNING and
/// could be filed. With `numeric_levels: pino` every number means what pino means, whether the
/// column stores it as text or as an integer (typeless, INTEGER and TEXT columns), and the SQL
/// level filter agrees: a page of two rows is not used up by two `30` (info) rows, it reaches
/// the `40` (warn) after them. Python's scale, the default, is unchanged.
#[tokio::test]
async fn numeric_levels_are_read_and_filtered_on_the_configured_scale() {
    let rows: [(&str, &str); 12] = [
        ("30", "info as text"),
        ("30", "info as a number"),
        ("10", "trace as text"),
        ("20", "debug as a number"),
        ("40", "warn as a number"),
        ("40", "warn as text"),
        ("50", "error as a number"),
        ("50", "error as text"),
        ("60", "fatal as a number"),
        ("70", "above fatal as a number"),
        ("55", "between as a number"),
        ("WARN", "a name"),
    ];
    let python = [
        ("info as text", Level::Warning),
        ("info as a number", Level::Warning),
        ("warn as a number", Level::Error),
        ("warn as text", Level::Error),
        ("error as a number", Level::Critical),
        ("error as text", Level::Critical),
        ("fatal as a number", Level::Critical),
        ("above fatal as a number", Level::Critical),
        ("between as a number", Level::Critical),
        ("a name", Level::Warning),
    ];
    let pino = [
        ("warn as a number", Level::Warning),
        ("warn as text", Level::Warning),
        ("error as a number", Level::Error),
        ("error as text", Level::Error),
        ("fatal as a number", Level::Critical),
        ("above fatal as a number", Level::Critical),
        // Not a pino level: seen as ERROR, the original kept, as any unknown level.
        ("between as a number", Level::Error),
        ("a name", Level::Warning),
    ];
    for column in ["level", "level INTEGER", "level TEXT"] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(&format!(
            "CREATE TABLE logs (id INTEGER PRIMARY KEY, {column}, message TEXT)"
        ))
        .unwrap();
        for (level, message) in rows {
            let as_number: Option<i64> = message
                .ends_with("as a number")
                .then(|| level.parse().unwrap());
            match as_number {
                Some(n) => conn.execute(
                    "INSERT INTO logs (level, message) VALUES (?1, ?2)",
                    params![n, message],
                ),
                None => conn.execute(
                    "INSERT INTO logs (level, message) VALUES (?1, ?2)",
                    params![level, message],
                ),
            }
            .unwrap();
        }
        for (scale, expected) in [
            (NumericLevels::Python, &python[..]),
            (NumericLevels::Pino, &pino[..]),
        ] {
            let source = SqliteLogSource::open(
                &path,
                LogSourceOptions {
                    numeric_levels: scale,
                    ..LogSourceOptions::default()
                },
            )
            .unwrap();
            let page = source.read_after(0, 100).await.unwrap();
            let got: Vec<(&str, Level)> = page
                .records
                .iter()
                .map(|r| (r.message.as_str(), r.level))
                .collect();
            assert_eq!(got, expected, "{scale}, column `{column}`");
            assert_eq!(page.scanned_through, 12, "{scale}, column `{column}`");
            let between = page
                .records
                .iter()
                .find(|r| r.message == "between as a number")
                .unwrap();
            assert_eq!(
                between.extra_data.get(ORIGINAL_LEVEL_KEY).is_some(),
                scale == NumericLevels::Pino,
                "{scale}, column `{column}`"
            );
            // The filter in the query, not only the check after it: the first page of two
            // rows holds the first two rows the scale keeps.
            let first_two: Vec<String> = source
                .read_after(0, 2)
                .await
                .unwrap()
                .records
                .into_iter()
                .map(|r| r.message)
                .collect();
            let expected_two: Vec<&str> = expected.iter().take(2).map(|(m, _)| *m).collect();
            assert_eq!(first_two, expected_two, "{scale}, column `{column}`");
        }
    }
}

#[tokio::test]
async fn unknown_levels_are_read_as_error_keeping_the_original_and_bad_json_is_kept_raw() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs.db");
    let conn = new_logs_db(&path);
    conn.execute_batch(
        r#"INSERT INTO logs (timestamp, level, message, extra_data) VALUES ('t', 'LOUD', 'a', '{"k": 1}');
        INSERT INTO logs (timestamp, level, message, extra_data) VALUES ('t', 'ERROR', 'b', '{not json');
        INSERT INTO logs (timestamp, level, message, extra_data) VALUES ('t', 'WARNING', 'c', '');
        INSERT INTO logs (timestamp, level, message, extra_data) VALUES ('t', 'INFO', 'd', '{oops');"#,
    )
    .unwrap();
    let page = open(&path).read_after(0, 10).await.unwrap();
    assert_eq!(
        page.records.len(),
        3,
        "the INFO row is filtered, nothing else is lost"
    );
    let loud = &page.records[0];
    assert_eq!(loud.level, Level::Error);
    assert_eq!(
        loud.extra_data,
        serde_json::json!({"k": 1, ORIGINAL_LEVEL_KEY: "LOUD"})
    );
    assert_eq!(
        page.records[1].extra_data,
        serde_json::json!({ RAW_EXTRA_KEY: "{not json" })
    );
    assert_eq!(page.records[2].extra_data, serde_json::Value::Null);
    assert_eq!(page.scanned_through, 4);
}

#[tokio::test]
async fn ids_deleted_by_retention_before_the_scan_are_reported_as_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs.db");
    let conn = new_logs_db(&path);
    for _ in 0..10 {
        insert(&conn, "ERROR", "m");
    }
    conn.execute("DELETE FROM logs WHERE id <= 6", []).unwrap();
    let page = open(&path).read_after(2, 100).await.unwrap();
    assert_eq!(page.missing_before_first, 4, "ids 3..=6 are gone");
    assert_eq!(page.records.first().map(|r| r.id), Some(7));
    let none = open(&path).read_after(6, 100).await.unwrap();
    assert_eq!(none.missing_before_first, 0);
}

#[tokio::test]
async fn a_cursor_ahead_of_a_recreated_file_is_a_typed_condition() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs.db");
    {
        let conn = new_logs_db(&path);
        for _ in 0..50 {
            insert(&conn, "ERROR", "old");
        }
    }
    let src = open(&path);
    assert!(src.check_cursor(50).await.is_ok());
    // The server recreates its log file.
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let conn = new_logs_db(&path);
    for _ in 0..3 {
        insert(&conn, "ERROR", "new");
    }
    assert_eq!(src.max_id().await.unwrap(), Some(3));
    let err = src.check_cursor(50).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::CursorAhead {
                cursor: 50,
                max_id: 3
            }
        ),
        "{err}"
    );
    let err = src.read_after_checked(50, 10).await.unwrap_err();
    assert!(err.to_string().contains("restart from 0"), "{err}");
    let page = src.read_after(50, 10).await.unwrap();
    assert!(page.records.is_empty());
    assert_eq!(page.scanned_through, 50);
    let restarted = src.read_after(0, 10).await.unwrap();
    assert_eq!(restarted.records.len(), 3);
}

#[tokio::test]
async fn every_record_is_read_exactly_once_while_a_writer_inserts_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs.db");
    drop(new_logs_db(&path));
    const TOTAL: i64 = 20_000;
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let path = path.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            let mut conn = Connection::open(&path).unwrap();
            conn.busy_timeout(std::time::Duration::from_secs(10))
                .unwrap();
            let mut written = 0;
            while written < TOTAL {
                let tx = conn.transaction().unwrap();
                for _ in 0..50 {
                    written += 1;
                    let level = if written % 3 == 0 { "INFO" } else { "ERROR" };
                    tx.execute(
                        "INSERT INTO logs (timestamp, level, message) VALUES ('t', ?1, ?2)",
                        params![level, format!("m{written}")],
                    )
                    .unwrap();
                }
                tx.commit().unwrap();
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    let src = SqliteLogSource::open(
        &path,
        LogSourceOptions {
            page_size: 700,
            ..LogSourceOptions::default()
        },
    )
    .unwrap();
    let mut cursor = 0;
    let mut seen = Vec::new();
    let mut scans = 0;
    loop {
        let writer_done = done.load(Ordering::SeqCst);
        // One "scan": read pages until nothing is left right now.
        loop {
            let page = src.read_after(cursor, 700).await.unwrap();
            seen.extend(page.records.iter().map(|r| r.id));
            assert_eq!(page.missing_before_first, 0);
            if page.scanned_through == cursor {
                break;
            }
            cursor = page.scanned_through;
        }
        scans += 1;
        if writer_done {
            break;
        }
    }
    writer.join().unwrap();
    let unique: BTreeSet<i64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "no record read twice");
    let expected: BTreeSet<i64> = (1..=TOTAL).filter(|i| i % 3 != 0).collect();
    assert_eq!(unique, expected, "no record lost");
    assert_eq!(cursor, TOTAL);
    assert!(scans >= 1);
}

#[tokio::test]
async fn reading_never_modifies_the_hosts_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs.db");
    {
        let conn = Connection::open(&path).unwrap();
        create_logs_table(&conn).unwrap();
        for _ in 0..100 {
            insert(&conn, "ERROR", "m");
        }
    }
    let before = std::fs::read(&path).unwrap();
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    let src = open(&path);
    src.read_after(0, 1000).await.unwrap();
    src.max_id().await.unwrap();
    drop(src);
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), mtime);
    assert!(!dir.path().join("logs.db-journal").exists());
}

#[test]
fn describe_names_the_file_and_the_schema_actually_present() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs.db");
    drop(new_logs_db(&path));
    let d = open(&path).describe();
    assert_eq!(d.location, path.display().to_string());
    assert!(
        d.schema.contains("CREATE TABLE logs") && d.schema.contains("correlation_id"),
        "{}",
        d.schema
    );
}

#[test]
fn invalid_options_are_rejected_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs.db");
    drop(new_logs_db(&path));
    let err = SqliteLogSource::open(
        &path,
        LogSourceOptions {
            page_size: 0,
            ..LogSourceOptions::default()
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("page_size"));
}

fn write_records(path: &Path, records: &[selfmon_core::LogRecord]) {
    let conn = new_logs_db(path);
    for r in records {
        conn.execute(
            "INSERT INTO logs (id, timestamp, level, source, message, correlation_id, user_id,
             request_path, extra_data) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                r.id,
                r.timestamp,
                r.level.as_str(),
                r.source,
                r.message,
                r.correlation_id,
                r.user_id,
                r.request_path,
                (!r.extra_data.is_null()).then(|| r.extra_data.to_string()),
            ],
        )
        .unwrap();
    }
}

#[tokio::test]
async fn passes_the_core_log_source_conformance_suite_at_every_level() {
    let records = selfmon_core::conformance::sample_records();
    for min_level in Level::ALL {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs.db");
        write_records(&path, &records);
        let src = SqliteLogSource::open(
            &path,
            LogSourceOptions {
                min_level,
                ..LogSourceOptions::default()
            },
        )
        .unwrap();
        selfmon_core::conformance::log_source(&src, &records, min_level).await;
        // Every field survives the trip through the file.
        let page = src.read_after(0, 100).await.unwrap();
        let want: Vec<_> = records
            .iter()
            .filter(|r| r.level >= min_level)
            .cloned()
            .collect();
        assert_eq!(page.records, want);
    }
}

#[tokio::test]
async fn record_at_finds_a_row_whatever_its_level_and_none_for_a_missing_id() {
    // The engine anchors a scan on the record at its cursor, which may be an INFO row the level
    // filter keeps out of pages: the lookup must see it, or a scan that examined only INFO rows
    // has no anchor and a recreated log grown past its cursor is not recognised.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs.db");
    let conn = new_logs_db(&path);
    let info = insert(&conn, "INFO", "server started");
    let error = insert(&conn, "ERROR", "[DB-LOCK-003] locked");
    let src = open(&path);
    let got = src.record_at(info).await.unwrap().expect("the INFO row");
    assert_eq!(
        (got.id, got.level, got.message.as_str()),
        (info, Level::Info, "server started")
    );
    let got = src.record_at(error).await.unwrap().expect("the ERROR row");
    assert_eq!(got.message, "[DB-LOCK-003] locked");
    assert_eq!(src.record_at(error + 1).await.unwrap(), None);
    assert_eq!(src.record_at(0).await.unwrap(), None);
    assert!(
        src.read_after(0, 10)
            .await
            .unwrap()
            .records
            .iter()
            .all(|r| r.id != info),
        "pages still filter INFO out"
    );
}
