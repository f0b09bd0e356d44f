//! The configuration the CLI reads, from a file or from a Python dict, built into an engine.

use std::path::Path;
use std::sync::Arc;

use selfmon::engine::SelfMonitor;
use selfmon::StateStore;

use crate::errors::{Failure, Problem};

// The CLI's config-file wiring, compiled in place (not copied) until it is a library module.
#[allow(dead_code, missing_docs)]
#[path = "../../cli/src/cli/config_file.rs"]
mod config_file;
#[allow(dead_code, missing_docs)]
#[path = "../../cli/src/cli/failure.rs"]
mod failure;

use config_file::CliConfig;
use failure::Failure as CliFailure;

/// The engine and the store its history is read from.
pub struct Built {
    /// The engine.
    pub monitor: Arc<SelfMonitor>,
    /// Its state store.
    pub store: Arc<dyn StateStore>,
}

/// Where the configuration comes from.
pub enum Source<'a> {
    /// A JSON file (whole-line `//` comments allowed; relative paths from its folder).
    File(&'a Path),
    /// A JSON document (relative paths from the current directory).
    Json(&'a str),
}

/// Reads, validates and builds; every problem is reported with its field path.
pub fn build(source: Source<'_>) -> Result<Built, Failure> {
    let config = match source {
        Source::File(path) => CliConfig::load(path).map_err(usage)?,
        Source::Json(text) => CliConfig::parse(text).map_err(|(field, reason)| {
            Failure::config(vec![Problem {
                field,
                reason: without_position(reason),
            }])
        })?,
    };
    let problems: Vec<Problem> = config
        .problems()
        .into_iter()
        .map(|p| Problem {
            field: p.field,
            reason: p.reason,
        })
        .collect();
    if !problems.is_empty() {
        return Err(Failure::config(problems));
    }
    let built = crate::runtime::get()?
        .block_on(config.build(false))
        .map_err(usage)?;
    Ok(Built {
        monitor: built.monitor,
        store: built.store,
    })
}

/// `reason` without serde's " at line N column M": the JSON was serialised from a dict by this
/// module, so a position in it points at text the caller never wrote.
fn without_position(mut reason: String) -> String {
    if let Some(cut) = reason.rfind(" at line ") {
        let tail = &reason[cut + " at line ".len()..];
        let is_position = tail.split_once(" column ").is_some_and(|(l, c)| {
            let c = c.split(':').next().unwrap_or(c);
            l.chars().all(|ch| ch.is_ascii_digit()) && c.chars().all(|ch| ch.is_ascii_digit())
        });
        if is_position {
            let rest = tail
                .split_once(':')
                .map(|(_, r)| format!(":{r}"))
                .unwrap_or_default();
            reason.truncate(cut);
            reason.push_str(&rest);
        }
    }
    reason
}

/// A CLI usage failure (a file that cannot be read or parsed, a logs.db that is missing).
fn usage(f: CliFailure) -> Failure {
    let text = f.to_string();
    // "configuration file X: field `F`: reason" names its field; keep it as the problem's path.
    let field = text
        .split_once("field `")
        .and_then(|(_, rest)| rest.split_once('`'))
        .map_or_else(|| "<file>".to_string(), |(f, _)| f.to_string());
    Failure::config(vec![Problem {
        field,
        reason: text,
    }])
}
