//! Measured redaction quality of the redactor alone: every planted secret is redacted, and ordinary
//! log lines are (almost) never changed. The whole-engine version of the first promise is in
//! `redaction_engine.rs`. The secrets are generated (see `corpus/`); none is a real credential.

mod corpus;

use std::collections::BTreeSet;

use selfmon_core::redact::Redactor;

#[test]
fn every_planted_secret_is_redacted() {
    let planted = corpus::secrets(0x5EED_1234_ABCD_0001, 1_500);
    let kinds: BTreeSet<&str> = planted.iter().map(|p| p.kind).collect();
    assert!(
        planted.len() >= 1_000,
        "corpus has {} secrets",
        planted.len()
    );
    assert!(kinds.len() >= 30, "corpus has {} kinds", kinds.len());
    let red = Redactor::new();
    let mut missed = Vec::new();
    for p in &planted {
        let out = red.redact_string(&p.line);
        if corpus::leaks(&out, &p.secret) || !out.contains("[REDACTED:") {
            missed.push(format!("{}: {:?} -> {:?}", p.kind, p.line, out));
        }
    }
    println!(
        "redaction corpus: {} secrets of {} kinds, {} missed",
        planted.len(),
        kinds.len(),
        missed.len()
    );
    assert!(
        missed.is_empty(),
        "missed {}:\n{}",
        missed.len(),
        missed.join("\n")
    );
}

#[test]
fn ordinary_log_lines_are_rarely_changed() {
    let lines = corpus::ordinary(0x0DD_BA11_0000_0007, 20_000);
    let red = Redactor::new();
    let changed: Vec<(&String, String)> = lines
        .iter()
        .filter_map(|l| {
            let out = red.redact_string(l);
            (out != *l).then_some((l, out))
        })
        .collect();
    let ratio = changed.len() as f64 / lines.len() as f64;
    println!(
        "ordinary lines changed by redaction: {} of {} ({:.3}%)",
        changed.len(),
        lines.len(),
        ratio * 100.0
    );
    for (l, o) in changed.iter().take(10) {
        println!("  changed: {l:?} -> {o:?}");
    }
    assert!(
        ratio <= 0.005,
        "{:.3}% of ordinary lines changed",
        ratio * 100.0
    );
}
