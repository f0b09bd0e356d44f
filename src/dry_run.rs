//! A tracker that files nothing: it writes each issue it would file as a Markdown file into a
//! folder, so a host can see what selfmon would do before giving it a real tracker.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use selfmon_core::redact::RedactedText;
use selfmon_core::{
    classification_in, Classification, Component, Error, IssueDraft, IssueRef, IssueState,
    IssueTracker, Marker, Result, TrackedIssue,
};

/// One entry of the folder's `index.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DryRunIssue {
    /// Number, starting at 1.
    pub number: u64,
    /// Title.
    pub title: String,
    /// Labels.
    pub labels: Vec<String>,
    /// Open or closed.
    pub state: IssueState,
    /// The Markdown file holding the body and comments, relative to the folder.
    pub file: String,
    /// selfmon's marker fingerprint, when the body had one.
    pub fingerprint: Option<String>,
    /// The classification recorded in the body, when it had one.
    #[serde(default)]
    pub classification: Option<Classification>,
    /// When it was written.
    pub created_at: DateTime<Utc>,
    /// Comments added.
    pub comments: u32,
}

/// Writes would-be issues as `NNNN-title.md` files plus an `index.json` into a folder.
///
/// Each file starts with the title and labels, then the body exactly as it would have been sent;
/// comments are appended below a rule. Numbers continue across runs (read from the index).
#[derive(Debug)]
pub struct DryRunTracker {
    folder: Arc<Folder>,
}

/// The folder itself; every method does blocking file I/O, so the tracker runs them on tokio's
/// blocking pool.
#[derive(Debug)]
struct Folder {
    dir: PathBuf,
    lock: Mutex<()>,
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::adapter(
        Component::IssueTracker,
        false,
        format!("folder tracker could not {what} {}: {e}", path.display()),
    )
}

impl DryRunTracker {
    /// A tracker writing into `dir`, which is created when the first issue is filed: a dry run
    /// (which only reads the tracker) leaves no empty folder behind. Fails when `dir` exists
    /// and is not a folder.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        if dir.exists() && !dir.is_dir() {
            return Err(io_err(
                "use",
                &dir,
                std::io::Error::other("it exists and is not a folder"),
            ));
        }
        Ok(DryRunTracker {
            folder: Arc::new(Folder {
                dir,
                lock: Mutex::new(()),
            }),
        })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.folder.dir
    }

    /// Every issue written so far (reads `index.json`; blocking).
    pub fn issues(&self) -> Result<Vec<DryRunIssue>> {
        self.folder.issues()
    }

    async fn blocking<T: Send + 'static>(
        &self,
        op: impl FnOnce(&Folder) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let folder = self.folder.clone();
        tokio::task::spawn_blocking(move || op(&folder))
            .await
            .map_err(|e| Error::adapter(Component::IssueTracker, true, e))?
    }
}

impl Folder {
    fn index_path(&self) -> PathBuf {
        self.dir.join("index.json")
    }

    fn issues(&self) -> Result<Vec<DryRunIssue>> {
        let path = self.index_path();
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| {
                Error::adapter(
                    Component::IssueTracker,
                    false,
                    format!(
                        "dry-run index {} is not valid JSON ({e}); move it away to start over",
                        path.display()
                    ),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(io_err("read", &path, e)),
        }
    }

    fn save(&self, issues: &[DryRunIssue]) -> Result<()> {
        let path = self.index_path();
        let tmp = self.dir.join("index.json.tmp");
        let text = serde_json::to_string_pretty(issues)
            .map_err(|e| Error::adapter(Component::IssueTracker, false, e))?;
        std::fs::write(&tmp, text).map_err(|e| io_err("write", &tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| io_err("replace", &path, e))
    }

    fn with_index<T>(&self, f: impl FnOnce(&mut Vec<DryRunIssue>) -> Result<T>) -> Result<T> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut issues = self.issues()?;
        let out = f(&mut issues)?;
        self.save(&issues)?;
        Ok(out)
    }

    fn to_ref(&self, i: &DryRunIssue) -> IssueRef {
        IssueRef {
            number: i.number,
            url: self.dir.join(&i.file).display().to_string(),
            state: i.state,
        }
    }

    fn find(issues: &mut [DryRunIssue], number: u64) -> Result<&mut DryRunIssue> {
        issues
            .iter_mut()
            .find(|i| i.number == number)
            .ok_or_else(|| {
                Error::not_found(
                    Component::IssueTracker,
                    format!("issue #{number} is not in the folder tracker's index"),
                )
            })
    }
}

fn slug(title: &str) -> String {
    let mut s: String = title
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    while s.contains("--") {
        s = s.replace("--", "-");
    }
    s.trim_matches('-').chars().take(60).collect()
}

impl Folder {
    fn list(&self) -> Result<Vec<TrackedIssue>> {
        Ok(self
            .issues()?
            .iter()
            .map(|i| TrackedIssue {
                issue: self.to_ref(i),
                title: i.title.clone(),
                labels: i.labels.clone(),
                marker: i.fingerprint.as_deref().map(Marker::for_fingerprint),
                classification: i.classification,
                closed_at: None,
                locked: false,
            })
            .collect())
    }

