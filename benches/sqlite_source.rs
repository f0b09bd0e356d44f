//! SqliteLogSource throughput on a generated 1,000,000-row logs.db, next to a plain `SELECT` loop
//! over the same file (the ceiling), plus the error-code inventory; and the read stage of a scan
//! (read with the default WARNING filter, digest every page) on a second file with the level mix of
//! issue #16's scan target (70 % INFO, so the filter rejects most rows).
//!
//! Run: `cargo bench -p selfmon-benches --bench sqlite_source -- --warm-up-time 1 --measurement-time 3`

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rusqlite::types::ValueRef;
use rusqlite::Connection;
use selfmon_core::digest::DigestBuilder;
use selfmon_core::{Level, LogSource, SelfMonitoringConfig};
use selfmon_sqlite::{create_logs_table, InventoryOptions, LogSourceOptions, SqliteLogSource};

const ROWS: u64 = 1_000_000;
const PAGE: usize = 10_000;

/// 40% INFO, 30% WARNING, 25% ERROR, 5% CRITICAL; realistic messages, some extra_data.
fn generate(path: &Path) {
    generate_with_levels(
        path,
        "CASE WHEN i % 20 < 8 THEN 'INFO' WHEN i % 20 < 14 THEN 'WARNING'
               WHEN i % 20 < 19 THEN 'ERROR' ELSE 'CRITICAL' END",
    );
}

/// The scan target's mix: 70% INFO, 20% WARNING, 8% ERROR, 2% CRITICAL (30% WARNING+).
fn generate_scan_mix(path: &Path) {
    generate_with_levels(
        path,
        "CASE WHEN i % 50 < 35 THEN 'INFO' WHEN i % 50 < 45 THEN 'WARNING'
               WHEN i % 50 < 49 THEN 'ERROR' ELSE 'CRITICAL' END",
    );
}

/// `ROWS` rows whose level is the SQL expression `levels` of the row number `i`.
fn generate_with_levels(path: &Path, levels: &str) {
    let conn = Connection::open(path).expect("create logs.db");
    conn.pragma_update(None, "journal_mode", "WAL")
        .expect("wal");
    create_logs_table(&conn).expect("logs table");
    conn.execute_batch(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {ROWS})
        INSERT INTO logs (timestamp, level, source, message, correlation_id, user_id, request_path, extra_data)
        SELECT '2026-01-01T00:00:00.' || printf('%06d', i % 1000000) || 'Z',
          {levels},
          'code_indexer.server.module' || (i % 10),
          CASE i % 4
            WHEN 0 THEN '[GIT-SYNC-001] clone of repo r' || (i % 50) || ' failed: exit 128'
            WHEN 1 THEN 'job queue is full (' || (i % 100) || ' pending)'
            WHEN 2 THEN 'request validation failed for user u' || (i % 30) || ': field ''limit'' is deprecated'
            ELSE 'slow query took ' || i || 'ms on table t' || (i % 7) END,
          CASE WHEN i % 2 = 0 THEN 'corr-' || i END,
          CASE WHEN i % 3 = 0 THEN 'user' || (i % 30) END,
          CASE WHEN i % 5 = 0 THEN '/api/repos/' || (i % 50) END,
          CASE WHEN i % 5 = 0 THEN '{{\"error_code\":\"GIT-SYNC-001\",\"repo\":\"r' || (i % 50) || '\"}}' END
        FROM n;"
    ))
    .expect("generate rows");
}

/// The ceiling: the same paged query, touching every column, converting nothing.
fn plain_select(path: &Path) -> u64 {
    let conn = Connection::open(path).expect("open");
    let mut stmt = conn
        .prepare(
            "SELECT id, timestamp, level, source, message, correlation_id, user_id, request_path,
             extra_data FROM logs WHERE id > ?1 ORDER BY id LIMIT ?2",
        )
        .expect("prepare");
    let (mut cursor, mut rows_read, mut bytes) = (0i64, 0u64, 0usize);
    loop {
        let mut rows = stmt
            .query(rusqlite::params![cursor, PAGE as i64])
            .expect("query");
        let mut n = 0;
        while let Some(row) = rows.next().expect("row") {
            cursor = row.get(0).expect("id");
            for i in 1..9 {
                if let Ok(ValueRef::Text(t)) = row.get_ref(i) {
                    bytes += t.len();
                }
            }
            n += 1;
        }
        rows_read += n;
        if n < PAGE as u64 {
            break;
        }
    }
    std::hint::black_box(bytes);
    rows_read
}

