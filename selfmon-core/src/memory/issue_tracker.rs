//! An in-memory issue tracker with failure injection.

use std::collections::VecDeque;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::model::{classification_in, IssueDraft, IssueRef, IssueState, Marker, TrackedIssue};
use crate::redact::RedactedText;
use crate::traits::IssueTracker;

/// One issue held by [`MemoryIssueTracker`].
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryIssue {
    /// Number.
    pub number: u64,
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
    /// Labels.
    pub labels: Vec<String>,
    /// State.
    pub state: IssueState,
    /// Comments, oldest first.
    pub comments: Vec<String>,
    /// When closed.
    pub closed_at: Option<DateTime<Utc>>,
}

/// A failure to inject into the next matching call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackerFault {
    /// `create_issue` fails before creating anything.
    CreateFails,
    /// `create_issue` creates the issue, then reports an error (the response was lost).
    CreateLosesResponse,
    /// `comment` fails.
    CommentFails,
    /// `list_issues` fails.
    ListFails,
    /// `find_by_marker` fails.
    FindFails,
    /// `reopen` fails.
    ReopenFails,
    /// The rate limit is spent: the matching call (any call) and every later one fail with
    /// [`Error::RateLimited`] (resetting at `reset_at`) and change nothing, until
    /// [`MemoryIssueTracker::lift_rate_limit`].
    RateLimited {
        /// The reset time the tracker reports.
        reset_at: DateTime<Utc>,
    },
}

#[derive(Debug, Default)]
struct Inner {
    issues: Vec<MemoryIssue>,
    faults: VecDeque<(usize, TrackerFault)>,
    /// Set while a fired rate limit lasts.
    rate_limited_until: Option<DateTime<Utc>>,
    create_calls: usize,
}

/// Issues in memory. Numbers start at 1.
#[derive(Debug, Default)]
pub struct MemoryIssueTracker {
    inner: Mutex<Inner>,
}

impl MemoryIssueTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Injects `fault` into the matching call after `skip` matching calls have succeeded.
    pub fn inject(&self, skip: usize, fault: TrackerFault) {
        self.lock().faults.push_back((skip, fault));
    }

    /// Drops every injected fault that has not fired yet (a rate limit that fired lasts until
    /// [`lift_rate_limit`](Self::lift_rate_limit)).
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Ends a rate limit that fired (its reset time came); calls succeed again.
    pub fn lift_rate_limit(&self) {
        self.lock().rate_limited_until = None;
    }

    /// When the rate limit that fired resets, while it lasts.
    pub fn rate_limited_until(&self) -> Option<DateTime<Utc>> {
        self.lock().rate_limited_until
    }

    /// The fault this call meets: a rate limit that lasts, or the first injected fault of one of
    /// `kinds` (or a rate limit) whose skip count is used up.
    fn take_fault(&self, kinds: &[TrackerFault]) -> Result<Option<TrackerFault>> {
        let mut i = self.lock();
        if let Some(reset_at) = i.rate_limited_until {
            return Err(Self::rate_limited(reset_at));
        }
        let Some(pos) = i
            .faults
            .iter()
            .position(|(_, f)| kinds.contains(f) || matches!(f, TrackerFault::RateLimited { .. }))
        else {
            return Ok(None);
        };
        if i.faults[pos].0 > 0 {
            i.faults[pos].0 -= 1;
            return Ok(None);
        }
        match i.faults.remove(pos).map(|(_, f)| f) {
            Some(TrackerFault::RateLimited { reset_at }) => {
                i.rate_limited_until = Some(reset_at);
                Err(Self::rate_limited(reset_at))
            }
            other => Ok(other),
        }
    }

    fn rate_limited(reset_at: DateTime<Utc>) -> Error {
        Error::RateLimited {
            component: crate::Component::IssueTracker,
            reset_at: Some(reset_at),
            source: "injected fault: rate limit spent".into(),
        }
    }

    /// A copy of every issue.
    pub fn issues(&self) -> Vec<MemoryIssue> {
        self.lock().issues.clone()
    }

    /// How many times `create_issue` was called (including failed calls).
    pub fn create_calls(&self) -> usize {
        self.lock().create_calls
    }

    /// Closes an issue, as a maintainer would.
    pub fn close(&self, number: u64, at: DateTime<Utc>) {
        if let Some(i) = self.lock().issues.iter_mut().find(|i| i.number == number) {
            i.state = IssueState::Closed;
            i.closed_at = Some(at);
        }
    }

    fn fault(what: &str) -> Error {
        Error::adapter(
            crate::Component::IssueTracker,
            true,
            format!("injected fault: {what}"),
        )
    }
}

