//! The words a template generalised, given back for triage.
//!
//! Clustering merges messages that differ in one word once it has seen
//! [`min_variable_values`](super::TemplaterConfig::min_variable_values) distinct words in that
//! position: after `failed to connect to database server`, `… cache server`, `… queue server`,
//! `… search server` and `… mailer server` the template is `failed to connect to <*> server`. For
//! grouping and display that is the point (a name is a value, and Loghub's templates say so). For
//! triage it is not: a signature under that template would be "known" to whichever issue was
//! filed for one of the first names, and a ledger outage would be counted as another database
//! outage, never analysed. Over-merging is worse than over-splitting (issue #16): deduplication
//! can still join two signatures, nothing recovers a hidden one.
//!
//! So the digest gives each signature its cluster's template with the generalised words of its
//! own messages restored ([`Templater::template_with_words`]): `failed to connect to ledger
//! server`, which dedup compares as any other template, and which is known only to an issue that
//! covered the ledger. A `<*>` stays where the message holds
//! - a value (only placeholders and punctuation, as `<NUM>` or `(<IP>)`): values never tell two
//!   problems apart;
//! - a name after a word that introduces it (`user alice`, `queue orderService`): the templater
//!   generalises those at the third name, and the same problem for another user or queue is the
//!   same problem (deduplication joins the first two names as one problem too). A word there
//!   that reads as a past participle (`Instance destroyed`) is no name: it is given back;
//! - anything but a plain word or a small number, possibly in punctuation (`ledger`,
//!   `'orderService'`, `137,`), or keys around masked values (the head of a JSON record,
//!   `{"level":<STR>,"status":503,"msg":"upstream`): a token with a placeholder glued to letters
//!   or after `-`, `.` or `/` (`job-<NUM>`, `ssh<NUM>`, `AIza…-<ID>`) is what masking left of a
//!   value, possibly of a secret, and a `key=value` or a path is a value;
//! - a word the redactor takes for (part of) a secret in the restored template, or one the
//!   templater saw holding part of a secret: a password must not become part of a signature.

use std::hash::Hasher as _;

use crate::hash::FxHasher;

use super::cluster::{introduced_name, Template, Templater, WILD, WILDCARD};
use super::masks::{trim_lead_punct, trim_tail_punct};
use super::seal::{secret_bearing_tokens, secret_tokens};
use super::ClusterId;
use crate::redact::Redactor;

impl Templater {
    /// The masked text of the message last given to [`learn`](Self::learn) (empty before the
    /// first): what [`generalised_words_key`](Self::generalised_words_key) and
    /// [`template_with_words`](Self::template_with_words) take, without masking it again.
    pub fn last_masked(&self) -> &str {
        &self.scratch
    }

    /// A key of the words [`template_with_words`](Self::template_with_words) restores for the
    /// masked text `masked` in cluster `id`: 0 when it restores none (the template has no `<*>`
    /// a word of `masked` fills), else a hash of the positions and words. Two messages of one
    /// cluster with the same key get the same template. Cheap when the template has no `<*>`.
    pub fn generalised_words_key(&self, id: ClusterId, masked: &str) -> u64 {
        let Some(c) = self.resolve(id).and_then(|id| self.clusters.get(&id)) else {
            return 0;
        };
        if !c.flags.iter().any(|&f| f & WILD != 0) {
            return 0;
        }
        let tokens = self.tokens_of(masked);
        if tokens.len() != c.tokens.len() {
            return 0;
        }
        let mut h = FxHasher::default();
        let mut any = false;
        for i in restored_positions(&c.flags, &tokens) {
            any = true;
            h.write_usize(i);
            h.write(tokens[i].as_bytes());
            h.write_u8(0xff);
        }
        if any {
            h.finish() | 1
        } else {
            0
        }
    }

    /// `masked` (the masked text of the raw `message`) with `<*>` for every token that held part
    /// of a secret in `message`, as the redactor judges the raw message (masking can leave a
    /// secret's remains that no rule recognises in the masked text); `None` when none did. The
    /// digest gives words back from this text, so no secret's remains become a signature.
    pub fn without_secret_words(&self, message: &str, masked: &str) -> Option<String> {
        let tokens = self.tokens_of(masked);
        let redactor = self.redactor.as_ref().unwrap_or_else(|| Redactor::shared());
        let secrets = secret_bearing_tokens(message, &tokens, redactor);
        if secrets.is_empty() {
            return None;
        }
        let kept: Vec<&str> = tokens
            .iter()
            .map(|t| {
                if secrets.iter().any(|s| **s == **t) {
                    WILDCARD
                } else {
                    t
                }
            })
            .collect();
        Some(kept.join(" "))
    }

