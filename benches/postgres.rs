//! PgLogSource throughput next to a bare keyset `SELECT` loop over the same table (the ceiling),
//! and PgStateStore's per-scan costs: lease acquire, lease renew, and committing a scan.
//!
//! Needs a server: `export $(cat /tmp/pg.env)` or run `.ci/install-postgres.sh`; without
//! `SELFMON_TEST_PG_URL` the bench says so and measures nothing. Rows default to 1,000,000
//! (`SELFMON_BENCH_PG_ROWS` to change).
//!
//! Run: `cargo bench -p selfmon-benches --bench postgres --features postgres -- --warm-up-time 1 --measurement-time 5`

use std::time::Duration;

use chrono::Utc;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use selfmon::postgres::tokio_postgres::Client;
use selfmon::postgres::{
    PgLogSource, PgLogSourceOptions, PgStateStore, PgStateStoreOptions, PgUrl,
};
use selfmon_core::{
    LeaseOutcome, LeaseRenewal, Level, LogSource, ScanEffects, ScanId, ScanLedger, ScanRecord,
    ScanStatus, ScanTrigger,
};

const URL_ENV: &str = "SELFMON_TEST_PG_URL";
const PAGE: usize = 10_000;

fn rows() -> u64 {
    std::env::var("SELFMON_BENCH_PG_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

/// 40% INFO, 30% WARNING, 25% ERROR, 5% CRITICAL over three nodes; the same messages as the
/// SQLite bench, generated server-side.
async fn generate(admin: &Client, schema: &str, rows: u64) {
    admin
        .batch_execute(&format!(
            "CREATE SCHEMA {schema}; SET search_path TO {schema}; {ddl};
             INSERT INTO logs (timestamp, level, source, message, correlation_id, user_id,
                               request_path, extra_data, node_id)
             SELECT '2026-01-01T00:00:00.' || lpad((i % 1000000)::text, 6, '0') || 'Z',
               CASE WHEN i % 20 < 8 THEN 'INFO' WHEN i % 20 < 14 THEN 'WARNING'
                    WHEN i % 20 < 19 THEN 'ERROR' ELSE 'CRITICAL' END,
               'code_indexer.server.module' || (i % 10),
               CASE i % 4
                 WHEN 0 THEN '[GIT-SYNC-001] clone of repo r' || (i % 50) || ' failed: exit 128'
                 WHEN 1 THEN 'job queue is full (' || (i % 100) || ' pending)'
                 WHEN 2 THEN 'request validation failed for user u' || (i % 30) || ': field ''limit'' is deprecated'
                 ELSE 'slow query took ' || i || 'ms on table t' || (i % 7) END,
               CASE WHEN i % 2 = 0 THEN 'corr-' || i END,
               CASE WHEN i % 3 = 0 THEN 'user' || (i % 30) END,
               CASE WHEN i % 5 = 0 THEN '/api/repos/' || (i % 50) END,
               CASE WHEN i % 5 = 0 THEN '{{\"error_code\":\"GIT-SYNC-001\",\"repo\":\"r' || (i % 50) || '\"}}' END,
               'node-' || (i % 3)
             FROM generate_series(1, {rows}) AS i;
             ANALYZE logs;",
            ddl = selfmon::postgres::LOGS_TABLE_DDL
        ))
        .await
        .expect("generate rows");
}

/// The ceiling: the same keyset-paged query, every column read as text, nothing converted.
async fn plain_select(client: &Client, schema: &str) -> u64 {
    let stmt = client
        .prepare(&format!(
            "SELECT id, timestamp, level, source, message, correlation_id, user_id, request_path,
             extra_data, node_id FROM {schema}.logs WHERE id > $1 ORDER BY id LIMIT $2"
        ))
        .await
        .expect("prepare");
    let (mut cursor, mut rows_read, mut bytes) = (0i32, 0u64, 0usize);
    loop {
        let rows = client
            .query(&stmt, &[&cursor, &(PAGE as i64)])
            .await
            .expect("query");
        for row in &rows {
            cursor = row.get(0);
            for i in 1..10 {
                if let Some(t) = row.get::<_, Option<&str>>(i) {
                    bytes += t.len();
                }
            }
        }
        rows_read += rows.len() as u64;
        if rows.len() < PAGE {
            break;
        }
    }
    std::hint::black_box(bytes);
    rows_read
}

async fn drain(src: &PgLogSource) -> u64 {
    let (mut cursor, mut records) = (0i64, 0u64);
    loop {
        let page = src.read_after(cursor, PAGE).await.expect("page");
        records += page.records.len() as u64;
        if page.scanned_through == cursor {
            return records;
        }
        cursor = page.scanned_through;
    }
}

fn bench(c: &mut Criterion) {
    let url = match PgUrl::from_env(URL_ENV) {
        Ok(url) => url,
        Err(e) => {
            eprintln!("SKIPPED postgres bench: {e} (run .ci/install-postgres.sh)");
            return;
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let rows = rows();
    let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
    let admin = rt.block_on(async {
        let admin = url.connect("selfmon-bench").await.expect("connect");
        let started = std::time::Instant::now();
        generate(&admin, &schema, rows).await;
        eprintln!("generated {rows} rows in {:.1?}", started.elapsed());
        admin
    });
    let source = |min_level: Level| {
        rt.block_on(PgLogSource::connect(
            url.clone(),
            PgLogSourceOptions {
                schema: schema.clone(),
                min_level,
                ..Default::default()
            },
        ))
        .expect("source")
    };
    let all_levels = source(Level::Debug);
    let default_filter = source(Level::Warning);

    let mut group = c.benchmark_group(format!("pg_source_{rows}_rows"));
    group.throughput(Throughput::Elements(rows));
    group.sample_size(10);
    group.bench_function("plain_select_loop", |b| {
        b.iter(|| assert_eq!(rt.block_on(plain_select(&admin, &schema)), rows))
    });
    group.bench_function("read_after_all_levels", |b| {
        b.iter(|| assert_eq!(rt.block_on(drain(&all_levels)), rows))
    });
    group.bench_function("read_after_default_warning_filter", |b| {
        b.iter(|| assert_eq!(rt.block_on(drain(&default_filter)), rows * 12 / 20))
    });
    group.finish();

    let store = rt
        .block_on(PgStateStore::connect(
            url.clone(),
            PgStateStoreOptions {
                schema: schema.clone(),
                ..Default::default()
            },
        ))
        .expect("state store");
    let ttl = Duration::from_secs(300);
    let mut group = c.benchmark_group("pg_state");
    group.bench_function("lease_acquire_release", |b| {
        b.iter(|| {
            rt.block_on(async {
                let lease = match store.try_acquire_lease("bench", ttl, Utc::now()).await {
                    Ok(LeaseOutcome::Acquired(lease)) => lease,
                    other => panic!("lease: {other:?}"),
                };
                store.release_lease(&lease).await.expect("release");
            })
        })
    });
    let lease = match rt.block_on(store.try_acquire_lease("bench", ttl, Utc::now())) {
        Ok(LeaseOutcome::Acquired(lease)) => lease,
        other => panic!("lease: {other:?}"),
    };
    group.bench_function("lease_renew", |b| {
        b.iter(|| {
            let renewed = rt.block_on(store.renew_lease(&lease, ttl, Utc::now()));
            assert!(
                matches!(renewed, Ok(LeaseRenewal::Renewed(_))),
                "{renewed:?}"
            );
        })
    });
    let mut end = 0i64;
    group.bench_function("begin_and_commit_scan_fenced", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut record =
                    ScanRecord::started(ScanId::new(), ScanTrigger::Scheduled, end, Utc::now());
                store.begin_scan(&record).await.expect("begin");
                end += 100;
                record.status = ScanStatus::Success;
                record.log_id_end = end;
                record.completed_at = Some(Utc::now());
                store
                    .commit_scan(&record, &ScanEffects::default())
                    .await
                    .expect("commit");
            })
        })
    });
    group.finish();

    rt.block_on(async {
        let _ = store.release_lease(&lease).await;
        let _ = admin
            .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
            .await;
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
