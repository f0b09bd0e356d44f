//! `selfmon templates`: one `FINGERPRINT<TAB>TEMPLATE` line (or JSON object) per input line.
//!
//! Input is read in windows of [`WINDOW_LINES`] lines: a window's lines are all learned first, so
//! messages of the window that differ only in names (users, hosts, repositories) share one template;
//! then one line is written per input line, in order, blank lines included. Memory stays flat in the
//! length of the input (one window, plus the learned clusters, which are capped). Input that is not
//! UTF-8 is read lossily; a trailing `\r` is dropped. `--state FILE` starts from (and saves) the
//! learned templates, as scans do.

use std::io::{BufRead, Write};

use selfmon::hash::FxMap;
use selfmon::template::{ClusterId, Template, Templater};

use super::args::TemplatesArgs;
use super::failure::Failure;

/// Bytes of the stdin and stdout buffers.
const IO_BUFFER_BYTES: usize = 1 << 16;

/// Lines learned before their templates are written (the window over which names merge).
const WINDOW_LINES: usize = 65_536;

/// A cluster's template and fingerprint, borrowed from the templater, and its output line
/// (`FINGERPRINT<TAB>TEMPLATE`, the template terminal-safe, and the newline).
type Shown<'a> = (&'a str, &'a str, String);

/// The output line of a template and its fingerprint: written with one call per input line.
fn text_line(text: &str, fingerprint: &str) -> String {
    let shown = super::terminal::safe(text);
    let mut line = String::with_capacity(fingerprint.len() + shown.len() + 2);
    line.push_str(fingerprint);
    line.push('\t');
    line.push_str(&shown);
    line.push('\n');
    line
}

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
        // Each cluster's template and fingerprint, looked up once per window (the lines of a
        // window share far fewer clusters), borrowed from the cluster, and its output line.
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
                            .map(|(text, fp)| (text, fp, text_line(text, fp)))
                    })
                    .as_ref()
            });
            let owned: Template;
            let owned_line: String;
            let (text, fingerprint, text_out) = match found {
                Some((text, fingerprint, text_out)) => (*text, *fingerprint, text_out.as_str()),
                None => {
                    owned = match cluster {
                        Some(_) => templater.template(line),
                        None => Template::from_text(templater.mask(line)),
                    };
                    owned_line = text_line(&owned.text, &owned.fingerprint);
                    (
                        owned.text.as_str(),
                        owned.fingerprint.as_str(),
                        owned_line.as_str(),
                    )
                }
            };
            if args.json {
                let obj = serde_json::json!({"line": line_no, "fingerprint": fingerprint, "template": text});
                writeln!(out, "{obj}")
            } else {
                out.write_all(text_out.as_bytes())
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
    learn_text(args, templater, window, &text);
}

/// Learns the complete lines of `block` (each ended by `\n`) until the window is full: decoded at
/// once when the block is valid UTF-8 (nearly always), else line by line, so that an invalid byte
/// is replaced in its own line only. Returns the bytes of `block` consumed (lines with their
/// `\n`).
fn learn_block(
    args: &TemplatesArgs,
    templater: &mut Templater,
    window: &mut Window,
    block: &[u8],
) -> usize {
    let lines = &block[..block.len().saturating_sub(1)];
    let decoded = selfmon::text::decode(lines);
    let mut from = 0;
    for newline in memchr::memchr_iter(b'\n', block) {
        match &decoded {
            std::borrow::Cow::Borrowed(text) => {
                learn_text(args, templater, window, &text[from..newline]);
            }
            std::borrow::Cow::Owned(_) => {
                learn_line(args, templater, window, &block[from..newline])
            }
        }
        from = newline + 1;
        if window.len() >= WINDOW_LINES {
            break;
        }
    }
    from
}

/// Learns one decoded input line (without its `\n`) and files it in the window.
fn learn_text(args: &TemplatesArgs, templater: &mut Templater, window: &mut Window, text: &str) {
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
        let taken = if !partial.is_empty() || at_end {
            // The rest of a line that began in an earlier buffer (or the last line, unended).
            match memchr::memchr(b'\n', available) {
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
            }
        } else {
            // Every complete line in the buffer at once, read where it lies (no copy); a line
            // that runs past the buffer's end is gathered in `partial`.
            match memchr::memrchr(b'\n', available) {
                Some(last) => learn_block(args, &mut templater, &mut window, &available[..=last]),
                None => {
                    partial.extend_from_slice(available);
                    available.len()
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The output of `run_on` over `input` read through a buffer of `capacity` bytes.
    fn templates_of(input: &[u8], capacity: usize, json: bool) -> Vec<u8> {
        let args = TemplatesArgs {
            json,
            no_cluster: false,
            state: None,
        };
        let mut out = Vec::new();
        let reader = std::io::BufReader::with_capacity(capacity, input);
        assert!(run_on(&args, reader, &mut out).is_ok());
        out
    }

    /// Lines read a buffer at a time give what lines read one at a time give, whatever the
    /// buffer's size: lines longer than the buffer, a line cut inside a multi-byte character or
    /// an invalid byte at the buffer's end, CRLF, blank lines, a last line without its newline.
    #[test]
    fn output_is_the_same_whatever_the_read_buffer_size() {
        let mut input = Vec::new();
        for i in 0..40 {
            input.extend_from_slice(
                format!("Jun 14 15:16:{i:02} combo sshd[{i}]: session opened for user u{i}\r\n")
                    .as_bytes(),
            );
            input.extend_from_slice("café naïve ok — 東京 status 5\n".as_bytes());
            input.extend_from_slice(b"bad \xff byte \xc3 then more text after it\n\n");
            input.extend_from_slice(format!("{} end\n", "long".repeat(30 + i)).as_bytes());
        }
        input.extend_from_slice(b"last line without a newline 42");
        let lines = input.split(|&b| b == b'\n').count();
        for json in [false, true] {
            let whole = templates_of(&input, 1 << 20, json);
            assert_eq!(whole.split(|&b| b == b'\n').count() - 1, lines);
            for capacity in [1, 2, 3, 5, 7, 13, 64, 100, 333] {
                assert!(
                    templates_of(&input, capacity, json) == whole,
                    "capacity {capacity}, json {json}"
                );
            }
        }
    }
}
