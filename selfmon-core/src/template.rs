//! Message templates and their fingerprints.
//!
//! A [`Templater`] masks the variable parts of a message (numbers, ids, paths, ...) with typed
//! placeholders such as `<NUM>` and `<PATH>`, and fingerprints the result with SHA-256. Templating runs
//! on the original message (before redaction) so redaction never changes a fingerprint.

use sha2::{Digest as _, Sha256};
use unicode_normalization::UnicodeNormalization;

/// Turns messages into templates.
#[derive(Debug, Clone, Default)]
pub struct Templater {
    _private: (),
}

/// A message template and its fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Template {
    /// The masked text.
    pub text: String,
    /// Lower-case hex SHA-256 of `text`.
    pub fingerprint: String,
}

impl Templater {
    /// A templater with the default masks.
    pub fn new() -> Self {
        Self::default()
    }

    /// The template of `message`: NFKC-normalised, whitespace folded, variable tokens masked.
    pub fn template(&self, message: &str) -> Template {
        let text = self.mask(message);
        let fingerprint = sha256_hex(text.as_bytes());
        Template { text, fingerprint }
    }

    /// Only the masked text.
    pub fn mask(&self, message: &str) -> String {
        let normalised: String = if message.is_ascii() {
            message.to_string()
        } else {
            message.nfkc().collect()
        };
        let mut out = String::with_capacity(normalised.len());
        for token in normalised.split_whitespace() {
            if !out.is_empty() {
                out.push(' ');
            }
            mask_token(token, &mut out);
        }
        out
    }
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

fn mask_token(token: &str, out: &mut String) {
    // Peel punctuation that commonly wraps values: (x), [x], "x", x, x; x:
    let lead = token
        .find(|c: char| !matches!(c, '(' | '[' | '{' | '"' | '\'' | '<' | '`'))
        .unwrap_or(token.len());
    let core_and_tail = &token[lead..];
    let core_end = core_and_tail
        .trim_end_matches([
            ')', ']', '}', '"', '\'', ',', ';', '.', ':', '>', '`', '!', '?',
        ])
        .len();
    let (core, tail) = core_and_tail.split_at(core_end);
    out.push_str(&token[..lead]);
    if core.contains("://") {
        out.push_str("<URL>");
    } else if let Some(eq) = core.find('=').filter(|&i| i > 0 && i + 1 < core.len()) {
        out.push_str(&core[..=eq]);
        out.push_str(classify(&core[eq + 1..]).unwrap_or(&core[eq + 1..]));
    } else if crate::model::ErrorCode::parse(core).is_ok() {
        out.push_str(core);
    } else if let Some(mask) = classify(core) {
        out.push_str(mask);
    } else if core.bytes().any(|b| b.is_ascii_digit()) {
        mask_digit_runs(core, out);
    } else {
        out.push_str(core);
    }
    out.push_str(tail);
}

fn mask_digit_runs(s: &str, out: &mut String) {
    let mut in_digits = false;
    for c in s.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                out.push_str("<NUM>");
                in_digits = true;
            }
        } else {
            in_digits = false;
            out.push(c);
        }
    }
}

fn classify(t: &str) -> Option<&'static str> {
    if t.is_empty() {
        return None;
    }
    let b = t.as_bytes();
    if t.contains("://") {
        return Some("<URL>");
    }
    if let Some(at) = t.find('@') {
        if at > 0 && t[at + 1..].contains('.') && !t.contains('/') {
            return Some("<EMAIL>");
        }
    }
    if b[0] == b'/'
        || t.starts_with("./")
        || t.starts_with("~/")
        || (b.len() > 2 && b[1] == b':' && b[2] == b'\\')
    {
        return Some("<PATH>");
    }
    if is_uuid(b) {
        return Some("<UUID>");
    }
    if (t.starts_with("0x") || t.starts_with("0X"))
        && b.len() > 2
        && b[2..].iter().all(u8::is_ascii_hexdigit)
    {
        return Some("<HEX>");
    }
    if b.len() >= 7
        && b.iter().all(u8::is_ascii_hexdigit)
        && b.iter().any(u8::is_ascii_digit)
        && b.iter().any(|c| c.is_ascii_alphabetic())
    {
        return Some(if b.len() >= 32 { "<HASH>" } else { "<HEX>" });
    }
    if is_ip(t) {
        return Some("<IP>");
    }
    if is_number(t) {
        return Some("<NUM>");
    }
    if let Some(kind) = number_with_unit(t) {
        return Some(kind);
    }
    if is_time(b) {
        return Some("<TIME>");
    }
    if t.contains('/') && t.split('/').filter(|s| !s.is_empty()).count() >= 2 && !t.contains(' ') {
        return Some("<PATH>");
    }
    None
}