fn find_mut(issues: &mut [MemoryIssue], number: u64) -> Result<&mut MemoryIssue> {
    issues
        .iter_mut()
        .find(|i| i.number == number)
        .ok_or_else(|| {
            Error::adapter(
                crate::Component::IssueTracker,
                false,
                format!("issue #{number} does not exist"),
            )
        })
}

fn to_ref(i: &MemoryIssue) -> IssueRef {
    IssueRef {
        number: i.number,
        url: format!("memory://issues/{}", i.number),
        state: i.state,
    }
}

#[async_trait]
impl IssueTracker for MemoryIssueTracker {
    async fn list_issues(&self, closed_since: Option<DateTime<Utc>>) -> Result<Vec<TrackedIssue>> {
        if self.take_fault(&[TrackerFault::ListFails])?.is_some() {
            return Err(Self::fault("list"));
        }
        Ok(self
            .lock()
            .issues
            .iter()
            .filter(|i| i.labels.iter().any(|l| l == "selfmon"))
            .filter(|i| match (i.state, closed_since, i.closed_at) {
                (IssueState::Open, _, _) => true,
                (IssueState::Closed, Some(since), Some(at)) => at >= since,
                _ => false,
            })
            .map(|i| TrackedIssue {
                issue: to_ref(i),
                title: i.title.clone(),
                labels: i.labels.clone(),
                marker: Marker::find_in(&i.body),
                classification: classification_in(&i.body),
                closed_at: i.closed_at,
            })
            .collect())
    }

    async fn create_issue(&self, draft: &IssueDraft) -> Result<IssueRef> {
        self.lock().create_calls += 1;
        let fault =
            self.take_fault(&[TrackerFault::CreateFails, TrackerFault::CreateLosesResponse])?;
        if fault == Some(TrackerFault::CreateFails) {
            return Err(Self::fault("create"));
        }
        let mut inner = self.lock();
        let issue = MemoryIssue {
            number: inner.issues.len() as u64 + 1,
            title: draft.title.to_string(),
            body: draft.body.to_string(),
            labels: draft.labels.clone(),
            state: IssueState::Open,
            comments: Vec::new(),
            closed_at: None,
        };
        let r = to_ref(&issue);
        inner.issues.push(issue);
        drop(inner);
        if fault == Some(TrackerFault::CreateLosesResponse) {
            return Err(Self::fault("create response lost"));
        }
        Ok(r)
    }

    async fn comment(&self, number: u64, body: &RedactedText) -> Result<()> {
        if self.take_fault(&[TrackerFault::CommentFails])?.is_some() {
            return Err(Self::fault("comment"));
        }
        let mut i = self.lock();
        let issue = find_mut(&mut i.issues, number)?;
        issue.comments.push(body.to_string());
        Ok(())
    }

    async fn reopen(&self, number: u64) -> Result<()> {
        if self.take_fault(&[TrackerFault::ReopenFails])?.is_some() {
            return Err(Self::fault("reopen"));
        }
        let mut i = self.lock();
        let issue = find_mut(&mut i.issues, number)?;
        issue.state = IssueState::Open;
        issue.closed_at = None;
        Ok(())
    }

    async fn find_by_marker(&self, marker: &Marker) -> Result<Option<IssueRef>> {
        if self.take_fault(&[TrackerFault::FindFails])?.is_some() {
            return Err(Self::fault("find"));
        }
        Ok(self
            .lock()
            .issues
            .iter()
            .find(|i| i.body.contains(marker.as_str()))
            .map(to_ref))
    }
}
