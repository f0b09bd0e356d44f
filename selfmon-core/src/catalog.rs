//! The error catalog: what each error code means, how severe it is, and what to do about it.
//!
//! A catalog is loaded from JSON or TOML in any of these shapes:
//!
//! ```json
//! {"GIT-SYNC-001": {"description": "Clone failed", "severity": "error", "action": "Check credentials"}}
//! ```
//! ```json
//! {"codes": [{"code": "GIT-SYNC-001", "description": "Clone failed", "severity": "error"}]}
//! ```
//! ```toml
//! [codes."GIT-SYNC-001"]
//! description = "Clone failed"
//! severity = "error"
//! action = "Check credentials"
//! ```
//! (`[[codes]]` with a `code` key works too). Loading is lenient: entries with problems are kept
//! out of the lookups but reported by [`ErrorCatalog::problems`] (malformed codes, duplicates,
//! empty or TODO descriptions, unknown severities), so a host can show every problem at once.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{ErrorCode, Level};

/// One catalogued error code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogEntry {
    /// The code.
    pub code: ErrorCode,
    /// What it means.
    pub description: String,
    /// How severe it is (`error` when not given).
    pub severity: Level,
    /// What an operator should do, if catalogued.
    pub action: Option<String>,
}

/// What is wrong with one catalog entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CatalogProblemKind {
    /// The code is not of the form `SUBSYSTEM-CATEGORY-NNN`.
    MalformedCode {
        /// Why.
        reason: String,
    },
    /// The code appears more than once; the first entry is used.
    Duplicate,
    /// The description is empty.
    EmptyDescription,
    /// The description is a placeholder (`TODO`, `TBD`, `FIXME`).
    TodoDescription,
    /// The severity is not a known level.
    UnknownSeverity {
        /// The value given.
        value: String,
    },
}

/// A problem found while loading a catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogProblem {
    /// The code as written.
    pub code: String,
    /// What is wrong.
    pub kind: CatalogProblemKind,
}

impl fmt::Display for CatalogProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            CatalogProblemKind::MalformedCode { reason } => {
                write!(f, "{:?} is not a valid error code: {reason}", self.code)
            }
            CatalogProblemKind::Duplicate => {
                write!(
                    f,
                    "{} is catalogued more than once; the first entry is used",
                    self.code
                )
            }
            CatalogProblemKind::EmptyDescription => write!(f, "{} has no description", self.code),
            CatalogProblemKind::TodoDescription => {
                write!(
                    f,
                    "{} has a placeholder description (TODO); describe what it means",
                    self.code
                )
            }
            CatalogProblemKind::UnknownSeverity { value } => write!(
                f,
                "{} has unknown severity {value:?}; use debug, info, warning, error or critical",
                self.code
            ),
        }
    }
}

/// Error codes and what they mean; see the [module docs](self).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ErrorCatalog {
    entries: Vec<CatalogEntry>,
    by_code: HashMap<ErrorCode, usize>,
    problems: Vec<CatalogProblem>,
}

#[derive(Debug, Default, Deserialize)]
struct RawBody {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    action: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawEntry {
    code: String,
    #[serde(flatten)]
    body: RawBody,
}

/// Entries in file order, duplicates kept (a map visitor sees every key).
struct RawEntries(Vec<(String, RawBody)>);

impl<'de> Deserialize<'de> for RawEntries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawEntries;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map from error code to entry, or a list of entries with a `code`")
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<RawEntries, A::Error> {
                let mut out = Vec::new();
                while let Some(e) = seq.next_element::<RawEntry>()? {
                    out.push((e.code, e.body));
                }
                Ok(RawEntries(out))
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<RawEntries, A::Error> {
                let mut out = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if key == "codes" {
                        let inner: RawEntries = map.next_value()?;
                        out.extend(inner.0);
                    } else {
                        let body: RawBody = map.next_value()?;
                        out.push((key, body));
                    }
                }
                Ok(RawEntries(out))
            }
        }
        d.deserialize_any(V)
    }
}

