//! Logs as other runtimes and logging libraries write them, end to end through the engine with the
//! offline runner: crash reports of Java, .NET and Go, and JSON-structured logs.

mod common;

use common::rig;
use selfmon_core::{Level, ScanTrigger};

const JAVA_CRASH: &str = "java.lang.IllegalStateException: pool exhausted\n\tat com.acme.Pool.get(Pool.java:42)\n\tat com.acme.Api.handle(Api.java:7)";
const DOTNET_CRASH: &str = "System.InvalidOperationException: Sequence contains no elements\n   at System.Linq.Enumerable.First(IEnumerable source)\n   at Acme.Orders.Load() in /src/Orders.cs:line 12";
const GO_CRASH: &str = "panic: runtime error: invalid memory address or nil pointer dereference\n[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x4a1f2c]\n\ngoroutine 1 [running]:\nmain.main()\n\t/src/main.go:12 +0x1c";

#[tokio::test]
async fn a_single_java_dotnet_and_go_crash_logged_at_error_is_each_filed() {
    let r = rig();
    r.logs.log(Level::Error, "java.app", JAVA_CRASH);
    r.logs.log(Level::Error, "dotnet.app", DOTNET_CRASH);
    r.logs.log(Level::Error, "go.app", GO_CRASH);
    let report = r.monitor.scan(ScanTrigger::Manual).await.unwrap();
    let titles: Vec<String> = r.tracker.issues().into_iter().map(|i| i.title).collect();
    assert_eq!(report.record.issues_created, 3, "filed: {titles:?}");
    for expected in [
        "pool exhausted",
        "Sequence contains no elements",
        "nil pointer",
    ] {
        assert!(
            titles.iter().any(|t| t.contains(expected)),
            "no issue for {expected:?} in {titles:?}"
        );
    }
}

