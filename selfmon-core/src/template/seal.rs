//! Sealing: what selfmon persists about templates holds no secret in clear.
//!
//! Templates are masked text, and masking can hide a secret from the redactor
//! (`sk-ant-api<NUM>-...`), so a learned template may still carry most of a secret. Templates are
//! kept in clear in memory — fingerprints are computed from them, so the redaction configuration
//! never changes a fingerprint — but whenever one is persisted (the learned template state, the
//! templates of filed issues, filing intents and backlog entries), every token the redactor would
//! flag is replaced by a **stand-in**: `<SEALED:ffhhhhhhhhhhhhhhhhhhhhhhhh>`, where `ff` is the
//! token's clustering flags in hex and the 24 `h` are the first 96 bits of
//! `SHA-256("selfmon-seal-v1\n" + token)`.
//!
//! - The templater matches a message token against a stand-in by hashing it, so a reloaded
//!   templater maps the same messages to the same clusters; the first message that matches
//!   restores the clear token in memory. The cluster's fingerprint is persisted beside the sealed
//!   tokens, so reload gives the same fingerprints without the clear secret.
//! - A sealed template of issue metadata ([`seal_template`]) ends with `<SHA256:...>`, the
//!   fingerprint of the clear template, which [`template_fingerprint`] reads back for
//!   deduplication.
//!
//! Which tokens are flagged, two ways, either of which seals:
//!
//! - **From the raw message, before masking** (the rule masking cannot break): when a message
//!   founds a cluster, the templater runs the redactor over the raw message and masks the
//!   redacted copy too; every token of the template that the masked redacted copy does not hold
//!   as it is came (in part) from a secret's span, and is remembered in memory with the cluster
//!   ([`SecretTokens`], [`super::Templater::secret_tokens`]). Masking can cut a key into pieces
//!   that no detector recognises (`key=AIzakZeESG61she-<ID>_<ID>`: up to 23 of a Google key's 39
//!   characters stayed in clear when only the masked text was judged); this does not depend on
//!   what masking left. Tree keys and merged clusters carry the verdict along, and a stand-in
//!   restored to its clear token by a later message is remembered as secret again.
//! - **From the masked template**: the redactor runs over the template's text with each
//!   placeholder replaced by a representative value (`<NUM>` by `7`, `<HEX>`/`<HASH>` by hex
//!   digits, ...), so a secret whose digits were masked is still recognised; a token that does
//!   not come out of the redactor unchanged is sealed. This covers state learned before the first
//!   way existed and templates that did not come from this templater.
//!
//! Tokens made only of placeholders and punctuation are never sealed. The hash is unkeyed: a stand-in does not hide a value that can be guessed (a
//! dictionary password after `password=`), only one that cannot (keys, tokens, random secrets).

use std::borrow::Cow;
use std::collections::HashMap;

use crate::hash::{sha256_hex, FxSet};
use crate::redact::Redactor;

use super::cluster::{token_flags, BARE, WILDCARD};
use super::masks::{mask_into, split_spaces};

/// Start of a stand-in.
const SEAL_PREFIX: &str = "<SEALED:";
/// Hex digits of the hash in a stand-in.
const HASH_HEX: usize = 24;
/// Length of a stand-in: prefix, flags (2), hash, `>`.
const STAND_IN_LEN: usize = SEAL_PREFIX.len() + 2 + HASH_HEX + 1;
/// Start of the fingerprint token that ends a sealed template of issue metadata.
const FP_PREFIX: &str = "<SHA256:";

/// Whether `tok` is a stand-in written by [`seal_token`].
#[inline]
pub(crate) fn is_stand_in(tok: &str) -> bool {
    tok.len() == STAND_IN_LEN
        && tok.starts_with(SEAL_PREFIX)
        && tok.ends_with('>')
        && tok.as_bytes()[SEAL_PREFIX.len()..STAND_IN_LEN - 1]
            .iter()
            .all(u8::is_ascii_hexdigit)
}

/// The clustering flags recorded in a stand-in (`None` when `tok` is not one).
#[inline]
pub(crate) fn stand_in_flags(tok: &str) -> Option<u8> {
    if !is_stand_in(tok) {
        return None;
    }
    u8::from_str_radix(&tok[SEAL_PREFIX.len()..SEAL_PREFIX.len() + 2], 16).ok()
}

