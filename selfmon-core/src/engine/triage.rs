//! Stage 2, triage: what is known already, and which of the digest's signatures known issues
//! explain (the deduplicator decides) — those are counted, not analysed again.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use crate::dedup::KnownIssues;
use crate::digest::Signature;
use crate::error::Result;
use crate::model::{IssueState, KnownIssue, SignatureFate};
use crate::traits::{DedupTier, Deduplicator, IssueTracker, SignatureMatch, StateStore};

/// Filed issues from the store, with states from the tracker; tracker issues that carry
/// selfmon's marker but that the store lacks are added too. Issue states the tracker changed are
/// written back to the store.
pub(crate) async fn known_issues(
    store: &dyn StateStore,
    tracker: &dyn IssueTracker,
    closed_since: DateTime<Utc>,
) -> Result<KnownIssues> {
    let filed = store.filed_issues().await?;
    let tracked = tracker.list_issues(Some(closed_since)).await?;
    let tracked_by_number: HashMap<u64, &crate::model::TrackedIssue> =
        tracked.iter().map(|t| (t.issue.number, t)).collect();
    let mut known = Vec::with_capacity(filed.len());
    let mut seen = HashSet::new();
    for row in &filed {
        let mut k = row.to_known();
        match tracked_by_number.get(&row.issue.number) {
            Some(t) => {
                if t.issue.state != row.issue.state {
                    store
                        .set_issue_state(row.issue.number, t.issue.state)
                        .await?;
                }
                k.issue.state = t.issue.state;
            }
            // Not listed, though the store last saw it open: closed (before the window) or
            // deleted, or still open without selfmon's label (a person removed it, or it could
            // not be created). Only the tracker can tell; taking an open issue for closed would
            // make every recurrence a regression, commented on (and reopened) every scan.
            None if row.issue.state == IssueState::Open => {
                let state = unlisted_state(tracker, row.issue.number).await?;
                if state != row.issue.state {
                    store.set_issue_state(row.issue.number, state).await?;
                }
                k.issue.state = state;
            }
            // Not listed and recorded closed: closed before the window. A recurrence is a
            // regression (and reopening it records it open, so it is looked up again).
            None => k.issue.state = IssueState::Closed,
        }
        seen.insert(row.issue.number);
        known.push(k);
    }
    for t in &tracked {
        if seen.contains(&t.issue.number) {
            continue;
        }
        if let Some(m) = &t.marker {
            known.push(KnownIssue {
                issue: t.issue.clone(),
                title: t.title.clone(),
                // From what selfmon recorded in the body: title prefixes are configurable.
                classification: t
                    .classification
                    .unwrap_or_else(|| classification_from_title(&t.title)),
                error_codes: crate::model::ErrorCode::extract_all(&t.title),
                fingerprint: m.fingerprint().to_string(),
                source_files: Vec::new(),
                error_type: None,
                templates: Vec::new(),
                signature_ids: Vec::new(),
            });
        }
    }
    Ok(KnownIssues::new(known))
}

/// The state of an issue the store recorded as open that the tracker's listing left out.
async fn unlisted_state(tracker: &dyn IssueTracker, number: u64) -> Result<IssueState> {
    match tracker.get_issue(number).await {
        Ok(Some(t)) => Ok(t.issue.state),
        // The tracker cannot look it up: as before `get_issue` existed, taken for closed.
        Ok(None) => Ok(IssueState::Closed),
        Err(
            e @ crate::Error::NotFound {
                component: crate::Component::IssueTracker,
                ..
            },
        ) => {
            tracing::warn!(issue = number, error = %e, "the issue tracker no longer has this issue; recording it closed");
            Ok(IssueState::Closed)
        }
        Err(e) => Err(e),
    }
}

/// The classification of an issue whose body recorded none (one a person filed with selfmon's
/// marker): by its title's default prefix, else a server bug.
fn classification_from_title(title: &str) -> crate::Classification {
    crate::Classification::ALL
        .into_iter()
        .find(|c| title.trim_start().starts_with(c.title_prefix()))
        .unwrap_or(crate::Classification::ServerBug)
}

/// What triage needs.
pub(crate) struct TriageInput<'a> {
    pub signatures: &'a [Signature],
    pub known: &'a KnownIssues,
    pub dedup: &'a dyn Deduplicator,
}

/// A known signature of a closed issue that recurred.
pub(crate) struct Recurred {
    pub issue: u64,
    pub tier: DedupTier,
    pub signature: Signature,
}

