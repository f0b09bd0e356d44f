//! Stage 2, triage: what is known already, and which of the digest's signatures known issues
//! explain (the deduplicator decides) — those are counted, not analysed again.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use crate::dedup::KnownIssues;
use crate::digest::Signature;
use crate::error::Result;
use crate::model::{CloseReason, IssueState, KnownIssue, SignatureFate, TrackedIssue};
use crate::traits::{DedupTier, Deduplicator, IssueTracker, SignatureMatch, StateStore};

/// Filed issues from the store, with states from the tracker; tracker issues that carry
/// selfmon's marker but that the store lacks are added too. Issue states the tracker changed are
/// written back to the store.
///
/// Also returns whose issues the tracker's numbers are (see [`Ownership`]).
pub(crate) async fn known_issues(
    store: &dyn StateStore,
    tracker: &dyn IssueTracker,
    closed_since: DateTime<Utc>,
) -> Result<(KnownIssues, Ownership)> {
    let filed = store.filed_issues().await?;
    let tracked = tracker.list_issues(Some(closed_since)).await?;
    let tracked_by_number: HashMap<u64, &crate::model::TrackedIssue> =
        tracked.iter().map(|t| (t.issue.number, t)).collect();
    let mut known = Vec::with_capacity(filed.len());
    let mut seen = HashSet::new();
    let mut foreign = HashSet::new();
    let mut unverified = HashMap::new();
    let mut gone = HashSet::new();
    let mut closures = HashMap::new();
    let mut notices = Vec::new();
    // Locked conversations: the tracker refuses comments on them (review4 F12).
    let locked: HashSet<u64> = tracked
        .iter()
        .filter(|t| t.locked)
        .map(|t| t.issue.number)
        .collect();
    for row in &filed {
        let mut k = row.to_known();
        match tracked_by_number.get(&row.issue.number) {
            Some(t) if !is_selfmons(t, &k, &mut notices) => {
                foreign.insert(row.issue.number);
            }
            Some(t) => {
                closures.insert(row.issue.number, Closure::of(t, row.regression_noted_for));
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
                let state = match unlisted_state(tracker, &k, &mut notices).await? {
                    Unlisted::State(state, closure) => {
                        closures.insert(
                            row.issue.number,
                            Closure {
                                noted_for: row.regression_noted_for,
                                ..closure
                            },
                        );
                        state
                    }
                    Unlisted::Foreign => {
                        foreign.insert(row.issue.number);
                        row.issue.state
                    }
                    Unlisted::Gone => {
                        gone.insert(row.issue.number);
                        IssueState::Closed
                    }
                };
                if state != row.issue.state {
                    store.set_issue_state(row.issue.number, state).await?;
                }
                k.issue.state = state;
            }
            // Not listed and recorded closed: closed before the window. A recurrence is a
            // regression (and reopening it records it open, so it is looked up again).
            None => {
                k.issue.state = IssueState::Closed;
                closures.insert(
                    row.issue.number,
                    Closure {
                        noted_for: row.regression_noted_for,
                        ..Closure::default()
                    },
                );
                unverified.insert(row.issue.number, k.clone());
            }
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
    Ok((
        KnownIssues::new(known),
        Ownership {
            foreign,
            unverified,
            gone,
            notices,
            locked,
            closures,
        },
    ))
}

/// What the scan knows of a filed issue's current closure: when and why the tracker says it was
/// closed, and whether selfmon already reported a recurrence of it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Closure {
    /// The tracker's closing time, when it said.
    pub closed_at: Option<DateTime<Utc>>,
    /// The tracker's reason, when it said.
    pub reason: Option<CloseReason>,
    /// The store's [`crate::model::FiledIssue::regression_noted_for`].
    pub noted_for: Option<DateTime<Utc>>,
}

impl Closure {
    /// The closure of the tracker's issue `t`, with what the store noted.
    pub fn of(t: &TrackedIssue, noted_for: Option<DateTime<Utc>>) -> Closure {
        Closure {
            closed_at: t.closed_at,
            reason: t.close_reason,
            noted_for,
        }
    }

    /// Whether selfmon already reported a recurrence of this closure: it noted one, and the
    /// issue was not closed again since (a tracker that keeps no closing time counts as not
    /// closed again: the note is forgotten when the issue is seen open).
    pub fn noted(&self) -> bool {
        match (self.noted_for, self.closed_at) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(noted), Some(closed)) => closed <= noted,
        }
    }

    /// Whether a person closed the issue as not planned or as a duplicate: never reopened.
    pub fn dismissed(&self) -> bool {
        self.reason.is_some_and(CloseReason::is_dismissal)
    }
}

