//! The error-code inventory over a real logs.db.

use rusqlite::{params, Connection};
use selfmon_sqlite::inventory::Coverage;
use selfmon_sqlite::{create_logs_table, inventory, render_text, Catalog, Error, InventoryOptions};

fn logs_db(path: &std::path::Path) {
    let conn = Connection::open(path).unwrap();
    create_logs_table(&conn).unwrap();
    let rows: [(&str, &str, &str, Option<&str>); 9] = [
        (
            "ERROR",
            "app.git",
            "[GIT-SYNC-001] clone of repo a failed",
            None,
        ),
        (
            "ERROR",
            "app.git",
            "[GIT-SYNC-001] clone of repo b failed",
            None,
        ),
        (
            "WARNING",
            "app.queue",
            "job queue is full (64 pending)",
            None,
        ),
        (
            "WARNING",
            "app.queue",
            "job queue is full (65 pending)",
            None,
        ),
        (
            "WARNING",
            "app.queue",
            "job queue is full (99 pending)",
            None,
        ),
        (
            "CRITICAL",
            "app.db",
            "database is locked",
            Some(r#"{"error_code": "DB-LOCK-003"}"#),
        ),
        (
            "ERROR",
            "app.auth",
            "[AUTH-TOKEN-01] token expired for user 7",
            None,
        ),
        ("INFO", "app.http", "GET / 200", None),
        ("LOUD", "app.misc", "unknown level, read as ERROR", None),
    ];
    for (level, source, message, extra) in rows {
        conn.execute(
            "INSERT INTO logs (timestamp, level, source, message, extra_data) VALUES ('t', ?1, ?2, ?3, ?4)",
            params![level, source, message, extra],
        )
        .unwrap();
    }
}

#[test]
fn inventory_counts_coded_records_ranks_uncoded_templates_and_finds_bad_codes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs.db");
    logs_db(&path);
    let catalog_path = dir.path().join("codes.txt");
    std::fs::write(&catalog_path, "# catalog\nGIT-SYNC-001\nGIT-SYNC-002\n").unwrap();
    let catalog = Catalog::load(&catalog_path).unwrap();

    let report = inventory(&path, Some(&catalog), &InventoryOptions::default()).unwrap();
    assert_eq!(report.scanned_through, 9);
    assert_eq!(report.overall, Coverage { total: 8, coded: 3 });
    assert_eq!(report.by_level["ERROR"], Coverage { total: 4, coded: 2 });
    assert_eq!(report.by_level["CRITICAL"], Coverage { total: 1, coded: 1 });
    assert_eq!(
        report.by_source[0].source, "app.queue",
        "most uncoded first"
    );
    let top = &report.top_uncoded_templates[0];
    assert_eq!(
        top.count, 3,
        "the three queue messages share one template: {top:?}"
    );
    assert_eq!(top.sources, ["app.queue"]);
    assert_eq!(top.example_record_id, 3);
    let malformed: Vec<&str> = report
        .malformed_codes
        .iter()
        .map(|c| c.code.as_str())
        .collect();
    assert_eq!(malformed, ["AUTH-TOKEN-01"]);
    let uncatalogued: Vec<&str> = report
        .uncatalogued_codes
        .iter()
        .map(|c| c.code.as_str())
        .collect();
    assert_eq!(uncatalogued, ["DB-LOCK-003"]);
    assert_eq!(report.unused_catalog_codes, ["GIT-SYNC-002"]);

    let text = render_text(&report);
    assert!(text.contains("WARNING+ records: 8  coded: 3"), "{text}");
    assert!(text.contains("AUTH-TOKEN-01"), "{text}");
    assert!(text.contains("Codes missing from catalog"), "{text}");
}

#[test]
fn inventory_is_deterministic_in_json_and_text() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs.db");
    logs_db(&path);
    let a = inventory(&path, None, &InventoryOptions::default()).unwrap();
    let b = inventory(
        &path,
        None,
        &InventoryOptions {
            page_size: 2,
            ..InventoryOptions::default()
        },
    )
    .unwrap();
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap()
    );
    assert_eq!(render_text(&a), render_text(&b));
    let back: selfmon_sqlite::InventoryReport =
        serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
    assert_eq!(back, a);
}

#[test]
fn a_bad_catalog_or_log_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("codes.json");
    std::fs::write(&bad, r#"["GIT-SYNC-001", "nope"]"#).unwrap();
    let err = Catalog::load(&bad).unwrap_err();
    assert!(matches!(err, selfmon_core::Error::Catalog { .. }));
    assert!(
        err.to_string().contains("nope") && err.to_string().contains("codes.json"),
        "{err}"
    );
    let err = inventory(
        dir.path().join("missing.db"),
        None,
        &InventoryOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Open { .. }), "{err}");
}

/// Review4 F14: with pino's scale a level-30 row is info, not counted among the warnings.
#[test]
fn numeric_levels_are_counted_on_the_chosen_scale() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs.db");
    let conn = Connection::open(&path).unwrap();
    create_logs_table(&conn).unwrap();
    for (level, message) in [
        ("30", "request done"),
        ("40", "slow request"),
        ("50", "failed"),
    ] {
        conn.execute(
            "INSERT INTO logs (timestamp, level, source, message) VALUES ('t', ?1, 'app', ?2)",
            params![level, message],
        )
        .unwrap();
    }
    let count = |scale| {
        let report = inventory(
            &path,
            None,
            &InventoryOptions {
                numeric_levels: scale,
                ..InventoryOptions::default()
            },
        )
        .unwrap();
        (
            report.overall.total,
            report.by_level.keys().cloned().collect::<Vec<_>>(),
        )
    };
    assert_eq!(
        count(selfmon_core::NumericLevels::Python),
        (3, vec!["CRITICAL".into(), "ERROR".into(), "WARNING".into()])
    );
    assert_eq!(
        count(selfmon_core::NumericLevels::Pino),
        (2, vec!["ERROR".into(), "WARNING".into()])
    );
}