/// zap-style JSON records: the keys are the same for every problem, the `msg` is the problem.
fn zap(level: &str, caller: &str, msg: &str) -> String {
    format!(r#"{{"level":"{level}","ts":1733580000.123,"caller":"{caller}","msg":"{msg}"}}"#)
}

#[tokio::test]
async fn json_logged_problems_with_the_same_keys_are_each_analysed_and_filed() {
    let r = rig();
    for _ in 0..5 {
        r.logs.log(
            Level::Error,
            "api",
            &zap(
                "error",
                "db/pool.go:88",
                "dial tcp 10.0.0.5:5432: connect: connection refused",
            ),
        );
    }
    let first = r.monitor.scan(ScanTrigger::Manual).await.unwrap();
    assert_eq!(first.record.issues_created, 1);
    for _ in 0..5 {
        r.logs.log(
            Level::Critical,
            "api",
            &zap(
                "fatal",
                "store/disk.go:12",
                "no space left on device: /var/lib/data",
            ),
        );
        r.logs.log(
            Level::Critical,
            "api",
            &zap(
                "fatal",
                "auth/jwt.go:40",
                "signing key expired, all logins fail",
            ),
        );
    }
    let second = r.monitor.scan(ScanTrigger::Manual).await.unwrap();
    let titles: Vec<String> = r.tracker.issues().into_iter().map(|i| i.title).collect();
    assert_eq!(
        (
            second.record.known_signatures,
            second.record.novel_signatures
        ),
        (0, 2),
        "both new problems are new: {titles:?}"
    );
    assert_eq!(second.record.issues_created, 2, "filed: {titles:?}");
    for expected in ["connection refused", "no space left", "signing key expired"] {
        assert!(
            titles.iter().any(|t| t.contains(expected)),
            "no issue for {expected:?} in {titles:?}"
        );
    }
    // The same problems again are known, not filed twice.
    r.logs.log(
        Level::Critical,
        "api",
        &zap(
            "fatal",
            "auth/jwt.go:40",
            "signing key expired, all logins fail",
        ),
    );
    let third = r.monitor.scan(ScanTrigger::Manual).await.unwrap();
    assert_eq!(third.record.known_signatures, 1);
    assert_eq!(r.tracker.issues().len(), 3);
}

/// A Java stack trace shipped one line per record (a line-based shipper, syslog).
fn log_java_trace(logs: &selfmon_core::testing::MemoryLogSource, lines: &[&str]) {
    for line in lines {
        logs.log(Level::Error, "com.acme", line);
    }
}

#[tokio::test]
async fn a_java_trace_logged_one_line_per_record_files_the_exception_and_its_frames_hide_no_later_crash(
) {
    let r = rig();
    let npe = [
        r#"java.lang.NullPointerException: Cannot invoke "Order.getId()" because "order" is null"#,
        "\tat com.acme.billing.InvoiceService.create(InvoiceService.java:142)",
        "\tat com.acme.billing.InvoiceController.post(InvoiceController.java:57)",
        "\tat org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:897)",
    ];
    // The same crash twice: its frames alone are enough records to look like a recurring error.
    log_java_trace(&r.logs, &npe);
    log_java_trace(&r.logs, &npe);
    let first = r.monitor.scan(ScanTrigger::Manual).await.unwrap();
    let titles: Vec<String> = r.tracker.issues().into_iter().map(|i| i.title).collect();
    assert_eq!(first.record.issues_created, 1, "filed: {titles:?}");
    assert!(
        titles[0].contains("NullPointerException"),
        "the exception is filed, not a frame: {titles:?}"
    );
    log_java_trace(
        &r.logs,
        &[
            "java.lang.OutOfMemoryError: Java heap space",
            "\tat com.acme.cache.LruCache.put(LruCache.java:77)",
            "\tat com.acme.cache.Loader.load(Loader.java:12)",
        ],
    );
    let second = r.monitor.scan(ScanTrigger::Manual).await.unwrap();
    let titles: Vec<String> = r.tracker.issues().into_iter().map(|i| i.title).collect();
    assert_eq!(
        second.record.known_signatures, 0,
        "the frames of another crash are not known: {titles:?}"
    );
    assert_eq!(second.record.issues_created, 1, "filed: {titles:?}");
    assert!(
        titles.iter().any(|t| t.contains("OutOfMemoryError")),
        "the new crash is filed: {titles:?}"
    );
}

#[tokio::test]
async fn the_frames_of_a_crash_read_with_it_are_never_shown_to_the_runner_as_problems() {
    // Every crash's frames share one template (`at <*>`) that no issue may explain, so before,
    // they were "novel" on every scan and the model was asked about them again and again.
    let r = rig();
    for scan in 0..2 {
        let exception = format!("java.lang.IllegalStateException: ledger {scan} closed");
        log_java_trace(
            &r.logs,
            &[
                exception.as_str(),
                "\tat com.acme.ledger.Ledger.post(Ledger.java:41)",
                "\tat com.acme.api.Api.handle(Api.java:12)",
                "\t... 7 more",
            ],
        );
        let report = r.monitor.scan(ScanTrigger::Manual).await.unwrap();
        let sent = report.digest_sent.clone().unwrap_or_default();
        assert!(
            !sent.contains("at com.acme") && !sent.contains("more"),
            "scan {scan}: frames were shown to the runner: {sent}"
        );
        let frames: Vec<_> = report
            .signatures
            .iter()
            .filter(|s| {
                matches!(&s.fate, selfmon_core::SignatureFate::Ignored { rule }
                    if rule == selfmon_core::digest::STACK_FRAME_RULE)
            })
            .collect();
        assert_eq!(frames.len(), 2, "scan {scan}: {:?}", report.signatures);
        assert_eq!(report.record.records_read, 4, "every record is read");
        assert_eq!(report.record.ignored_signatures, 2);
        if scan == 0 {
            assert!(sent.contains("IllegalStateException"), "{sent}");
        }
    }
}
