//! Benchmarks of deterministic triage: templating + digest throughput, memory flatness, dedup
//! against a large known-issue index, and the prompt size for a large scan.
//!
//! `cargo bench -p selfmon-benches --bench triage -- --warm-up-time 1 --measurement-time 3`
//! The one-off measurements (memory, index build, prompt size) are printed before criterion runs;
//! set `SELFMON_BENCH_10M=0` to skip the 10M-record memory run.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::time::Instant;

use criterion::{black_box, BenchmarkId, Criterion, Throughput};
use selfmon_core::config::DedupConfig;
use selfmon_core::dedup::{KnownIssues, ThreeTierDeduplicator};
use selfmon_core::digest::{Digest, DigestBuilder};
use selfmon_core::template::Templater;
use selfmon_core::{
    Classification, ErrorCode, Finding, IssueRef, IssueState, KnownIssue, Level, LogRecord,
    SelfMonitoringConfig,
};

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
            let now =
                LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed) + layout.size() as isize;
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

const USERS: &[&str] = &[
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
];
const REPOS: &[&str] = &[
    "code-indexer",
    "flask",
    "django",
    "tokio",
    "serde",
    "linux",
    "selfmon",
];

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

fn record(i: u64, rng: &mut Rng) -> LogRecord {
    let (level, source, msg) = message(rng);
    LogRecord::new(i as i64 + 1, level, msg)
        .with_source(source)
        .with_timestamp("2024-05-01T12:00:00Z")
}

/// Like [`record`], but one record in eight is a message never seen before (distinct words), so
/// the signature and cluster caps do the bounding.
fn record_with_novelty(i: u64, rng: &mut Rng) -> LogRecord {
    if i % 8 != 7 {
        return record(i, rng);
    }
    let r = rng.next();
    let msg = format!(
        "unexpected {} state in {} handler for {}",
        word(r),
        word(r >> 20),
        word(r >> 40)
    );
    LogRecord::new(i as i64 + 1, Level::Error, msg)
        .with_source("cidx.misc")
        .with_timestamp("2024-05-01T12:00:00Z")
}

/// Peak live heap bytes while `n` generated records stream through one digest builder.
fn digest_peak_bytes(n: u64, make: fn(u64, &mut Rng) -> LogRecord) -> (isize, usize, f64) {
    let config = SelfMonitoringConfig::default();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let allocs_before = ALLOCS.load(Ordering::Relaxed);
    let start = Instant::now();
    let mut b = DigestBuilder::new(&config).expect("default config is valid");
    for i in 0..n {
        let r = make(i, &mut rng);
        b.push(&r);
    }
    let d = b.finish();
    let secs = start.elapsed().as_secs_f64();
    black_box(&d);
    let peak = PEAK.load(Ordering::Relaxed) - base;
    let allocs = ALLOCS.load(Ordering::Relaxed) - allocs_before;
    (peak, allocs, n as f64 / secs)
}

fn word(mut n: u64) -> String {
    (0..6)
        .map(|_| {
            let c = char::from(b'a' + (n % 26) as u8);
            n /= 26;
            c
        })
        .collect()
}

fn code(n: u64) -> ErrorCode {
    let w = word(n).to_uppercase();
    ErrorCode::parse(&format!("{}-{}-{:03}", &w[..3], &w[3..], n % 1000))
        .expect("generated codes are valid")
}

