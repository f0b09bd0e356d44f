//! Shared helpers for the integration tests.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Mutex;

use chrono::{DateTime, TimeZone, Utc};
use selfmon_core::redact::Redactor;
use selfmon_core::{
    Classification, FiledIssue, FilingIntent, Finding, IssueDraft, IssueRef, IssueState, Marker,
    ScanId,
};
use selfmon_sqlite::{SqliteStateStore, StateStoreOptions};

pub fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_750_000_000 + secs, 0).unwrap()
}

pub fn open_store(path: &Path) -> SqliteStateStore {
    SqliteStateStore::open(path, StateStoreOptions::default()).unwrap()
}

/// A filing intent whose fingerprint is derived from `seed`.
pub fn intent(id: &str, seed: u64) -> FilingIntent {
    let fingerprint = format!("{seed:064x}");
    let finding = Finding::new(
        Classification::ServerBug,
        format!("problem {seed}"),
        "summary",
    );
    FilingIntent {
        intent_id: id.to_string(),
        scan_id: ScanId("scan".into()),
        draft: IssueDraft {
            title: Redactor::shared().redacted(&format!("[BUG] problem {seed}")),
            body: Redactor::shared().redacted(&format!(
                "body\n{}",
                Marker::for_fingerprint(&fingerprint).as_str()
            )),
            labels: vec!["bug".into()],
            classification: Classification::ServerBug,
            fingerprint: fingerprint.clone(),
            marker: Marker::for_fingerprint(&fingerprint),
        },
        finding: Redactor::shared().redacted_finding(finding),
        templates: vec![format!("template {seed}")],
        occurrences: 1,
        created_at: t(seed as i64),
        backlog_entry_id: None,
    }
}

/// The issue row the engine records for a filed intent.
pub fn row_for(i: &FilingIntent, issue: IssueRef) -> FiledIssue {
    FiledIssue::from_intent(i, issue, i.created_at)
}

/// A tracker that outlives the process (like GitHub): issues with bodies, numbered from 1.
#[derive(Debug, Default)]
pub struct FakeTracker {
    issues: Mutex<Vec<(u64, String)>>,
}

impl FakeTracker {
    pub fn create(&self, draft: &IssueDraft) -> IssueRef {
        let mut issues = self.issues.lock().unwrap();
        let number = issues.len() as u64 + 1;
        issues.push((number, draft.body.to_string()));
        IssueRef {
            number,
            url: format!("https://tracker.invalid/{number}"),
            state: IssueState::Open,
        }
    }

    pub fn find_by_marker(&self, marker: &Marker) -> Option<IssueRef> {
        self.issues
            .lock()
            .unwrap()
            .iter()
            .find(|(_, body)| body.contains(marker.as_str()))
            .map(|(number, _)| IssueRef {
                number: *number,
                url: format!("https://tracker.invalid/{number}"),
                state: IssueState::Open,
            })
    }

    pub fn issue_count(&self) -> usize {
        self.issues.lock().unwrap().len()
    }
}