    fn create(&self, draft: &IssueDraft) -> Result<IssueRef> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| io_err("create the folder", &self.dir, e))?;
        self.with_index(|issues| {
            let number = issues.iter().map(|i| i.number).max().unwrap_or(0) + 1;
            let file = format!("{number:04}-{}.md", slug(&draft.title));
            let path = self.dir.join(&file);
            let text = format!(
                "# {}\n\nLabels: {}\n\n{}\n",
                draft.title,
                draft.labels.join(", "),
                draft.body
            );
            std::fs::write(&path, text).map_err(|e| io_err("write", &path, e))?;
            let issue = DryRunIssue {
                number,
                title: draft.title.to_string(),
                labels: draft.labels.clone(),
                state: IssueState::Open,
                file,
                fingerprint: Marker::find_in(&draft.body).map(|m| m.fingerprint().to_string()),
                classification: classification_in(&draft.body),
                created_at: Utc::now(),
                comments: 0,
            };
            let r = self.to_ref(&issue);
            issues.push(issue);
            Ok(r)
        })
    }

    fn comment(&self, number: u64, body: &RedactedText) -> Result<()> {
        self.with_index(|issues| {
            let issue = Self::find(issues, number)?;
            issue.comments += 1;
            let path = self.dir.join(&issue.file);
            let mut text = std::fs::read_to_string(&path).map_err(|e| io_err("read", &path, e))?;
            text.push_str(&format!(
                "\n---\n\n**Comment {}**\n\n{body}\n",
                issue.comments
            ));
            std::fs::write(&path, text).map_err(|e| io_err("write", &path, e))
        })
    }

    fn reopen(&self, number: u64) -> Result<()> {
        self.with_index(|issues| {
            Self::find(issues, number)?.state = IssueState::Open;
            Ok(())
        })
    }

    fn find_by_marker(&self, marker: &Marker) -> Result<Option<IssueRef>> {
        Ok(self
            .issues()?
            .iter()
            .find(|i| i.fingerprint.as_deref() == Some(marker.fingerprint()))
            .map(|i| self.to_ref(i)))
    }
}

#[async_trait]
impl IssueTracker for DryRunTracker {
    /// Every issue in the folder (it keeps no closing dates, so `closed_since` has no effect).
    async fn list_issues(&self, _closed_since: Option<DateTime<Utc>>) -> Result<Vec<TrackedIssue>> {
        self.blocking(Folder::list).await
    }

    async fn create_issue(&self, draft: &IssueDraft) -> Result<IssueRef> {
        let draft = draft.clone();
        self.blocking(move |f| f.create(&draft)).await
    }

    async fn comment(&self, number: u64, body: &RedactedText) -> Result<()> {
        let body = body.clone();
        self.blocking(move |f| f.comment(number, &body)).await
    }

    async fn reopen(&self, number: u64) -> Result<()> {
        self.blocking(move |f| f.reopen(number)).await
    }

    async fn find_by_marker(&self, marker: &Marker) -> Result<Option<IssueRef>> {
        let marker = marker.clone();
        self.blocking(move |f| f.find_by_marker(&marker)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dry_run_tracker_conforms() {
        let dir = tempfile::tempdir().unwrap();
        let t = DryRunTracker::new(dir.path().join("issues")).unwrap();
        selfmon_core::conformance::issue_tracker(&t).await;
        let files: Vec<_> = std::fs::read_dir(t.dir()).unwrap().collect();
        assert_eq!(files.len(), 3, "two issue files and the index");
        // Numbers continue across instances.
        let again = DryRunTracker::new(t.dir()).unwrap();
        assert_eq!(again.issues().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn the_folder_is_created_when_the_first_issue_is_filed_not_before() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("issues");
        let t = DryRunTracker::new(&folder).unwrap();
        assert!(t.list_issues(None).await.unwrap().is_empty());
        let marker = Marker::for_fingerprint("abc");
        assert!(t.find_by_marker(&marker).await.unwrap().is_none());
        assert!(!folder.exists(), "reading created the folder");
        let redactor = selfmon_core::redact::Redactor::shared();
        let draft = IssueDraft {
            title: redactor.redacted("[BUG] x"),
            body: redactor.redacted(&format!("body\n{}\n", marker.as_str())),
            labels: vec!["selfmon".into()],
            classification: Classification::ServerBug,
            fingerprint: "abc".into(),
            marker,
        };
        t.create_issue(&draft).await.unwrap();
        assert!(folder.join("index.json").is_file());
    }

    #[test]
    fn a_path_that_is_a_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("issues");
        std::fs::write(&file, "x").unwrap();
        let err = DryRunTracker::new(&file).unwrap_err().to_string();
        assert!(err.contains("not a folder"), "{err}");
    }

    #[tokio::test]
    async fn a_corrupt_index_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.json"), "{not json").unwrap();
        let t = DryRunTracker::new(dir.path()).unwrap();
        let err = t.list_issues(None).await.unwrap_err().to_string();
        assert!(
            err.contains("not valid JSON") && err.contains("move it away"),
            "{err}"
        );
    }
}
