//! `selfmon prompt show|diff`.

use selfmon::prompt;

use super::config_file::CliConfig;
use super::failure::Failure;

/// Prints the shipped prompt.
pub fn show() {
    out!("{}", prompt::SHIPPED_PROMPT);
}

/// Prints a line diff of the configured prompt against the shipped one.
pub fn diff(config: &std::path::Path) -> Result<(), Failure> {
    let c = CliConfig::load(config)?;
    let status = prompt::effective(&c.monitoring);
    if status.using_shipped {
        outln!(
            "the configuration uses the shipped prompt (version {}); no difference",
            status.shipped_version
        );
        return Ok(());
    }
    outln!(
        "user prompt (version {}) against shipped prompt (version {}){}",
        status.version.map_or("none".into(), |v| v.to_string()),
        status.shipped_version,
        if status.newer_shipped_available {
            ": a newer shipped prompt exists"
        } else {
            ""
        }
    );
    let diff = similar::TextDiff::from_lines(prompt::SHIPPED_PROMPT, status.template.as_str());
    out!(
        "{}",
        diff.unified_diff()
            .context_radius(2)
            .header("shipped", "configured")
    );
    Ok(())
}
