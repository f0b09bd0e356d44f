//! A stateful GitHub-like server for the conformance suite and the engine test: issues, labels,
//! comments, state changes, pagination and a lagging search index, in one `Respond` impl.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

#[derive(Debug, Clone)]
pub struct FakeIssue {
    pub number: u64,
    pub title: String,
    pub body: String,
    pub labels: Vec<String>,
    pub open: bool,
    pub closed_at: Option<DateTime<Utc>>,
    /// GitHub's `state_reason` (`completed`, `not_planned`, `duplicate`, `reopened`).
    pub state_reason: Option<String>,
    pub updated_at: DateTime<Utc>,
    pub pull_request: bool,
    pub comments: Vec<String>,
    /// Whether the search index has caught up with this issue.
    pub indexed: bool,
    /// Whether the conversation is locked: comments are refused with GitHub's 403.
    pub locked: bool,
    /// The issue is shown without `locked` (an older GitHub Enterprise, a proxy that strips
    /// it): only a refused comment tells.
    pub lock_hidden: bool,
}

#[derive(Debug, Default)]
pub struct State {
    pub issues: Vec<FakeIssue>,
    pub labels: BTreeSet<String>,
    /// Items per page at most, whatever `per_page` asks, so pagination is exercised.
    pub page_cap: usize,
    /// Every request as `METHOD path?query`.
    pub log: Vec<String>,
    /// The next issue create is applied, but its response is held back this long (a lost response).
    pub delay_next_create: Option<std::time::Duration>,
    /// Issues transferred to another repository: old number → the issue there (renumbered).
    pub transferred: std::collections::BTreeMap<u64, FakeIssue>,
}

#[derive(Clone)]
pub struct FakeGitHub {
    pub state: Arc<Mutex<State>>,
    base_uri: String,
}

impl FakeGitHub {
    /// Starts a fake for `acme/server` with one labelled pull request (#1), which listings must
    /// leave out, and the `selfmon` label missing (so the tracker has to create it).
    pub async fn start() -> (MockServer, FakeGitHub) {
        let server = MockServer::start().await;
        let fake = FakeGitHub {
            state: Arc::new(Mutex::new(State {
                page_cap: 2,
                ..State::default()
            })),
            base_uri: server.uri(),
        };
        {
            let mut s = fake.state.lock().unwrap();
            s.labels.insert("bug".into());
            s.issues.push(FakeIssue {
                number: 1,
                title: "A pull request".into(),
                body: String::new(),
                labels: vec!["selfmon".into()],
                open: true,
                closed_at: None,
                state_reason: None,
                updated_at: Utc::now(),
                pull_request: true,
                comments: vec![],
                indexed: true,
                locked: false,
                lock_hidden: false,
            });
        }
        Mock::given(wiremock::matchers::any())
            .respond_with(fake.clone())
            .mount(&server)
            .await;
        (server, fake)
    }

    /// Real (non-PR) issues.
    pub fn issues(&self) -> Vec<FakeIssue> {
        self.state
            .lock()
            .unwrap()
            .issues
            .iter()
            .filter(|i| !i.pull_request)
            .cloned()
            .collect()
    }

    pub fn log(&self) -> Vec<String> {
        self.state.lock().unwrap().log.clone()
    }

    /// Changes issue `number` as a person on GitHub would.
    pub fn edit(&self, number: u64, change: impl FnOnce(&mut FakeIssue)) {
        let mut s = self.state.lock().unwrap();
        let issue = s.issues.iter_mut().find(|i| i.number == number).unwrap();
        change(issue);
        issue.updated_at = Utc::now();
    }

    /// Deletes issue `number`, as a maintainer can: it answers 404 from then on.
    pub fn delete(&self, number: u64) {
        self.state
            .lock()
            .unwrap()
            .issues
            .retain(|i| i.number != number);
    }

    /// Transfers issue `number` to another repository, as a maintainer can: GitHub answers its
    /// old address with 301 to the issue's new one (renumbered `number + 100`).
    pub fn transfer(&self, number: u64) {
        let mut s = self.state.lock().unwrap();
        let at = s.issues.iter().position(|i| i.number == number).unwrap();
        let mut issue = s.issues.remove(at);
        issue.number += 100;
        s.transferred.insert(number, issue);
    }

    /// Lets the search index catch up.
    pub fn index_all(&self) {
        for i in &mut self.state.lock().unwrap().issues {
            i.indexed = true;
        }
    }

