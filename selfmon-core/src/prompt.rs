//! The analysis prompt: the shipped, versioned template and its rendering.
//!
//! Placeholders are `{name}`; `{{` and `}}` stand for literal braces. Unknown placeholders are an
//! error naming them, so a typo in a user's template never reaches the model silently.

use serde::{Deserialize, Serialize};

use crate::config::SelfMonitoringConfig;
use crate::error::{Error, Result};

/// The prompt shipped with this version of selfmon. Its first line is `[Prompt version: N]`.
pub const SHIPPED_PROMPT: &str = include_str!("../prompts/analysis.md");

/// Placeholders a template may use.
pub const PLACEHOLDERS: [&str; 5] = [
    "log_db_path",
    "last_scan_log_id",
    "dedup_context",
    "digest",
    "log_schema",
];

/// Values substituted into the template.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptVars {
    /// Where the logs live (`/var/lib/cidx/logs.db`).
    pub log_db_path: String,
    /// The cursor: records with ids up to this were analysed before.
    pub last_scan_log_id: i64,
    /// A bounded list of issues that already exist.
    pub dedup_context: String,
    /// The fenced digest, or a pointer to where the runner supplies it.
    pub digest: String,
    /// The log schema description.
    pub log_schema: String,
}

impl PromptVars {
    fn get(&self, name: &str) -> Option<String> {
        Some(match name {
            "log_db_path" => self.log_db_path.clone(),
            "last_scan_log_id" => self.last_scan_log_id.to_string(),
            "dedup_context" => self.dedup_context.clone(),
            "digest" => self.digest.clone(),
            "log_schema" => self.log_schema.clone(),
            _ => return None,
        })
    }
}

/// The version on a template's first line (`[Prompt version: 3]`), if it has one.
pub fn version_of(template: &str) -> Option<u32> {
    let first = template.lines().next()?.trim();
    let inner = first.strip_prefix("[Prompt version:")?.strip_suffix(']')?;
    inner.trim().parse().ok()
}

/// The version of [`SHIPPED_PROMPT`].
pub fn shipped_version() -> u32 {
    version_of(SHIPPED_PROMPT).unwrap_or(0)
}

/// Checks that a template only uses known placeholders and has balanced braces.
pub fn check_template(template: &str) -> Result<()> {
    walk(template, |_| Some(String::new())).map(|_| ())
}

/// Renders `template` with `vars`.
pub fn render(template: &str, vars: &PromptVars) -> Result<String> {
    walk(template, |name| vars.get(name))
}

fn walk(template: &str, mut value: impl FnMut(&str) -> Option<String>) -> Result<String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    let mut offset = 0;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let consumed;
        if tail.starts_with("{{") {
            out.push('{');
            consumed = 2;
        } else if tail.starts_with("}}") {
            out.push('}');
            consumed = 2;
        } else if tail.starts_with('}') {
            return Err(Error::Template {
                offset: offset + i,
                reason: "stray `}`; write `}}` for a literal brace".into(),
            });
        } else {
            let Some(end) = tail.find('}') else {
                return Err(Error::Template {
                    offset: offset + i,
                    reason: "unclosed `{`; write `{{` for a literal brace".into(),
                });
            };
            let name = &tail[1..end];
            match value(name) {
                Some(v) if PLACEHOLDERS.contains(&name) => out.push_str(&v),
                _ => {
                    return Err(Error::UnknownPlaceholder {
                        name: crate::error::truncate_chars(name, 64),
                        known: PLACEHOLDERS.map(|p| format!("{{{p}}}")).join(", "),
                    })
                }
            }
            consumed = end + 1;
        }
        rest = &tail[consumed..];
        offset += i + consumed;
    }
    out.push_str(rest);
    Ok(out)
}

/// Which template a scan uses and whether the user should be told about a newer shipped one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptStatus {
    /// The template text in effect.
    pub template: String,
    /// Its version (`None` for a user template without a version line).
    pub version: Option<u32>,
    /// True while the shipped prompt is used.
    pub using_shipped: bool,
    /// The shipped prompt's version.
    pub shipped_version: u32,
    /// True when the user's template is based on an older shipped version than the current one.
    pub newer_shipped_available: bool,
}

/// The template in effect for `config`: the shipped one unless the user modified it.
pub fn effective(config: &SelfMonitoringConfig) -> PromptStatus {
    let shipped = shipped_version();
    if config.prompt_user_modified && !config.prompt_template.trim().is_empty() {
        let based_on = config
            .prompt_base_version
            .or_else(|| version_of(&config.prompt_template));
        PromptStatus {
            template: config.prompt_template.clone(),
            version: version_of(&config.prompt_template),
            using_shipped: false,
            shipped_version: shipped,
            newer_shipped_available: based_on.is_none_or(|v| v < shipped),
        }
    } else {
        PromptStatus {
            template: SHIPPED_PROMPT.to_string(),
            version: Some(shipped),
            using_shipped: true,
            shipped_version: shipped,
            newer_shipped_available: false,
        }
    }
}

/// Wraps untrusted data in a fence whose boundary cannot occur inside it.
pub fn fence(data: &str, boundary: &str) -> String {
    let neutralised = data.replace(boundary, "[boundary removed]");
    format!("<<<{boundary}\n{neutralised}\n{boundary}>>>\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_prompt_has_a_version_and_renders() {
        assert!(shipped_version() >= 1);
        let out = render(
            SHIPPED_PROMPT,
            &PromptVars {
                digest: "DIGEST-HERE".into(),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(out.contains("DIGEST-HERE"));
        assert!(out.contains(r#"{"findings": [...]}"#));
    }

    #[test]
    fn unknown_placeholder_is_an_error_naming_it() {
        let err = render("hello {nmae}", &PromptVars::default()).unwrap_err();
        assert!(
            matches!(err, Error::UnknownPlaceholder { ref name, .. } if name == "nmae"),
            "{err}"
        );
        assert!(err.to_string().contains("{digest}"));
    }

    #[test]
    fn literal_braces_and_malformed_templates() {
        assert_eq!(
            render(
                "{{x}} {last_scan_log_id}",
                &PromptVars {
                    last_scan_log_id: 7,
                    ..Default::default()
                }
            )
            .unwrap(),
            "{x} 7"
        );
        assert!(matches!(
            render("a { b", &PromptVars::default()),
            Err(Error::Template { offset: 2, .. })
        ));
        assert!(matches!(
            render("a } b", &PromptVars::default()),
            Err(Error::Template { .. })
        ));
    }

    #[test]
    fn substituted_values_are_not_re_expanded() {
        let vars = PromptVars {
            digest: "{log_db_path} }{".into(),
            ..Default::default()
        };
        assert_eq!(render("[{digest}]", &vars).unwrap(), "[{log_db_path} }{]");
    }

    #[test]
    fn shipped_prompt_is_used_until_the_user_modifies_it() {
        let mut c = SelfMonitoringConfig {
            prompt_template: "old {digest}".into(),
            ..Default::default()
        };
        assert!(effective(&c).using_shipped);
        c.prompt_user_modified = true;
        let s = effective(&c);
        assert!(!s.using_shipped && s.template == "old {digest}");
        assert!(
            s.newer_shipped_available,
            "no base version means we should tell the user"
        );
        c.prompt_base_version = Some(shipped_version());
        assert!(!effective(&c).newer_shipped_available);
    }
}
