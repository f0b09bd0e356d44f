//! Stack frames logged as records of their own.
//!
//! A crash report shipped one line per record (a line-based shipper, syslog) makes every frame a
//! record: `\tat com.acme.Pool.get(Pool.java:42)`, `... 12 more`, `/src/main.go:12 +0x1c`,
//! `File "/srv/a.py", line 3, in f`. All frames of all crashes template alike (`at <*>`), so such a
//! template names no problem: it must neither be taken for a problem of its own nor explain
//! another crash's frames as known. [`is_stack_frame_line`] recognises the shapes, in a raw line
//! and in its template alike.

use super::masks::split_spaces;
use super::WILDCARD;

/// Whether `text` (one raw log line, or a template) is nothing but a stack frame or a
/// stack-trace continuation marker:
///
/// - Java, .NET and Node frames: `at ` and a code location, as in `at com.acme.Pool.get(Pool.java:42)`,
///   `at Acme.Orders.Load() in /src/Orders.cs:line 12`, `at f (/srv/a.js:1:2)`, or a template
///   `at <*>`;
/// - Java's `... 12 more` and a `Caused by:` with nothing but values after it;
/// - .NET's `--- End of inner exception stack trace ---`;
/// - Go's `goroutine 1 [running]:`, `/src/main.go:12 +0x1c` and call lines (`main.main()`,
///   `main.(*Worker).run(0xc000010000)`; not a call whose package path masking took for a path);
/// - Python's `File "/srv/a.py", line 3, in f`, and the lines that open a Python crash report or
///   chain two (`Traceback (most recent call last):`, `During handling of the above exception,
///   another exception occurred:`, `The above exception was the direct cause of the following
///   exception:`): the exception line after the frames says what the crash was.
///
/// A line of several lines is not one frame. Cheap: most lines are refused by their first byte.
pub fn is_stack_frame_line(text: &str) -> bool {
    let t = text.trim();
    if t.contains('\n') {
        return false;
    }
    match t.as_bytes().first() {
        Some(b'a') => t.strip_prefix("at ").is_some_and(is_frame_location),
        Some(b'.') => t
            .strip_prefix("... ")
            .and_then(|rest| rest.strip_suffix(" more"))
            .is_some_and(|n| {
                n == "<NUM>" || (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            }),
        Some(b'C') => t
            .strip_prefix("Caused by:")
            .is_some_and(|rest| !rest.trim().is_empty() && only_values(rest)),
        Some(b'-') => {
            t.starts_with("--- End of inner exception stack trace ---")
                || t.starts_with("--- End of stack trace from previous location")
        }
        Some(b'F') => t.starts_with("File \"") && t.contains("\", line "),
        // Whole lines only: a traceback in one record (flattened by a template) starts the same.
        Some(b'T') => {
            t == "Traceback (most recent call last):"
                || t == "The above exception was the direct cause of the following exception:"
        }
        Some(b'D') => t == "During handling of the above exception, another exception occurred:",
        Some(b'g') if t.starts_with("goroutine ") => {
            let rest = &t["goroutine ".len()..];
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            let rest = if digits > 0 {
                &rest[digits..]
            } else {
                rest.strip_prefix("<NUM>").unwrap_or(rest)
            };
            rest.len() < t.len() - "goroutine ".len() && rest.starts_with(" [") && t.ends_with("]:")
        }
        _ => is_go_frame(t),
    }
}

/// What follows `at ` in a frame: `<*>` (all frames merged), or a code location: a first word
/// naming code (dotted, pathed, a call, `<anonymous>`) and a parenthesis on the line.
fn is_frame_location(rest: &str) -> bool {
    if split_spaces(rest).all(|w| w == WILDCARD) {
        return true;
    }
    let word = split_spaces(rest).next().unwrap_or_default();
    // `at java.base/java.lang.Thread.run(Thread.java:833)` masks to `at <PATH>)`.
    if word.starts_with("<PATH>") && word.len() == rest.len() {
        return true;
    }
    let names_code = if word.starts_with('<') {
        word == WILDCARD || word == "<anonymous>"
    } else {
        word.contains(['.', '/', '\\', '('])
    };
    // Node's `at f (/srv/a.js:1:2)`: a plain name, then the location in parentheses.
    let node_location = rest.ends_with(')')
        && rest
            .rfind('(')
            .is_some_and(|i| rest[i..].contains(':') || rest[i..].contains('<'));
    (names_code && (rest.contains('(') || word == "<anonymous>")) || node_location
}

/// Whether `rest` holds only values: `<*>` and placeholders with punctuation.
fn only_values(rest: &str) -> bool {
    split_spaces(rest.trim()).all(|w| {
        let core = w.trim_matches(|c: char| c.is_ascii_punctuation() && c != '<' && c != '>');
        core.starts_with('<') && core.ends_with('>') && !core.contains(' ')
    })
}

/// Go's frame lines: a file and line with the program-counter offset (`/src/main.go:12 +0x1c`,
/// masked `<PATH> +<HEX>` or the like), or a call (`main.main()`, `pkg.(*T).f(0xc0, 0x1)`).
fn is_go_frame(t: &str) -> bool {
    let mut words = split_spaces(t);
    let first = words.next().unwrap_or_default();
    let second = words.next();
    let third = words.next();
    if let (Some(offset), None) = (second, third) {
        let file = first.contains(".go:") || first.starts_with("<PATH>");
        let pc =
            (offset.starts_with('+') && offset.len() > 1) || offset == "<HEX>" || offset == "<NUM>";
        if file && pc {
            return true;
        }
    }
    // A call: the whole line is `name(args)` with a dotted name and no space before the `(`.
    let Some(open) = t.find('(') else {
        return false;
    };
    let name = &t[..open];
    t.ends_with(')')
        && !name.is_empty()
        && !name.contains(' ')
        && name.contains('.')
        && !name.starts_with('<')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::Templater;

    const FRAMES: &[&str] = &[
        "\tat com.acme.billing.InvoiceService.create(InvoiceService.java:142)",
        "at org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:897)",
        "at java.base/java.lang.Thread.run(Thread.java:833)",
        "\t... 12 more",
        "Caused by: <*>",
        "   at System.Linq.Enumerable.First(IEnumerable source)",
        "   at Acme.Orders.Load() in /src/Orders.cs:line 12",
        "--- End of inner exception stack trace ---",
        "    at f (/srv/a.js:1:2)",
        "    at <anonymous>",
        "goroutine 1 [running]:",
        "main.main()",
        "main.(*Worker).run(0xc000010000)",
        "\t/src/main.go:12 +0x1c",
        "  File \"/srv/a.py\", line 3, in f",
    ];

    #[test]
    fn frames_of_every_runtime_and_their_templates_are_frames() {
        let mut learning = Templater::new();
        for frame in FRAMES {
            assert!(is_stack_frame_line(frame), "raw {frame:?}");
            let masked = Templater::new().mask(frame);
            assert!(
                is_stack_frame_line(&masked),
                "masked {masked:?} of {frame:?}"
            );
            let learned = learning.learn_and_template(frame).text;
            assert!(
                is_stack_frame_line(&learned),
                "learned {learned:?} of {frame:?}"
            );
        }
        assert!(is_stack_frame_line("at <*>"));
        assert!(is_stack_frame_line("at <*> <*>"));
        assert!(is_stack_frame_line("... <NUM> more"));
    }

    #[test]
    fn messages_that_merely_start_like_a_frame_are_not_frames() {
        for message in [
            "at least one worker is down",
            "at <NUM> pm the job failed",
            "at <TIME> backup started (nightly)",
            "... and 12 more",
            "Caused by: java.io.IOException: broken pipe",
            "Caused by:",
            "File not found: \"/srv/a.py\"",
            "goroutine pool resized to 8",
            "clone of /a failed (exit 128)",
            "java.lang.NullPointerException: Cannot invoke \"Order.getId()\" because \"order\" is null",
            "Traceback (most recent call last):\n  File \"/srv/a.py\", line 3, in f",
            "<PATH> +<HEX> extra words",
            "",
        ] {
            assert!(!is_stack_frame_line(message), "{message:?}");
        }
    }
}
