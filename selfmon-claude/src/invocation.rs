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
    if let Some(fallback) = &config.fallback_model {
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
