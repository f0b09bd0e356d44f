//! Numbers that name an outcome (an exit status, an HTTP status, an errno, a signal) and so are
//! part of what a message says, not a value in it.
//!
//! `worker exited with status 1` and `worker exited with status 137` (killed for lack of memory)
//! are two different failures, as are `HTTP 404` and `HTTP 503`, `errno 13` (permission denied)
//! and `errno 28` (no space left), `signal 15` and `signal 11`. Masking such a number as `<NUM>`
//! made the second of each pair a recurrence of the first. A small integer right after a word that
//! names an outcome (`status`, `code`, `errno`, `signal`, `exit`, `rc`, ... in any case, also as
//! the key of `key=value`) is kept as it is, and so is a three-digit HTTP status after `HTTP` or
//! after an HTTP version (`HTTP/1.1 404`, the access log's `"GET / HTTP/1.1" 404 512`). Counts,
//! durations, sizes and ids stay values: only 1–3 digit integers count, and only in those
//! positions.
//!
//! The templater still groups the messages of one statement whatever the number (a kept number
//! differs from another as a value does, not as a word: `status <*>`), so grouping for display is
//! unchanged; the digest's signatures keep the number (see
//! [`Templater::template_with_words`](super::Templater::template_with_words)), so each status is
//! a signature, and deduplication tells a new status from a known one.

use super::masks::{trim_lead_punct, trim_tail_punct};

/// What a token says about an integer right after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NumberAfter {
    /// Nothing: a number after it is a value.
    Value,
    /// An outcome word (`status`, `errno`, ...): an integer of 1–3 digits is kept.
    Outcome,
    /// `HTTP` or an HTTP version: a status (three digits, 100–599) is kept.
    HttpStatus,
    /// `SQLSTATE` or `HRESULT`: the code after it (`23505`, `0x80070005`) is kept.
    ForeignCode,
    /// MySQL's `ERROR` (upper case): its four-digit error number (`ERROR 1213 (40001)`) is kept.
    MysqlError,
}

/// Words after which a small integer is an outcome (compared case-insensitively; what
/// [`is_outcome_word`] matches, listed for its tests).
#[cfg(test)]
const OUTCOME_WORDS: &[&str] = &[
    "status",
    "code",
    "errno",
    "signal",
    "exit",
    "rc",
    "exitcode",
    "exit_code",
    "exitstatus",
    "exit_status",
    "statuscode",
    "status_code",
    "returncode",
    "return_code",
    "retcode",
    "http_status",
    "httpstatus",
    "http_code",
];

const LONGEST_OUTCOME_WORD: usize = 11;

/// What the (raw) token `tok` says about an integer right after it.
pub(super) fn number_after(tok: &str) -> NumberAfter {
    // Cheap rejection first: this runs for every token of every message.
    if tok.len() < 2 || tok.len() > LONGEST_OUTCOME_WORD + 4 {
        return NumberAfter::Value;
    }
    let core = trim_tail_punct(trim_lead_punct(tok));
    outcome_key(core)
}

/// [`number_after`] for a token without its punctuation (also the key of `key=value`).
pub(super) fn outcome_key(core: &str) -> NumberAfter {
    let b = core.as_bytes();
    if b.len() < 2 || !matches!(b[0].to_ascii_lowercase(), b's' | b'c' | b'e' | b'r' | b'h') {
        return NumberAfter::Value;
    }
    if b.len() >= 4 && b[..4].eq_ignore_ascii_case(b"http") {
        let rest = &b[4..];
        let version = rest.first() == Some(&b'/')
            && rest.len() > 1
            && rest[1..].iter().all(|c| c.is_ascii_digit() || *c == b'.');
        if rest.is_empty() || version {
            return NumberAfter::HttpStatus;
        }
    }
    if is_outcome_word(b) {
        return NumberAfter::Outcome;
    }
    if b.eq_ignore_ascii_case(b"sqlstate") || b.eq_ignore_ascii_case(b"hresult") {
        return NumberAfter::ForeignCode;
    }
    if b == b"ERROR" {
        return NumberAfter::MysqlError;
    }
    NumberAfter::Value
}

/// Whether the token `core` (without its punctuation) is an error code of a system nobody here
/// wrote, kept whole as a constant: letters then digits (`ORA-00942`, `AADSTS50126`,
/// `MAIL-002`, `E1001`: one to eight capitals, an optional `-`, three to six digits) or a
/// SQLSTATE glued to its keyword (`SQLSTATE[23505`, the `]` being punctuation). Oracle's
/// `ORA-00942` (no such table) and `ORA-01017` (bad password) are two failures, as are
/// `SQLSTATE[23505]` (unique violation) and `SQLSTATE[53100]` (disk full): masking the digits
/// made the second of each pair "known" as the first.
pub(super) fn is_foreign_error_code(core: &str) -> bool {
    let b = core.as_bytes();
    if b.len() >= 10 && b[..9].eq_ignore_ascii_case(b"sqlstate[") {
        let v = &b[9..];
        let v = v.strip_suffix(b"]").unwrap_or(v);
        return v.len() == 5 && v.iter().all(u8::is_ascii_alphanumeric);
    }
    let letters = b.iter().take_while(|c| c.is_ascii_uppercase()).count();
    if !(1..=8).contains(&letters) {
        return false;
    }
    let rest = &b[letters..];
    let rest = rest.strip_prefix(b"-").unwrap_or(rest);
    (3..=6).contains(&rest.len()) && rest.iter().all(u8::is_ascii_digit)
}

