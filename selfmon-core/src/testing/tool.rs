//! Tests that need an optional external tool (the Claude CLI, Chromium, PostgreSQL, Python).
//!
//! A test whose tool is missing skips *visibly*: [`skip_missing_tool`] writes a line
//! `SKIPPED <tool> <test>: <reason>` straight to the process's standard error, which `cargo test`
//! shows without `--nocapture` (only the `print!`/`eprint!` macros are captured). Where the
//! environment variable `SELFMON_REQUIRE_TOOLS` names the tool (a comma-separated list, as CI sets it
//! for every tool it installed), a missing tool is a failure instead of a skip, so CI cannot pass
//! with a tool it installed left unused.

use std::io::Write;

/// The environment variable listing the tools that must not be skipped (comma-separated).
pub const REQUIRE_TOOLS_ENV: &str = "SELFMON_REQUIRE_TOOLS";

/// Whether `SELFMON_REQUIRE_TOOLS` names `tool` (case-insensitive).
pub fn tool_required(tool: &str) -> bool {
    std::env::var(REQUIRE_TOOLS_ENV)
        .map(|v| list_names(&v, tool))
        .unwrap_or(false)
}

/// Whether the comma-separated `list` names `tool` (case-insensitive, spaces ignored).
fn list_names(list: &str, tool: &str) -> bool {
    list.split(',').any(|t| t.trim().eq_ignore_ascii_case(tool))
}

/// Reports that the calling test cannot run because `tool` is missing.
///
/// Prints `SKIPPED <tool> <test>: <reason>` to standard error (visible in the normal `cargo test`
/// output); the caller then returns early. Panics instead when [`tool_required`] says the tool must
/// be there.
pub fn skip_missing_tool(tool: &str, reason: &str) {
    let test = std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_string();
    if tool_required(tool) {
        panic!("{tool} is required here ({REQUIRE_TOOLS_ENV} names it) but missing: {reason}");
    }
    let line = format!("SKIPPED {tool} {test}: {reason}\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tool_named_in_the_list_is_required_whatever_its_case_or_spacing() {
        assert!(list_names("chromium,claude,postgres", "claude"));
        assert!(list_names("chromium, Claude ,postgres", "CLAUDE"));
        assert!(!list_names("chromium,claude", "postgres"));
        assert!(!list_names("", "postgres"));
        assert!(!list_names("postgresql", "postgres"));
    }
}
