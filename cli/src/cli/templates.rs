//! `selfmon templates`: one `FINGERPRINT<TAB>TEMPLATE` line (or JSON object) per input line.
//!
//! Input is read in windows of [`WINDOW_LINES`] lines: a window's lines are all learned first, so
//! messages of the window that differ only in names (users, hosts, repositories) share one template;
//! then one line is written per input line, in order, blank lines included. Memory stays flat in the
//! length of the input (one window, plus the learned clusters, which are capped). Input that is not
//! UTF-8 is read lossily; a trailing `\r` is dropped. `--state FILE` starts from (and saves) the
//! learned templates, as scans do.

use std::borrow::Cow;
use std::io::{BufRead, Write};

use selfmon::hash::FxMap;
use selfmon::template::{ClusterId, Template, Templater};

use super::args::TemplatesArgs;
use super::failure::Failure;

/// Bytes of the stdin and stdout buffers.
const IO_BUFFER_BYTES: usize = 1 << 16;

/// Lines learned before their templates are written (the window over which names merge).
const WINDOW_LINES: usize = 65_536;

/// A cluster's template, fingerprint and terminal-safe template, borrowed from the templater.
type Shown<'a> = (&'a str, &'a str, Cow<'a, str>);

/// The lines of one window, in one buffer, with the cluster each joined.
#[derive(Default)]
struct Window {
    text: String,
    lines: Vec<(usize, usize, Option<ClusterId>)>,
}

impl Window {
    fn len(&self) -> usize {
        self.lines.len()
    }

    fn push(&mut self, line: &str, cluster: Option<ClusterId>) {
        let start = self.text.len();
        self.text.push_str(line);
        self.lines.push((start, self.text.len(), cluster));
    }

    /// Writes the window's lines (numbered from `first + 1`) and empties it; returns the number
    /// of the last line written.
    fn write(
        &mut self,
        args: &TemplatesArgs,
        templater: &Templater,
        first: usize,
        out: &mut impl Write,
    ) -> Result<usize, Option<Failure>> {
        let mut line_no = first;
        // Each cluster's template, fingerprint and terminal-safe text, looked up once per window
        // (the lines of a window share far fewer clusters), borrowed from the cluster.
        let mut clusters: FxMap<ClusterId, Option<Shown<'_>>> = FxMap::default();
        for &(start, end, cluster) in &self.lines {
            line_no += 1;
            let line = &self.text[start..end];
            let found = cluster.and_then(|id| {
                clusters
                    .entry(id)
                    .or_insert_with(|| {
                        templater
                            .cluster_text(id)
                            .map(|(text, fp)| (text, fp, super::terminal::safe(text)))
                    })
                    .as_ref()
            });
            let owned: Template;
            let owned_shown: Cow<'_, str>;
            let (text, fingerprint, shown) = match found {
                Some((text, fingerprint, shown)) => (*text, *fingerprint, &**shown),
                None => {
                    owned = match cluster {
                        Some(_) => templater.template(line),
                        None => Template::from_text(templater.mask(line)),
                    };
                    owned_shown = super::terminal::safe(&owned.text);
                    (
                        owned.text.as_str(),
                        owned.fingerprint.as_str(),
                        &*owned_shown,
                    )
                }
            };
            if args.json {
                let obj = serde_json::json!({"line": line_no, "fingerprint": fingerprint, "template": text});
                writeln!(out, "{obj}")
            } else {
                out.write_all(fingerprint.as_bytes())
                    .and_then(|()| out.write_all(b"\t"))
                    .and_then(|()| out.write_all(shown.as_bytes()))
                    .and_then(|()| out.write_all(b"\n"))
            }
            .map_err(write_failure)?;
        }
        self.text.clear();
        self.lines.clear();
        Ok(line_no)
    }
}

/// Learns one input line (without its `\n`) and files it in the window.
fn learn_line(args: &TemplatesArgs, templater: &mut Templater, window: &mut Window, bytes: &[u8]) {
    // Valid UTF-8 (nearly every line, most of it ASCII) is borrowed, not decoded.
    let text = selfmon::text::decode(bytes);
    // The line holds no `\n`; trailing `\r`s go (byte-wise: a `\r` is one byte).
    let b = text.as_bytes();
    let mut end = b.len();
    while end > 0 && b[end - 1] == b'\r' {
        end -= 1;
    }
    let line = &text[..end];
    let cluster = (!args.no_cluster && !is_blank(line)).then(|| templater.learn(line));
    window.push(line, cluster);
}

/// Whether `line` is empty or only whitespace (as `str::trim` has it), deciding most lines from
/// their first byte.
fn is_blank(line: &str) -> bool {
    match line.as_bytes().first() {
        Some(&b) if b < 0x80 && !matches!(b, b'\t'..=b'\r' | b' ') => false,
        _ => line.trim().is_empty(),
    }
}

/// Reads stdin to its end, writing one line out per line in (blank lines included).
pub fn run(args: &TemplatesArgs) -> Result<(), Failure> {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    // 64 KiB buffers: the default 8 KiB spend a tenth of the CPU of a long run in system calls.
    let input = std::io::BufReader::with_capacity(IO_BUFFER_BYTES, stdin.lock());
    match run_on(args, input, stdout.lock()) {
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
    if args.state.is_none() {
        // Nothing learned is persisted, so nothing needs sealing.
        templater.skip_secret_tracking();
    }
    let mut out = std::io::BufWriter::with_capacity(IO_BUFFER_BYTES, output);
    let mut window = Window::default();
    // A line that runs past the end of the input buffer is gathered here; the others are read
    // where they lie in the buffer, without a copy.
    let mut partial = Vec::new();
    let mut line_no = 0usize;
    loop {
        let available = input
            .fill_buf()
            .map_err(|e| Failure::Usage(format!("cannot read stdin: {e}")))?;
        let at_end = available.is_empty();
        let taken = match memchr::memchr(b'\n', available) {
            Some(newline) if partial.is_empty() => {
                let line = &available[..newline];
                learn_line(args, &mut templater, &mut window, line);
                newline + 1
            }
            Some(newline) => {
                partial.extend_from_slice(&available[..newline]);
                learn_line(args, &mut templater, &mut window, &partial);
                partial.clear();
                newline + 1
            }
            None if at_end => {
                if !partial.is_empty() {
                    learn_line(args, &mut templater, &mut window, &partial);
                    partial.clear();
                }
                0
            }
            None => {
                partial.extend_from_slice(available);
                available.len()
            }
        };
        input.consume(taken);
        if at_end || window.len() >= WINDOW_LINES {
            line_no = window.write(args, &templater, line_no, &mut out)?;
        }
        if at_end {
            break;
        }
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
