//! The CLI's `--output-format json` result object and the rules for when a run counts as good.

use std::process::ExitStatus;

use selfmon_core::error::truncate_chars;
use selfmon_core::Usage;
use serde::Deserialize;
use serde_json::Value;

use crate::error::Error;
use crate::extract::extract_object;

/// Bytes of stdout kept in error messages.
const STDOUT_HEAD_CHARS: usize = 500;
/// Bytes of stderr kept in error messages.
const STDERR_TAIL_BYTES: usize = 2_000;

/// The result object printed by `claude -p --output-format json`. Unknown fields are ignored so a
/// newer CLI still parses.
#[derive(Debug, Clone, Deserialize)]
pub struct CliResult {
    /// Always `result`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `success` or an `error_*` subtype.
    #[serde(default)]
    pub subtype: Option<String>,
    /// Whether the CLI considers the run failed.
    #[serde(default)]
    pub is_error: Option<bool>,
    /// The final text, or the error message.
    #[serde(default)]
    pub result: Option<Value>,
    /// The schema-validated answer.
    #[serde(default)]
    pub structured_output: Option<Value>,
    /// Session id.
    #[serde(default)]
    pub session_id: Option<String>,
    /// Turns used.
    #[serde(default)]
    pub num_turns: Option<u32>,
    /// Wall time in milliseconds.
    #[serde(default)]
    pub duration_ms: Option<u64>,
    /// Cost in USD.
    #[serde(default)]
    pub total_cost_usd: Option<f64>,
    /// Token counts.
    #[serde(default)]
    pub usage: Option<CliUsage>,
    /// Tool uses the permission policy refused.
    #[serde(default)]
    pub permission_denials: Option<Vec<Value>>,
    /// HTTP status of a failed API call, when the CLI reports one.
    #[serde(default)]
    pub api_error_status: Option<Value>,
}

/// Token counts of a run.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct CliUsage {
    /// Uncached input tokens.
    #[serde(default)]
    pub input_tokens: Option<u64>,
    /// Input tokens written to the prompt cache.
    #[serde(default)]
    pub cache_creation_input_tokens: Option<u64>,
    /// Input tokens read from the prompt cache.
    #[serde(default)]
    pub cache_read_input_tokens: Option<u64>,
    /// Output tokens.
    #[serde(default)]
    pub output_tokens: Option<u64>,
}

impl CliResult {
    /// Usage in core's terms; input tokens include cached ones (they are all input the model read).
    pub fn usage(&self) -> Usage {
        let u = self.usage.unwrap_or_default();
        let input = match (
            u.input_tokens,
            u.cache_creation_input_tokens,
            u.cache_read_input_tokens,
        ) {
            (None, None, None) => None,
            (a, b, c) => Some(a.unwrap_or(0) + b.unwrap_or(0) + c.unwrap_or(0)),
        };
        Usage {
            input_tokens: input,
            output_tokens: u.output_tokens,
            cost_usd: self.total_cost_usd,
            turns: self.num_turns,
            duration_ms: self.duration_ms,
        }
    }

    fn result_text(&self) -> String {
        match &self.result {
            Some(Value::String(s)) => truncate_chars(s, 1_000),
            Some(other) => truncate_chars(&other.to_string(), 1_000),
            None => String::new(),
        }
    }
}

/// Decides whether a finished run is good and returns its result object.
///
/// Good means: not killed by a signal, a result object found in stdout, subtype `success`,
/// `is_error` false, exit status 0, and a structured output present. Each other case is its own
/// error variant.
pub fn interpret(status: ExitStatus, stdout: &[u8], stderr: &[u8]) -> Result<CliResult, Error> {
    use std::os::unix::process::ExitStatusExt;
    let stderr_tail = tail(stderr);
    if let Some(signal) = status.signal() {
        return Err(Error::KilledBySignal {
            signal,
            stderr_tail,
        });
    }
    let exit_code = status.code();
    let text = String::from_utf8_lossy(stdout);
    let parsed = extract_object::<CliResult>(&text, |r| r.kind == "result");
    let result = match parsed {
        Ok(r) => r,
        Err(reason) => {
            let stdout_head = truncate_chars(&text, STDOUT_HEAD_CHARS);
            return Err(match exit_code {
                Some(code) if code != 0 => Error::Exit {
                    code,
                    stderr_tail,
                    stdout_head,
                },
                _ => Error::UnparseableOutput {
                    reason,
                    exit_code,
                    stdout_head,
                    stderr_tail,
                },
            });
        }
    };
    let subtype = result.subtype.clone().unwrap_or_default();
    if subtype != "success" {
        return Err(Error::Unfinished {
            hint: hint_for(&subtype),
            subtype,
            num_turns: result.num_turns,
            exit_code,
            stderr_tail,
        });
    }
    if result.is_error != Some(false) {
        let api_error_status = result
            .api_error_status
            .as_ref()
            .and_then(Value::as_u64)
            .and_then(|s| u16::try_from(s).ok());
        return Err(Error::CliReportedError {
            exit_code,
            subtype,
            api_error_status,
            message: result.result_text(),
            stderr_tail,
        });
    }
    match exit_code {
        Some(0) => {}
        Some(code) => {
            return Err(Error::Exit {
                code,
                stderr_tail,
                stdout_head: truncate_chars(&text, STDOUT_HEAD_CHARS),
            })
        }
        None => {
            return Err(Error::Exit {
                code: -1,
                stderr_tail,
                stdout_head: String::new(),
            });
        }
    }
    if result.structured_output.as_ref().is_none_or(Value::is_null) {
        return Err(Error::InvalidStructuredOutput {
            reason: "the result has no `structured_output` (was `--json-schema` ignored?)".into(),
            output_head: truncate_chars(&result.result_text(), STDOUT_HEAD_CHARS),
        });
    }
    if let Some(denials) = result.permission_denials.as_ref().filter(|d| !d.is_empty()) {
        tracing::warn!(
            count = denials.len(),
            "claude cli reported permission denials"
        );
    }
    Ok(result)
}

