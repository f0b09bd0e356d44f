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

use config_file::{strip_comments, CliConfig};
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
        Source::Json(text) => {
            let stripped = strip_comments(text);
            let de = &mut serde_json::Deserializer::from_str(&stripped);
            serde_path_to_error::deserialize::<_, CliConfig>(de).map_err(|e| {
                let path = e.path().to_string();
                Failure::config(vec![Problem {
                    field: if path == "." { "<root>".into() } else { path },
                    reason: e.into_inner().to_string(),
                }])
            })?
        }
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
