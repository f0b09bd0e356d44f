//! The CLI's argument list and environment, built from the configuration alone.

use std::ffi::{OsStr, OsString};
use std::path::Path;

use selfmon_core::ClaudeModel;

use crate::config::{is_github_credential, ClaudeRunnerConfig, ToolPolicy, PROXY_ENV};
use crate::error::Error;

/// Linux refuses any single argument longer than this (`MAX_ARG_STRLEN`).
pub const MAX_ARG_BYTES: usize = 128 * 1024;

/// The read-only tools granted by [`ToolPolicy::ReadOnlyCode`].
pub const READ_ONLY_TOOLS: &str = "Read,Grep,Glob";

/// Used when the parent has no `PATH`.
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Builds the arguments for one print-mode run. The instructions are read by the CLI from
/// `system_prompt_file`; the data goes on stdin, so no argument grows with the input.
pub fn build_args(
    config: &ClaudeRunnerConfig,
    model: &ClaudeModel,
    schema_json: &str,
    system_prompt_file: &Path,
) -> Result<Vec<OsString>, Error> {
    if schema_json.len() > MAX_ARG_BYTES {
        return Err(Error::ArgumentTooLong {
            what: "--json-schema",
            bytes: schema_json.len(),
        });
    }
    let mut args: Vec<OsString> = Vec::new();
    let mut push = |a: &str| args.push(OsString::from(a));
    push("-p");
    push("--output-format");
    push("json");
    push("--json-schema");
    push(schema_json);
    push("--model");
    push(model.as_cli_arg());
    // Claude Code refuses a fallback equal to the model ("Fallback model cannot be the same as
    // the main model") and every run would fail: without it, the model has no fallback.
    if let Some(fallback) = config
        .fallback_model
        .as_ref()
        .filter(|f| f.as_cli_arg() != model.as_cli_arg())
    {
        push("--fallback-model");
        push(fallback.as_cli_arg());
    }
    if let Some(turns) = config.max_turns {
        push("--max-turns");
        push(&turns.to_string());
    }
    if let Some(budget) = config.max_budget_usd {
        push("--max-budget-usd");
        push(&budget.to_string());
    }
    push("--no-session-persistence");
    push("--setting-sources");
    push(if config.load_user_settings {
        "user"
    } else {
        ""
    });
    push("--strict-mcp-config");
    push("--permission-mode");
    push("dontAsk");
    match &config.tool_policy {
        ToolPolicy::None => {
            push("--tools");
            push("");
        }
        ToolPolicy::ReadOnlyCode { root } => {
            // No `--allowedTools`: a bare `Read` allow rule would permit reading any file on the
            // machine. In `dontAsk` mode the working directories (here: the empty cwd and `root`)
            // are readable and everything else is denied; the contract test pins this.
            push("--tools");
            push(READ_ONLY_TOOLS);
            args.push(OsString::from("--add-dir"));
            args.push(root.as_os_str().to_owned());
        }
    }
    args.push(OsString::from("--system-prompt-file"));
    args.push(system_prompt_file.as_os_str().to_owned());
    Ok(args)
}

/// Builds the child's complete environment from `parent` (normally `std::env::vars_os()`): only
/// `PATH`, `HOME`, the configured credential, proxy and pass-through variables, the configured
/// fixed values, and the switches that stop auto-updates and non-essential traffic. Anything that
/// looks like a GitHub credential is dropped whatever the configuration says.
pub fn build_env(
    config: &ClaudeRunnerConfig,
    parent: impl IntoIterator<Item = (OsString, OsString)>,
) -> Vec<(OsString, OsString)> {
    let parent: Vec<(OsString, OsString)> = parent.into_iter().collect();
    let get = |name: &str| {
        parent
            .iter()
            .find(|(k, _)| k.as_os_str() == OsStr::new(name))
            .map(|(_, v)| v.clone())
    };
    let mut env: Vec<(OsString, OsString)> = Vec::new();
    let mut set = |k: &str, v: OsString| {
        env.retain(|(existing, _)| existing.as_os_str() != OsStr::new(k));
        env.push((OsString::from(k), v));
    };
    set("PATH", get("PATH").unwrap_or_else(|| DEFAULT_PATH.into()));
    match (&config.home_dir, get("HOME")) {
        (Some(home), _) => set("HOME", home.as_os_str().to_owned()),
        (None, Some(home)) => set("HOME", home),
        (None, None) => {}
    }
    let passed = config
        .api_key_env
        .iter()
        .map(String::as_str)
        .chain(PROXY_ENV.iter().copied())
        .chain(config.pass_env.iter().map(String::as_str));
    for name in passed {
        if let Some(v) = get(name) {
            set(name, v);
        }
    }
    for (k, v) in &config.set_env {
        set(k, v.into());
    }
    if let Some(dir) = &config.config_dir {
        set("CLAUDE_CONFIG_DIR", dir.as_os_str().to_owned());
    }
    set("DISABLE_AUTOUPDATER", "1".into());
    set("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1".into());
    env.retain(|(k, _)| !is_github_credential(&k.to_string_lossy()));
    env
}