    fn issue_json(&self, i: &FakeIssue) -> Value {
        let mut v = json!({
            "number": i.number,
            "html_url": format!("https://github.example/acme/server/issues/{}", i.number),
            "state": if i.open { "open" } else { "closed" },
            "title": i.title,
            "body": i.body,
            "labels": i.labels.iter().map(|l| json!({"name": l})).collect::<Vec<_>>(),
            "closed_at": i.closed_at,
            "state_reason": i.state_reason,
            "updated_at": i.updated_at,
        });
        if i.locked && !i.lock_hidden {
            v["locked"] = json!(true);
        }
        if i.pull_request {
            v["pull_request"] = json!({"url": "x"});
        }
        v
    }
}

fn error(status: u16, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({ "message": message }))
}

fn query(req: &Request, key: &str) -> Option<String> {
    req.url
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

impl Respond for FakeGitHub {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut s = self.state.lock().unwrap();
        let path = req.url.path().to_string();
        s.log.push(format!(
            "{} {}{}",
            req.method,
            path,
            req.url.query().map(|q| format!("?{q}")).unwrap_or_default()
        ));
        if req.headers.get("authorization").is_none() {
            return error(401, "Requires authentication");
        }
        let method = req.method.as_str();
        let segments: Vec<String> = req
            .url
            .path_segments()
            .map(|p| p.map(percent_decode).collect())
            .unwrap_or_default();
        let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
        let body: Value = req.body_json().unwrap_or(Value::Null);
        let now = Utc::now();
        // A transferred issue: its old address redirects; its new one is in another repository.
        if let ["repos", "acme", "server", "issues", n, rest @ ..] = segs.as_slice() {
            if let Some(moved) = n.parse().ok().and_then(|n: u64| s.transferred.get(&n)) {
                let tail = rest.iter().map(|r| format!("/{r}")).collect::<String>();
                return ResponseTemplate::new(301).insert_header(
                    "location",
                    format!(
                        "{}/repositories/77/issues/{}{tail}",
                        self.base_uri, moved.number
                    ),
                );
            }
        }
        if let ("GET", ["repositories", "77", "issues", n]) = (method, segs.as_slice()) {
            if let Some(moved) = s.transferred.values().find(|i| i.number.to_string() == *n) {
                let mut json = self.issue_json(moved);
                json["html_url"] =
                    format!("https://github.example/elsewhere/tools/issues/{n}").into();
                return ResponseTemplate::new(200).set_body_json(json);
            }
        }
        match (method, segs.as_slice()) {
            ("GET", ["repos", "acme", "server", "issues"]) => {
                let label_filter: Vec<String> = query(req, "labels")
                    .map(|l| l.split(',').map(str::to_string).collect())
                    .unwrap_or_default();
                let state = query(req, "state").unwrap_or_else(|| "open".into());
                let since = query(req, "since")
                    .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                    .map(|t| t.with_timezone(&Utc));
                let per_page: usize = query(req, "per_page")
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(30)
                    .min(s.page_cap);
                let page: usize = query(req, "page").and_then(|p| p.parse().ok()).unwrap_or(1);
                let matching: Vec<&FakeIssue> = s
                    .issues
                    .iter()
                    .rev()
                    .filter(|i| label_filter.iter().all(|l| i.labels.contains(l)))
                    .filter(|i| match state.as_str() {
                        "open" => i.open,
                        "closed" => !i.open,
                        _ => true,
                    })
                    .filter(|i| since.is_none_or(|t| i.updated_at >= t))
                    .collect();
                let items: Vec<Value> = matching
                    .iter()
                    .skip((page - 1) * per_page)
                    .take(per_page)
                    .map(|i| self.issue_json(i))
                    .collect();
                let mut t = ResponseTemplate::new(200).set_body_json(items);
                if page * per_page < matching.len() {
                    let mut next = req.url.clone();
                    let pairs: Vec<(String, String)> = next
                        .query_pairs()
                        .filter(|(k, _)| k != "page")
                        .map(|(k, v)| (k.into_owned(), v.into_owned()))
                        .collect();
                    next.query_pairs_mut()
                        .clear()
                        .extend_pairs(pairs)
                        .append_pair("page", &(page + 1).to_string());
                    let next = format!(
                        "{}{}?{}",
                        self.base_uri,
                        next.path(),
                        next.query().unwrap_or("")
                    );
                    t = t.insert_header("link", format!("<{next}>; rel=\"next\"").as_str());
                }
                t
            }
            ("POST", ["repos", "acme", "server", "issues"]) => {
                let title = body["title"].as_str().unwrap_or("").to_string();
                if title.is_empty() {
                    return error(422, "Validation Failed");
                }
                let labels: Vec<String> = body["labels"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|l| l.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                if let Some(missing) = labels.iter().find(|l| !s.labels.contains(*l)) {
                    return ResponseTemplate::new(422).set_body_json(json!({
                        "message": "Validation Failed",
                        "errors": [{"resource": "Label", "field": "name", "code": "invalid", "value": missing}],
                    }));
                }
                let number = s.issues.iter().map(|i| i.number).max().unwrap_or(0) + 1;
                let issue = FakeIssue {
                    number,
                    title,
                    body: body["body"].as_str().unwrap_or("").to_string(),
                    labels,
                    open: true,
                    closed_at: None,
                    state_reason: None,
                    updated_at: now,
                    pull_request: false,
                    comments: vec![],
                    indexed: false,
                    locked: false,
                    lock_hidden: false,
                };
                let json = self.issue_json(&issue);
                s.issues.push(issue);
                let t = ResponseTemplate::new(201).set_body_json(json);
                match s.delay_next_create.take() {
                    Some(d) => t.set_delay(d),
                    None => t,
                }
            }
            ("GET", ["repos", "acme", "server", "issues", n]) => {
                match s.issues.iter().find(|i| i.number.to_string() == *n) {
                    Some(issue) => ResponseTemplate::new(200).set_body_json(self.issue_json(issue)),
                    None => error(404, "Not Found"),
                }
            }
            ("PATCH", ["repos", "acme", "server", "issues", n]) => {
                let Some(issue) = s.issues.iter_mut().find(|i| i.number.to_string() == *n) else {
                    return error(404, "Not Found");
                };
                match body["state"].as_str() {
                    Some("open") => {
                        if !issue.open {
                            issue.open = true;
                            issue.closed_at = None;
                            issue.state_reason = Some("reopened".into());
                            issue.updated_at = now;
                        }
                    }
                    Some("closed") => {
                        issue.open = false;
                        issue.closed_at = Some(now);
                        issue.updated_at = now;
                    }
                    _ => return error(422, "Validation Failed"),
                }
                let issue = issue.clone();
                ResponseTemplate::new(200).set_body_json(self.issue_json(&issue))
            }
            ("POST", ["repos", "acme", "server", "issues", n, "comments"]) => {
                let Some(issue) = s.issues.iter_mut().find(|i| i.number.to_string() == *n) else {
                    return error(404, "Not Found");
                };
                if issue.locked {
                    // What GitHub answers an App or bot token (review4 F12).
                    return error(403, "Unable to create comment because issue is locked.");
                }
                issue
                    .comments
                    .push(body["body"].as_str().unwrap_or("").to_string());
                issue.updated_at = now;
                ResponseTemplate::new(201).set_body_json(json!({"id": issue.comments.len()}))
            }
            ("GET", ["repos", "acme", "server", "labels", name]) => {
                if s.labels.contains(*name) {
                    ResponseTemplate::new(200).set_body_json(json!({"name": name}))
                } else {
                    error(404, "Not Found")
                }
            }
            ("POST", ["repos", "acme", "server", "labels"]) => {
                let name = body["name"].as_str().unwrap_or("").to_string();
                if !s.labels.insert(name.clone()) {
                    return ResponseTemplate::new(422).set_body_json(json!({
                        "message": "Validation Failed",
                        "errors": [{"resource": "Label", "code": "already_exists", "field": "name"}],
                    }));
                }
                ResponseTemplate::new(201).set_body_json(json!({"name": name}))
            }
            ("GET", ["search", "issues"]) => {
                let q = query(req, "q").unwrap_or_default();
                if !q.contains("is:issue") && !q.contains("is:pull-request") {
                    return error(422, "Query must include 'is:issue' or 'is:pull-request'");
                }
                if !q.contains("repo:acme/server") {
                    return error(422, "Validation Failed");
                }
                let terms: Vec<&str> = q.split('"').skip(1).step_by(2).collect();
                let items: Vec<Value> = s
                    .issues
                    .iter()
                    .filter(|i| i.indexed && !i.pull_request)
                    .filter(|i| terms.iter().all(|t| i.body.contains(t)))
                    .map(|i| self.issue_json(i))
                    .collect();
                ResponseTemplate::new(200).set_body_json(json!({
                    "total_count": items.len(),
                    "incomplete_results": false,
                    "items": items,
                }))
            }
            _ => error(404, "Not Found"),
        }
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
