//! Redaction throughput on ordinary log text (the common case: nothing to redact) and on text
//! dense with secrets, beside the digest of the same ordinary text: the engine's budget is that
//! redaction costs at most 20 % of digest time on ordinary text.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use selfmon::digest::DigestBuilder;
use selfmon::redact::Redactor;
use selfmon::{Level, LogRecord, SelfMonitoringConfig};

fn ordinary_text() -> String {
    let mut s = String::new();
    let mut i: u64 = 0;
    while s.len() < 4 * 1024 * 1024 {
        i += 1;
        let line = match i % 10 {
            0 => format!(
                "GET /api/repos/alpha/files?limit=100 200 in {}ms\n",
                i % 997
            ),
            1 => format!(
                "[GIT-SYNC-001] git fetch failed for /srv/golden/repo{}: exit status 128\n",
                i % 50
            ),
            2 => format!(
                "job {} finished in {}.{}s (indexed {} files)\n",
                i,
                i % 9,
                i % 1000,
                i % 5000
            ),
            3 => "token expired for user u42; refresh required\n".to_string(),
            4 => format!(
                "claude usage: input_tokens: {} output_tokens: {}\n",
                i % 9000,
                i % 3000
            ),
            5 => format!(
                "clone git@github.com:org/repo{}.git into /var/lib/cidx/repos\n",
                i % 40
            ),
            6 => format!(
                "slow query took {}ms: SELECT * FROM logs WHERE id > {} LIMIT 10000\n",
                i % 800,
                i
            ),
            7 => format!(
                "[DB-LOCK-003] database is locked after {} retries\n",
                i % 10
            ),
            8 => format!(
                "watcher: file /srv/repos/r/src/main.rs changed (inode {})\n",
                i
            ),
            _ => format!(
                "health check ok: {} jobs queued, {} running\n",
                i % 10,
                i % 3
            ),
        };
        s.push_str(&line);
    }
    s
}

fn secret_text() -> String {
    let mut s = String::new();
    let mut i = 0;
    while s.len() < 1024 * 1024 {
        i += 1;
        s.push_str(&format!(
            "login user=admin password=hunter{i} token ghp_abcdefghijklmnopqrstuvwxyz01234567{} mail bob{i}@example.com\n",
            i % 10
        ));
    }
    s
}

fn bench(c: &mut Criterion) {
    let red = Redactor::new();
    let ordinary = ordinary_text();
    let lines: Vec<&str> = ordinary.lines().collect();
    let mut g = c.benchmark_group("redact");
    g.sample_size(20);
    g.throughput(Throughput::Bytes(ordinary.len() as u64));
    g.bench_function("ordinary_4MiB_per_line", |b| {
        b.iter(|| {
            let mut changed = 0usize;
            for l in &lines {
                if let std::borrow::Cow::Owned(_) = red.redact(l) {
                    changed += 1;
                }
            }
            changed
        })
    });
    g.bench_function("ordinary_4MiB_as_one_block", |b| {
        b.iter(|| red.redact(&ordinary).len())
    });
    let records: Vec<LogRecord> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| LogRecord {
            timestamp: "2026-01-01T00:00:00Z".into(),
            source: Some("app.server".into()),
            ..LogRecord::new(i as i64 + 1, Level::Error, *l)
        })
        .collect();
    let config = SelfMonitoringConfig::default();
    g.bench_function("digest_of_the_same_4MiB", |b| {
        b.iter(|| {
            let mut d = DigestBuilder::new(&config).expect("default config is valid");
            for r in &records {
                d.push(r);
            }
            d.finish().signatures.len()
        })
    });
    // What a scan of the same text actually redacts: the digest takes samples from at most
    // `SAMPLE_WINDOW` records per signature (an upper bound: it stops at three distinct samples),
    // and egress redacts each signature's template and samples and the rendered digest once. The
    // per-line figures above redact every record, which no scan does.
    let digest = {
        let mut d = DigestBuilder::new(&config).expect("default config is valid");
        for r in &records {
            d.push(r);
        }
        d.finish()
    };
    let sampled: Vec<&str> = lines
        .iter()
        .take(digest.signatures.len() * selfmon::digest::SAMPLE_WINDOW as usize)
        .copied()
        .collect();
    g.bench_function("engine_redaction_for_the_same_4MiB", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for l in &sampled {
                n += red.redact(l).len();
            }
            for sig in &digest.signatures {
                n += red.redact(&sig.template).len();
                for m in &sig.sample_messages {
                    n += red.redact(m).len();
                }
            }
            n + red.redact(&digest.render(64 * 1024)).len()
        })
    });
    println!(
        "engine redaction bench: {} signatures, {} sampled records of {}",
        digest.signatures.len(),
        sampled.len(),
        records.len()
    );
    let secrets = secret_text();
    g.throughput(Throughput::Bytes(secrets.len() as u64));
    g.bench_function("secret_dense_1MiB", |b| {
        b.iter(|| red.redact(&secrets).len())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