fn token_hash(token: &str) -> String {
    let mut h = sha256_hex(format!("selfmon-seal-v1\n{token}").as_bytes());
    h.truncate(HASH_HEX);
    h
}

/// The stand-in of `token` (a stand-in stays as it is).
pub(crate) fn seal_token(token: &str) -> String {
    if is_stand_in(token) {
        return token.to_string();
    }
    format!(
        "{SEAL_PREFIX}{:02x}{}>",
        token_flags(token),
        token_hash(token)
    )
}

/// Whether the clear `token` is the one `stand_in` was made from.
#[inline]
pub(crate) fn stand_in_matches(stand_in: &str, token: &str) -> bool {
    is_stand_in(stand_in)
        && !is_stand_in(token)
        && stand_in[SEAL_PREFIX.len() + 2..STAND_IN_LEN - 1] == token_hash(token)
}

/// `token` with each placeholder replaced by a representative value, so the redactor judges the
/// shape the value had (`AKIAIOSFODNN<NUM>EXAMPLE` is an AWS key id again).
fn representative(token: &str) -> Cow<'_, str> {
    if token == WILDCARD || !token.contains('<') {
        return Cow::Borrowed(token);
    }
    let b = token.as_bytes();
    let mut out = String::with_capacity(token.len() + 16);
    let mut i = 0;
    let mut at = 0;
    while i < b.len() {
        if b[i] == b'<' {
            let mut j = i + 1;
            while j < b.len() && (b[j].is_ascii_uppercase() || b[j] == b'*' || b[j] == b'.') {
                j += 1;
            }
            if j > i + 1 && j < b.len() && b[j] == b'>' {
                out.push_str(&token[at..i]);
                out.push_str(match &token[i + 1..j] {
                    "NUM" => "7",
                    "HEX" => "0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d",
                    "HASH" => "0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d",
                    _ => "x",
                });
                i = j + 1;
                at = i;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&token[at..]);
    Cow::Owned(out)
}

/// Template tokens that held (part of) a secret in the raw message they were masked from, as the
/// templater saw when it learned them (see [`Templater::secret_tokens`]). Sealing replaces each
/// by its stand-in whatever its masked shape: masking turns part of a key into `<ID>`/`<NUM>`
/// (`key=AIzakZeESG61she-<ID>_<ID>`), after which no detector recognises the rest.
///
/// Held in memory only, like the clear templates; never persisted.
///
/// [`Templater::secret_tokens`]: super::Templater::secret_tokens
#[derive(Debug, Clone, Default)]
pub struct SecretTokens(FxSet<Box<str>>);

impl SecretTokens {
    /// Whether `token` held part of a secret.
    pub fn contains(&self, token: &str) -> bool {
        self.0.contains(token)
    }

    /// How many distinct tokens are known.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no token is known.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn extend<'a>(&mut self, tokens: impl IntoIterator<Item = &'a Box<str>>) {
        self.0.extend(tokens.into_iter().cloned());
    }
}

/// The tokens of `masked` (the masked text of `message`, split as the templater splits it) that
/// hold part of something the redactor flags in `message` itself, before any masking: the
/// redactor judges the raw text, and the masked text of its redacted copy shows which tokens
/// that changed. A token of `masked` that the masked redacted copy does not hold as it is came
/// (in part) from a secret's span; redaction leaves every other span as it was.
pub(crate) fn secret_bearing_tokens(
    message: &str,
    masked: &[&str],
    redactor: &Redactor,
) -> Vec<Box<str>> {
    let redacted = redactor.redact(message);
    if matches!(redacted, Cow::Borrowed(_)) {
        return Vec::new();
    }
    let mut masked_redacted = String::with_capacity(redacted.len());
    mask_into(&redacted, &mut masked_redacted);
    let mut survivors: HashMap<&str, usize> = HashMap::new();
    for t in split_spaces(&masked_redacted).filter(|t| !t.is_empty()) {
        *survivors.entry(t).or_default() += 1;
    }
    let mut out: Vec<Box<str>> = Vec::new();
    for &tok in masked {
        match survivors.get_mut(tok) {
            Some(n) if *n > 0 => *n -= 1,
            _ if carries_text(tok) && !out.iter().any(|o| &**o == tok) => out.push(Box::from(tok)),
            _ => {}
        }
    }
    out
}

