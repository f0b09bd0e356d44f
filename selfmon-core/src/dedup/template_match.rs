//! Whether two message templates are one message seen at two stages of learning (dedup's
//! [`DedupTier::Template`](crate::traits::DedupTier::Template)).
//!
//! The templater learns online and across scans, so the template of one log statement changes:
//! the first `queue orderService is backed up` is learned literally and filed under that text;
//! when `queue billingRepository …` arrives the template generalises to `queue <*> is backed up`,
//! its fingerprint changes, and without this rule the issue filed under the narrower template no
//! longer explained it — a new issue was filed on every scan that brought a new name. And a quoted
//! name (`No bean named 'orderService' available`) stays literal until five distinct names are
//! seen in one position, so each scan's single new name was another template, and another issue.
//!
//! [`templates_match`] joins exactly those cases and nothing looser, because a match silently
//! hides a signature from the analysis: the two templates have the same tokens, position by
//! position, except that
//! - one side (always the same side) holds `<*>` where the other holds anything: the templater
//!   itself generalised that position, so it already decided the two are one message; or
//! - at most one position holds two different *quoted names* (`'orderService'` and
//!   `'billingRepository'`: a single token in matching quotes, the same punctuation around it,
//!   no placeholder and no error code inside) — quotes are what code puts around an interpolated
//!   value; or
//! - a position holds two different *names after a word that introduces a name*, the same word
//!   on both sides (`queue orderService` / `queue billingRepository`, `client SPP.` / `client
//!   WindowsUpdateAgent.`: [`INTRODUCERS`](crate::template) such as `user`, `host`, `client`,
//!   `queue`, `table`; each name a plain word or identifier, no placeholder, no error code, no
//!   sealed stand-in, in the same punctuation). The templater keeps two such names apart until a
//!   third turns up (they may be two events, and grouping them would hide one behind the other),
//!   but for triage a problem seen for another user or queue is the same problem;
//!
//! and at least two tokens that hold no placeholder agree, so `<*> failed` absorbs nothing.
//! Two different unquoted words anywhere else are different messages (`VM Started` / `VM
//! Stopped`; `failed to connect to database server` / `… ledger server`, which the templater
//! groups only by count and gives back to each signature), never this rule's. The engine has the
//! templater learn every known issue's template before a scan reads
//! ([`Templater::learn_known_template`](crate::template::Templater::learn_known_template)), so at
//! the third name the templater generalises against the name an issue was filed under even when
//! what the filing scan learned was never kept.
//! Error codes keep their veto: a code token that differs is neither `<*>` nor a quoted name, and
//! callers never match a signature that carries codes by its template alone.

use crate::digest::OVERFLOW_TEMPLATE;
use crate::model::ErrorCode;
use crate::template::{names_after_an_introducer, template_text, WILDCARD};

/// Tokens without placeholders that must agree before two templates can be one message.
pub const MIN_AGREEING_CONSTANTS: usize = 2;

/// Whether `a` and `b` (message templates, as persisted or in clear) are one message: see the
/// [module docs](self). Symmetric. Equal templates match when they hold two constant tokens.
pub fn templates_match(a: &str, b: &str) -> bool {
    let (a, b) = (template_text(a), template_text(b));
    // An overflow bucket holds records of unrelated signatures: its template names no message.
    if a == OVERFLOW_TEMPLATE || b == OVERFLOW_TEMPLATE {
        return false;
    }
    let mut ta = a.split(' ');
    let mut tb = b.split(' ');
    let mut constants = 0usize;
    let mut a_wild = false;
    let mut b_wild = false;
    let mut names = 0usize;
    // The previous token, when it was the same on both sides.
    let mut before: Option<&str> = None;
    loop {
        let (x, y) = match (ta.next(), tb.next()) {
            (None, None) => break,
            (Some(x), Some(y)) => (x, y),
            _ => return false,
        };
        if x == y {
            if is_constant(x) {
                constants += 1;
            }
            before = Some(x);
            continue;
        }
        let introduced = before.is_some_and(|w| names_after_an_introducer(w, x, y));
        before = None;
        if x == WILDCARD {
            a_wild = true;
        } else if y == WILDCARD {
            b_wild = true;
        } else if introduced {
            // Names after the same introducer: as many as the message has (`user alice from
            // host db1` / `user bob from host db2`); the words around them must agree.
        } else if names == 0 && quoted_names_alike(x, y) {
            names += 1;
        } else {
            return false;
        }
        if a_wild && b_wild {
            return false;
        }
    }
    constants >= MIN_AGREEING_CONSTANTS
}

