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
    text.chars().filter(|&c| is_kept_in_text(c)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bidi_control_is_stripped_and_newlines_and_tabs_stay() {
        let text =
            "a\u{202A}b\u{202E}c\u{2066}d\u{2069}e\u{200E}f\u{200F}g\u{061C}h\n\ti\u{7}\u{1b}j";
        assert_eq!(strip_controls(text), "abcdefgh\n\tij");
    }

    #[test]
    fn ordinary_text_is_unchanged() {
        let text = "ERROR [DB-LOCK-003] database is locked — über 10 ms (日本語) ✓";
        assert_eq!(strip_controls(text), text);
    }
}
