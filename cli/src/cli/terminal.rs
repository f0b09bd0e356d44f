//! Text for a person's terminal: what came from logs (templates, titles, error messages) must not
//! drive the terminal. Control characters (ANSI escape sequences among them) and the invisible
//! or direction-changing format characters (bidi overrides and isolates, zero-width characters)
//! are shown as `\u{…}` escapes instead of being written raw. Line breaks and tabs are kept (the
//! output's own layout). JSON output needs none of this: JSON escapes control characters itself,
//! and a program reading it wants the text as it is.

use std::borrow::Cow;

/// Whether `c` must not reach a terminal raw.
fn unsafe_char(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(
            c,
            '\u{061C}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

/// `text` with every character that could drive a terminal or hide text escaped as `\u{hex}`;
/// borrowed when there is none (the common case).
pub fn safe(text: &str) -> Cow<'_, str> {
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if unsafe_char(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_and_direction_changes_and_keeps_layout_and_text() {
        assert_eq!(
            safe("a \u{1b}[31mred\u{1b}[0m \u{202e}rev\u{200b} \u{7f}\u{9b}"),
            "a \\u{1b}[31mred\\u{1b}[0m \\u{202e}rev\\u{200b} \\u{7f}\\u{9b}"
        );
        assert_eq!(safe("line\tone\nline two"), "line\tone\nline two");
        assert!(matches!(safe("plain ‹NUM› 日本語 text"), Cow::Borrowed(_)));
        assert_eq!(safe("\r\u{0}"), "\\u{d}\\u{0}");
    }
}