/// For each of `tokens`, whether it holds (part of) something the redactor flags.
pub(crate) fn secret_tokens(tokens: &[&str], redactor: &Redactor) -> Vec<bool> {
    let reps: Vec<Cow<'_, str>> = tokens.iter().map(|t| representative(t)).collect();
    let text = reps
        .iter()
        .map(|t| t.as_ref())
        .collect::<Vec<_>>()
        .join(" ");
    let redacted = redactor.redact(&text);
    let mut flags = vec![false; tokens.len()];
    if matches!(redacted, Cow::Borrowed(_)) {
        return flags;
    }
    // Redaction only rewrites the secrets' spans: a token that still appears in the output is
    // clean; one that does not was (part of) a secret.
    let mut survivors: HashMap<&str, usize> = HashMap::new();
    for t in redacted.split(' ') {
        *survivors.entry(t).or_default() += 1;
    }
    for (i, rep) in reps.iter().enumerate() {
        match survivors.get_mut(rep.as_ref()) {
            Some(n) if *n > 0 => *n -= 1,
            _ => flags[i] = sealable(tokens[i]),
        }
    }
    flags
}

/// Whether `tok` holds any clear text: not `<*>`, not a stand-in, not made only of placeholders
/// and punctuation. A token the redactor saw holding part of a secret in the raw message is
/// sealed when it does.
pub(crate) fn carries_text(tok: &str) -> bool {
    tok != WILDCARD && !is_stand_in(tok) && token_flags(tok) & BARE == 0
}

/// Of the tokens the redactor flags in a masked template: those that hold clear text, except a
/// key whose value masking already replaced (`token=<STR>`, `password:<*>`), which the redactor
/// flags for its key alone.
fn sealable(tok: &str) -> bool {
    if !carries_text(tok) {
        return false;
    }
    let value_masked = tok.rfind(['=', ':']).is_some_and(|i| {
        let value = tok[i + 1..].trim_end_matches([',', ';', ')', ']', '}', '"', '\'']);
        value.len() >= 3
            && value.starts_with('<')
            && value.ends_with('>')
            && value[1..value.len() - 1]
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b == b'*' || b == b'.')
    });
    !value_masked
}

/// `text` (a template: tokens separated by single spaces) fit to persist: every flagged token
/// replaced by its stand-in and, when any was, `<SHA256:...>` (the fingerprint of `text`) appended.
/// Unchanged when nothing is flagged. Sealing a sealed template changes nothing.
pub fn seal_template(text: &str, redactor: &Redactor) -> String {
    seal_template_with(text, redactor, &SecretTokens::default())
}

/// [`seal_template`], sealing also every token in `known`: the tokens the templater saw holding
/// part of a secret before masking ([`Templater::secret_tokens`]), which the redactor may no
/// longer recognise in the masked template.
///
/// [`Templater::secret_tokens`]: super::Templater::secret_tokens
pub fn seal_template_with(text: &str, redactor: &Redactor, known: &SecretTokens) -> String {
    if text.ends_with('>') && fingerprint_suffix(text).is_some() {
        return text.to_string();
    }
    let tokens: Vec<&str> = text.split(' ').collect();
    let mut secret = secret_tokens(&tokens, redactor);
    if !known.is_empty() {
        for (flag, tok) in secret.iter_mut().zip(&tokens) {
            *flag |= known.contains(tok) && carries_text(tok);
        }
    }
    if !secret.contains(&true) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 80);
    for (tok, s) in tokens.iter().zip(&secret) {
        if *s {
            out.push_str(&seal_token(tok));
        } else {
            out.push_str(tok);
        }
        out.push(' ');
    }
    out.push_str(FP_PREFIX);
    out.push_str(&sha256_hex(text.as_bytes()));
    out.push('>');
    out
}

fn fingerprint_suffix(text: &str) -> Option<(&str, &str)> {
    let (head, last) = text.rsplit_once(' ')?;
    let fp = last.strip_prefix(FP_PREFIX)?.strip_suffix('>')?;
    (fp.len() == 64 && fp.bytes().all(|b| b.is_ascii_hexdigit())).then_some((head, fp))
}