/// A token that holds no placeholder and some letter or digit.
fn is_constant(tok: &str) -> bool {
    tok != WILDCARD && !tok.contains('<') && tok.chars().any(char::is_alphanumeric)
}

/// The parts of a quoted name: (what precedes the quote, the quote, the name, what follows).
fn quoted_name(tok: &str) -> Option<(&str, char, &str, &str)> {
    let open = tok.find(['\'', '"', '`'])?;
    let (before, rest) = tok.split_at(open);
    let quote = rest.chars().next()?;
    let rest = &rest[quote.len_utf8()..];
    let close = rest.find(quote)?;
    let (name, after) = (&rest[..close], &rest[close + quote.len_utf8()..]);
    let punct = |s: &str| s.chars().all(|c| "([{,;:.!?)]}".contains(c));
    let name_ok = !name.is_empty()
        && name.chars().any(char::is_alphanumeric)
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || "_-.:/@$#+".contains(c))
        && ErrorCode::parse(name).is_err();
    (punct(before) && punct(after) && name_ok).then_some((before, quote, name, after))
}

/// Two different quoted names in the same quotes and punctuation.
fn quoted_names_alike(x: &str, y: &str) -> bool {
    match (quoted_name(x), quoted_name(y)) {
        (Some((bx, qx, nx, ax)), Some((by, qy, ny, ay))) => {
            bx == by && qx == qy && ax == ay && nx != ny
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generalised_template_matches_the_narrower_one_it_grew_from() {
        let narrow = "queue orderService is backed up (<NUM> messages)";
        let wide = "queue <*> is backed up (<NUM> messages)";
        assert!(templates_match(narrow, wide));
        assert!(templates_match(wide, narrow), "symmetric");
        assert!(templates_match(wide, wide));
    }

    #[test]
    fn one_differing_quoted_name_is_one_message() {
        assert!(templates_match(
            "No bean named 'orderService' available",
            "No bean named 'billingRepository' available"
        ));
        assert!(templates_match(
            r#"unknown column "user_id", in table"#,
            r#"unknown column "org_id", in table"#
        ));
    }

    #[test]
    fn names_after_one_introducer_are_one_message() {
        for (a, b) in [
            (
                "queue orderService is backed up (<NUM> messages)",
                "queue billingRepository is backed up (<NUM> messages)",
            ),
            (
                "Session: <NUM> initialized by client SPP.",
                "Session: <NUM> initialized by client WindowsUpdateAgent.",
            ),
            (
                "login failed for user alice from host db1 after <NUM> attempts",
                "login failed for user bob from host db-2 after <NUM> attempts",
            ),
            // With a position the other side generalised.
            (
                "queue orders is backed up on <*>",
                "queue billing is backed up on node7",
            ),
        ] {
            assert!(templates_match(a, b), "{a:?} ~ {b:?}");
            assert!(templates_match(b, a), "symmetric: {a:?} ~ {b:?}");
        }
    }

    #[test]
    fn words_that_are_not_names_after_one_introducer_do_not_match() {
        for (a, b) in [
            // Not after an introducer.
            (
                "failed to connect to database server",
                "failed to connect to ledger server",
            ),
            ("queue orders is backed up", "queue orders is corrupted up"),
            // Different introducers, or the introducer itself differs.
            ("queue orders is backed up", "topic orders is backed up"),
            ("queue orders is backed up", "topic billing is backed up"),
            // A value, a code, a sealed stand-in or other punctuation is no name.
            ("queue orders is backed up", "queue job-<NUM> is backed up"),
            (
                "queue orders is backed up",
                "queue [QUEUE-LOSS-002] is backed up",
            ),
            ("client SPP. initialized", "client SPP, initialized"),
            ("client SPP. initialized", "client (SPP) initialized"),
            // What happened to it, not which one: a participle is no name.
            (
                "[instance: <UUID>] Instance destroyed successfully.",
                "[instance: <UUID>] Instance spawned successfully.",
            ),
            (
                "job failed after <NUM> retries",
                "job succeeded after <NUM> retries",
            ),
            // Too little agrees besides the names.
            ("user alice", "user bob"),
            // Names after an introducer, and another word differing elsewhere.
            (
                "user alice logged in from <IP>",
                "user bob logged out from <IP>",
            ),
        ] {
            assert!(!templates_match(a, b), "{a:?} ~ {b:?}");
            assert!(!templates_match(b, a), "{b:?} ~ {a:?}");
        }
        let red = crate::redact::Redactor::new();
        let clear = "login failed for user sk-ant-api<NUM>-AbCdEfGh<NUM>IjKlMnOp<NUM>QrStUvWx<NUM>-YzAbCdEf_yz now";
        let sealed = crate::template::seal_template(clear, &red);
        assert_ne!(sealed, clear);
        assert!(!templates_match(&sealed, "login failed for user bob now"));
    }

    #[test]
    fn different_words_codes_lengths_and_wildcards_on_both_sides_do_not_match() {
        for (a, b) in [
            // A different constant word is a different message.
            ("VM Started on host", "VM Stopped on host"),
            // Unquoted names are the templater's to generalise, not dedup's.
            (
                "No bean named orderService available",
                "No bean named billingRepository available",
            ),
            // Error codes name problems, quoted or not.
            (
                "[GIT-SYNC-001] clone failed for repo",
                "[DB-LOCK-003] clone failed for repo",
            ),
            (
                "failed with 'GIT-SYNC-001' in sync",
                "failed with 'DB-LOCK-003' in sync",
            ),
            // Two quoted names, or different quotes or punctuation around them.
            ("copy 'a' to 'b' failed", "copy 'c' to 'd' failed"),
            (
                "No bean named 'a' available",
                "No bean named \"b\" available",
            ),
            (
                "No bean named 'a', available",
                "No bean named 'b' available",
            ),
            // Not the same length.
            ("queue <*> is backed up", "queue a b is backed up"),
            // Each side generalised a different position: neither covers the other.
            (
                "user <*> failed login from host a",
                "user bob failed login from host <*>",
            ),
            // Too little agrees.
            ("<*> failed", "job failed"),
            ("'a' <NUM> failed", "'b' <NUM> failed"),
            // Overflow buckets are no message.
            (OVERFLOW_TEMPLATE, OVERFLOW_TEMPLATE),
        ] {
            assert!(!templates_match(a, b), "{a:?} ~ {b:?}");
        }
    }

    #[test]
    fn a_sealed_template_is_compared_by_its_text() {
        let red = crate::redact::Redactor::new();
        let clear = "model call failed with key sk-ant-api<NUM>-AbCdEfGh<NUM>IjKlMnOp<NUM>QrStUvWx<NUM>-YzAbCdEf_yz";
        let sealed = crate::template::seal_template(clear, &red);
        assert_ne!(sealed, clear);
        // The stand-in is not the clear token: only `<*>` on the other side covers it.
        assert!(!templates_match(&sealed, clear));
        assert!(templates_match(&sealed, "model call failed with key <*>"));
    }
}