/// Whose issues the tracker's numbers are. A switched tracker (the configuration now names
/// another repository or folder) holds issues under the numbers selfmon's state recorded for
/// its own: someone else's. The scan never comments on or reopens those.
#[derive(Debug, Default)]
pub(crate) struct Ownership {
    /// Numbers whose tracker issue lacks selfmon's marker for the fingerprint filed.
    pub foreign: HashSet<u64>,
    /// Issues recorded closed that the listing did not return, as selfmon recorded them: not
    /// seen this scan, so looked up (once) before a regression comments on or reopens one.
    pub unverified: HashMap<u64, KnownIssue>,
    /// Issues the tracker said are not there when looked up this scan (deleted, transferred).
    pub gone: HashSet<u64>,
    /// What the ownership checks decided that the operator should see in the scan report (an
    /// issue taken for someone else's, or kept as selfmon's though its marker is gone).
    pub notices: Vec<crate::model::ScanWarning>,
    /// Listed issues whose conversation is locked: never commented on (the tracker refuses).
    pub locked: HashSet<u64>,
    /// The closures of the filed issues (closed ones; an open one's is empty).
    pub closures: HashMap<u64, Closure>,
}

/// What the tracker says of an issue its listing left out.
enum Unlisted {
    /// Selfmon's issue, in this state (and closure, when closed).
    State(IssueState, Closure),
    /// Someone else's issue under that number.
    Foreign,
    /// Not there (deleted, transferred): recorded closed.
    Gone,
}

/// What the tracker says of an issue selfmon filed when it is looked up by number.
pub(crate) enum Lookup {
    /// Still selfmon's issue, as the tracker has it now (state, closure, lock).
    Selfmons(TrackedIssue),
    /// Someone else's issue holds that number.
    Foreign,
    /// The tracker cannot look issues up: nothing to check with, taken for selfmon's.
    Unknown,
}

/// Whether the tracker's issue under `filed`'s number is still the one selfmon filed (see
/// [`Lookup`]). A missing issue is the tracker's `NotFound`, as for a comment on it. What was
/// decided is added to `notices`.
pub(crate) async fn still_selfmons(
    tracker: &dyn IssueTracker,
    filed: &KnownIssue,
    notices: &mut Vec<crate::model::ScanWarning>,
) -> Result<Lookup> {
    Ok(match tracker.get_issue(filed.issue.number).await? {
        Some(t) if is_selfmons(&t, filed, notices) => Lookup::Selfmons(t),
        Some(_) => Lookup::Foreign,
        None => Lookup::Unknown,
    })
}

/// The kind of report warning for an issue taken for someone else's.
pub(crate) const NOT_SELFMONS: &str = "issue_not_selfmons";
/// The kind of report warning for a selfmon issue whose body lost selfmon's marker.
pub(crate) const MARKER_MISSING: &str = "issue_marker_missing";

