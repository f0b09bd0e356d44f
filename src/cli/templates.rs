//! `selfmon templates`: one `FINGERPRINT<TAB>TEMPLATE` line (or JSON object) per input line.
//!
//! All lines are learned first, so messages that differ only in names (users, hosts, repositories)
//! share one template; then one line is written per input line, in order, blank lines included.
//! Input that is not UTF-8 is read lossily; a trailing `\r` is dropped. The whole input is held in
//! memory. `--state FILE` starts from (and saves) the learned templates, as scans do.

use std::io::{BufRead, Write};

use selfmon::template::{ClusterId, Template, Templater};

use super::args::TemplatesArgs;
use super::failure::Failure;

/// Reads stdin to its end, writing one line out per line in (blank lines included).
pub fn run(args: &TemplatesArgs) -> Result<(), Failure> {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    match run_on(args, stdin.lock(), stdout.lock()) {
        Err(Some(f)) => Err(f),
        // Stdout closed early (`| head`): not a failure.
        Err(None) | Ok(()) => Ok(()),
    }
}

/// `Err(None)` is a broken pipe on stdout.
fn write_failure(e: std::io::Error) -> Option<Failure> {
    (e.kind() != std::io::ErrorKind::BrokenPipe)
        .then(|| Failure::Usage(format!("cannot write stdout: {e}")))
}

fn run_on(
    args: &TemplatesArgs,
    mut input: impl BufRead,
    output: impl Write,
) -> Result<(), Option<Failure>> {
    let mut templater = match &args.state {
        Some(path) if path.exists() => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Failure::Usage(format!(
                    "cannot read templater state {}: {e}",
                    path.display()
                ))
            })?;
            Templater::from_state_json(&text)
                .map_err(|e| Failure::usage(&format!("templater state {}", path.display()), &e))?
        }
        _ => Templater::new(),
    };
    let mut lines: Vec<String> = Vec::new();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = input
            .read_until(b'\n', &mut buf)
            .map_err(|e| Failure::Usage(format!("cannot read stdin: {e}")))?;
        if n == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&buf);
        lines.push(text.trim_end_matches(['\n', '\r']).to_string());
    }
    let clusters: Vec<Option<ClusterId>> = lines
        .iter()
        .map(|l| (!args.no_cluster && !l.trim().is_empty()).then(|| templater.learn(l)))
        .collect();
    let mut out = std::io::BufWriter::new(output);
    for (i, (line, cluster)) in lines.iter().zip(&clusters).enumerate() {
        let t = match cluster {
            Some(id) => templater
                .cluster_template(*id)
                .unwrap_or_else(|| templater.template(line)),
            None => Template::from_text(templater.mask(line)),
        };
        if args.json {
            let obj = serde_json::json!({"line": i + 1, "fingerprint": t.fingerprint, "template": t.text});
            writeln!(out, "{obj}")
        } else {
            writeln!(out, "{}\t{}", t.fingerprint, t.text)
        }
        .map_err(write_failure)?;
    }
    out.flush().map_err(write_failure)?;
    if let Some(path) = &args.state {
        std::fs::write(path, templater.to_state_json()).map_err(|e| {
            Failure::Usage(format!(
                "cannot write templater state {}: {e}",
                path.display()
            ))
        })?;
    }
    Ok(())
}
