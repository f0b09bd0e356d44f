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
//!   templater saw holding part of a secret: a password must not become part of a signature;
//! - when the templates of one digest's signatures are made together
//!   ([`Templater::templates_with_words`]), a name numbered by one digit (`bglio7`) with a
//!   sibling of the same letters and two or more digits (`bglio46`, masked as `bglio<NUM>`) in
//!   the same generalised position of the same cluster: one of a series of numbered hosts, as
//!   masking makes its longer siblings. Without such a sibling it is given back: `sqlite3`,
//!   `ipv4`, `en0`, `http2` are names, and masking keeps them for that reason.

use std::hash::Hasher as _;

use crate::hash::{FxHasher, FxMap};

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
        self.template_with_words_among(id, masked, &NumberedSiblings::default())
    }

    /// [`template_with_words`](Self::template_with_words) for each `(cluster, masked text)` of
    /// one digest's signatures, in order, judged together: a name numbered by one digit
    /// (`bglio7`) is not given back when another of them holds a sibling with the same letters
    /// and two or more digits (`bglio46`, masked as `bglio<NUM>`) in the same generalised
    /// position of the same cluster, so the one-digit host joins the signature of its longer
    /// siblings. Without that evidence it is given back as before: `sqlite3`, `ipv4`, `en0` and
    /// `http2` are names.
    pub fn templates_with_words<'a>(
        &self,
        signatures: impl IntoIterator<Item = (ClusterId, &'a str)>,
    ) -> Vec<Option<Template>> {
        let signatures: Vec<(ClusterId, &str)> = signatures.into_iter().collect();
        let mut siblings = NumberedSiblings::default();
        for &(id, masked) in &signatures {
            siblings.observe(self, id, masked);
        }
        signatures
            .into_iter()
            .map(|(id, masked)| self.template_with_words_among(id, masked, &siblings))
            .collect()
    }

    fn template_with_words_among(
        &self,
        id: ClusterId,
        masked: &str,
        siblings: &NumberedSiblings,
    ) -> Option<Template> {
        let id = self.resolve(id)?;
        let c = self.clusters.get(&id)?;
        if !c.flags.iter().any(|&f| f & WILD != 0) {
            return None;
        }
        let tokens = self.tokens_of(masked);
        if tokens.len() != c.tokens.len() {
            return None;
        }
        let mut restored: Vec<usize> = restored_positions(&c.flags, &tokens)
            .filter(|&i| !siblings.has_longer_sibling(self, id, i, tokens[i]))
            .collect();
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

/// Names numbered by two or more digits (`bglio46`, masked as `bglio<NUM>`) seen in the
/// generalised positions of clusters among one digest's signatures: the evidence that a name
/// numbered by one digit with the same letters in the same place (`bglio7`) is one of the series.
#[derive(Debug, Default)]
struct NumberedSiblings {
    /// Key of (position, letters) → the clusters (resolved when observed) that held
    /// `letters<NUM>` in that generalised position.
    seen: FxMap<u64, Vec<ClusterId>>,
}

impl NumberedSiblings {
    /// Notes every `letters<NUM>` token of `masked` in a generalised position of cluster `id`.
    fn observe(&mut self, templater: &Templater, id: ClusterId, masked: &str) {
        let Some(id) = templater.resolve(id) else {
            return;
        };
        let Some(c) = templater.clusters.get(&id) else {
            return;
        };
        if !c.flags.iter().any(|&f| f & WILD != 0) {
            return;
        }
        let tokens = templater.tokens_of(masked);
        if tokens.len() != c.tokens.len() {
            return;
        }
        for (i, tok) in tokens.iter().enumerate() {
            if c.flags[i] & WILD == 0 {
                continue;
            }
            if let Some(letters) = numbered_stem(tok) {
                let ids = self.seen.entry(stem_key(i, letters)).or_default();
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
    }

    /// Whether `tok`, in position `i` of cluster `id` (resolved), is a name numbered by one digit
    /// whose letters were seen numbered by more digits in the same place.
    fn has_longer_sibling(
        &self,
        templater: &Templater,
        id: ClusterId,
        i: usize,
        tok: &str,
    ) -> bool {
        if self.seen.is_empty() {
            return false;
        }
        let Some(letters) = one_digit_stem(tok) else {
            return false;
        };
        self.seen
            .get(&stem_key(i, letters))
            .is_some_and(|ids| ids.iter().any(|&s| templater.resolve(s) == Some(id)))
    }
}

fn stem_key(position: usize, letters: &str) -> u64 {
    let mut h = FxHasher::default();
    h.write_usize(position);
    h.write(letters.as_bytes());
    h.finish()
}

/// The letters of a name masking numbered by two or more digits (`bglio<NUM>` → `bglio`), in
/// punctuation or not; at least two ASCII letters, as masking needs to keep a name's digits.
fn numbered_stem(tok: &str) -> Option<&str> {
    let letters = trim_tail_punct(trim_lead_punct(tok)).strip_suffix("<NUM>")?;
    (letters.len() >= 2 && letters.bytes().all(|b| b.is_ascii_alphabetic())).then_some(letters)
}

/// The letters of a name numbered by one digit (`bglio7` → `bglio`), in punctuation or not; at
/// least two ASCII letters.
fn one_digit_stem(tok: &str) -> Option<&str> {
    let core = trim_tail_punct(trim_lead_punct(tok));
    let (letters, digit) = core.split_at_checked(core.len().checked_sub(1)?)?;
    (digit.bytes().all(|b| b.is_ascii_digit())
        && letters.len() >= 2
        && letters.bytes().all(|b| b.is_ascii_alphabetic()))
    .then_some(letters)
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

    /// [`learned`] over the messages `message` makes of each of `words`.
    fn learned_each(
        words: &[&str],
        message: impl Fn(&str) -> String,
    ) -> (Templater, Vec<ClusterId>, Vec<String>) {
        let messages: Vec<String> = words.iter().map(|w| message(w)).collect();
        let refs: Vec<&str> = messages.iter().map(String::as_str).collect();
        learned(&refs)
    }

    #[test]
    fn a_word_generalised_by_count_is_given_back_to_each_message() {
        let words = ["database", "cache", "queue", "search", "mailer", "ledger"];
        let (t, ids, masked) = learned_each(&words, |w| format!("failed to connect to {w} server"));
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
        let (t, ids, masked) =
            learned_each(&words, |w| format!("Instance {w} successfully on node7"));
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

    /// Review4 F10 (rest): `bglio46` and `bglio75` are masked to `bglio<NUM>`, but a one-digit
    /// sibling `bglio7` is kept as a name (so are `sqlite3`, `en0`), and the words restore gave
    /// it a signature of its own. Judged together with a `bglio<NUM>` in the same generalised
    /// position of the same cluster, it stays generalised; without one it is given back.
    #[test]
    fn a_one_digit_name_with_a_longer_numbered_sibling_in_its_place_stays_generalised() {
        let hosts = [
            "bglio46", "bglio75", "bglio1", "bglio2", "bglio3", "bglio5", "bglio7",
        ];
        let (t, ids, masked) = learned_each(&hosts, |h| {
            format!("Lustre mount FAILED : {h} : point /p/gb1")
        });
        let last = *ids.last().unwrap();
        assert_eq!(
            t.cluster_text(last).unwrap().0,
            "Lustre mount FAILED : <*> : point <PATH>"
        );
        // One by one (no evidence), `bglio7` is given back, as before.
        assert_eq!(
            t.template_with_words(ids[6], &masked[6]).unwrap().text,
            "Lustre mount FAILED : bglio7 : point <PATH>"
        );
        let together =
            t.templates_with_words(ids.iter().copied().zip(masked.iter().map(String::as_str)));
        assert_eq!(together.len(), hosts.len());
        assert!(
            together.iter().all(Option::is_none),
            "every host, one digit or more, stays under the cluster's template: {together:?}"
        );
        // Without a sibling numbered by more digits, the one-digit names are names.
        let without: Vec<(ClusterId, &str)> = ids[2..]
            .iter()
            .copied()
            .zip(masked[2..].iter().map(String::as_str))
            .collect();
        let restored: Vec<String> = t
            .templates_with_words(without)
            .into_iter()
            .map(|t| t.unwrap().text)
            .collect();
        assert_eq!(restored[4], "Lustre mount FAILED : bglio7 : point <PATH>");
    }

    #[test]
    fn constants_numbered_by_one_digit_are_given_back_without_a_longer_sibling_in_their_place() {
        let names = ["sqlite3", "ipv4", "en0", "http2", "redis", "utf8"];
        let mut messages: Vec<String> = names
            .iter()
            .map(|n| format!("backend {n} refused the request"))
            .collect();
        // `sqlite<NUM>` elsewhere (another cluster, another place) is no evidence.
        messages.push("opened sqlite45 store in read-only mode".into());
        let refs: Vec<&str> = messages.iter().map(String::as_str).collect();
        let (t, ids, masked) = learned(&refs);
        assert_eq!(
            t.cluster_text(ids[0]).unwrap().0,
            "backend <*> refused the request"
        );
        let together =
            t.templates_with_words(ids.iter().copied().zip(masked.iter().map(String::as_str)));
        for (n, restored) in names.iter().zip(&together) {
            assert_eq!(
                restored.as_ref().map(|t| t.text.as_str()),
                Some(format!("backend {n} refused the request").as_str())
            );
        }
        assert_eq!(numbered_stem("bglio<NUM>"), Some("bglio"));
        assert_eq!(numbered_stem("(bglio<NUM>),"), Some("bglio"));
        assert_eq!(numbered_stem("s<NUM>"), None);
        assert_eq!(numbered_stem("job-<NUM>"), None);
        assert_eq!(one_digit_stem("bglio7,"), Some("bglio"));
        assert_eq!(one_digit_stem("log4j"), None);
        assert_eq!(one_digit_stem("bglio46"), None);
        assert_eq!(one_digit_stem("7"), None);
        assert_eq!(one_digit_stem("\u{e9}t\u{e9}7"), None);
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
