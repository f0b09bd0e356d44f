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
    /// Why a person closed it, written into the index by hand beside `"state": "closed"`:
    /// `"not_planned"` or `"duplicate"` make selfmon count a recurrence without reopening the
    /// issue (as GitHub's "Close as not planned" does); absent or `"completed"`, a recurrence is a
    /// regression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close_reason: Option<selfmon_core::CloseReason>,
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

    /// The index; without one, the index rebuilt from the issue files in the folder (review4
    /// F13: an index moved away restarted numbering at #1, re-using numbers selfmon's state
    /// holds for other issues).
    fn issues(&self) -> Result<Vec<DryRunIssue>> {
        let path = self.index_path();
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| {
                Error::adapter(
                    Component::IssueTracker,
                    false,
                    format!(
                        "the folder tracker's index {} is not valid JSON ({e}); fix or restore \
                         it, or move it away: selfmon then rebuilds it from the issue files \
                         (`NNNN-*.md`) in {} (every issue listed open again) and numbers new \
                         issues after them",
                        path.display(),
                        self.dir.display()
                    ),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => self.rebuilt(),
            Err(e) => Err(io_err("read", &path, e)),
        }
    }

    /// The index as the issue files (`NNNN-slug.md`) in the folder describe it: number, title
    /// (`# ` line), labels, marker and classification from the body, comments counted; every
    /// issue open (the index alone records states). Empty without a folder.
    fn rebuilt(&self) -> Result<Vec<DryRunIssue>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("read", &self.dir, e)),
        };
        let mut issues = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_err("read", &self.dir, e))?;
            let file = entry.file_name().to_string_lossy().into_owned();
            let Some(number) = file_number(&file) else {
                continue;
            };
            let path = entry.path();
            let text = std::fs::read_to_string(&path).map_err(|e| io_err("read", &path, e))?;
            let title = text
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("# "))
                .unwrap_or_default()
                .to_string();
            let labels = text
                .lines()
                .find_map(|l| l.strip_prefix("Labels: "))
                .map(|l| {
                    l.split(", ")
                        .filter(|x| !x.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            // The body ends where the first comment begins: a comment holds no marker.
            let body = text.split("\n---\n\n**Comment ").next().unwrap_or_default();
            issues.push(DryRunIssue {
                number,
                title,
                labels,
                state: IssueState::Open,
                close_reason: None,
                file,
                fingerprint: Marker::find_in(body).map(|m| m.fingerprint().to_string()),
                classification: classification_in(body),
                created_at: entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .map(DateTime::<Utc>::from)
                    .unwrap_or_else(|_| Utc::now()),
                comments: text.matches("\n---\n\n**Comment ").count() as u32,
            });
        }
        issues.sort_by_key(|i| i.number);
        Ok(issues)
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

/// The issue number of an issue file's name (`0012-bug-x.md` → 12).
fn file_number(name: &str) -> Option<u64> {
    let (digits, _) = name.strip_suffix(".md")?.split_once('-')?;
    digits.parse().ok().filter(|n| *n > 0)
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
                close_reason: match i.state {
                    IssueState::Closed => i.close_reason,
                    IssueState::Open => None,
                },
                locked: false,
            })
            .collect())
    }

    fn create(&self, draft: &IssueDraft) -> Result<IssueRef> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| io_err("create the folder", &self.dir, e))?;
        self.with_index(|issues| {
            // Above every issue file too, whatever the index says (a file it lost is still
            // an issue under that number).
            let on_disk = std::fs::read_dir(&self.dir)
                .map_err(|e| io_err("read", &self.dir, e))?
                .filter_map(|e| e.ok())
                .filter_map(|e| file_number(&e.file_name().to_string_lossy()))
                .max();
            let number = issues
                .iter()
                .map(|i| i.number)
                .chain(on_disk)
                .max()
                .unwrap_or(0)
                + 1;
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
                close_reason: None,
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
            let issue = Self::find(issues, number)?;
            issue.state = IssueState::Open;
            issue.close_reason = None;
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
            err.contains("not valid JSON")
                && err.contains("move it away")
                && err.contains("folder tracker's index")
                && !err.contains("dry-run"),
            "{err}"
        );
    }

    /// Review4 F13: following the advice for a damaged index (move it away) restarted numbering
    /// at #1: a new issue took #1 beside alpha's `0001-` file, the state store's #1 row (alpha's)
    /// was overwritten, and alpha was filed again as #2 over bravo's.
    #[tokio::test]
    async fn an_index_moved_away_is_rebuilt_from_the_issue_files_and_numbers_are_not_reused() {
        let dir = tempfile::tempdir().unwrap();
        let t = DryRunTracker::new(dir.path()).unwrap();
        let redactor = selfmon_core::redact::Redactor::shared();
        let draft = |title: &str, fp: &str| {
            let marker = Marker::for_fingerprint(fp);
            IssueDraft {
                title: redactor.redacted(title),
                body: redactor.redacted(&format!(
                    "body\n{}\n{}\n",
                    marker.as_str(),
                    selfmon_core::classification_marker(Classification::ServerBug)
                )),
                labels: vec!["selfmon".into(), "bug".into()],
                classification: Classification::ServerBug,
                fingerprint: fp.into(),
                marker,
            }
        };
        t.create_issue(&draft("[BUG] alpha", "aa01")).await.unwrap();
        t.create_issue(&draft("[BUG] bravo", "bb02")).await.unwrap();
        t.comment(1, &redactor.redacted("seen again"))
            .await
            .unwrap();
        std::fs::rename(
            dir.path().join("index.json"),
            dir.path().join("index.json.bak"),
        )
        .unwrap();

        let listed = t.list_issues(None).await.unwrap();
        let seen: Vec<(u64, &str, Option<&str>)> = listed
            .iter()
            .map(|i| {
                (
                    i.issue.number,
                    i.title.as_str(),
                    i.marker.as_ref().map(|m| m.fingerprint()),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                (1, "[BUG] alpha", Some("aa01")),
                (2, "[BUG] bravo", Some("bb02"))
            ]
        );
        assert_eq!(listed[0].labels, ["selfmon", "bug"]);
        assert_eq!(listed[0].classification, Some(Classification::ServerBug));
        let charlie = t
            .create_issue(&draft("[BUG] charlie", "cc03"))
            .await
            .unwrap();
        assert_eq!(charlie.number, 3, "numbered after the files, not #1 again");
        let index = t.issues().unwrap();
        assert_eq!(index.len(), 3);
        assert_eq!(index[0].comments, 1);
    }
}
