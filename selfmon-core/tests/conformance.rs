//! The in-memory adapters pass the shared conformance suites.

use selfmon_core::conformance;
use selfmon_core::testing::{MemoryIssueTracker, MemoryLogSource, MemoryStateStore};
use selfmon_core::Level;

#[tokio::test]
async fn memory_log_source_conforms() {
    let source = MemoryLogSource::new();
    let records = conformance::sample_records();
    for r in &records {
        source.append(r.clone());
    }
    conformance::log_source(&source, &records, Level::Warning).await;
    let all = MemoryLogSource::with_min_level(Level::Debug);
    for r in &records {
        all.append(r.clone());
    }
    conformance::log_source(&all, &records, Level::Debug).await;
}

#[tokio::test]
async fn memory_state_store_conforms() {
    conformance::state_store(&MemoryStateStore::new()).await;
}

#[tokio::test]
async fn memory_issue_tracker_conforms() {
    conformance::issue_tracker(&MemoryIssueTracker::new()).await;
}

#[tokio::test]
async fn memory_template_memory_conforms() {
    conformance::template_memory(&MemoryStateStore::new()).await;
}

#[tokio::test]
async fn memory_job_queue_conforms() {
    conformance::job_queue(selfmon_core::testing::MemoryJobQueue::start).await;
}

#[tokio::test]
async fn offline_runner_conforms() {
    conformance::analysis_runner(&selfmon_core::offline::OfflineRunner).await;
}

#[tokio::test]
async fn scripted_runner_conforms() {
    use selfmon_core::AnalysisRunner;
    // Scripted with the answer the offline rules give the suite's request: real findings.
    let answer = selfmon_core::offline::OfflineRunner
        .analyze(&conformance::analysis_request())
        .await
        .unwrap();
    assert!(
        !answer.findings.is_empty(),
        "the suite's request has findings to make"
    );
    conformance::analysis_runner(&selfmon_core::testing::ScriptedRunner::always(answer)).await;
}