    /// The template of cluster `id` with the words of `masked` (the masked text of one of its
    /// messages) put back where the cluster generalised them (see the [module docs](self)), or
    /// `None` when none is (the cluster's own template stands) or the cluster is gone.
    pub fn template_with_words(&self, id: ClusterId, masked: &str) -> Option<Template> {
        let c = self.clusters.get(&self.resolve(id)?)?;
        if !c.flags.iter().any(|&f| f & WILD != 0) {
            return None;
        }
        let tokens = self.tokens_of(masked);
        if tokens.len() != c.tokens.len() {
            return None;
        }
        let mut restored: Vec<usize> = restored_positions(&c.flags, &tokens).collect();
        if restored.is_empty() {
            return None;
        }
        let mut candidate: Vec<&str> = c.tokens.iter().map(|t| &**t).collect();
        for &i in &restored {
            candidate[i] = tokens[i];
        }
        // A secret is never given back (its template would be a signature per password).
        let redactor = self.redactor.as_ref().unwrap_or_else(|| Redactor::shared());
        let secret = secret_tokens(&candidate, redactor);
        restored.retain(|&i| {
            let keep = !secret[i] && !c.secrets.iter().any(|s| **s == *tokens[i]);
            if !keep {
                candidate[i] = c.tokens[i].as_ref();
            }
            keep
        });
        if restored.is_empty() {
            return None;
        }
        Some(Template::from_text(candidate.join(" ")))
    }
}

/// `template` with every name after a word that introduces it
/// ([`introduced_name`](super::introduced_name): `heartbeat from n-a`, `queue orders is backed up`)
/// shown as `<*>`, as the templater shows it once it has seen the third name; `None` when it
/// holds none. Ignore rules written against the generalised form (`^heartbeat from <\*>$`) apply
/// to the first two names too.
pub(crate) fn with_introduced_names_generalised(template: &str) -> Option<String> {
    let tokens: Vec<&str> = template.split(' ').collect();
    let names: Vec<usize> = (1..tokens.len())
        .filter(|&i| introduced_name(tokens[i - 1], tokens[i]))
        .collect();
    if names.is_empty() {
        return None;
    }
    let mut out = tokens;
    for i in names {
        out[i] = WILDCARD;
    }
    Some(out.join(" "))
}

/// The positions where a template (its token flags) holds `<*>` and the masked message `tokens`
/// a word to put back.
fn restored_positions<'a>(
    template_flags: &'a [u8],
    tokens: &'a [&'a str],
) -> impl Iterator<Item = usize> + 'a {
    template_flags
        .iter()
        .enumerate()
        .filter(|&(_, &f)| f & WILD != 0)
        .map(|(i, _)| i)
        .filter(move |&i| {
            let introduced = i > 0 && introduced_name(tokens[i - 1], tokens[i]);
            is_plain_word_or_outcome(tokens[i]) && !introduced
        })
}

/// A word of letters, digits and `_ - . '` holding a letter (`ledger`, `orderService`,
/// `api-v2`), or a number of at most four digits (an outcome kept by masking, `137`), possibly in
/// punctuation.
fn is_plain_word_or_outcome(tok: &str) -> bool {
    let core = trim_tail_punct(trim_lead_punct(tok));
    if core.is_empty() {
        return false;
    }
    if core.bytes().all(|b| b.is_ascii_digit()) {
        // Up to four: MySQL's error number (`ERROR 1213`) is kept by masking too.
        return core.len() <= 4;
    }
    if core.contains('<') {
        return is_keys_around_values(core);
    }
    core.chars().any(char::is_alphabetic)
        && core
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '\''))
}

/// Keys and outcome numbers around placeholders, in JSON or `key=value` punctuation only
/// (`{"level":<STR>,"status":503,"msg":"upstream`, `status=503,latency=<DURATION>`): each run of
/// letters is a key, each run of digits at most three long, and no run touches a placeholder.
fn is_keys_around_values(core: &str) -> bool {
    let b = core.as_bytes();
    let mut i = 0;
    let mut prev_placeholder_end = usize::MAX;
    let mut letters = false;
    while i < b.len() {
        let c = b[i];
        if c == b'<' {
            let close = b[i + 1..]
                .iter()
                .position(|&x| x == b'>')
                .map(|n| i + 1 + n);
            let Some(close) = close.filter(|&j| {
                j > i + 1
                    && b[i + 1..j]
                        .iter()
                        .all(|x| x.is_ascii_uppercase() || *x == b'*')
            }) else {
                return false;
            };
            if i > 0 && b[i - 1].is_ascii_alphanumeric() {
                return false;
            }
            i = close + 1;
            prev_placeholder_end = i;
            continue;
        }
        if c.is_ascii_alphanumeric() {
            if i == prev_placeholder_end {
                return false;
            }
            let run = b[i..]
                .iter()
                .take_while(|x| x.is_ascii_alphanumeric())
                .count();
            let r = &b[i..i + run];
            let ok = r.iter().all(u8::is_ascii_alphabetic)
                || (run <= 3 && r.iter().all(u8::is_ascii_digit));
            if !ok {
                return false;
            }
            letters |= r[0].is_ascii_alphabetic();
            i += run;
            continue;
        }
        if !matches!(
            c,
            b'"' | b'\'' | b':' | b',' | b'{' | b'}' | b'[' | b']' | b'=' | b'_'
        ) {
            return false;
        }
        i += 1;
    }
    letters
}