fn is_uuid(b: &[u8]) -> bool {
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn is_number(t: &str) -> bool {
    let t = t.strip_prefix(['-', '+']).unwrap_or(t);
    !t.is_empty()
        && t.bytes().any(|b| b.is_ascii_digit())
        && t.bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'_' || b == b',')
}

fn number_with_unit(t: &str) -> Option<&'static str> {
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    if split == 0 || !t.as_bytes()[0].is_ascii_digit() {
        return None;
    }
    match &t[split..].to_ascii_lowercase()[..] {
        "ns" | "us" | "µs" | "ms" | "s" | "sec" | "secs" | "m" | "min" | "mins" | "h" | "hr"
        | "d" => Some("<DURATION>"),
        "b" | "kb" | "mb" | "gb" | "tb" | "kib" | "mib" | "gib" | "k" | "%" => Some("<SIZE>"),
        _ => None,
    }
}

fn is_ip(t: &str) -> bool {
    let host = match t.rsplit_once(':') {
        Some((h, p))
            if !h.contains(':') && !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) =>
        {
            h
        }
        _ => t,
    };
    let parts: Vec<&str> = host.split('.').collect();
    if parts.len() == 4
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
    {
        return true;
    }
    // IPv6: at least two colons, only hex digits, colons and dots, optional [..]:port.
    let v6 = t.trim_start_matches('[');
    let v6 = v6.split(']').next().unwrap_or(v6);
    v6.matches(':').count() >= 2
        && v6
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        && v6.bytes().any(|b| b.is_ascii_hexdigit())
}

fn is_time(b: &[u8]) -> bool {
    // 2024-01-02, 12:30:45, 2024-01-02T12:30:45.123Z and similar: digits with - : . T Z + separators.
    let digits = b.iter().filter(|c| c.is_ascii_digit()).count();
    digits >= 4
        && b.iter()
            .all(|c| c.is_ascii_digit() || matches!(c, b'-' | b':' | b'.' | b'T' | b'Z' | b'+'))
        && b.iter().any(|c| matches!(c, b'-' | b':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> String {
        Templater::new().mask(s)
    }

    #[test]
    fn typed_masks() {
        assert_eq!(m("took 12ms for 10MB"), "took <DURATION> for <SIZE>");
        assert_eq!(m("id 550e8400-e29b-41d4-a716-446655440000"), "id <UUID>");
        assert_eq!(m("from 10.0.0.1:8080 to ::1"), "from <IP> to <IP>");
        assert_eq!(m("open /var/lib/x.db failed"), "open <PATH> failed");
        assert_eq!(m("GET https://x.example/a?b=1"), "GET <URL>");
        assert_eq!(m("mail bob@example.com"), "mail <EMAIL>");
        assert_eq!(m("commit deadbeefcafe1234"), "commit <HEX>");
        assert_eq!(m("at 2024-01-02T03:04:05Z"), "at <TIME>");
        assert_eq!(m("user=alice42 count=17"), "user=alice42 count=<NUM>");
        assert_eq!(m("job-123 (attempt 3)"), "job-<NUM> (attempt <NUM>)");
        assert_eq!(m("[GIT-SYNC-001] x"), "[GIT-SYNC-001] x");
    }

    #[test]
    fn messages_differing_only_in_values_share_a_fingerprint() {
        let t = Templater::new();
        assert_eq!(
            t.template("[GIT-SYNC-001] clone of /repos/a failed after 3 attempts")
                .fingerprint,
            t.template("[GIT-SYNC-001] clone of /repos/b failed after 17 attempts")
                .fingerprint
        );
        assert_ne!(
            t.template("clone failed").fingerprint,
            t.template("push failed").fingerprint
        );
    }

    #[test]
    fn whitespace_folds_and_unicode_normalises() {
        assert_eq!(m("a   b\t\nc"), "a b c");
        assert_eq!(m("ﬁle １２"), "file <NUM>");
    }

    #[test]
    fn masking_is_idempotent() {
        for s in ["took 12ms", "x=5 y=/a/b", "[A-B-001] 10.0.0.1"] {
            assert_eq!(m(&m(s)), m(s));
        }
    }
}
