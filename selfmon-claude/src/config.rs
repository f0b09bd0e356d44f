//! Runner configuration: plain data with defaults, serde and `validate()`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use selfmon_core::ClaudeModel;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The CLI refuses stdin larger than this many bytes.
pub const CLI_STDIN_LIMIT_BYTES: usize = 10_000_000;

/// Which tools the model may use. There is no variant that grants shell, write, web or MCP access,
/// and none that skips permission checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ToolPolicy {
    /// No tools at all (`--tools ""`), no MCP servers, run in a fresh empty temporary directory.
    #[default]
    None,
    /// Read-only access to a source tree (`Read`, `Grep`, `Glob` with `--add-dir root`), so the model
    /// can check whether a logged exception is handled. Reads outside `root` (and the empty working
    /// directory) are denied by the CLI's `dontAsk` permission mode. Still no shell, write, web or
    /// MCP.
    ReadOnlyCode {
        /// The repository root the model may read.
        root: PathBuf,
    },
}

/// How [`crate::ClaudeRunner`] runs the Claude Code CLI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClaudeRunnerConfig {
    /// The CLI: a bare name looked up on `PATH` (default `claude`) or a path.
    pub binary: PathBuf,
    /// Model(s) the CLI falls back to when the requested one is overloaded (`--fallback-model`).
    /// Not passed for a run whose model is this one (Claude Code refuses a fallback equal to the
    /// model): that run has no fallback.
    pub fallback_model: Option<ClaudeModel>,
    /// Most agent turns (`--max-turns`); `None` leaves the CLI's default.
    pub max_turns: Option<u32>,
    /// Most US dollars one run may spend (`--max-budget-usd`); `None` means no CLI-side limit.
    pub max_budget_usd: Option<f64>,
    /// Which tools the model may use.
    pub tool_policy: ToolPolicy,
    /// Wall-clock limit for one run, in seconds; the request's own timeout applies if shorter.
    pub timeout_secs: u64,
    /// Most bytes read from the CLI's stdout before it is killed.
    pub max_stdout_bytes: usize,
    /// Most bytes read from the CLI's stderr before it is killed.
    pub max_stderr_bytes: usize,
    /// Most bytes sent on stdin; must stay below the CLI's own 10 MB limit.
    pub max_stdin_bytes: usize,
    /// Names of the variables holding credentials, passed through from the parent when set.
    pub api_key_env: Vec<String>,
    /// More variable names passed through from the parent when set (e.g. `CLAUDE_CODE_USE_BEDROCK`).
    pub pass_env: Vec<String>,
    /// Variables set to fixed values in the child (e.g. `ANTHROPIC_BASE_URL` for a gateway).
    pub set_env: BTreeMap<String, String>,
    /// `HOME` for the child; `None` passes the parent's `HOME` through.
    pub home_dir: Option<PathBuf>,
    /// A private Claude configuration directory (`CLAUDE_CONFIG_DIR`); `None` uses the CLI's default.
    pub config_dir: Option<PathBuf>,
    /// Load the user's Claude settings (`--setting-sources user`). Off by default: user settings can
    /// define hooks that run shell commands, which the tool policy would not cover.
    pub load_user_settings: bool,
}

/// Proxy and certificate variables passed through when set, so the CLI works behind a proxy.
pub const PROXY_ENV: &[&str] = &[
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NODE_EXTRA_CA_CERTS",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
];

impl Default for ClaudeRunnerConfig {
    fn default() -> Self {
        ClaudeRunnerConfig {
            binary: PathBuf::from("claude"),
            fallback_model: None,
            max_turns: Some(10),
            max_budget_usd: None,
            tool_policy: ToolPolicy::None,
            timeout_secs: 30 * 60,
            max_stdout_bytes: 16 * 1024 * 1024,
            max_stderr_bytes: 1024 * 1024,
            max_stdin_bytes: 8 * 1024 * 1024,
            api_key_env: vec![
                "ANTHROPIC_API_KEY".into(),
                "ANTHROPIC_AUTH_TOKEN".into(),
                "CLAUDE_CODE_OAUTH_TOKEN".into(),
            ],
            pass_env: Vec::new(),
            set_env: BTreeMap::new(),
            home_dir: None,
            config_dir: None,
            load_user_settings: false,
        }
    }
}

impl ClaudeRunnerConfig {
    /// The configured timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }

