//! An in-memory issue tracker.

use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::model::{
    classification_in, CloseReason, IssueDraft, IssueRef, IssueState, Marker, TrackedIssue,
};
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
    /// Why it was closed, when closed by [`MemoryIssueTracker::close_as`].
    pub close_reason: Option<CloseReason>,
    /// Whether its conversation is locked: comments are refused with [`Error::Locked`].
    pub locked: bool,
}

#[derive(Debug, Default)]
struct Inner {
    issues: Vec<MemoryIssue>,
    create_calls: usize,
    /// The highest number given so far (numbers are never reused, deleted or not).
    last_number: u64,
    /// Locked issues are listed as unlocked (a tracker that does not say).
    locked_unlisted: bool,
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

    /// Files an open issue as a person would (no selfmon marker unless `body` holds one);
    /// returns its number.
    pub fn file_by_hand(&self, title: &str, body: &str, labels: &[&str]) -> u64 {
        let mut inner = self.lock();
        let number = inner.last_number + 1;
        inner.last_number = number;
        inner.issues.push(MemoryIssue {
            number,
            title: title.to_string(),
            body: body.to_string(),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            state: IssueState::Open,
            comments: Vec::new(),
            closed_at: None,
            close_reason: None,
            locked: false,
        });
        number
    }

    /// A copy of every issue.
    pub fn issues(&self) -> Vec<MemoryIssue> {
        self.lock().issues.clone()
    }

    /// How many times `create_issue` was called.
    pub fn create_calls(&self) -> usize {
        self.lock().create_calls
    }

    /// Deletes an issue, as a maintainer (or a transfer to another repository) would: it is no
    /// longer listed, and commenting on or reopening it fails with [`Error::NotFound`].
    pub fn delete(&self, number: u64) {
        self.lock().issues.retain(|i| i.number != number);
    }

    /// Removes `label` from an issue, as a person might: `list_issues` no longer returns it
    /// when the label was `selfmon`, though it is still there.
    pub fn remove_label(&self, number: u64, label: &str) {
        if let Some(i) = self.lock().issues.iter_mut().find(|i| i.number == number) {
            i.labels.retain(|l| l != label);
        }
    }

    /// Locks an issue's conversation, as a maintainer (or a lock-threads bot) would: comments
    /// on it are then refused with [`Error::Locked`]. `listed` says whether `list_issues` and
    /// `get_issue` report it locked (GitHub does); otherwise only the refused comment tells.
    pub fn lock_conversation(&self, number: u64, listed: bool) {
        let mut inner = self.lock();
        inner.locked_unlisted = !listed;
        if let Some(i) = inner.issues.iter_mut().find(|i| i.number == number) {
            i.locked = true;
        }
    }

    /// Replaces an issue's body, as a maintainer rewriting it would.
    pub fn edit_body(&self, number: u64, body: &str) {
        if let Some(i) = self.lock().issues.iter_mut().find(|i| i.number == number) {
            i.body = body.to_string();
        }
    }

    /// Reopens an issue, as a maintainer would.
    pub fn reopen_by_hand(&self, number: u64) {
        if let Some(i) = self.lock().issues.iter_mut().find(|i| i.number == number) {
            i.state = IssueState::Open;
            i.closed_at = None;
            i.close_reason = None;
        }
    }

    /// Closes an issue, as a maintainer would.
    pub fn close(&self, number: u64, at: DateTime<Utc>) {
        self.close_as(number, at, CloseReason::Completed);
    }

    /// Closes an issue at `at` for `reason`, as a maintainer choosing "Close as not planned" (or
    /// as a duplicate) would.
    pub fn close_as(&self, number: u64, at: DateTime<Utc>, reason: CloseReason) {
        if let Some(i) = self.lock().issues.iter_mut().find(|i| i.number == number) {
            i.state = IssueState::Closed;
            i.closed_at = Some(at);
            i.close_reason = Some(reason);
        }
    }
}

fn find_mut(issues: &mut [MemoryIssue], number: u64) -> Result<&mut MemoryIssue> {
    issues
        .iter_mut()
        .find(|i| i.number == number)
        .ok_or_else(|| {
            Error::not_found(
                crate::Component::IssueTracker,
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

fn tracked(i: &MemoryIssue, locked_unlisted: bool) -> TrackedIssue {
    TrackedIssue {
        locked: i.locked && !locked_unlisted,
        issue: to_ref(i),
        title: i.title.clone(),
        labels: i.labels.clone(),
        marker: Marker::find_in(&i.body),
        classification: classification_in(&i.body),
        closed_at: i.closed_at,
        close_reason: i.close_reason,
    }
}

#[async_trait]
impl IssueTracker for MemoryIssueTracker {
    async fn list_issues(&self, closed_since: Option<DateTime<Utc>>) -> Result<Vec<TrackedIssue>> {
        let inner = self.lock();
        Ok(inner
            .issues
            .iter()
            .filter(|i| i.labels.iter().any(|l| l == "selfmon"))
            .filter(|i| match (i.state, closed_since, i.closed_at) {
                (IssueState::Open, _, _) => true,
                (IssueState::Closed, Some(since), Some(at)) => at >= since,
                _ => false,
            })
            .map(|i| tracked(i, inner.locked_unlisted))
            .collect())
    }

    async fn create_issue(&self, draft: &IssueDraft) -> Result<IssueRef> {
        self.lock().create_calls += 1;
        let mut inner = self.lock();
        let issue = MemoryIssue {
            number: inner.last_number + 1,
            title: draft.title.to_string(),
            body: draft.body.to_string(),
            labels: draft.labels.clone(),
            state: IssueState::Open,
            comments: Vec::new(),
            closed_at: None,
            close_reason: None,
            locked: false,
        };
        let r = to_ref(&issue);
        inner.last_number = issue.number;
        inner.issues.push(issue);
        Ok(r)
    }

    async fn comment(&self, number: u64, body: &RedactedText) -> Result<()> {
        let mut i = self.lock();
        let issue = find_mut(&mut i.issues, number)?;
        if issue.locked {
            return Err(Error::locked(
                crate::Component::IssueTracker,
                format!("issue #{number} is locked: comments are refused"),
            ));
        }
        issue.comments.push(body.to_string());
        Ok(())
    }

    async fn reopen(&self, number: u64) -> Result<()> {
        let mut i = self.lock();
        let issue = find_mut(&mut i.issues, number)?;
        issue.state = IssueState::Open;
        issue.closed_at = None;
        issue.close_reason = None;
        Ok(())
    }

    async fn find_by_marker(&self, marker: &Marker) -> Result<Option<IssueRef>> {
        Ok(self
            .lock()
            .issues
            .iter()
            .find(|i| i.body.contains(marker.as_str()))
            .map(to_ref))
    }

    async fn get_issue(&self, number: u64) -> Result<Option<TrackedIssue>> {
        let mut inner = self.lock();
        let locked_unlisted = inner.locked_unlisted;
        let i = find_mut(&mut inner.issues, number)?;
        Ok(Some(tracked(i, locked_unlisted)))
    }
}
