//! Benchmarks of deterministic triage: templating + digest throughput, memory flatness, dedup
//! against a large known-issue index, and the prompt size for a large scan.
//!
//! `cargo bench --bench triage -- --warm-up-time 1 --measurement-time 3`
//! The one-off measurements (memory, index build, prompt size) are printed before criterion runs;
//! set `SELFMON_BENCH_10M=0` to skip the 10M-record memory run.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::time::Instant;

use criterion::{black_box, BenchmarkId, Criterion, Throughput};
//DEDUP
use selfmon_core::digest::DigestBuilder;
use selfmon_core::template::Templater;
use selfmon_core::{Level, LogRecord, SelfMonitoringConfig};

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
            let now = LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed) + layout.size() as isize;
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// xorshift, so runs are repeatable.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

const USERS: &[&str] = &["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"];
const REPOS: &[&str] = &["code-indexer", "flask", "django", "tokio", "serde", "linux", "selfmon"];

/// Realistic server messages: mixed templates with ids, paths, durations, codes, names.
fn message(rng: &mut Rng) -> (Level, &'static str, String) {
    let r = rng.next();
    let n = r >> 16;
    let user = USERS[(n % USERS.len() as u64) as usize];
    let repo = REPOS[((n >> 8) % REPOS.len() as u64) as usize];
    match r % 16 {
        0 => (Level::Error, "cidx.git", format!("[GIT-SYNC-001] Failed to sync repository {repo}: exit code {}", n % 130)),
        1 => (Level::Info, "cidx.http", format!("GET /api/v1/repos/{repo}/files?page={} 200 {}ms", n % 50, n % 900)),
        2 => (Level::Info, "cidx.auth", format!("User {user} logged in from 10.{}.{}.{}", n % 250, (n >> 8) % 250, (n >> 16) % 250)),
        3 => (Level::Info, "cidx.jobs", format!("Job {:08x}-{:04x}-4{:03x}-a{:03x}-{:012x} for repository {repo} completed in {}.{}s", n as u32, n % 65536, n % 4096, n % 4096, n % (1 << 40), n % 60, n % 10)),
        4 => (Level::Warning, "cidx.jobs", format!("Job queue depth {} exceeds threshold {}", n % 1000, 100)),
        5 => (Level::Debug, "cidx.index", format!("indexed {} files of /srv/repos/{repo}/src in {}ms", n % 10000, n % 5000)),
        6 => (Level::Error, "cidx.db", format!("sqlite3.OperationalError: database is locked (attempt {} of 5)", n % 5)),
        7 => (Level::Warning, "cidx.http", format!("slow request {} POST /api/query took {}ms user={user}", n, n % 20000)),
        8 => (Level::Info, "cidx.cache", format!("cache hit ratio {}.{}% for region eu-{}", n % 100, n % 10, n % 3)),
        9 => (Level::Error, "cidx.http", format!("[AUTH-TOKEN-003] token for {user}@example.com expired at 2024-05-{:02}T{:02}:{:02}:00Z", n % 28 + 1, n % 24, n % 60)),
        10 => (Level::Info, "cidx.git", format!("fetched {} objects ({}KB) for {repo} at {:x}", n % 5000, n % 90000, n | (1 << 40))),
        11 => (Level::Warning, "cidx.mem", format!("RSS {}MB above soft limit {}MB", n % 4000, 2048)),
        12 => (Level::Info, "cidx.sched", format!("scheduled refresh of {repo} in {}s", n % 3600)),
        13 => (Level::Error, "cidx.worker", format!("worker {} crashed: ValueError: invalid literal for int() with base 10: 'x{}'", n % 16, n % 100)),
        14 => (Level::Info, "cidx.http", format!("{}.{}.{}.{} - - \"GET /health HTTP/1.1\" 200 {}", n % 250, (n >> 8) % 250, 3, 4, n % 100)),
        _ => (Level::Debug, "cidx.index", format!("chunk {} of file {} embedded with model voyage-code-3", n % 100, n)),
    }
}

fn records(n: usize, seed: u64) -> Vec<LogRecord> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|i| {
            let (level, source, msg) = message(&mut rng);
            LogRecord::new(i as i64 + 1, level, msg)
                .with_source(source)
                .with_timestamp("2024-05-01T12:00:00Z")
        })
        .collect()
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let recs = records(100_000, 0x1234_5678);
    let config = SelfMonitoringConfig::default();
    let mut g = c.benchmark_group("templating_and_digest");
    g.throughput(Throughput::Elements(recs.len() as u64));
    g.sample_size(10);
    g.bench_function(BenchmarkId::new("digest", recs.len()), |b| {
        b.iter(|| {
            let mut builder = DigestBuilder::new(&config).unwrap();
            for r in &recs {
                builder.push(r);
            }
            black_box(builder.finish())
        })
    });
    g.bench_function(BenchmarkId::new("mask_only", recs.len()), |b| {
        let t = Templater::new();
        b.iter(|| {
            for r in &recs {
                black_box(t.mask(&r.message));
            }
        })
    });
    g.finish();
    c.final_summary();
}
