//! `selfmon templates`: the template and fingerprint of every line of stdin.
//!
//! All lines are learned first (so messages that differ only in names share a template), then one
//! line is written per input line, in order, blank lines included: `FINGERPRINT<TAB>TEMPLATE`, or
//! with `--json` one object per line: `{"line":1,"fingerprint":"…","template":"…"}`. Input that is
//! not UTF-8 is read lossily; a trailing `\r` is dropped. The whole input is held in memory.

use std::io::{self, BufRead, BufWriter, Write};
use std::path::PathBuf;

use selfmon_core::template::{ClusterId, Template, Templater};

use crate::CliError;

/// Options of `selfmon templates`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write one JSON object per line instead of FINGERPRINT<TAB>TEMPLATE.
    #[arg(long)]
    pub json: bool,
    /// Only mask values; do not cluster lines into shared templates.
    #[arg(long)]
    pub no_cluster: bool,
    /// Learned templater state to start from; updated at the end (created if missing).
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
}

/// Runs the subcommand on the process's stdin and stdout.
pub fn run(args: &Args) -> Result<(), CliError> {
    let stdin = io::stdin();
    let stdout = io::stdout();
    match run_on(args, stdin.lock(), stdout.lock()) {
        Err(e) if e.0 == BROKEN_PIPE => Ok(()),
        other => other,
    }
}

const BROKEN_PIPE: &str = "broken pipe";

fn io_error(what: &str, e: io::Error) -> CliError {
    if e.kind() == io::ErrorKind::BrokenPipe {
        CliError(BROKEN_PIPE.to_string())
    } else {
        CliError(format!("{what}: {e}"))
    }
}

fn run_on(args: &Args, input: impl BufRead, output: impl Write) -> Result<(), CliError> {
    let mut templater = match &args.state {
        Some(path) if path.exists() => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| CliError(format!("cannot read state {}: {e}", path.display())))?;
            Templater::from_state_json(&text)?
        }
        _ => Templater::new(),
    };
    let mut lines: Vec<String> = Vec::new();
    for line in input.split(b'\n') {
        let bytes = line.map_err(|e| io_error("cannot read stdin", e))?;
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(&bytes);
        lines.push(String::from_utf8_lossy(bytes).into_owned());
    }
    let clusters: Vec<Option<ClusterId>> = lines
        .iter()
        .map(|l| (!args.no_cluster && !l.trim().is_empty()).then(|| templater.learn(l)))
        .collect();
    let mut out = BufWriter::new(output);
    for (i, (line, cluster)) in lines.iter().zip(&clusters).enumerate() {
        let template = match cluster {
            Some(id) => templater
                .cluster_template(*id)
                .unwrap_or_else(|| templater.template(line)),
            None => Template::from_text(templater.mask(line)),
        };
        if args.json {
            let obj = serde_json::json!({
                "line": i + 1,
                "fingerprint": template.fingerprint,
                "template": template.text,
            });
            writeln!(out, "{obj}")
        } else {
            writeln!(out, "{}\t{}", template.fingerprint, template.text)
        }
        .map_err(|e| io_error("cannot write stdout", e))?;
    }
    out.flush()
        .map_err(|e| io_error("cannot write stdout", e))?;
    if let Some(path) = &args.state {
        std::fs::write(path, templater.to_state_json())
            .map_err(|e| CliError(format!("cannot write state {}: {e}", path.display())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_text(args: &Args, input: &str) -> String {
        let mut out = Vec::new();
        run_on(args, input.as_bytes(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn one_line_out_per_line_in_including_blank_ones() {
        let args = Args {
            json: false,
            no_cluster: false,
            state: None,
        };
        let out = run_text(&args, "a 1\n\nb 2\r\n");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[1].ends_with('\t'));
        assert!(lines[2].ends_with("\tb <NUM>"));
    }
}
