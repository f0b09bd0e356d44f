//! Templater throughput on real-shaped log lines: the labelled Loghub-2k samples of 14 systems
//! (`selfmon-core/tests/data/loghub2k/`), their numbers varied so values differ from line to line,
//! both as content only (what logs.db holds) and as raw syslog-style lines with a header
//! (`Jun 14 15:16:01 host proc[pid]: ...`), which route past the timestamp.
//!
//! `cargo bench -p selfmon-benches --bench templates -- --warm-up-time 1 --measurement-time 3`
//! Whole-process figures (stdin to stdout) come from `selfmon templates`; see the template module
//! docs for how they were measured.

use criterion::{black_box, BenchmarkId, Criterion, Throughput};
use selfmon_core::template::Templater;

/// xorshift, so runs are repeatable.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The `query` field of every line of the sample files.
fn sample_messages() -> Vec<String> {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../selfmon-core/tests/data/loghub2k"
    );
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    paths.retain(|p| p.extension().is_some_and(|e| e == "jsonl"));
    paths.sort();
    let mut out = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(&p).unwrap_or_default();
        for line in text.lines() {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
                if let Some(q) = v["query"].as_str() {
                    out.push(q.to_string());
                }
            }
        }
    }
    assert!(!out.is_empty(), "no sample lines under {dir}");
    out
}

/// Standalone numbers of up to five digits replaced by others, so lines of one template differ
/// in their values as real lines do (IPs, paths and identifiers left as they are).
fn vary(line: &str, rng: &mut Rng) -> String {
    let b = line.as_bytes();
    let mut out = String::with_capacity(line.len() + 8);
    let mut i = 0;
    while i < b.len() {
        let boundary = |j: usize| {
            j >= b.len()
                || !(b[j].is_ascii_alphanumeric()
                    || matches!(b[j], b'.' | b':' | b'/' | b'-' | b'_'))
        };
        if b[i].is_ascii_digit() && (i == 0 || boundary(i - 1)) {
            let mut j = i;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            if j - i <= 5 && boundary(j) {
                out.push_str(&rng.below(100_000).to_string());
                i = j;
                continue;
            }
        }
        let len = line[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&line[i..i + len]);
        i += len;
    }
    out
}

fn lines(n: usize, raw: bool) -> Vec<String> {
    const MONTHS: &[&str] = &["Jan", "Feb", "Mar", "Jun", "Jul"];
    const HOSTS: &[&str] = &[
        "combo",
        "LabSZ",
        "tbird-admin1",
        "node-246",
        "mesos-master-1",
    ];
    const PROCS: &[&str] = &[
        "sshd",
        "kernel",
        "nova-compute",
        "hadoop",
        "zookeeper",
        "Proxifier",
    ];
    let samples = sample_messages();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    (0..n)
        .map(|_| {
            let content = vary(&samples[rng.below(samples.len() as u64) as usize], &mut rng);
            if raw {
                format!(
                    "{} {:2} {:02}:{:02}:{:02} {} {}[{}]: {content}",
                    MONTHS[rng.below(MONTHS.len() as u64) as usize],
                    1 + rng.below(28),
                    rng.below(24),
                    rng.below(60),
                    rng.below(60),
                    HOSTS[rng.below(HOSTS.len() as u64) as usize],
                    PROCS[rng.below(PROCS.len() as u64) as usize],
                    100 + rng.below(32_000),
                )
            } else {
                content
            }
        })
        .collect()
}

fn learn(c: &mut Criterion) {
    let mut group = c.benchmark_group("templater_learn_loghub_lines");
    for (name, raw) in [("content", false), ("raw_with_header", true)] {
        let input = lines(20_000, raw);
        group.throughput(Throughput::Elements(input.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &input, |b, input| {
            b.iter(|| {
                let mut t = Templater::new();
                for line in input {
                    black_box(t.learn(line));
                }
                t.cluster_count()
            })
        });
    }
    group.finish();
    let mut group = c.benchmark_group("templater_mask_loghub_lines");
    let input = lines(20_000, false);
    group.throughput(Throughput::Elements(input.len() as u64));
    group.bench_function("content", |b| {
        let t = Templater::new();
        b.iter(|| {
            for line in &input {
                black_box(t.mask(line));
            }
        })
    });
    group.finish();
}

criterion::criterion_group!(benches, learn);
criterion::criterion_main!(benches);
