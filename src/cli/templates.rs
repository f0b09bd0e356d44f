//! `selfmon templates`: one `FINGERPRINT<TAB>TEMPLATE` line (or JSON object) per input line.

use std::io::{BufRead, Write};

use selfmon::template::Templater;

use super::args::TemplatesArgs;
use super::failure::Failure;

/// Reads stdin to its end, writing one line out per line in (blank lines included).
pub fn run(args: &TemplatesArgs) -> Result<(), Failure> {
    let templater = Templater::new();
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut line = Vec::new();
    let mut input = stdin.lock();
    loop {
        line.clear();
        let n = input
            .read_until(b'\n', &mut line)
            .map_err(|e| Failure::Usage(format!("cannot read stdin: {e}")))?;
        if n == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\n', '\r']);
        let t = templater.template(text);
        let written = if args.json {
            let obj = serde_json::json!({"fingerprint": t.fingerprint, "template": t.text});
            writeln!(out, "{obj}")
        } else {
            writeln!(out, "{}\t{}", t.fingerprint, t.text)
        };
        if let Err(e) = written {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(Failure::Usage(format!("cannot write stdout: {e}")));
        }
    }
    out.flush().or_else(|e| {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            Ok(())
        } else {
            Err(Failure::Usage(format!("cannot write stdout: {e}")))
        }
    })
}