impl ErrorCatalog {
    /// Parses the JSON form. Syntax errors are [`Error::Parse`]; problems with entries are not
    /// errors but [`problems`](Self::problems).
    pub fn from_json_str(json: &str) -> Result<Self> {
        let raw: RawEntries = serde_json::from_str(json)
            .map_err(|e| Error::parse("error catalog (JSON)", json, e.to_string()))?;
        Ok(Self::from_raw(raw.0))
    }

    /// Parses the TOML form. Syntax errors (including a code defined twice as a table, which TOML
    /// forbids) are [`Error::Parse`].
    pub fn from_toml_str(text: &str) -> Result<Self> {
        let raw: RawEntries = toml::from_str(text)
            .map_err(|e| Error::parse("error catalog (TOML)", text, e.to_string()))?;
        Ok(Self::from_raw(raw.0))
    }

    /// Loads a file: TOML when its name ends in `.toml`, JSON otherwise. A file that cannot be
    /// read is an [`Error::Config`] naming the path.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::config(
                "error_catalog",
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("toml"))
        {
            Self::from_toml_str(&text)
        } else {
            Self::from_json_str(&text)
        }
    }

    /// A catalog of already-checked entries (problems are still reported).
    pub fn from_entries(entries: impl IntoIterator<Item = CatalogEntry>) -> Self {
        Self::from_raw(
            entries
                .into_iter()
                .map(|e| {
                    let body = RawBody {
                        description: Some(e.description),
                        severity: Some(e.severity.as_str().to_string()),
                        action: e.action,
                    };
                    (e.code.as_str().to_string(), body)
                })
                .collect(),
        )
    }

    fn from_raw(raw: Vec<(String, RawBody)>) -> Self {
        let mut cat = ErrorCatalog::default();
        for (code_text, body) in raw {
            let mut problem = |kind| {
                cat.problems.push(CatalogProblem {
                    code: code_text.clone(),
                    kind,
                })
            };
            let code = match ErrorCode::parse(code_text.trim()) {
                Ok(c) => c,
                Err(e) => {
                    let reason = match e {
                        Error::Parse { reason, .. } => reason,
                        other => other.to_string(),
                    };
                    problem(CatalogProblemKind::MalformedCode { reason });
                    continue;
                }
            };
            let description = body.description.unwrap_or_default().trim().to_string();
            if description.is_empty() {
                problem(CatalogProblemKind::EmptyDescription);
            } else if is_placeholder_text(&description) {
                problem(CatalogProblemKind::TodoDescription);
            }
            let severity = match body.severity.as_deref() {
                None => Level::Error,
                Some(s) => match s.parse::<Level>() {
                    Ok(l) => l,
                    Err(_) => {
                        problem(CatalogProblemKind::UnknownSeverity {
                            value: s.to_string(),
                        });
                        Level::Error
                    }
                },
            };
            if cat.by_code.contains_key(&code) {
                problem(CatalogProblemKind::Duplicate);
                continue;
            }
            let action = body
                .action
                .map(|a| a.trim().to_string())
                .filter(|a| !a.is_empty());
            cat.by_code.insert(code.clone(), cat.entries.len());
            cat.entries.push(CatalogEntry {
                code,
                description,
                severity,
                action,
            });
        }
        cat
    }

    /// Every problem found while loading, in file order. Empty for a clean catalog.
    pub fn problems(&self) -> &[CatalogProblem] {
        &self.problems
    }

    /// Ok for a clean catalog; otherwise the first problem as an [`Error::Config`] (all of them are
    /// in [`problems`](Self::problems)).
    pub fn validate(&self) -> Result<()> {
        match self.problems.first() {
            None => Ok(()),
            Some(p) => Err(Error::config(
                format!("error_catalog.{}", p.code),
                format!("{p} ({} problem(s) in total)", self.problems.len()),
            )),
        }
    }

    /// The entry for `code`.
    pub fn get(&self, code: &ErrorCode) -> Option<&CatalogEntry> {
        self.by_code.get(code).map(|&i| &self.entries[i])
    }

    /// The entry for a code given as text (`"GIT-SYNC-001"`); `None` when malformed or unknown.
    pub fn lookup(&self, code: &str) -> Option<&CatalogEntry> {
        ErrorCode::parse(code.trim())
            .ok()
            .and_then(|c| self.get(&c))
    }

    /// Entries of a subsystem (`"GIT"`), in catalog order.
    pub fn subsystem<'a>(
        &'a self,
        subsystem: &'a str,
    ) -> impl Iterator<Item = &'a CatalogEntry> + 'a {
        self.entries
            .iter()
            .filter(move |e| e.code.subsystem() == subsystem)
    }

    /// Codes of `codes` that the catalog does not know (to report uncatalogued codes seen in logs).
    pub fn unknown<'a>(
        &self,
        codes: impl IntoIterator<Item = &'a ErrorCode>,
    ) -> Vec<&'a ErrorCode> {
        codes
            .into_iter()
            .filter(|c| !self.by_code.contains_key(c))
            .collect()
    }

    /// All entries, in catalog order.
    pub fn iter(&self) -> impl Iterator<Item = &CatalogEntry> {
        self.entries.iter()
    }

    /// Number of usable entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no usable entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Whether a description is a placeholder: `TODO`, `TBD`, `FIXME` or `XXX` as a word.