/// The fingerprint of the clear template a persisted template stands for: the one recorded by
/// [`seal_template`], or the SHA-256 of `text` when it was not sealed.
pub fn template_fingerprint(text: &str) -> String {
    match fingerprint_suffix(text) {
        Some((_, fp)) => fp.to_string(),
        None => sha256_hex(text.as_bytes()),
    }
}

/// The template text of a persisted template, without the fingerprint [`seal_template`] appends.
pub fn template_text(text: &str) -> &str {
    match fingerprint_suffix(text) {
        Some((head, _)) => head,
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_masked_secret_is_sealed_and_its_fingerprint_kept() {
        let red = Redactor::new();
        let clear = "model call failed with key sk-ant-api<NUM>-AbCdEfGh<NUM>IjKlMnOp<NUM>QrStUvWx<NUM>-YzAbCdEf_yz";
        let sealed = seal_template(clear, &red);
        assert!(!sealed.contains("AbCdEf"), "{sealed}");
        assert!(sealed.starts_with("model call failed with key <SEALED:"));
        assert_eq!(template_fingerprint(&sealed), sha256_hex(clear.as_bytes()));
        assert_eq!(seal_template(&sealed, &red), sealed);
        let stand_in = template_text(&sealed).rsplit(' ').next().unwrap();
        assert!(stand_in_matches(
            stand_in,
            clear.rsplit(' ').next().unwrap()
        ));
    }

    #[test]
    fn ordinary_templates_are_not_sealed() {
        let red = Redactor::new();
        for t in [
            "clone of <PATH> failed after <NUM> attempts",
            "GET <PATH> <NUM> in <DURATION>",
            "token=<*> rejected",
            "login password=<STR> for user <*>",
        ] {
            assert_eq!(seal_template(t, &red), t);
            assert_eq!(template_fingerprint(t), sha256_hex(t.as_bytes()));
        }
    }

    #[test]
    fn keyed_and_multi_token_secrets_are_sealed() {
        let red = Redactor::new();
        let tokens = [
            "login",
            "password=hunter2",
            "Authorization:",
            "Bearer",
            "abcdefgh12345678",
            "AKIAIOSFODNN<NUM>EXAMPLE",
            "<NUM>",
        ];
        let flags = secret_tokens(&tokens, &red);
        assert_eq!(flags, [false, true, false, true, true, true, false]);
    }

    #[test]
    fn the_raw_message_decides_which_masked_tokens_held_a_secret() {
        let red = Redactor::new();
        let message = "[KEY-ERR-007] maps request failed with key=AIzakZeESG61she-Xq3_Vb7-Lm9Pz2w status=REQUEST_DENIED";
        let masked = crate::template::mask(message);
        let tokens: Vec<&str> = masked.split(' ').collect();
        let secret = secret_bearing_tokens(message, &tokens, &red);
        assert_eq!(secret.len(), 1, "{masked}: {secret:?}");
        assert!(secret[0].starts_with("key=AIza"), "{secret:?}");
        // Sealing with that knowledge hides the token whatever masking left of it.
        let mut known = SecretTokens::default();
        known.extend(&secret);
        let sealed = seal_template_with(&masked, &red, &known);
        assert!(!sealed.contains("AIza"), "{sealed}");
        assert!(
            sealed.starts_with("[KEY-ERR-007] maps request failed with <SEALED:"),
            "{sealed}"
        );
        assert!(
            secret_bearing_tokens("GET /health 200 in 3ms", &["GET", "<PATH>", "<NUM>"], &red)
                .is_empty()
        );
    }

    #[test]
    fn stand_ins_keep_the_flags_and_match_only_their_token() {
        let s = seal_token("AKIAIOSFODNN7EXAMPLE");
        assert!(is_stand_in(&s));
        assert_eq!(
            stand_in_flags(&s),
            Some(token_flags("AKIAIOSFODNN7EXAMPLE"))
        );
        assert!(stand_in_matches(&s, "AKIAIOSFODNN7EXAMPLE"));
        assert!(!stand_in_matches(&s, "AKIAIOSFODNN8EXAMPLE"));
        assert_eq!(seal_token(&s), s);
    }
}
