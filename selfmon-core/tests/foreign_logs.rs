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
