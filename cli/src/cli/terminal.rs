//! Text for a person's terminal: what came from logs (templates, titles, error messages) must not
//! drive the terminal. Control characters (ANSI escape sequences among them) and the
//! direction-changing format characters (bidi marks, embeddings, overrides and isolates) are shown
//! as `\u{…}` escapes instead of being written raw. Invisible joiners are not: they change no
//! order, and selfmon itself puts U+2060 after `#` and `@` in titles so that a tracker does not
//! link `#12` or mention `@user`. Line breaks and tabs are kept (the
//! output's own layout). JSON output needs none of this: JSON escapes control characters itself,
//! and a program reading it wants the text as it is.

use std::borrow::Cow;

/// Whether `c` must not reach a terminal raw.
fn unsafe_char(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// Whether `b` is only printable ASCII, tabs and line feeds (then no character of it is unsafe),
/// eight bytes at a time, as `selfmon templates` asks it of every line it writes: a word with no
/// byte below a space, no DEL and no non-ASCII byte passes at once, any other word is decided byte
/// by byte.
fn plain_ascii(b: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let plain_byte = |c: &u8| matches!(c, b' '..=b'~' | b'\t' | b'\n');
    let mut words = b.chunks_exact(8);
    for word in &mut words {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        let w = u64::from_le_bytes(bytes);
        // The high bit of some lane is set when some byte is below a space, is DEL, or is not
        // ASCII (exact for "some byte", which is all that is asked).
        let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
        let del = w ^ (ONES * 0x7f);
        let is_del = del.wrapping_sub(ONES) & !del & HIGH;
        if (below_space | is_del | (w & HIGH)) != 0 && !word.iter().all(plain_byte) {
            return false;
        }
    }
    words.remainder().iter().all(plain_byte)
}

/// `text` with every character that could drive a terminal or hide text escaped as `\u{hex}`;
/// borrowed when there is none (the common case).
pub fn safe(text: &str) -> Cow<'_, str> {
    if plain_ascii(text.as_bytes()) || !text.chars().any(unsafe_char) {
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
            safe("a \u{1b}[31mred\u{1b}[0m \u{202e}rev\u{2067} \u{7f}\u{9b}\u{200f}"),
            "a \\u{1b}[31mred\\u{1b}[0m \\u{202e}rev\\u{2067} \\u{7f}\\u{9b}\\u{200f}"
        );
        // selfmon's own neutraliser after `#` and `@` stays as it is.
        assert!(matches!(
            safe("#\u{2060}12 by @\u{2060}bob"),
            Cow::Borrowed(_)
        ));
        assert_eq!(safe("line\tone\nline two"), "line\tone\nline two");
        assert!(matches!(safe("plain ‹NUM› 日本語 text"), Cow::Borrowed(_)));
        assert_eq!(safe("\r\u{0}"), "\\u{d}\\u{0}");
    }

    #[test]
    fn the_ascii_shortcut_passes_exactly_printable_ascii_tabs_and_line_feeds() {
        for b in 0u8..0x80 {
            // In the tail (fewer than eight bytes) and inside a word of eight.
            for text in [
                format!("x{}y", b as char),
                format!("abcdefg{}hijklmnop", b as char),
            ] {
                let by_chars = !text.chars().any(unsafe_char);
                assert_eq!(plain_ascii(text.as_bytes()), by_chars, "byte {b:#x}");
            }
        }
        assert!(!plain_ascii(
            "caf\u{e9} au lait, s'il vous pla\u{ee}t".as_bytes()
        ));
        // Long text (more than one chunk) with the odd byte in the last chunk.
        let long = format!("{}\u{1b}", "a".repeat(70));
        assert!(!plain_ascii(long.as_bytes()));
        assert!(plain_ascii("a".repeat(70).as_bytes()));
        assert!(!plain_ascii("caf\u{e9}".as_bytes()));
    }
}
