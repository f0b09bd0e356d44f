//! A whole scan with the in-memory adapters and the offline runner.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use selfmon::engine::SelfMonitor;
use selfmon::offline::OfflineRunner;
use selfmon::testing::{MemoryIssueTracker, MemoryLogSource, MemoryStateStore};
use selfmon::{Level, ScanTrigger};

fn scan_10k_records(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(10_000));
    group.sample_size(10);
    group.bench_function("scan_10k_records", |b| {
        b.iter_batched(
            || {
                let logs = Arc::new(MemoryLogSource::new());
                for i in 0..10_000u32 {
                    let msg = match i % 5 {
                        0 => format!(
                            "[GIT-SYNC-001] fetch failed for /srv/repo{} after {}ms",
                            i % 50,
                            i
                        ),
                        1 => format!("job queue full: {} pending", i % 100),
                        2 => format!(
                            "request validation failed for user u{}: field 'limit'",
                            i % 30
                        ),
                        3 => format!("slow query took {}ms on table t{}", i, i % 7),
                        _ => format!("[DB-LOCK-003] database is locked after {} retries", i % 9),
                    };
                    logs.log(
                        if i % 5 == 4 {
                            Level::Critical
                        } else {
                            Level::Warning
                        },
                        "svc",
                        &msg,
                    );
                }
                let store = Arc::new(MemoryStateStore::new());
                SelfMonitor::builder()
                    .log_source(logs)
                    .runner(Arc::new(OfflineRunner))
                    .tracker(Arc::new(MemoryIssueTracker::new()))
                    .store(store.clone())
                    .template_memory(store)
                    .build()
                    .expect("monitor")
            },
            |m| rt.block_on(m.scan(ScanTrigger::Manual)).expect("scan"),
            criterion::BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, scan_10k_records);
criterion_main!(benches);
