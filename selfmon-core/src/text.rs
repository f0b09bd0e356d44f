//! Characters that must not reach a person: one definition of the control and bidirectional
//! characters selfmon strips from everything it shows or publishes (samples, templates, titles,
//! bodies, comments), so the digest and the issue body cannot disagree about them; and the
//! decoding of input lines into text ([`decode`]).

use std::borrow::Cow;

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

/// Whether every byte of `bytes` is ASCII: as [`<[u8]>::is_ascii`](slice::is_ascii), 32 bytes a
/// step (the bytes' high bits or-ed a word at a time), for the line-sized inputs the templater
/// checks on every message.
pub fn is_ascii(bytes: &[u8]) -> bool {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let word = |chunk: &[u8]| {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        u64::from_ne_bytes(w)
    };
    let mut chunks = bytes.chunks_exact(32);
    let mut high = 0u64;
    for c in &mut chunks {
        high |= word(&c[..8]) | word(&c[8..16]) | word(&c[16..24]) | word(&c[24..]);
    }
    let rest = chunks.remainder();
    let mut words = rest.chunks_exact(8);
    for c in &mut words {
        high |= word(c);
    }
    high & HIGH == 0 && words.remainder().iter().all(|&b| b < 0x80)
}

/// `bytes` as text: valid UTF-8 (nearly every log line) borrowed as it is, ASCII recognised at
/// once ([`is_ascii`]); invalid sequences replaced by U+FFFD, as
/// [`String::from_utf8_lossy`] has them.
pub fn decode(bytes: &[u8]) -> Cow<'_, str> {
    if is_ascii(bytes) {
        return Cow::Borrowed(ascii_str(bytes));
    }
    String::from_utf8_lossy(bytes)
}

/// `bytes`, all ASCII, as a `str`.
fn ascii_str(bytes: &[u8]) -> &str {
    debug_assert!(bytes.is_ascii());
    // SAFETY: every byte is below 0x80 (checked by the caller with `is_ascii`), and a sequence of
    // ASCII bytes is valid UTF-8.
    unsafe { std::str::from_utf8_unchecked(bytes) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_ascii_agrees_with_the_standard_check_at_every_length_and_position() {
        for len in 0..80usize {
            let clean: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            assert!(is_ascii(&clean), "len {len}");
            for at in 0..len {
                for high in [0x80u8, 0xc3, 0xff] {
                    let mut b = clean.clone();
                    b[at] = high;
                    assert_eq!(is_ascii(&b), b.is_ascii(), "len {len} at {at}");
                    assert!(!is_ascii(&b[at..]));
                }
            }
        }
    }

    #[test]
    fn decode_borrows_valid_text_and_replaces_invalid_bytes() {
        assert!(matches!(
            decode(b"plain ascii line"),
            Cow::Borrowed("plain ascii line")
        ));
        assert!(matches!(
            decode("caf\u{e9} \u{3000}".as_bytes()),
            Cow::Borrowed("caf\u{e9} \u{3000}")
        ));
        assert_eq!(decode(b"bad \xff byte"), "bad \u{fffd} byte");
        assert_eq!(decode(b""), "");
    }

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
