use chrono::{Duration, Utc};

use crate::model::{Classification, IssueDraft, IssueState, Marker};
use crate::redact::Redactor;
use crate::traits::IssueTracker;

fn draft(fp: &str, title: &str) -> IssueDraft {
    let marker = Marker::for_fingerprint(fp);
    IssueDraft {
        title: Redactor::shared().redacted(title),
        body: Redactor::shared().redacted(&format!(
            "## Summary\n\nconformance\n\n{}\n",
            marker.as_str()
        )),
        labels: vec!["selfmon".into(), "bug".into()],
        classification: Classification::ServerBug,
        fingerprint: fp.to_string(),
        marker,
    }
}

/// Checks an [`IssueTracker`] that starts with no selfmon issues. It files two issues.
pub async fn issue_tracker(tracker: &dyn IssueTracker) {
    assert!(
        tracker.list_issues(None).await.expect("list").is_empty(),
        "a fresh tracker lists no selfmon issues"
    );
    let a = tracker
        .create_issue(&draft("aa01", "[BUG] conformance one"))
        .await
        .expect("create a");
    let b = tracker
        .create_issue(&draft("bb02", "[BUG] conformance two"))
        .await
        .expect("create b");
    assert_ne!(a.number, b.number, "issue numbers are unique");
    assert_eq!(a.state, IssueState::Open);
    assert!(!a.url.is_empty(), "an issue has a link");

    let listed = tracker.list_issues(None).await.expect("list");
    assert_eq!(listed.len(), 2, "both issues are listed");
    let la = listed
        .iter()
        .find(|t| t.issue.number == a.number)
        .expect("a listed");
    assert_eq!(la.title, "[BUG] conformance one");
    assert_eq!(
        la.marker.as_ref().map(Marker::fingerprint),
        Some("aa01"),
        "the marker is found in the listed body"
    );

    let found = tracker
        .find_by_marker(&Marker::for_fingerprint("bb02"))
        .await
        .expect("find");
    assert_eq!(
        found.map(|r| r.number),
        Some(b.number),
        "find_by_marker sees an issue created moments ago"
    );
    assert!(tracker
        .find_by_marker(&Marker::for_fingerprint("cc03"))
        .await
        .expect("find none")
        .is_none());

    // An issue selfmon filed is found by number whatever its labels (unless the tracker cannot
    // look issues up by number at all); a number the tracker never gave is `NotFound`.
    if let Some(got) = tracker.get_issue(a.number).await.expect("get_issue") {
        assert_eq!(got.issue.number, a.number);
        assert_eq!(got.issue.state, IssueState::Open);
        assert_eq!(got.title, "[BUG] conformance one");
        assert_eq!(got.marker.as_ref().map(Marker::fingerprint), Some("aa01"));
        let missing = tracker.get_issue(999_999).await;
        assert!(
            matches!(missing, Err(crate::Error::NotFound { .. })),
            "looking up a missing issue is Error::NotFound: {missing:?}"
        );
    }

    tracker
        .comment(a.number, &Redactor::shared().redacted("a comment"))
        .await
        .expect("comment");
    // The engine tells a missing issue (someone deleted it) from a failing tracker by this kind.
    let missing = tracker
        .comment(999_999, &Redactor::shared().redacted("x"))
        .await;
    assert!(
        matches!(missing, Err(crate::Error::NotFound { .. })),
        "commenting on a missing issue is Error::NotFound: {missing:?}"
    );
    let missing = tracker.reopen(999_999).await;
    assert!(
        matches!(missing, Err(crate::Error::NotFound { .. })),
        "reopening a missing issue is Error::NotFound: {missing:?}"
    );
    tracker
        .reopen(a.number)
        .await
        .expect("reopening an open issue is harmless");
    let since = Utc::now() - Duration::days(1);
    assert_eq!(
        tracker
            .list_issues(Some(since))
            .await
            .expect("list since")
            .len(),
        2
    );
}