/// What triage decided.
pub(crate) struct Triage {
    /// Each input signature's fate, in input order.
    pub fates: Vec<SignatureFate>,
    /// Signatures no known issue explains: they go to the analysis.
    pub novel: Vec<Signature>,
    /// Records of known signatures, per open issue.
    pub occurrences: HashMap<u64, u64>,
    /// Known signatures of closed issues: regressions.
    pub recurred: Vec<Recurred>,
}

/// Asks the deduplicator, per signature, whether a known issue explains it.
pub(crate) async fn triage(input: TriageInput<'_>) -> Result<Triage> {
    let TriageInput {
        signatures,
        known,
        dedup,
    } = input;
    let mut out = Triage {
        fates: Vec::with_capacity(signatures.len()),
        novel: Vec::new(),
        occurrences: HashMap::new(),
        recurred: Vec::new(),
    };
    let closed = |issue: u64| {
        known
            .get(issue)
            .is_some_and(|k| k.issue.state == IssueState::Closed)
    };
    for sig in signatures {
        let fate = match dedup.explain_signature(sig, known).await? {
            Some(SignatureMatch { issue, tier }) if closed(issue) => {
                out.recurred.push(Recurred {
                    issue,
                    tier,
                    signature: sig.clone(),
                });
                SignatureFate::Known {
                    issue,
                    tier,
                    closed: true,
                }
            }
            Some(SignatureMatch { issue, tier }) => {
                *out.occurrences.entry(issue).or_default() += sig.count;
                SignatureFate::Known {
                    issue,
                    tier,
                    closed: false,
                }
            }
            None => {
                out.novel.push(sig.clone());
                SignatureFate::Analysed
            }
        };
        out.fates.push(fate);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DedupConfig;
    use crate::dedup::ThreeTierDeduplicator;
    use crate::model::{Classification, ErrorCode, IssueRef};

    fn sig(id: &str, code: Option<&str>, count: u64) -> Signature {
        Signature {
            id: id.into(),
            level: crate::model::Level::Error,
            source: None,
            template: format!("{id} failed"),
            template_fingerprint: id.into(),
            error_codes: code
                .into_iter()
                .map(|c| ErrorCode::parse(c).unwrap())
                .collect(),
            count,
            first_id: 1,
            last_id: 1,
            first_timestamp: String::new(),
            last_timestamp: String::new(),
            sample_ids: vec![1],
            sample_messages: vec![],
            distinct_correlation_ids: 0,
            repeated: false,
            has_traceback: false,
            nodes: vec![],
        }
    }

    fn issue(number: u64, code: &str, state: IssueState) -> KnownIssue {
        KnownIssue {
            issue: IssueRef {
                number,
                url: String::new(),
                state,
            },
            title: format!("[BUG] {code}"),
            classification: Classification::ServerBug,
            error_codes: vec![ErrorCode::parse(code).unwrap()],
            fingerprint: format!("fp{number}"),
            source_files: vec![],
            error_type: None,
            templates: vec![],
            signature_ids: vec![],
        }
    }

    #[tokio::test]
    async fn known_signatures_are_counted_or_recur_and_the_rest_is_novel() {
        let known = KnownIssues::new([
            issue(1, "GIT-SYNC-001", IssueState::Open),
            issue(2, "DB-LOCK-001", IssueState::Closed),
        ]);
        let signatures = [
            sig("a", Some("GIT-SYNC-001"), 4),
            sig("b", Some("DB-LOCK-001"), 2),
            sig("c", None, 1),
        ];
        let t = triage(TriageInput {
            signatures: &signatures,
            known: &known,
            dedup: &ThreeTierDeduplicator::new(DedupConfig::default()),
        })
        .await
        .unwrap();
        assert_eq!(t.occurrences, HashMap::from([(1, 4)]));
        assert_eq!(t.recurred.len(), 1);
        assert_eq!(
            (t.recurred[0].issue, t.recurred[0].signature.id.as_str()),
            (2, "b")
        );
        assert_eq!(t.novel.len(), 1);
        assert_eq!(t.novel[0].id, "c");
        assert_eq!(
            t.fates,
            [
                SignatureFate::Known {
                    issue: 1,
                    tier: DedupTier::ErrorCode,
                    closed: false
                },
                SignatureFate::Known {
                    issue: 2,
                    tier: DedupTier::ErrorCode,
                    closed: true
                },
                SignatureFate::Analysed,
            ]
        );
    }
}