fn drain(src: &SqliteLogSource) -> u64 {
    let (mut cursor, mut records) = (0i64, 0u64);
    loop {
        let page = src.read_after_blocking(cursor, PAGE).expect("page");
        records += page.records.len() as u64;
        if page.scanned_through == cursor {
            return records;
        }
        cursor = page.scanned_through;
    }
}

/// The read stage of a scan: every page through a digest (templates, codes, samples).
fn drain_into_digest(src: &SqliteLogSource) -> u64 {
    let config = SelfMonitoringConfig::default();
    let mut digest = DigestBuilder::new(&config).expect("digest builder");
    let mut cursor = 0i64;
    loop {
        let page = src.read_after_blocking(cursor, PAGE).expect("page");
        page.records.iter().for_each(|r| digest.push(r));
        if page.scanned_through == cursor {
            return digest.finish().records;
        }
        cursor = page.scanned_through;
    }
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("logs.db");
    let started = std::time::Instant::now();
    generate(&path);
    eprintln!("generated {ROWS} rows in {:.1?}", started.elapsed());

    let all_levels = SqliteLogSource::open(
        &path,
        LogSourceOptions {
            min_level: Level::Debug,
            ..LogSourceOptions::default()
        },
    )
    .expect("open source");
    let default_filter = SqliteLogSource::open(&path, LogSourceOptions::default()).expect("open");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .expect("runtime");

    let mut group = c.benchmark_group("sqlite_source_1m_rows");
    group.throughput(Throughput::Elements(ROWS));
    group.sample_size(10);
    group.bench_function("plain_select_loop", |b| {
        b.iter(|| assert_eq!(plain_select(&path), ROWS))
    });
    group.bench_function("read_after_all_levels_converted", |b| {
        b.iter(|| assert_eq!(drain(&all_levels), ROWS))
    });
    group.bench_function("read_after_default_warning_filter", |b| {
        b.iter(|| assert_eq!(drain(&default_filter), ROWS * 12 / 20))
    });
    group.bench_function("read_after_async_trait_all_levels", |b| {
        b.iter(|| {
            rt.block_on(async {
                let (mut cursor, mut n) = (0i64, 0u64);
                loop {
                    let page = all_levels.read_after(cursor, PAGE).await.expect("page");
                    n += page.records.len() as u64;
                    if page.scanned_through == cursor {
                        break;
                    }
                    cursor = page.scanned_through;
                }
                assert_eq!(n, ROWS);
            })
        })
    });
    group.bench_function("inventory", |b| {
        b.iter(|| {
            let report = selfmon_sqlite::inventory(&path, None, &InventoryOptions::default())
                .expect("inventory");
            assert_eq!(report.overall.total, ROWS * 12 / 20);
        })
    });
    group.finish();

    let scan_path = dir.path().join("scan-mix.db");
    generate_scan_mix(&scan_path);
    let scan_mix = SqliteLogSource::open(&scan_path, LogSourceOptions::default()).expect("open");
    let mut group = c.benchmark_group("sqlite_source_1m_rows_70pct_info");
    group.throughput(Throughput::Elements(ROWS));
    group.sample_size(10);
    group.bench_function("read_after_default_warning_filter", |b| {
        b.iter(|| assert_eq!(drain(&scan_mix), ROWS * 3 / 10))
    });
    group.bench_function("read_and_digest_default_warning_filter", |b| {
        b.iter(|| assert_eq!(drain_into_digest(&scan_mix), ROWS * 3 / 10))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