fn hint_for(subtype: &str) -> &'static str {
    match subtype {
        "error_max_turns" => {
            "raise `max_turns` in the claude runner configuration or shrink the digest"
        }
        "error_max_budget_usd" => "raise `max_budget_usd` in the claude runner configuration",
        "error_during_execution" => "the CLI failed during the run; see its stderr and retry",
        "error_max_structured_output_retries" => {
            "the model did not produce output matching the schema; retry or choose a stronger model"
        }
        "" => "the result object has no subtype; check the CLI version",
        _ => "unknown subtype; check that the CLI version is supported",
    }
}

fn tail(bytes: &[u8]) -> String {
    let start = bytes.len().saturating_sub(STDERR_TAIL_BYTES);
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    fn exit(code: i32) -> ExitStatus {
        ExitStatus::from_raw(code << 8)
    }

    const OK: &str = r#"{"type":"result","subtype":"success","is_error":false,"num_turns":2,"duration_ms":76,"total_cost_usd":0.01,"usage":{"input_tokens":10,"cache_read_input_tokens":5,"output_tokens":20},"structured_output":{"findings":[]}}"#;

    #[test]
    fn a_successful_result_yields_usage() {
        let r = interpret(exit(0), OK.as_bytes(), b"").unwrap();
        let u = r.usage();
        assert_eq!(
            (u.input_tokens, u.output_tokens, u.turns, u.duration_ms),
            (Some(15), Some(20), Some(2), Some(76))
        );
        assert_eq!(u.cost_usd, Some(0.01));
    }

    #[test]
    fn login_failure_reported_as_success_with_is_error_is_an_error() {
        let out = r#"{"type":"result","subtype":"success","is_error":true,"result":"Invalid API key · Please run /login"}"#;
        match interpret(exit(1), out.as_bytes(), b"auth").unwrap_err() {
            Error::CliReportedError {
                exit_code,
                message,
                stderr_tail,
                ..
            } => {
                assert_eq!(exit_code, Some(1));
                assert!(message.contains("Invalid API key"));
                assert_eq!(stderr_tail, "auth");
            }
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn a_nonzero_exit_with_a_good_looking_result_is_still_an_error() {
        assert!(matches!(
            interpret(exit(2), OK.as_bytes(), b"").unwrap_err(),
            Error::Exit { code: 2, .. }
        ));
    }

    #[test]
    fn a_missing_structured_output_is_an_error() {
        let out =
            r#"{"type":"result","subtype":"success","is_error":false,"result":"here you go"}"#;
        assert!(matches!(
            interpret(exit(0), out.as_bytes(), b"").unwrap_err(),
            Error::InvalidStructuredOutput { .. }
        ));
    }

    #[test]
    fn every_error_subtype_is_unfinished_with_a_hint() {
        for s in [
            "error_max_turns",
            "error_during_execution",
            "error_max_budget_usd",
            "error_max_structured_output_retries",
            "error_new",
        ] {
            let out =
                format!(r#"{{"type":"result","subtype":"{s}","is_error":true,"num_turns":3}}"#);
            match interpret(exit(1), out.as_bytes(), b"").unwrap_err() {
                Error::Unfinished {
                    subtype, num_turns, ..
                } => {
                    assert_eq!(subtype, s);
                    assert_eq!(num_turns, Some(3));
                }
                e => panic!("{e:?}"),
            }
        }
    }

    #[test]
    fn garbage_output_reports_its_first_bytes() {
        let e = interpret(exit(0), b"\xff\xfe not json", b"").unwrap_err();
        match e {
            Error::UnparseableOutput { stdout_head, .. } => {
                assert!(stdout_head.contains("not json"))
            }
            e => panic!("{e:?}"),
        }
        assert!(matches!(
            interpret(exit(3), b"boom", b"").unwrap_err(),
            Error::Exit { code: 3, .. }
        ));
    }
}