/// `n` known issues with distinct titles, templates, files, error types and codes.
fn known_issues(n: u64) -> Vec<KnownIssue> {
    (0..n)
        .map(|i| KnownIssue {
            issue: IssueRef {
                number: i + 1,
                url: format!("https://tracker.example/issues/{}", i + 1),
                state: if i % 10 == 0 {
                    IssueState::Closed
                } else {
                    IssueState::Open
                },
            },
            title: format!(
                "[BUG] {} fails while {} the {} index",
                word(i),
                word(i * 31 + 7),
                word(i * 17 + 3)
            ),
            classification: Classification::ALL[(i % 3) as usize],
            error_codes: vec![code(i)],
            fingerprint: format!("{:064x}", i),
            source_files: vec![format!("src/{}/{}.py", word(i / 7), word(i))],
            error_type: Some(format!("{}Error", word(i % 500))),
            templates: vec![format!(
                "{} of <PATH> failed after <NUM> {}",
                word(i * 3),
                word(i * 5 + 1)
            )],
            signature_ids: vec![format!("{:016x}", i * 2654435761)],
        })
        .collect()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

fn one_off_measurements() {
    println!("== one-off measurements ==");
    let big = std::env::var("SELFMON_BENCH_10M").map_or(true, |v| v != "0");
    for (label, make) in [
        ("realistic", record as fn(u64, &mut Rng) -> LogRecord),
        ("1/8 novel", record_with_novelty),
    ] {
        for n in [1_000_000u64, 10_000_000] {
            if n > 1_000_000 && !big {
                continue;
            }
            let (peak, allocs, rate) = digest_peak_bytes(n, make);
            println!(
                "digest {n} records ({label}): peak live heap {peak} bytes, {:.1} allocations/record, {rate:.0} records/s",
                allocs as f64 / n as f64
            );
        }
    }

    let issues = known_issues(100_000);
    let builds: Vec<f64> = (0..3)
        .map(|_| {
            let start = Instant::now();
            let k = KnownIssues::new(issues.clone());
            let secs = start.elapsed().as_secs_f64();
            black_box(k);
            secs
        })
        .collect();
    println!(
        "known-issue index of 100,000 issues: built in {:.3} s (median of 3)",
        median(builds)
    );

    // Prompt size: 1M new records with 10,000 known issues, some of which cover signatures.
    let config = SelfMonitoringConfig::default();
    let mut known = known_issues(10_000);
    known[0].error_codes = vec![ErrorCode::parse("GIT-SYNC-001").expect("valid")];
    known[1].templates = vec![
        "sqlite<NUM>.OperationalError: database is locked (attempt <NUM> of <NUM>)".to_string(),
    ];
    let known = KnownIssues::new(known);
    for (label, make) in [
        ("realistic", record as fn(u64, &mut Rng) -> LogRecord),
        ("1/8 novel", record_with_novelty),
    ] {
        let mut rng = Rng(42);
        let mut b = DigestBuilder::new(&config).expect("valid");
        for i in 0..1_000_000 {
            let r = make(i, &mut rng);
            b.push(&r);
        }
        let digest = b.finish();
        let novel: Vec<_> = digest
            .signatures
            .iter()
            .filter(|s| known.match_signature(s).is_none())
            .cloned()
            .collect();
        let known_sigs = digest.signatures.len() - novel.len();
        let novel_digest = Digest {
            signatures: novel,
            ..digest.clone()
        };
        let prompt = novel_digest.render(config.max_digest_bytes);
        println!(
        "prompt for 1M new records ({label}), 10,000 known issues: {} signatures ({} known, removed), digest text {} bytes (budget {} bytes)",
        digest.signatures.len(),
        known_sigs,
        prompt.len(),
        config.max_digest_bytes
    );
    }
}

fn main() {
    one_off_measurements();
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

    let known = KnownIssues::new(known_issues(100_000));
    let dedup = ThreeTierDeduplicator::new(DedupConfig::default());
    let n = 4242u64;
    let mut related = Finding::new(
        Classification::ALL[(n % 3) as usize],
        format!(
            "{} fails while {} the {} index",
            word(n),
            word(n * 31 + 7),
            word(n * 17 + 3)
        ),
        "summary",
    );
    related.source_files = vec![format!("src/{}/{}.py", word(n / 7), word(n))];
    let mut novel = Finding::new(
        Classification::ServerBug,
        "Completely different failure in the scheduler",
        "summary",
    );
    novel.error_type = Some("TimeoutError".into());
    let mut by_code = Finding::new(Classification::ALL[(n % 3) as usize], "x", "summary");
    by_code.error_codes = vec![code(n)];
    for (name, f) in [
        ("related_tier3", &related),
        ("new", &novel),
        ("error_code_tier1", &by_code),
    ] {
        let (d, why) = dedup.decide_explained(f, &known);
        println!(
            "dedup {name}: {d:?} ({} tier-3 candidates scored)",
            why.candidates
        );
    }
    let mut g = c.benchmark_group("dedup_against_100k_known_issues");
    for (name, f) in [
        ("related_tier3", &related),
        ("new", &novel),
        ("error_code_tier1", &by_code),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| black_box(dedup.decide_explained(black_box(f), &known)))
        });
    }
    g.finish();
    c.final_summary();
}