/// Checks the environment a child would get ([`build_env`]) by *value*: refuses any variable whose
/// value holds one of `tracker_tokens` (the issue tracker's credentials) or has the shape of a
/// GitHub token, whatever the variable is called. Names alone are not enough: a tracker token in
/// `TRACKER_PAT` listed in `pass_env` would otherwise reach the model's process.
///
/// Errors: [`Error::ForbiddenEnvValue`] naming the first such variable and why.
pub fn check_env_values(
    env: &[(OsString, OsString)],
    tracker_tokens: &[String],
) -> Result<(), Error> {
    for (name, value) in env {
        let value = value.to_string_lossy();
        let reason = if tracker_tokens
            .iter()
            .any(|t| !t.trim().is_empty() && value.contains(t.trim()))
        {
            Some("its value is the issue tracker's token")
        } else if holds_github_token(&value) {
            Some("its value has the shape of a GitHub token (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_` or `github_pat_` followed by a key)")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(Error::ForbiddenEnvValue {
                name: name.to_string_lossy().into_owned(),
                reason,
            });
        }
    }
    Ok(())
}

/// The environment a child of `config` would get from `parent`, checked with
/// [`check_env_values`]. `selfmon config validate` calls this with the process environment, so a
/// misconfiguration is reported before any scan runs.
pub fn check_child_env(
    config: &ClaudeRunnerConfig,
    parent: impl IntoIterator<Item = (OsString, OsString)>,
    tracker_tokens: &[String],
) -> Result<(), Error> {
    check_env_values(&build_env(config, parent), tracker_tokens)
}

