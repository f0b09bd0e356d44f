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

#[tokio::test]
async fn three_tier_deduplicator_conforms() {
    use selfmon_core::config::DedupConfig;
    use selfmon_core::dedup::ThreeTierDeduplicator;
    conformance::deduplicator(&ThreeTierDeduplicator::default()).await;
    // Tier 3 at its loosest: one agreeing attribute makes a finding related.
    let loose = DedupConfig {
        related_threshold: 0.1,
        min_related_attributes: 1,
        ..DedupConfig::default()
    };
    conformance::deduplicator(&ThreeTierDeduplicator::new(loose)).await;
    // Through the blanket impls a host may hold it by.
    let shared: std::sync::Arc<dyn selfmon_core::Deduplicator> =
        std::sync::Arc::new(ThreeTierDeduplicator::default());
    conformance::deduplicator(&shared).await;
}

#[tokio::test]
async fn exact_title_deduplicator_conforms() {
    conformance::deduplicator(&selfmon_core::dedup::ExactTitleDeduplicator).await;
}

/// Deduplicators that each break one rule of the contract: the suite must catch every one.
mod broken_deduplicators {
    use async_trait::async_trait;
    use selfmon_core::conformance;
    use selfmon_core::dedup::{KnownIssues, ThreeTierDeduplicator};
    use selfmon_core::{DedupDecision, DedupTier, Deduplicator, Finding, KnownIssuesView, Result};

    /// Runs ThreeTier, then lets `corrupt` rewrite its decision.
    struct Corrupted(fn(DedupDecision, &View) -> DedupDecision);

    #[async_trait]
    impl Deduplicator for Corrupted {
        async fn decide(
            &self,
            finding: &Finding,
            fingerprint: &str,
            known: &(dyn KnownIssuesView + 'static),
        ) -> Result<DedupDecision> {
            let d = ThreeTierDeduplicator::default()
                .decide(finding, fingerprint, known)
                .await?;
            Ok((self.0)(d, known))
        }
    }

    type View = dyn KnownIssuesView + 'static;

    fn skip_closed(d: DedupDecision, _: &View) -> DedupDecision {
        match d {
            DedupDecision::Regression {
                issue,
                tier,
                reason,
            } => DedupDecision::Duplicate {
                issue,
                tier,
                score: 1.0,
                reason,
            },
            d => d,
        }
    }

    /// New findings become duplicates of the first open issue, whatever its classification.
    fn any_open(d: DedupDecision, known: &View) -> DedupDecision {
        match d {
            DedupDecision::New => known
                .issues()
                .find(|k| k.issue.state == selfmon_core::IssueState::Open)
                .map_or(DedupDecision::New, |k| DedupDecision::Duplicate {
                    issue: k.issue.number,
                    tier: DedupTier::Similarity,
                    score: 0.5,
                    reason: "anything open".into(),
                }),
            d => d,
        }
    }

    fn always_new(_: DedupDecision, _: &View) -> DedupDecision {
        DedupDecision::New
    }

    fn engine_view_only(d: DedupDecision, known: &View) -> DedupDecision {
        if known.as_any().is::<KnownIssues>() {
            d
        } else {
            DedupDecision::New
        }
    }

    fn invent_issue(d: DedupDecision, _: &View) -> DedupDecision {
        match d {
            DedupDecision::Duplicate {
                tier,
                score,
                reason,
                ..
            } => DedupDecision::Duplicate {
                issue: 999_999,
                tier,
                score,
                reason,
            },
            d => d,
        }
    }

    #[tokio::test]
    #[should_panic(expected = "a match against a closed issue is a Regression")]
    async fn one_that_silently_skips_closed_issues_fails_the_suite() {
        conformance::deduplicator(&Corrupted(skip_closed)).await;
    }

    #[tokio::test]
    #[should_panic(expected = "never matches across classifications")]
    async fn one_that_matches_across_classifications_fails_the_suite() {
        conformance::deduplicator(&Corrupted(any_open)).await;
    }

    #[tokio::test]
    #[should_panic(expected = "must be its Duplicate")]
    async fn one_that_files_everything_again_fails_the_suite() {
        conformance::deduplicator(&Corrupted(always_new)).await;
    }

    #[tokio::test]
    #[should_panic(expected = "behind another KnownIssuesView")]
    async fn one_that_only_understands_the_engines_view_fails_the_suite() {
        conformance::deduplicator(&Corrupted(engine_view_only)).await;
    }

    #[tokio::test]
    #[should_panic(expected = "which is not a known issue")]
    async fn one_that_names_an_unknown_issue_fails_the_suite() {
        conformance::deduplicator(&Corrupted(invent_issue)).await;
    }
}