/// Whether `word` is one of the outcome words, in any case: lower-cased into a buffer and
/// matched, as this runs for every token that opens with one of their first letters.
fn is_outcome_word(word: &[u8]) -> bool {
    if word.len() > LONGEST_OUTCOME_WORD {
        return false;
    }
    let mut buf = [0u8; LONGEST_OUTCOME_WORD];
    for (to, from) in buf.iter_mut().zip(word) {
        *to = from.to_ascii_lowercase();
    }
    matches!(
        &buf[..word.len()],
        b"status"
            | b"code"
            | b"errno"
            | b"signal"
            | b"exit"
            | b"rc"
            | b"exitcode"
            | b"exit_code"
            | b"exitstatus"
            | b"exit_status"
            | b"statuscode"
            | b"status_code"
            | b"returncode"
            | b"return_code"
            | b"retcode"
            | b"http_status"
            | b"httpstatus"
            | b"http_code"
    )
}

/// Whether `tok` (raw, possibly in punctuation: `13]`, `137,`) is an integer kept after a token
/// that said `after`.
pub(super) fn keeps_number(after: NumberAfter, tok: &str) -> bool {
    if after == NumberAfter::Value {
        return false;
    }
    let core = trim_tail_punct(tok);
    let b = core.as_bytes();
    if after == NumberAfter::ForeignCode {
        // A SQLSTATE (`23505`, five characters) or an HRESULT (`0x80070005`, or in decimal).
        let hex = b
            .strip_prefix(b"0x")
            .or_else(|| b.strip_prefix(b"0X"))
            .is_some_and(|h| (1..=8).contains(&h.len()) && h.iter().all(u8::is_ascii_hexdigit));
        let sqlstate = b.len() == 5 && b.iter().all(u8::is_ascii_alphanumeric);
        let decimal = (1..=10).contains(&b.len()) && b.iter().all(u8::is_ascii_digit);
        return hex || sqlstate || decimal;
    }
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return false;
    }
    match after {
        NumberAfter::Outcome => b.len() <= 3,
        NumberAfter::HttpStatus => b.len() == 3 && (b'1'..=b'5').contains(&b[0]),
        NumberAfter::MysqlError => b.len() == 4,
        NumberAfter::Value | NumberAfter::ForeignCode => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The matcher of outcome words accepts exactly the listed words, in any case.
        #[test]
        fn outcome_word_matcher_agrees_with_the_list(word in "[a-zA-Z_]{0,13}") {
            let listed = OUTCOME_WORDS.iter().any(|w| w.eq_ignore_ascii_case(&word));
            prop_assert_eq!(is_outcome_word(word.as_bytes()), listed);
        }
    }

    #[test]
    fn every_listed_outcome_word_is_matched_in_any_case() {
        for word in OUTCOME_WORDS {
            assert!(word.len() <= LONGEST_OUTCOME_WORD, "{word}");
            assert!(is_outcome_word(word.as_bytes()), "{word}");
            assert!(
                is_outcome_word(word.to_ascii_uppercase().as_bytes()),
                "{word}"
            );
        }
        for other in [
            "",
            "s",
            "stat",
            "statuses",
            "codes",
            "http",
            "exit_codes",
            "rcx",
        ] {
            assert!(!is_outcome_word(other.as_bytes()), "{other}");
        }
    }

    #[test]
    fn outcome_words_and_http_versions_keep_the_number_after_them() {
        for (before, number) in [
            ("status", "1"),
            ("status:", "137"),
            ("STATUS", "0"),
            ("code", "2"),
            ("[Errno", "13]"),
            ("errno", "28"),
            ("signal", "11"),
            ("exit", "1,"),
            ("rc", "255"),
            ("HTTP", "404"),
            ("HTTP/1.1", "503"),
            ("HTTP/1.0\"", "200"),
            ("HTTP/2", "404"),
            ("exit_code", "137"),
        ] {
            assert!(
                keeps_number(number_after(before), number),
                "{before} {number}"
            );
        }
    }

    #[test]
    fn foreign_codes_after_their_keyword_and_letter_prefixed_codes_are_kept() {
        for (before, code) in [
            ("SQLSTATE", "23505"),
            ("sqlstate:", "HY000"),
            ("HRESULT", "0x80070005"),
            ("hresult", "0X8007000E,"),
            ("HRESULT", "2147942405"),
            ("ERROR", "1213"),
        ] {
            assert!(keeps_number(number_after(before), code), "{before} {code}");
        }
        for (before, code) in [
            ("ERROR", "12"),
            ("error", "1213"),
            ("SQLSTATE", "23505x0"),
            ("SQLSTATE", "23505000000"),
            ("HRESULT", "0x800700050"),
        ] {
            assert!(!keeps_number(number_after(before), code), "{before} {code}");
        }
        for code in [
            "ORA-00942",
            "AADSTS50126",
            "MAIL-002",
            "E1001",
            "SQLSTATE[23505",
        ] {
            assert!(is_foreign_error_code(code), "{code}");
        }
        for other in [
            "KB2756920",
            "R02",
            "blk_1234",
            "Ora-00942",
            "ORA-12",
            "ABCDEFGHI-123",
        ] {
            assert!(!is_foreign_error_code(other), "{other}");
        }
    }

    #[test]
    fn counts_durations_ids_and_other_words_are_values() {
        for (before, number) in [
            // Not an outcome word.
            ("retry", "3"),
            ("after", "404"),
            ("statuses", "3"),
            ("codec", "1"),
            // Too long to be a status.
            ("code", "1234"),
            ("status", "20000"),
            // Not an integer.
            ("status", "1.5"),
            ("status", "-1"),
            ("status", "0x1f"),
            // An HTTP status has three digits, 1xx to 5xx.
            ("HTTP", "1"),
            ("HTTP/1.1", "200000"),
            ("HTTP/1.1", "999"),
            ("HTTPS", "404"),
        ] {
            assert!(
                !keeps_number(number_after(before), number),
                "{before} {number}"
            );
        }
    }
}