fn is_placeholder_text(s: &str) -> bool {
    s.split(|c: char| !c.is_alphanumeric()).any(|w| {
        ["TODO", "TBD", "FIXME", "XXX"]
            .iter()
            .any(|p| w.eq_ignore_ascii_case(p))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON_MAP: &str = r#"{
        "GIT-SYNC-001": {"description": "Clone failed", "severity": "error", "action": "Check the token"},
        "MONITOR-GENERAL-001": {"description": "Monitor tick overran", "severity": "warning"}
    }"#;

    #[test]
    fn json_map_form_loads_and_looks_up() {
        let c = ErrorCatalog::from_json_str(JSON_MAP).unwrap();
        assert!(c.problems().is_empty(), "{:?}", c.problems());
        assert!(c.validate().is_ok());
        let e = c.lookup("GIT-SYNC-001").unwrap();
        assert_eq!(
            (e.description.as_str(), e.severity, e.action.as_deref()),
            ("Clone failed", Level::Error, Some("Check the token"))
        );
        assert_eq!(
            c.lookup("MONITOR-GENERAL-001").unwrap().severity,
            Level::Warning
        );
        assert_eq!(c.subsystem("GIT").count(), 1);
        assert!(c.lookup("nope").is_none());
    }

    #[test]
    fn json_list_and_wrapped_forms_load() {
        let list = r#"[{"code": "GIT-SYNC-001", "description": "Clone failed"}]"#;
        let wrapped = r#"{"codes": [{"code": "GIT-SYNC-001", "description": "Clone failed"}]}"#;
        for text in [list, wrapped] {
            let c = ErrorCatalog::from_json_str(text).unwrap();
            assert_eq!(c.len(), 1);
            assert_eq!(
                c.lookup("GIT-SYNC-001").unwrap().severity,
                Level::Error,
                "severity defaults to error"
            );
        }
    }

    #[test]
    fn toml_table_and_array_forms_load() {
        let tables = "[codes.\"GIT-SYNC-001\"]\ndescription = \"Clone failed\"\nseverity = \"critical\"\naction = \"Page someone\"\n";
        let arrays = "[[codes]]\ncode = \"GIT-SYNC-001\"\ndescription = \"Clone failed\"\nseverity = \"critical\"\n";
        for text in [tables, arrays] {
            let c = ErrorCatalog::from_toml_str(text).unwrap();
            assert_eq!(
                c.lookup("GIT-SYNC-001").unwrap().severity,
                Level::Critical,
                "{text}"
            );
        }
    }

    #[test]
    fn problems_are_all_reported_and_bad_entries_left_out() {
        let text = r#"[
            {"code": "git-sync-1", "description": "bad code"},
            {"code": "GIT-SYNC-001", "description": "first"},
            {"code": "GIT-SYNC-001", "description": "second"},
            {"code": "GIT-SYNC-002", "description": "TODO: describe"},
            {"code": "GIT-SYNC-003", "description": ""},
            {"code": "GIT-SYNC-004", "description": "x", "severity": "apocalyptic"}
        ]"#;
        let c = ErrorCatalog::from_json_str(text).unwrap();
        let kinds: Vec<&CatalogProblemKind> = c.problems().iter().map(|p| &p.kind).collect();
        assert!(matches!(kinds[0], CatalogProblemKind::MalformedCode { .. }));
        assert_eq!(kinds[1], &CatalogProblemKind::Duplicate);
        assert_eq!(kinds[2], &CatalogProblemKind::TodoDescription);
        assert_eq!(kinds[3], &CatalogProblemKind::EmptyDescription);
        assert!(matches!(
            kinds[4],
            CatalogProblemKind::UnknownSeverity { .. }
        ));
        assert_eq!(c.lookup("GIT-SYNC-001").unwrap().description, "first");
        assert_eq!(c.len(), 4);
        match c.validate() {
            Err(Error::Config { field, reason }) => {
                assert_eq!(field, "error_catalog.git-sync-1");
                assert!(reason.contains("5 problem"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert!(c.problems()[2].to_string().contains("placeholder"));
    }

    #[test]
    fn duplicate_json_map_keys_are_reported() {
        let c = ErrorCatalog::from_json_str(
            r#"{"GIT-SYNC-001": {"description": "a"}, "GIT-SYNC-001": {"description": "b"}}"#,
        )
        .unwrap();
        assert_eq!(c.problems()[0].kind, CatalogProblemKind::Duplicate);
        assert_eq!(c.lookup("GIT-SYNC-001").unwrap().description, "a");
    }

    #[test]
    fn syntax_errors_are_parse_errors_and_unreadable_files_name_the_path() {
        assert!(matches!(
            ErrorCatalog::from_json_str("{"),
            Err(Error::Parse { .. })
        ));
        assert!(matches!(
            ErrorCatalog::from_toml_str("[codes"),
            Err(Error::Parse { .. })
        ));
        assert!(matches!(
            ErrorCatalog::from_json_str("42"),
            Err(Error::Parse { .. })
        ));
        let err = ErrorCatalog::load(Path::new("/nonexistent/catalog.toml")).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/catalog.toml"),
            "{err}"
        );
    }

    #[test]
    fn files_load_by_extension() {
        let dir = std::env::temp_dir().join(format!("selfmon-catalog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let toml_path = dir.join("codes.toml");
        std::fs::write(
            &toml_path,
            "[codes.\"GIT-SYNC-001\"]\ndescription = \"Clone failed\"\n",
        )
        .unwrap();
        let json_path = dir.join("codes.json");
        std::fs::write(&json_path, JSON_MAP).unwrap();
        assert_eq!(ErrorCatalog::load(&toml_path).unwrap().len(), 1);
        assert_eq!(ErrorCatalog::load(&json_path).unwrap().len(), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn unknown_codes_are_listed() {
        let c = ErrorCatalog::from_json_str(JSON_MAP).unwrap();
        let seen = [
            ErrorCode::parse("GIT-SYNC-001").unwrap(),
            ErrorCode::parse("GIT-SYNC-009").unwrap(),
        ];
        assert_eq!(c.unknown(&seen), vec![&seen[1]]);
    }
}