    /// Checks every field, returning the first problem found.
    ///
    /// Refuses: an empty binary, zero limits, a stdin bound at or above the CLI's 10 MB, a
    /// non-positive or non-finite budget, a relative or missing `ReadOnlyCode` root, and any
    /// environment variable that looks like a GitHub credential (the model's process must never
    /// see one) or is not a plain variable name.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |field, reason: String| Err(Error::Config { field, reason });
        if self.binary.as_os_str().is_empty() {
            return bad(
                "binary",
                "must name the Claude CLI (`claude`) or its path".into(),
            );
        }
        if self.max_turns == Some(0) {
            return bad(
                "max_turns",
                "must be at least 1 (or absent for the CLI default)".into(),
            );
        }
        if let Some(b) = self.max_budget_usd {
            if !b.is_finite() || b <= 0.0 {
                return bad(
                    "max_budget_usd",
                    format!("must be a positive number of dollars, got {b}"),
                );
            }
        }
        if self.timeout_secs == 0 {
            return bad("timeout_secs", "must be at least 1 second".into());
        }
        for (field, v) in [
            ("max_stdout_bytes", self.max_stdout_bytes),
            ("max_stderr_bytes", self.max_stderr_bytes),
            ("max_stdin_bytes", self.max_stdin_bytes),
        ] {
            if v == 0 {
                return bad(field, "must be greater than zero".into());
            }
        }
        if self.max_stdin_bytes >= CLI_STDIN_LIMIT_BYTES {
            return bad(
                "max_stdin_bytes",
                format!("must be below the CLI's own limit of {CLI_STDIN_LIMIT_BYTES} bytes"),
            );
        }
        if let ToolPolicy::ReadOnlyCode { root } = &self.tool_policy {
            if !root.is_absolute() {
                return bad(
                    "tool_policy.root",
                    format!("must be an absolute path, got `{}`", root.display()),
                );
            }
            if !root.is_dir() {
                return bad(
                    "tool_policy.root",
                    format!("`{}` is not a directory", root.display()),
                );
            }
        }
        let names = self
            .api_key_env
            .iter()
            .map(|n| ("api_key_env", n.as_str()))
            .chain(self.pass_env.iter().map(|n| ("pass_env", n.as_str())))
            .chain(self.set_env.keys().map(|n| ("set_env", n.as_str())));
        for (field, name) in names {
            if !is_env_name(name) {
                return bad(
                    field,
                    format!("`{name}` is not an environment variable name"),
                );
            }
            if is_github_credential(name) {
                return bad(
                    field,
                    format!("{name} looks like a GitHub credential; it must never reach the model's process"),
                );
            }
        }
        Ok(())
    }
}

fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit()
}

/// Whether an environment variable name looks like it carries a GitHub credential
/// (`GITHUB_TOKEN`, `GH_TOKEN`, `GH_ENTERPRISE_TOKEN`, `GITHUB_PAT`, ...).
pub fn is_github_credential(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    n.starts_with("GITHUB_") || n.starts_with("GH_") || n.contains("GITHUB")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_configuration_is_valid_and_grants_no_tools() {
        let c = ClaudeRunnerConfig::default();
        c.validate().unwrap();
        assert_eq!(c.tool_policy, ToolPolicy::None);
        assert_eq!(c.timeout(), Duration::from_secs(1800));
        assert!(c.max_stdin_bytes < CLI_STDIN_LIMIT_BYTES);
    }

    #[test]
    fn github_credentials_cannot_be_configured_into_the_child_environment() {
        for name in [
            "GITHUB_TOKEN",
            "GH_TOKEN",
            "gh_enterprise_token",
            "MY_GITHUB_PAT",
        ] {
            let c = ClaudeRunnerConfig {
                pass_env: vec![name.into()],
                ..Default::default()
            };
            let msg = c.validate().unwrap_err().to_string();
            assert!(msg.contains("GitHub credential"), "{name}: {msg}");
            let mut c = ClaudeRunnerConfig::default();
            c.set_env.insert(name.into(), "x".into());
            assert!(c.validate().is_err(), "{name}");
        }
    }

    #[test]
    fn stdin_bound_must_stay_below_the_cli_limit() {
        let c = ClaudeRunnerConfig {
            max_stdin_bytes: 10_000_000,
            ..Default::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("max_stdin_bytes"));
    }

    #[test]
    fn read_only_root_must_be_an_existing_absolute_directory() {
        let c = ClaudeRunnerConfig {
            tool_policy: ToolPolicy::ReadOnlyCode { root: "src".into() },
            ..Default::default()
        };
        assert!(c.validate().is_err());
        let dir = tempfile::tempdir().unwrap();
        let c = ClaudeRunnerConfig {
            tool_policy: ToolPolicy::ReadOnlyCode {
                root: dir.path().into(),
            },
            ..Default::default()
        };
        c.validate().unwrap();
    }

    #[test]
    fn config_round_trips_through_json_and_rejects_unknown_fields() {
        let c = ClaudeRunnerConfig {
            fallback_model: Some(ClaudeModel::Haiku),
            max_budget_usd: Some(0.5),
            ..Default::default()
        };
        let json = serde_json::to_string(&c).unwrap();
        let back: ClaudeRunnerConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
        let partial: ClaudeRunnerConfig =
            serde_json::from_str(r#"{"tool_policy":{"kind":"read_only_code","root":"/srv"}}"#)
                .unwrap();
        assert_eq!(
            partial.tool_policy,
            ToolPolicy::ReadOnlyCode {
                root: "/srv".into()
            }
        );
        assert!(
            serde_json::from_str::<ClaudeRunnerConfig>(r#"{"dangerously_skip":true}"#).is_err()
        );
        for bad in [0.0, -1.0, f64::NAN] {
            let c = ClaudeRunnerConfig {
                max_budget_usd: Some(bad),
                ..Default::default()
            };
            assert!(c.validate().is_err());
        }
    }
}
