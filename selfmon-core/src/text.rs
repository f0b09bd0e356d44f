//! Characters that must not reach a person: one definition of the control and bidirectional
//! characters selfmon strips from everything it shows or publishes (samples, templates, titles,
//! bodies, comments), so the digest and the issue body cannot disagree about them.

/// Unicode bidirectional formatting characters: embeddings and overrides (U+202A–U+202E),
/// isolates (U+2066–U+2069), the left-to-right / right-to-left marks (U+200E, U+200F) and the
/// Arabic letter mark (U+061C). Any of them can make text display differently from what it is
/// ("Trojan Source"), or split a secret so that no detector sees it.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// Whether `c` is kept in multi-line text: newline and tab are; other control characters and the
/// [bidi controls](is_bidi_control) are not.
pub fn is_kept_in_text(c: char) -> bool {
    (c == '\n' || c == '\t' || !c.is_control()) && !is_bidi_control(c)
}

/// `text` without control characters (newline and tab excepted) and bidi controls.
pub fn strip_controls(text: &str) -> String {
    // Nearly every log line is printable ASCII (tabs and newlines allowed): kept whole, copied
    // at once instead of character by character.
    if text
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) || b == b'\n' || b == b'\t')
    {
        return text.to_owned();
    }
    text.chars().filter(|&c| is_kept_in_text(c)).collect()
}

/// `text` as an error message quotes a value a person gave or a file held: between backticks,
/// with control characters, bidi controls and backticks written as escapes (`\n`, `\u{1b}`), so
/// the value reads as itself and cannot rewrite the terminal it is shown on. Messages use this
/// instead of debug formatting (`{:?}`).
pub fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('`');
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '`' => out.push_str("\\`"),
            c if c.is_control() || is_bidi_control(c) => {
                out.push_str(&format!("\\u{{{:x}}}", u32::from(c)))
            }
            c => out.push(c),
        }
    }
    out.push('`');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_values_read_as_themselves_with_controls_escaped() {
        assert_eq!(quoted("acme/server"), "`acme/server`");
        assert_eq!(
            quoted("a\nb\u{1b}[2J`c\u{202E}"),
            "`a\\nb\\u{1b}[2J\\`c\\u{202e}`"
        );
        assert_eq!(quoted(""), "``");
    }

    #[test]
    fn every_bidi_control_is_stripped_and_newlines_and_tabs_stay() {
        let text =
            "a\u{202A}b\u{202E}c\u{2066}d\u{2069}e\u{200E}f\u{200F}g\u{061C}h\n\ti\u{7}\u{1b}j";
        assert_eq!(strip_controls(text), "abcdefgh\n\tij");
    }

    #[test]
    fn ascii_text_loses_its_controls_and_delete_and_keeps_the_rest() {
        assert_eq!(
            strip_controls("a\x7fb\x00c\rd\x1be\tf\ng ~"),
            "abcde\tf\ng ~"
        );
        let printable: String = (0x20u8..0x7f).map(char::from).collect();
        assert_eq!(strip_controls(&printable), printable);
    }

    #[test]
    fn ordinary_text_is_unchanged() {
        let text = "ERROR [DB-LOCK-003] database is locked — über 10 ms (日本語) ✓";
        assert_eq!(strip_controls(text), text);
    }
}