/// Whether the tracker's issue `t` is the one selfmon filed as `filed` (same number):
///
/// - its body holds selfmon's marker for `filed`'s fingerprint: yes;
/// - its body holds selfmon's marker for another fingerprint: no (another of selfmon's issues,
///   of another state store);
/// - its body holds no marker (a maintainer rewrote the body; review4 F4): yes when its title
///   is the title selfmon filed and its link the link selfmon recorded, the evidence that the
///   tracker is the one selfmon filed it in; otherwise no: after a tracker switch a person's
///   issue holds that number (review3 H6), and its title is theirs.
///
/// A "no", and a "yes" without the marker, are added to `notices` for the scan report (and
/// logged), so the operator sees why a regression was or was not commented on.
fn is_selfmons(
    t: &crate::model::TrackedIssue,
    filed: &KnownIssue,
    notices: &mut Vec<crate::model::ScanWarning>,
) -> bool {
    let number = filed.issue.number;
    let same_title = t.title.trim() == filed.title.trim();
    let mine = match &t.marker {
        Some(m) => m.fingerprint() == filed.fingerprint,
        None => same_title && t.issue.url == filed.issue.url,
    };
    let message = match (&t.marker, mine) {
        (Some(_), true) => return true,
        (None, true) => format!(
            "the tracker's #{number} has lost selfmon's hidden marker (its body was edited?); its \
             title and link are the ones selfmon filed, so selfmon still treats it as its own \
             (regressions comment on and reopen it). Put the line `{}` back at the end of its \
             body to silence this",
            crate::model::Marker::for_fingerprint(&filed.fingerprint).as_str()
        ),
        (Some(_), false) => format!(
            "the tracker's #{number} carries selfmon's marker for another problem: it is not the \
             issue this state filed under that number (was the tracker configuration changed? \
             use a new state store for a new tracker); selfmon will not comment on or reopen it"
        ),
        (None, false) => format!(
            "the tracker's #{number} ({}) is not the issue selfmon filed under that number: it \
             lacks selfmon's marker and its title {}; selfmon will not comment on or reopen it \
             and counts the problem's occurrences against its own record of #{number}. If the \
             tracker configuration changed, use a new state store for a new tracker; if a person \
             edited the issue, put the line `{}` back at the end of its body",
            crate::text::quoted(&t.title),
            if same_title {
                "matches, but its link is not the one recorded"
            } else {
                "is not the one filed"
            },
            crate::model::Marker::for_fingerprint(&filed.fingerprint).as_str()
        ),
    };
    tracing::warn!(issue = number, "{message}");
    notices.push(crate::model::ScanWarning {
        kind: if mine { MARKER_MISSING } else { NOT_SELFMONS }.to_string(),
        message: crate::redact::Redactor::shared().redacted(&message),
    });
    mine
}

/// What the tracker says of an issue the store recorded as open that its listing left out.
async fn unlisted_state(
    tracker: &dyn IssueTracker,
    filed: &KnownIssue,
    notices: &mut Vec<crate::model::ScanWarning>,
) -> Result<Unlisted> {
    let number = filed.issue.number;
    match tracker.get_issue(number).await {
        Ok(Some(t)) if !is_selfmons(&t, filed, notices) => Ok(Unlisted::Foreign),
        Ok(Some(t)) => Ok(Unlisted::State(t.issue.state, Closure::of(&t, None))),
        // The tracker cannot look it up: as before `get_issue` existed, taken for closed.
        Ok(None) => Ok(Unlisted::State(IssueState::Closed, Closure::default())),
        Err(
            e @ crate::Error::NotFound {
                component: crate::Component::IssueTracker,
                ..
            },
        ) => {
            tracing::warn!(issue = number, error = %e, "the issue tracker no longer has this issue (deleted or transferred?); recording it closed; `selfmon history forget {number}` has its problem filed anew");
            Ok(Unlisted::Gone)
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

/// A known signature of an open issue filed for warnings, now logged at error level or above.
pub(crate) struct Escalated {
    pub issue: u64,
    pub signature: Signature,
}

/// Whether `sig`, which `issue` explains, is that issue's problem escalated: the issue covers
/// the same message at warning level (its signature at the warning class) but not at the level
/// `sig` was logged at. (ERROR and CRITICAL are one class: a signature id does not tell them
/// apart.)
fn escalates(sig: &Signature, issue: &KnownIssue) -> bool {
    sig.level > crate::model::Level::Warning
        && !issue.signature_ids.contains(&sig.id)
        && issue
            .signature_ids
            .contains(&sig.id_at(crate::model::Level::Warning))
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
    /// Known signatures of open issues that escalated from warning to error level.
    pub escalated: Vec<Escalated>,
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
        escalated: Vec::new(),
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
                if known.get(issue).is_some_and(|k| escalates(sig, k)) {
                    out.escalated.push(Escalated {
                        issue,
                        signature: sig.clone(),
                    });
                }
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
