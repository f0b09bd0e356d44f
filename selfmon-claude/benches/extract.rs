//! Speed of finding the result object in CLI output: a clean answer, and one buried in noise.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use selfmon_claude::cli_result::CliResult;
use selfmon_claude::extract::extract_object;

fn result_object(findings: usize) -> String {
    let finding = r#"{"classification":"server_bug","title":"Sync crashes","summary":"It crashes {sometimes} \"quoted\".","evidence_record_ids":[1,2,3],"signature_ids":["abc"],"error_codes":["GIT-SYNC-001"],"source_files":["src/a.py"]}"#;
    let list = vec![finding; findings].join(",");
    format!(
        r#"{{"type":"result","subtype":"success","is_error":false,"num_turns":2,"structured_output":{{"findings":[{list}]}}}}"#
    )
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("extract_result");
    let clean = result_object(100);
    group.throughput(Throughput::Bytes(clean.len() as u64));
    group.bench_function("clean_100_findings", |b| {
        b.iter(|| extract_object::<CliResult>(&clean, |r| r.kind == "result").map(|r| r.num_turns))
    });
    let noise_line =
        "\u{1b}[33mWarning:\u{1b}[0m telemetry {\"event\":\"tick\",\"n\":1} [x] progress\n";
    let noisy = format!("{}{}\n", noise_line.repeat(50_000), result_object(100));
    group.throughput(Throughput::Bytes(noisy.len() as u64));
    group.bench_function("noisy_4mb_preamble", |b| {
        b.iter(|| extract_object::<CliResult>(&noisy, |r| r.kind == "result").map(|r| r.num_turns))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