/// Whether `text` holds a GitHub token: a known prefix followed by at least 20 key characters.
pub fn holds_github_token(text: &str) -> bool {
    const PREFIXES: &[&str] = &["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"];
    PREFIXES.iter().any(|p| {
        text.match_indices(p).any(|(at, _)| {
            let starts_word = text[..at]
                .bytes()
                .next_back()
                .is_none_or(|b| !b.is_ascii_alphanumeric());
            let key = text[at + p.len()..]
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                .count();
            starts_word && key >= 20
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn args_of(config: &ClaudeRunnerConfig) -> Vec<String> {
        build_args(
            config,
            &ClaudeModel::Opus,
            "{}",
            Path::new("/tmp/x/instructions.md"),
        )
        .unwrap()
        .into_iter()
        .map(|a| a.into_string().unwrap())
        .collect()
    }

    fn value_after<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
        args.iter()
            .position(|a| a == flag)
            .map(|i| args[i + 1].as_str())
    }

    #[test]
    fn the_default_policy_grants_no_tools_and_never_skips_permissions() {
        let args = args_of(&ClaudeRunnerConfig::default());
        assert_eq!(value_after(&args, "--tools"), Some(""));
        assert_eq!(value_after(&args, "--permission-mode"), Some("dontAsk"));
        assert_eq!(value_after(&args, "--model"), Some("opus"));
        assert_eq!(value_after(&args, "--setting-sources"), Some(""));
        for flag in ["-p", "--no-session-persistence", "--strict-mcp-config"] {
            assert!(args.iter().any(|a| a == flag), "{flag}");
        }
        for forbidden in [
            "--dangerously-skip-permissions",
            "bypassPermissions",
            "--add-dir",
            "--mcp-config",
            "--allowedTools",
        ] {
            assert!(!args.iter().any(|a| a.contains(forbidden)), "{forbidden}");
        }
    }

    #[test]
    fn read_only_code_grants_only_read_tools_on_the_root() {
        let config = ClaudeRunnerConfig {
            tool_policy: ToolPolicy::ReadOnlyCode {
                root: PathBuf::from("/srv/app"),
            },
            fallback_model: Some(ClaudeModel::Haiku),
            max_budget_usd: Some(1.5),
            ..Default::default()
        };
        let args = args_of(&config);
        assert_eq!(value_after(&args, "--tools"), Some("Read,Grep,Glob"));
        assert_eq!(value_after(&args, "--add-dir"), Some("/srv/app"));
        assert_eq!(value_after(&args, "--fallback-model"), Some("haiku"));
        assert_eq!(value_after(&args, "--max-budget-usd"), Some("1.5"));
        for forbidden in [
            "Bash",
            "Write",
            "Edit",
            "WebFetch",
            "WebSearch",
            "--dangerously-skip-permissions",
            "--allowedTools",
        ] {
            assert!(!args.iter().any(|a| a.contains(forbidden)), "{forbidden}");
        }
    }

    #[test]
    fn an_oversized_schema_is_refused_before_spawning() {
        let schema = "x".repeat(MAX_ARG_BYTES + 1);
        let e = build_args(
            &ClaudeRunnerConfig::default(),
            &ClaudeModel::Sonnet,
            &schema,
            Path::new("/f"),
        )
        .unwrap_err();
        assert!(matches!(e, Error::ArgumentTooLong { .. }));
    }

    #[test]
    fn a_variable_holding_the_tracker_token_is_refused_whatever_its_name() {
        let config = ClaudeRunnerConfig {
            pass_env: vec!["TRACKER_PAT".into(), "DEPLOY_NOTE".into()],
            ..Default::default()
        };
        let token = "glpat-notagithubshapeatall0".to_string();
        let parent = vec![
            (
                OsString::from("TRACKER_PAT"),
                OsString::from(token.as_str()),
            ),
            (OsString::from("PATH"), OsString::from("/usr/bin")),
        ];
        let e = check_child_env(&config, parent.clone(), std::slice::from_ref(&token))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`TRACKER_PAT`") && e.contains("tracker's token"),
            "{e}"
        );
        // Without the tracker token the same value is an ordinary variable.
        check_child_env(&config, parent, &[]).unwrap();
    }

    #[test]
    fn a_variable_shaped_like_a_github_token_is_refused_whatever_its_name() {
        let mut config = ClaudeRunnerConfig::default();
        config.set_env.insert(
            "MIRROR_URL".into(),
            "https://x:ghp_abcdefghijklmnopqrstuvwxyz0123456789@example.invalid".into(),
        );
        let e = check_child_env(&config, Vec::new(), &[]).unwrap_err();
        assert!(matches!(e, Error::ForbiddenEnvValue { ref name, .. } if name == "MIRROR_URL"));
        assert!(e.to_string().contains("shape of a GitHub token"), "{e}");
        assert!(!holds_github_token(
            "ghp_short and xghp_abcdefghijklmnopqrstuvwxyz"
        ));
        assert!(holds_github_token(
            "github_pat_11ABCDEFG0123456789_abcdefghijkl"
        ));
    }

    #[test]
    fn the_child_environment_holds_only_what_the_cli_needs() {
        let parent = [
            ("PATH", "/bin"),
            ("HOME", "/home/u"),
            ("ANTHROPIC_API_KEY", "sk-1"),
            ("GITHUB_TOKEN", "ghp_secret"),
            ("GH_TOKEN", "ghp_secret"),
            ("AWS_SECRET_ACCESS_KEY", "aws"),
            ("HTTPS_PROXY", "http://proxy:3128"),
            ("CLAUDE_CODE_USE_BEDROCK", "1"),
        ]
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let mut config = ClaudeRunnerConfig {
            pass_env: vec!["CLAUDE_CODE_USE_BEDROCK".into()],
            ..Default::default()
        };
        config
            .set_env
            .insert("ANTHROPIC_BASE_URL".into(), "http://127.0.0.1:9".into());
        config
            .set_env
            .insert("GITHUB_TOKEN".into(), "sneaked past validate".into());
        let env = build_env(&config, parent);
        let names: Vec<String> = env
            .iter()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            [
                "ANTHROPIC_API_KEY",
                "ANTHROPIC_BASE_URL",
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC",
                "CLAUDE_CODE_USE_BEDROCK",
                "DISABLE_AUTOUPDATER",
                "HOME",
                "HTTPS_PROXY",
                "PATH"
            ]
        );
    }

    #[test]
    fn a_configured_home_replaces_the_parents() {
        let config = ClaudeRunnerConfig {
            home_dir: Some("/var/lib/selfmon".into()),
            ..Default::default()
        };
        let env = build_env(&config, [(OsString::from("HOME"), OsString::from("/root"))]);
        assert!(env.contains(&(OsString::from("HOME"), OsString::from("/var/lib/selfmon"))));
    }
}