#[cfg(test)]
mod tests {
    use super::super::cluster::token_flags;
    use super::*;

    fn learned(messages: &[&str]) -> (Templater, Vec<ClusterId>, Vec<String>) {
        let mut t = Templater::new();
        let mut ids = Vec::new();
        let mut masked = Vec::new();
        for m in messages {
            ids.push(t.learn(m));
            masked.push(t.last_masked().to_string());
        }
        (t, ids, masked)
    }

    #[test]
    fn a_word_generalised_by_count_is_given_back_to_each_message() {
        let words = ["database", "cache", "queue", "search", "mailer", "ledger"];
        let messages: Vec<String> = words
            .iter()
            .map(|w| format!("failed to connect to {w} server"))
            .collect();
        let refs: Vec<&str> = messages.iter().map(String::as_str).collect();
        let (t, ids, masked) = learned(&refs);
        let last = *ids.last().unwrap();
        assert_eq!(
            t.cluster_text(last).unwrap().0,
            "failed to connect to <*> server",
            "grouping generalises the word"
        );
        let mut keys = Vec::new();
        for (w, (id, m)) in words.iter().zip(ids.iter().zip(&masked)) {
            let restored = t.template_with_words(*id, m).unwrap();
            assert_eq!(restored.text, format!("failed to connect to {w} server"));
            assert_eq!(
                restored.fingerprint,
                crate::hash::sha256_hex(restored.text.as_bytes())
            );
            let key = t.generalised_words_key(*id, m);
            assert_ne!(key, 0);
            keys.push(key);
        }
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), words.len(), "one key per word");
    }

    #[test]
    fn a_participle_after_an_introducer_generalised_by_count_is_given_back() {
        let words = ["destroyed", "spawned", "rebooted", "resumed", "paused"];
        let messages: Vec<String> = words
            .iter()
            .map(|w| format!("Instance {w} successfully on node7"))
            .collect();
        let refs: Vec<&str> = messages.iter().map(String::as_str).collect();
        let (t, ids, masked) = learned(&refs);
        assert_eq!(
            t.cluster_text(ids[4]).unwrap().0,
            "Instance <*> successfully on node7"
        );
        for (w, (id, m)) in words.iter().zip(ids.iter().zip(&masked)) {
            assert_eq!(
                t.template_with_words(*id, m).unwrap().text,
                format!("Instance {w} successfully on node7")
            );
        }
        assert_eq!(
            with_introduced_names_generalised("queue orders is backed up on node7").as_deref(),
            Some("queue <*> is backed up on node7")
        );
        assert_eq!(
            with_introduced_names_generalised("Instance destroyed successfully on node7"),
            None
        );
    }

    #[test]
    fn values_introduced_names_and_masked_remains_stay_generalised() {
        // A name after `user` is generalised at the third name; values are never words.
        let (t, ids, masked) = learned(&[
            "login failed for user alice after 3 attempts",
            "login failed for user bob after 4 attempts",
            "login failed for user carol after 5 attempts",
        ]);
        assert_eq!(
            t.cluster_text(ids[2]).unwrap().0,
            "login failed for user <*> after <NUM> attempts"
        );
        for i in 0..3 {
            assert_eq!(t.template_with_words(ids[i], &masked[i]), None);
            assert_eq!(t.generalised_words_key(ids[i], &masked[i]), 0);
        }
        // A template without `<*>` restores nothing.
        let (t, ids, masked) = learned(&["disk full on <PATH>"]);
        assert_eq!(t.template_with_words(ids[0], &masked[0]), None);
        assert_eq!(t.generalised_words_key(ids[0], &masked[0]), 0);
        // `job-<NUM>` holds what masking left of a value: not put back.
        let tokens = ["worker", "job-<NUM>", "crashed"];
        let flags = [
            token_flags("worker"),
            token_flags("<*>"),
            token_flags("crashed"),
        ];
        assert_eq!(restored_positions(&flags, &tokens).count(), 0);
        let tokens = ["worker", "(<NUM>)", "crashed"];
        assert_eq!(restored_positions(&flags, &tokens).count(), 0);
        for remains in ["ssh<NUM>", "AIzakZeESG61she-<ID>_<ID>", "<PATH>", "x.<NUM>"] {
            assert!(!is_plain_word_or_outcome(remains), "{remains}");
        }
        for keys in [
            r#"{"level":<STR>,"status":503,"msg":"upstream"#,
            "status=503,latency=<DURATION>",
        ] {
            assert!(is_plain_word_or_outcome(keys), "{keys}");
        }
        let tokens = ["worker", "'billing'", "crashed"];
        assert_eq!(restored_positions(&flags, &tokens).collect::<Vec<_>>(), [1]);
    }
}
