//! Redaction of secrets and personal data from everything that leaves the process.
//!
//! The [`Redactor`] replaces each detected value with `[REDACTED:<kind>]`. It is applied by the
//! engine (never by individual adapters) to raw log text *before* any masking, templating or
//! truncation, and again to every text that leaves (the digest and prompt given to the runner,
//! every issue title, body and comment given to the tracker). Fingerprints are computed from the
//! original templates, so the redaction configuration never changes a fingerprint.
//!
//! Nothing selfmon *persists* holds a secret in clear either: the model's findings are redacted
//! before they are deduplicated, filed or stored (a model may copy anything it is shown), samples
//! are redacted before they are capped (a cut through a secret would hide it from the redactor),
//! scan error text is redacted, and templates — kept in clear in memory, since fingerprints come
//! from them — are *sealed* wherever they are stored: every token the redactor flags is replaced
//! by a hashed stand-in that the templater and deduplication still match (see
//! `template/seal.rs` and [`crate::template::seal_template`]). Which tokens those are is decided
//! on the raw message, before masking: the templater runs the redactor over each message that
//! founds a template and remembers which tokens held part of a secret, so a key that masking cut
//! into pieces (`key=AIzakZeESG61she-<ID>_<ID>`) is sealed whole although no detector recognises
//! what is left of it.
//!
//! # What is detected
//!
//! Modelled on the rule set and allowlists of gitleaks and the entropy plugins of Yelp's
//! detect-secrets; our own rules:
//!
//! - **Key material**: PEM/OpenSSH/PGP private-key blocks (to the end of the text when unterminated),
//!   age secret keys.
//! - **Cloud providers**: AWS access key ids (`AKIA`, `ASIA`, ...) *and the unkeyed 40-character
//!   secret half that follows one on the same line*, keyed AWS secrets, Google API keys (`AIza`) and
//!   OAuth tokens (`ya29.`, `GOCSPX-`), Azure storage account keys (`AccountKey=`, bare 88-character
//!   keys) and SAS signatures, DigitalOcean (`dop_v1_`), Databricks (`dapi`).
//! - **SaaS APIs**: GitHub (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`, `github_pat_`), GitLab (`glpat-`
//!   and its siblings), PyPI (`pypi-AgE`), npm (`npm_`), Hugging Face (`hf_`), Atlassian (`ATATT3`),
//!   Linear, Postman, Shopify, Doppler, Grafana, New Relic, Slack tokens and webhooks, Discord
//!   webhooks, Telegram bot tokens, Stripe (incl. `whsec_`), SendGrid (`SG.`), Twilio (`SK`/`AC` +
//!   32 hex), Mailgun, Mailchimp, Anthropic (`sk-ant-`), OpenAI (`sk-`, `sk-proj-`, `sk-svcacct-`,
//!   `sk-admin-`), HashiCorp Vault (`hvs.`, `hvb.`, `hvr.`), Pulumi (`pul-`), SonarQube (`squ_`,
//!   `sqp_`, `sqa_`), Linear OAuth (`lin_oauth_`), Sentry (`sntryu_`, `sntrys_`), JFrog
//!   (`AKCp`, reference tokens `cmVmdGtu...`): the formats whose random part is 40 or 64 hex digits
//!   (which read as a hash) or base64 of text (which reads as data) need their prefix.
//! - **Encoded key material and session tokens**: base64 of a PEM private-key block (kubeconfig
//!   `client-key-data`, Kubernetes secrets; decoded to tell it from a certificate), AWS STS
//!   session tokens (`IQoJb3JpZ2lu...`, `FwoGZXIvYXdz...`), longer than a run the entropy
//!   detector judges.
//! - **Generic shapes**: JWTs, `Authorization:` headers (any scheme, opaque tokens included),
//!   `Bearer <token>`, `Basic <base64>`, credentials in URLs (`scheme://user:pass@`; the password
//!   runs to the *last* `@` before the host, as in a hand-typed `app:p@ss@db`), `key=value`,
//!   `key = 'value'` and `"key": "value"` pairs whose key names a secret (password, token, api
//!   key, client secret, secret key, account key, cookie, session id, passcode, encryption,
//!   signing, master, HMAC, license, session, JWT, AES, crypto or cipher key, ...; also after a
//!   closing bracket, as in `os.environ['DB_PASSWORD'] = '...'`, and between backslash-escaped
//!   quotes, as JSON inside a JSON string has them: `{\"password\": \"...\"}`), which covers
//!   connection strings (`Pwd=...;`) and settings files (`SECRET_KEY = '...'`). Percent-encoded
//!   too: `%22password%22%3A%22...%22`, `password%3D...%26`, and URL credentials
//!   `https%3A%2F%2Fuser%3Apw%40host` (the encoded secret bytes are replaced). URL query
//!   parameters named `key`, `sig` or `signature` (`?key=` API keys without a vendor prefix,
//!   `X-Amz-Signature=`); `key=` outside a query (`cache key=users:42`) is kept.
//! - **A UUID named as a credential** (kind `uuid_credential`): a UUID right after a word naming a
//!   credential (`HEROKU_API_KEY 5b12...`, `snyk auth 5b12...`, `token 5b12...`); any other UUID
//!   is an id and is kept.
//! - **Passwords without a `key=`** (kind `password`): command-line flags named for a secret
//!   (`--password PW`, `--db-password=PW`, `--token PW`, `-storepass PW`); the short flags of
//!   commands known to take a password there (`mysql`/`mariadb`/`mysqldump -pPW`, `sshpass -p`,
//!   `redis-cli -a`, `ldapsearch -w`, `sqlcmd -P`, `mongosh -p`, `smbclient -U user%PW`,
//!   `htpasswd -b`, `7z`/`rar -pPW`, `zip -P`, `openssl enc -k`, `ipmitool -P`, `mosquitto_pub -P`,
//!   SNMPv3 `-A`/`-X`, `xfreerdp /p:`, `rdesktop -p`, `lftp -u user,PW`), `curl -u user:PW`, Oracle's
//!   `user/PW@db` (`sqlplus`, `expdp`, `impdp`, `sqlldr`, `rman`, `dgmgrl`, `jdbc:oracle:thin:`);
//!   a value right after the word password, passwd or passphrase (`AUTH failed for password
//!   'PW'`, `with password hunter2`: quoted, or holding a digit, a symbol or an inner capital,
//!   so `password reset email sent` is prose) or after secret or token (8+ characters with
//!   letters and digits, not a lower-case resource name: `secret "db-creds-2" not found` and
//!   `Unexpected token '}'` are kept); Redis and SMTP `AUTH [user] PW` and `AUTH PLAIN <b64>`,
//!   `requirepass`/`masterauth`, LDAP and SSSD `bindpw PW`, `rootpw`, `olcRootPW:`, `ldap_default_authtok`; netrc (`machine host login u password PW`); `pass:PW` and
//!   `db_pass=PW`; XML elements named for a secret (`<password>PW</password>`). A value that
//!   stands in for a password is kept: `********`, `<redacted>`, `$DB_PASSWORD`, `${TOKEN}`, the
//!   next flag (`mysql -p -h db` prompts), a status word (`AUTH ok`, `AUTH failed`), a count of
//!   at most three digits. `-p 8080` is kept: a short flag is a password only after a command
//!   known to take one there.
//! - **High entropy** (see `entropy.rs`): unkeyed base64 runs of 20+ characters and hex runs of 32+
//!   that look random (Shannon entropy and frequent character-class switches), and credentials of
//!   several such pieces joined by `.`, `~`, `$`, `%` or `:` (bot tokens, `dt0c01.<id>.<secret>`,
//!   Azure AD client secrets `xxx8Q~...`, `access_token$production$...`), redacted whole when the
//!   whole or any piece is random, unless they are a
//!   known harmless shape: UUIDs, 40/64/128-digit hex (git SHAs and content hashes, which the
//!   templater masks as `<HASH>`), base64 that decodes to text or starts with a file magic, runs
//!   longer than 256 characters (data), and values keyed as ids or hashes (`request_id=`, `sha256:`,
//!   `commit `, `etag`, ...).
//! - **Personal data**: email addresses (not `git@host:` remotes, nor systemd unit instances such
//!   as `getty@tty1.service`); optionally IP addresses and user ids ([`RedactionConfig`]), plus the
//!   operator's own patterns.
//!
//! Not covered: secrets split across lines other than private-key blocks; low-entropy passwords
//! with neither a key, a flag, a command nor a protocol word that names them (`login bob
//! hunter2`); the short password flags of commands not listed above; a Redis `AUTH user pw`
//! whose password is one lower-case word; a password of letters only right after the word
//! password with no `=`/`:` (`password hunter`: prose has the same shape), and the word `pwd`
//! (a shell command) before a value; `key=` outside a URL query; percent-encoding applied twice
//! (`%253A`) and JSON escaped in base64; FTP `PASS` commands (test runners print `PASS` too);
//! and secrets shaped like a harmless value without a prefix or key that names them (an unkeyed
//! 40-digit hex token reads as a git SHA, an unkeyed UUID as an id, base64 of text as data).
//!
//! Speed: one pass over the text finds the candidates, and only they are examined. The pass probes
//! an 8 KiB table of the first two bytes of the literal triggers (`ghp_`, `AKIA`, `://`,
//! `password`, `@`, ...) and compares the few triggers that start there (`triggers.rs`); the rules
//! whose trigger occurs are armed, so text with no trigger runs no regular expression. The entropy
//! detector reads every 20th byte to find runs of 20 or more word characters, and judges only
//! those that mix character classes. A property test checks that this gives exactly what trying
//! every armed rule and scanning every byte gives.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

#[cfg(test)]
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use regex::{Captures, Regex};
use serde::{Deserialize, Serialize};

use crate::digest::Signature;
use crate::error::{Error, Result};
use crate::model::Finding;

mod entropy;
mod finding;
mod text;
mod triggers;

use triggers::TriggerIndex;

pub use finding::{RedactedFinding, RedactedSignature};
pub use text::RedactedText;

/// What to redact beyond secrets and emails.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedactionConfig {
    /// Also redact IPv4 and IPv6 addresses.
    pub ip_addresses: bool,
    /// Also redact user ids in `user=...`, `user_id: ...`, `username=...` pairs.
    pub user_ids: bool,
    /// Extra regular expressions; every match becomes `[REDACTED:custom]`.
    pub extra_patterns: Vec<String>,
}

impl RedactionConfig {
    /// Problems with the configuration, as `(field, reason)` pairs relative to this struct.
    pub fn problems(&self) -> Vec<(String, String)> {
        self.extra_patterns
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                extra_pattern(p)
                    .err()
                    .map(|reason| (format!("extra_patterns[{i}]"), reason))
            })
            .collect()
    }
}

/// Compiles an extra pattern, refusing one that can match empty text (`""`, `x*`, `a|`): it would
/// "redact" between every two characters, turning a title into kilobytes of placeholders.
fn extra_pattern(pattern: &str) -> std::result::Result<Regex, String> {
    let regex = Regex::new(pattern).map_err(|e| format!("not a valid regular expression: {e}"))?;
    if regex.is_match("") {
        return Err(format!(
            "{} matches empty text, so it would insert a placeholder between every two \
             characters; make it match at least one character (e.g. `+` instead of `*`)",
            crate::text::quoted(pattern)
        ));
    }
    Ok(regex)
}

/// How a rule rewrites a match.
#[derive(Debug, Clone, Copy)]
enum Rewrite {
    /// Replace the whole match.
    Whole,
    /// Keep capture group 1 (a key and separator), replace the rest.
    KeepPrefix,
    /// Keep groups 1 and 2 (scheme and user of a URL), replace the password, keep the `@`.
    UrlPassword,
    /// `Basic <b64>` only when the value looks like base64, not like a word.
    BasicAuth,
    /// An email address, except the `git@host:org/repo` form of a git remote.
    Email,
    /// Keep groups 1 and 3 (the context around a secret), replace group 2.
    Middle,
    /// Replace group 1, keep what the match holds around it (a boundary character).
    Group1,
    /// `AUTH [mechanism|user] password`: replace the password (see `apply`).
    Auth,
    /// Replace the value in capture group `v` (and `v2`, when the rule has a second value) and
    /// keep the rest of the match, unless the value is a stand-in that holds no secret
    /// ([`is_placeholder_value`]: `********`, `<redacted>`, `$DB_PASSWORD`, the next flag, ...).
    Value,
    /// Base64 of a PEM block: replaced when it decodes to a *private* key's header.
    Base64PrivateKey,
    /// A value in capture group `v` after a word naming a secret in group `w`, without `=` or
    /// `:` (`for password 'pw'`, `with password hunter2`): see [`is_named_secret`].
    NamedValue,
}

#[derive(Clone)]
struct Rule {
    kind: &'static str,
    triggers: &'static [&'static str],
    regex: LazyRegex,
    rewrite: Rewrite,
    /// `[REDACTED:<kind>]`, built once.
    placeholder: String,
    /// The rule can only match text holding one of these bytes (empty: no such condition); a
    /// cheap check that spares the regex on text that merely mentions a trigger word.
    needs_byte: &'static [u8],
}

/// A rule's regular expression, compiled the first time a text arms its rule. Compiling every
/// built-in rule costs about 1.2 G instructions (a third of a second), which `selfmon templates`
/// and every scan paid at startup although most rules never run: a rule runs only on text that
/// holds one of its trigger literals. The compiled expression is shared by every redactor built
/// from the same rule set.
#[derive(Clone)]
struct LazyRegex {
    source: String,
    compiled: OnceLock<Option<Regex>>,
}

impl LazyRegex {
    /// Compiled on first use.
    fn new(source: String) -> Self {
        LazyRegex {
            source,
            compiled: OnceLock::new(),
        }
    }

    /// Already compiled (an operator's pattern, checked when the configuration is read).
    fn compiled(regex: Regex) -> Self {
        LazyRegex {
            source: regex.as_str().to_string(),
            compiled: OnceLock::from(Some(regex)),
        }
    }

    /// The compiled expression; `None` if it does not compile, which no built-in pattern does
    /// (`every_builtin_rule_compiles` checks them all), so the rule then matches nothing.
    fn get(&self) -> Option<&Regex> {
        self.compiled
            .get_or_init(|| Regex::new(&self.source).ok())
            .as_ref()
    }
}

/// Finds and replaces secrets. Building one is cheap: each built-in rule is compiled once per
/// process (per combination of optional kinds), the first time a text arms it, and shared; only
/// the operator's extra patterns are compiled per redactor.
#[derive(Clone)]
pub struct Redactor {
    builtin: Arc<RuleSet>,
    /// The operator's patterns; each runs on every text, after the built-in rules.
    custom: Vec<Rule>,
}

/// The built-in rules with the optional kinds one configuration enables, and their trigger scan.
struct RuleSet {
    rules: Vec<Rule>,
    /// For each trigger pattern id, the bit set of rules it arms (for the reference scan).
    #[cfg(test)]
    trigger_masks: Vec<u128>,
    /// The trigger literals, for the one-pass scan of [`RuleSet::armed`].
    triggers: TriggerIndex,
    /// The same literals behind `AhoCorasick`: the reference [`RuleSet::armed`] is tested against.
    #[cfg(test)]
    prefilter: AhoCorasick,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("rules", &(self.builtin.rules.len() + self.custom.len()))
            .finish()
    }
}

const KV_KEYS: &str = r"(?:password|passwd|passphrase|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key(?:[_-]?id)?|credentials?|session[_-]?id|cookie|account[_-]?key|shared[_-]?access[_-]?key|client[_-]?secret|secret[_-]?key|(?:password|passwd|secret)[_-]?(?:value|hash)|app(?:lication)?[_-]?key|authtok|bindpw|rootpw|passcode|(?:encryption|signing|master|hmac|licen[cs]e|session|jwt|aes|crypto|cipher)[_-]?key)";

/// A value after a key, a flag or a command word: quoted (to its closing quote, also between
/// backslash-escaped quotes as in [`ESCAPED_QUOTED`]) or a run of non-space characters without
/// quotes.
const VALUE: &str = r#"(?P<v>\\+"(?:[^"\\\n]|\\+[^"\\\n]){1,256}(?:\\+")?|\\+'(?:[^'\\\n]|\\+[^'\\\n]){1,256}(?:\\+')?|"[^"\n]{1,256}"|'[^'\n]{1,256}'|[^\s"']{1,256})"#;

/// A value between backslash-escaped quotes (JSON inside a JSON string, a `%q` of a body:
/// `\"pw\"`, `\\\"pw\\\"`), to the next escaped quote; the closing one may be cut off.
const ESCAPED_QUOTED: &str =
    r#"\\+"(?:[^"\\\n]|\\+[^"\\\n])*(?:\\+")?|\\+'(?:[^'\\\n]|\\+[^'\\\n])*(?:\\+')?"#;

/// One character of a percent-encoded user name: not `%3A` (`:`), `%40` (`@`) or `%2F` (`/`).
const ENC_USER: &str =
    r#"[^\s/:@%&"'<>\\]|%(?:[0-135-9A-F][0-9A-F]|4[1-9A-F]|2[0-9A-E]|3[0-9B-F])"#;

/// One character of a percent-encoded password: not `%40` (`@`) or `%2F` (`/`).
const ENC_PW: &str = r#"[^\s/@%&"'<>\\]|%(?:[0-135-9A-F][0-9A-F]|4[1-9A-F]|2[0-9A-E])"#;

/// One character of a percent-encoded quoted value: not `%22` or `%27` (the quotes).
const ENC_QUOTED: &str = r#"[^\s%&"'\\]|%(?:[013-9A-F][0-9A-F]|2[013-689A-F])"#;

/// One character of a percent-encoded bare value: not an encoded space, quote, `&`, `,`, `;`,
/// `]` or `}` (what ends a bare value in the keyed rule).
const ENC_BARE: &str = r#"[^\s%&"',;}\]\\]|%(?:[014689A-F][0-9A-F]|2[13-589ABD-F]|3[0-9AC-F]|5[0-9A-CEF]|7[0-9A-CEF])"#;

/// Words that stand where a password would and say something about it instead (`AUTH failed`,
/// `password: ********`, `--password $DB_PASS`): kept. Lower case.
const NOT_A_PASSWORD: &[&str] = &[
    "ok",
    "okay",
    "failed",
    "fail",
    "failure",
    "error",
    "err",
    "required",
    "success",
    "successful",
    "succeeded",
    "denied",
    "invalid",
    "incorrect",
    "wrong",
    "expired",
    "missing",
    "empty",
    "none",
    "null",
    "nil",
    "redacted",
    "hidden",
    "masked",
    "unset",
    "set",
    "true",
    "false",
    "yes",
    "no",
    "prompt",
    "accepted",
    "rejected",
    "mismatch",
    "changed",
    "reset",
    "login",
    "plain",
    "cram-md5",
    "digest-md5",
    "xoauth2",
    "oauthbearer",
    "gssapi",
    "ntlm",
    "external",
    "anonymous",
    "mechanisms",
    "(none)",
    "(hidden)",
    "(redacted)",
    "(empty)",
    "not",
    "is",
    "for",
    "was",
    "with",
];

/// SASL mechanism names that follow `AUTH` (SMTP, IMAP, Redis' is a password instead). Lower case.
const SASL_MECHANISMS: &[&str] = &[
    "plain",
    "login",
    "cram-md5",
    "digest-md5",
    "xoauth2",
    "oauthbearer",
    "gssapi",
    "ntlm",
    "external",
    "anonymous",
    "scram-sha-1",
    "scram-sha-256",
];

/// Whether `value` (after a key, flag or command word) is a stand-in rather than a secret:
/// empty, already redacted, a mask of `*`/`x`/`•`, a `<placeholder>`, a template or variable
/// reference (`${X}`, `$X`, `%X%`, `{{x}}`), a shell redirection, a number of at most three
/// digits, or a status word.
fn is_placeholder_value(value: &str) -> bool {
    let v = value.trim_matches(['"', '\'', '\\']).trim();
    if v.is_empty() || v.starts_with("[REDACTED") || v.bytes().all(|c| b"<>|&;".contains(&c)) {
        return true;
    }
    if v.chars()
        .all(|c| matches!(c, '*' | 'x' | 'X' | '\u{2022}' | '#' | '.' | '?'))
    {
        return true;
    }
    let b = v.as_bytes();
    // A count (`first pass: 3 of 7`), not a password.
    if b.len() <= 3 && b.iter().all(u8::is_ascii_digit) {
        return true;
    }
    let bracketed = |open: u8, close: u8| b[0] == open && b[b.len() - 1] == close;
    if bracketed(b'<', b'>') || bracketed(b'{', b'}') || (bracketed(b'%', b'%') && b.len() > 2) {
        return true;
    }
    if let Some(name) = v.strip_prefix('$') {
        let name = name.trim_start_matches(['{', '(']);
        if name
            .bytes()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        {
            return true;
        }
    }
    let lower = v
        .trim_end_matches(['.', ',', ';', ':', ')'])
        .to_ascii_lowercase();
    NOT_A_PASSWORD.contains(&lower.as_str())
}

/// Whether `value`, right after the word `word` (password, passwd, passphrase, secret, token)
/// with no `=` or `:` between them, is the secret the word names rather than prose.
///
/// After a password word a quoted value is one (`AUTH failed for password 'pw'`), and a bare
/// one when it holds a digit, a symbol or an upper-case letter after a lower-case one (`with
/// password hunter2`); a word of letters is prose (`password reset email sent`, `password
/// authentication failed`). `secret` and `token` name objects and parser tokens as often as
/// credentials (Kubernetes' `secret "db-creds" not found`, `Unexpected token '}'`,
/// `token expired`): their value must be 8 or more characters with letters and digits, and not
/// a lower-case resource name of `-`/`.`-joined words.
fn is_named_secret(word: &str, value: &str) -> bool {
    if value.starts_with('-') || is_placeholder_value(value) {
        return false;
    }
    let quoted = value.starts_with(['"', '\'']);
    let v = value.trim_matches(['"', '\'']);
    if word.eq_ignore_ascii_case("secret") || word.eq_ignore_ascii_case("token") {
        let resource_name = v
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && v.bytes().any(|b| b == b'-' || b == b'.');
        return v.chars().count() >= 8
            && v.bytes().any(|b| b.is_ascii_digit())
            && v.bytes().any(|b| b.is_ascii_alphabetic())
            && !resource_name;
    }
    if quoted {
        return true;
    }
    let b = v.as_bytes();
    b.iter().any(|c| !c.is_ascii_alphabetic())
        || b.windows(2)
            .any(|w| w[0].is_ascii_lowercase() && w[1].is_ascii_uppercase())
}

/// AWS access key id prefixes (gitleaks `aws-access-token`).
const AWS_PREFIXES: &[&str] = &[
    "AKIA", "ASIA", "ABIA", "ACCA", "A3T", "AGPA", "AIDA", "AROA", "ANPA", "ANVA", "AIPA",
];

type Spec = (&'static str, &'static [&'static str], String, Rewrite);

/// The built-in rules, in the order they run. A rule whose match contains another rule's trigger
/// runs first (the AWS pair before the bare access key, `sk-ant-` before `sk-`), so the more
/// specific kind names the placeholder.
fn builtin() -> Vec<Spec> {
    vec![
        // Key material.
        ("private_key", &["-----BEGIN"], r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----(?s:.*?)(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\z)".into(), Rewrite::Whole),
        ("private_key", &["AGE-SECRET-KEY-1"], r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}".into(), Rewrite::Whole),
        // Cloud providers. The AWS secret half is an unkeyed 40-character base64 run that follows
        // an access key id on the same line; it goes first, while the id still marks it.
        ("aws_secret_key", AWS_PREFIXES, r"(\b(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9]|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b[^\n]{0,120}?[^A-Za-z0-9/+\n])([A-Za-z0-9/+]{40})([^A-Za-z0-9/+=]|\z)".into(), Rewrite::Middle),
        ("aws_access_key", AWS_PREFIXES, r"\b(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9]|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b".into(), Rewrite::Whole),
        ("aws_secret_key", &["aws_secret", "secret_access_key", "aws secret", "AWS_SECRET", "SECRET_ACCESS_KEY", "SecretAccessKey"], r#"(?i)((?:aws_?)?secret_?access_?key|aws_?secret(?:_?key)?|aws secret(?: access)? key)(["']?\s*[=:]\s*["']?|\s+)[A-Za-z0-9/+=]{40}"#.into(), Rewrite::KeepPrefix),
        ("google_api_key", &["AIza"], r"\bAIza[0-9A-Za-z_-]{35}".into(), Rewrite::Whole),
        ("google_oauth", &["ya29.", "GOCSPX-", "1//0"], r"\b(?:ya29\.[0-9A-Za-z_-]{20,}|GOCSPX-[0-9A-Za-z_-]{28}|1//0[0-9A-Za-z_-]{40,})".into(), Rewrite::Whole),
        ("azure_storage_key", &["AccountKey=", "accountkey=", "SharedAccessKey=", "sharedaccesskey="], r"(?i)(\b(?:AccountKey|SharedAccessKey)\s*=\s*)[A-Za-z0-9+/]{20,}={0,2}".into(), Rewrite::KeepPrefix),
        ("azure_sas", &["sig="], r"([?&]sig=)[A-Za-z0-9%+/=]{20,}".into(), Rewrite::KeepPrefix),
        // A URL query parameter named `key`, `sig` or `signature` (`?key=` API keys without a
        // vendor prefix, `&X-Amz-Signature=`); `key=` elsewhere (`cache key=users:42`) is kept.
        // `api_key=`, `access_token=`, `token=` are the keyed rule's.
        ("secret", &["?key=", "&key=", "?Key=", "&Key=", "?KEY=", "&KEY=", "sig=", "ignature=", "IGNATURE="],
            r#"(?i)([?&](?:[a-z0-9]+-)*(?:key|sig|signature)=)(?P<v>[^\s&#"'<>\\]{1,512})"#.into(), Rewrite::Value),
        ("azure_storage_key", &["=="], r"(?:^|[^A-Za-z0-9+/])([A-Za-z0-9+/]{86}==)(?:[^A-Za-z0-9+/=]|\z)".into(), Rewrite::Group1),
        ("digitalocean_token", &["dop_v1_", "doo_v1_", "dor_v1_"], r"\bdo[opr]_v1_[a-f0-9]{64}".into(), Rewrite::Whole),
        ("databricks_token", &["dapi"], r"\bdapi[a-f0-9]{32}(?:-\d)?\b".into(), Rewrite::Whole),
        // Source hosting and package registries.
        ("github_token", &["ghp_", "gho_", "ghu_", "ghs_", "ghr_"], r"\bgh[pousr]_[A-Za-z0-9]{20,255}".into(), Rewrite::Whole),
        ("github_token", &["github_pat_"], r"\bgithub_pat_[A-Za-z0-9_]{20,255}".into(), Rewrite::Whole),
        ("gitlab_token", &["glpat-", "gldt-", "glrt-", "glptt-", "glsoat-", "glcbt-", "gloas-", "glimt-", "glagent-", "GR1348941"], r"\b(?:gl(?:pat|dt|rt|ptt|soat|cbt|oas|imt|agent)-[0-9A-Za-z_-]{20,}|GR1348941[0-9A-Za-z_-]{20,})".into(), Rewrite::Whole),
        ("pypi_token", &["pypi-"], r"\bpypi-AgE[A-Za-z0-9_-]{50,}".into(), Rewrite::Whole),
        ("npm_token", &["npm_"], r"\bnpm_[A-Za-z0-9]{36}\b".into(), Rewrite::Whole),
        ("huggingface_token", &["hf_"], r"\bhf_[A-Za-z0-9]{34,}\b".into(), Rewrite::Whole),
        ("atlassian_token", &["ATATT3", "ATCTT3"], r"\bAT[AC]TT3[A-Za-z0-9_=-]{40,}".into(), Rewrite::Whole),
        ("linear_key", &["lin_api_"], r"\blin_api_[A-Za-z0-9]{40}\b".into(), Rewrite::Whole),
        ("postman_key", &["PMAK-"], r"\bPMAK-[a-fA-F0-9]{24}-[a-fA-F0-9]{34}\b".into(), Rewrite::Whole),
        ("shopify_token", &["shpat_", "shpca_", "shppa_", "shpss_"], r"\bshp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}\b".into(), Rewrite::Whole),
        ("doppler_token", &["dp.pt.", "dp.st.", "dp.sa.", "dp.ct."], r"\bdp\.(?:pt|st|sa|ct)\.[A-Za-z0-9]{40,}".into(), Rewrite::Whole),
        ("grafana_token", &["glc_", "glsa_"], r"\b(?:glc_[A-Za-z0-9+/]{32,}={0,2}|glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8})".into(), Rewrite::Whole),
        ("newrelic_key", &["NRAK-", "NRII-", "NRJS-"], r"\bNR(?:AK|II|JS)-[A-Za-z0-9]{19,32}\b".into(), Rewrite::Whole),
        // Tokens whose random part is 40 or 64 hex digits (the entropy detector takes those for a
        // git SHA or a content hash, so only the prefix can tell): Pulumi, SonarQube, Linear
        // OAuth, Sentry user tokens; Sentry org tokens (`sntrys_` + base64 JSON).
        ("pulumi_token", &["pul-"], r"\bpul-[a-f0-9]{40}\b".into(), Rewrite::Whole),
        ("sonarqube_token", &["squ_", "sqp_", "sqa_"], r"\bsq[upa]_[a-f0-9]{40}\b".into(), Rewrite::Whole),
        ("linear_key", &["lin_oauth_"], r"\blin_oauth_[a-f0-9]{64}\b".into(), Rewrite::Whole),
        ("sentry_token", &["sntryu_", "sntrys_"], r"\b(?:sntryu_[a-f0-9]{64}\b|sntrys_[A-Za-z0-9+/=_-]{40,})".into(), Rewrite::Whole),
        // Tokens that are base64 of text, which the entropy detector takes for data: JFrog
        // reference tokens (`reftkn:...`), AWS STS session tokens (longer than a secret run is
        // judged), and base64 of a PEM private-key block (kubeconfig `client-key-data`, Kubernetes
        // secrets): decoded to check that it is a *private* key (a certificate is kept).
        ("artifactory_token", &["cmVmdGtu", "AKCp"], r"\b(?:cmVmdGtu[A-Za-z0-9+/]{40,}={0,2}|AKCp[A-Za-z0-9]{69})".into(), Rewrite::Whole),
        ("aws_session_token", &["IQoJb3JpZ2lu", "FwoGZXIvYXdz", "FQoGZXIvYXdz"], r"\b(?:IQoJb3JpZ2lu|FwoGZXIvYXdz|FQoGZXIvYXdz)[A-Za-z0-9+/]{40,}={0,2}".into(), Rewrite::Whole),
        ("private_key", &["LS0tLS1CRUdJTi"], r"LS0tLS1CRUdJTi[A-Za-z0-9+/]{16,}={0,2}".into(), Rewrite::Base64PrivateKey),
        // A UUID is a harmless shape, except where a word naming a credential stands right before
        // it (`HEROKU_API_KEY 5b12...`, `snyk auth 5b12...`); `key=uuid` is the keyed rule's.
        ("uuid_credential", &["key", "Key", "KEY", "token", "Token", "TOKEN", "secret", "Secret", "SECRET", "auth", "Auth", "AUTH", "password", "Password", "PASSWORD", "credential", "Credential", "CREDENTIAL"],
            r#"(?i)(?:\b|_)(?:api[_-]?key|apikey|key|token|secret|password|passwd|auth|credentials?)["']?[ \t]+["']?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b"#.into(), Rewrite::Group1),
        // Messaging, payments, mail.
        ("slack_webhook", &["hooks.slack.com"], r"https?://hooks\.slack\.com/[A-Za-z0-9/_-]+".into(), Rewrite::Whole),
        ("slack_token", &["xox", "xapp-"], r"\b(?:xox[abposre]-[A-Za-z0-9-]{10,}|xapp-\d-[A-Za-z0-9-]{10,})".into(), Rewrite::Whole),
        ("discord_webhook", &["/api/webhooks/"], r"https?://(?:[a-z]+\.)?discord(?:app)?\.com/api/webhooks/\d+/[A-Za-z0-9_-]+".into(), Rewrite::Whole),
        ("telegram_token", &[":AA"], r"\b\d{8,10}:AA[0-9A-Za-z_-]{33}\b".into(), Rewrite::Whole),
        ("stripe_key", &["sk_live", "sk_test", "rk_live", "rk_test", "pk_live", "pk_test", "whsec_"], r"\b(?:[spr]k_(?:live|test)_[A-Za-z0-9]{10,}|whsec_[A-Za-z0-9]{20,})".into(), Rewrite::Whole),
        ("sendgrid_key", &["SG."], r"\bSG\.[A-Za-z0-9_-]{16,32}\.[A-Za-z0-9_-]{16,64}".into(), Rewrite::Whole),
        ("twilio_key", &["SK", "AC"], r"\b(?:SK|AC)[0-9a-f]{32}\b".into(), Rewrite::Whole),
        ("mailgun_key", &["key-"], r"\bkey-[0-9a-f]{32}\b".into(), Rewrite::Whole),
        ("mailchimp_key", &["-us"], r"\b[0-9a-f]{32}-us\d{1,2}\b".into(), Rewrite::Whole),
        // Model APIs. Anthropic first: its keys also start with `sk-`.
        ("anthropic_key", &["sk-ant-"], r"\bsk-ant-[A-Za-z0-9_-]{16,}".into(), Rewrite::Whole),
        ("openai_key", &["sk-"], r"\bsk-(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_-]{20,}".into(), Rewrite::Whole),
        // Secret stores.
        ("vault_token", &["hvs.", "hvb.", "hvr."], r"\bhv[sbr]\.[A-Za-z0-9_-]{24,}".into(), Rewrite::Whole),
        // Generic shapes.
        ("jwt", &["eyJ"], r"\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*".into(), Rewrite::Whole),
        ("authorization", &["authorization", "Authorization", "AUTHORIZATION"], r#"(?i)(authorization["']?\s*[:=]\s*["']?)(?:(?:bearer|basic|token|digest|negotiate|apikey|sso-key)\s+)?[^\s"',;]+"#.into(), Rewrite::KeepPrefix),
        ("authorization", &["bearer", "Bearer", "BEARER"], r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/-]{8,}=*".into(), Rewrite::KeepPrefix),
        ("authorization", &["Basic "], r"(\bBasic\s+)([A-Za-z0-9+/]{8,}={0,2})".into(), Rewrite::BasicAuth),
        // The password runs to the *last* `@` before the host (`app:p@ss@db`: a hand-typed DSN
        // need not encode it); an `@` after a quote, `<`, `>`, `,`, `;` or a backslash belongs
        // to the text after the URL (`"redis://:pw@cache","to":"bob@x.org"`).
        ("url_password", &["://"], r#"([A-Za-z][A-Za-z0-9+.-]{0,30}://)([^\s/:]{0,256}):([^\s/@]{1,256}(?:@[^\s/@"'<>,;\\]{1,256})*)@"#.into(), Rewrite::UrlPassword),
        // The same in a percent-encoded URL (a `next=`/`redirect_uri=` parameter):
        // `https%3A%2F%2Fuser%3Apw%40host`. The encoded `@` is kept, the password replaced.
        ("url_password", &["%3A%2F%2F", "%3a%2f%2f"], format!(r"(?i)(\b[a-z][a-z0-9+.-]{{0,30}}%3A%2F%2F(?:{ENC_USER}){{0,256}}%3A)((?:{ENC_PW}){{1,256}}(?:%40(?:{ENC_PW}){{1,256}})*)(%40)"), Rewrite::Middle),
        // Passwords on command lines, in protocol commands and in config shapes, without a
        // `key=` (detect-secrets' keyword plugin and gitleaks' generic rules decide by a keyword
        // before the value; here the keyword is the command that is known to take a password
        // after that flag, so `-p 8080` elsewhere stays).
        ("password", &["mysql", "iadb"], format!(r"\b(?:mysql|mariadb|mysqldump|mysqladmin|mysqlimport|mysqlcheck|mysqlshow|mysqlpump|mysqlsh|mariadb-dump)\b[^\n|;&]{{0,300}}?[ \t]-p{VALUE}"), Rewrite::Value),
        ("password", &["hpass"], format!(r"\bsshpass\b[^\n|;&]{{0,100}}?[ \t]-p[ \t]*{VALUE}"), Rewrite::Value),
        ("password", &["s-cli"], format!(r"\bredis-cli\b[^\n|;&]{{0,300}}?[ \t](?:-a|--pass)[ \t]+{VALUE}"), Rewrite::Value),
        ("password", &["dap"], format!(r"\bldap(?:search|modify|add|delete|whoami|passwd|compare|modrdn|exop)\b[^\n|;&]{{0,300}}?[ \t]-w[ \t]*{VALUE}"), Rewrite::Value),
        ("password", &["lcmd", "bcp "], format!(r"\b(?:sqlcmd\b|bcp )[^\n|;&]{{0,300}}?[ \t]-P[ \t]*{VALUE}"), Rewrite::Value),
        ("password", &["mongo"], format!(r"\bmongo(?:sh|dump|restore|export|import|stat|top|files)?\b[^\n|;&]{{0,300}}?[ \t]-p[ \t]+{VALUE}"), Rewrite::Value),
        ("password", &["smb", "rpcc", "mount.cifs"], format!(r"\b(?:smbclient|rpcclient|smbmap|mount\.cifs)\b[^\n|;&]{{0,300}}?[ \t](?:-U|--user(?:name)?)[ \t=]*[^\s%]{{1,64}}%{VALUE}"), Rewrite::Value),
        ("password", &["passwd"], format!(r"\bhtpasswd\b[^\n|;&]{{0,100}}?[ \t]-[A-Za-z]*b[A-Za-z]*[ \t]+\S+[ \t]+\S+[ \t]+{VALUE}"), Rewrite::Value),
        // `curl -u user:password`: the part after the first colon.
        ("password", &["-u", "-U"], format!(r#"\bcurl\b[^\n|;&]{{0,300}}?[ \t](?:-u|--user|-U|--proxy-user)(?:[ \t]+|=)?["']?[^\s:"'@]{{1,64}}:{VALUE}"#), Rewrite::Value),
        // More commands that take a password in a short flag or a positional shape: archivers
        // (`7z -pPW`, `rar -pPW`, `zip -P PW`), `openssl enc -k PW`, BMC and MQTT clients
        // (`ipmitool -P PW`, `mosquitto_pub -P PW`), SNMPv3 (`-A PW`, `-X PW`: both), RDP
        // clients (`xfreerdp /p:PW`, `rdesktop -p PW`), `lftp -u user,PW`, and Oracle tools'
        // `user/PW@db` (`sqlplus`, `expdp`, `impdp`, `sqlldr`, `rman`, `dgmgrl`, and JDBC thin URLs).
        ("password", &["7z", "rar "], format!(r"\b(?:7z|7za|7zr|7zz|rar|unrar)\b[^\n|;&]{{0,300}}?[ \t]-p{VALUE}"), Rewrite::Value),
        ("password", &["zip "], format!(r"\b(?:zip|unzip|zipcloak)\b[^\n|;&]{{0,300}}?[ \t]-P[ \t]+{VALUE}"), Rewrite::Value),
        ("password", &["openssl"], format!(r"\bopenssl\b[^\n|;&]{{0,300}}?[ \t]-k[ \t]+{VALUE}"), Rewrite::Value),
        ("password", &["ipmi", "mosquitto_"], format!(r"\b(?:ipmitool|ipmiutil|mosquitto_(?:pub|sub|rr))\b[^\n|;&]{{0,300}}?[ \t]-P[ \t]*{VALUE}"), Rewrite::Value),
        ("password", &["snmp"], format!(r#"\bsnmp[a-z]*\b[^\n|;&]{{0,300}}?[ \t]-[AX][ \t]*{VALUE}(?:[^\n|;&]{{0,300}}?[ \t]-[AX][ \t]*(?P<v2>"[^"\n]{{1,256}}"|'[^'\n]{{1,256}}'|[^\s"']{{1,256}}))?"#), Rewrite::Value),
        ("password", &["freerdp", "rdesktop"], format!(r"(?:\b[a-z]*freerdp3?\b[^\n|;&]{{0,300}}?[ \t]/p(?:assword)?:|\brdesktop\b[^\n|;&]{{0,300}}?[ \t]-p[ \t]*){VALUE}"), Rewrite::Value),
        ("password", &["lftp"], r#"\blftp\b[^\n|;&]{0,300}?[ \t]-u[ \t]+[^\s,"']{1,64},(?P<v>[^\s"']{1,256})"#.into(), Rewrite::Value),
        ("password", &["sqlplus", "sqlldr", "expdp", "impdp", "rman", "dgmgrl", "jdbc:oracle"], r#"(?:\b(?:sqlplus|sqlldr|expdp|impdp|rman|dgmgrl)\b[^\n|;&]{0,100}?[ \t](?:(?:-[A-Za-z]+|target=|userid=)[ \t]*)?["']?|jdbc:oracle:[a-z]+:)[A-Za-z0-9_$#]{1,30}/(?P<v>[^\s@/"']{1,128})"#.into(), Rewrite::Value),
        // `--password PW`, `--db-password=PW`, `-storepass PW`; not `--password-file /x`.
        ("password", &["password", "Password", "PASSWORD", "passwd", "passphrase", "pass ", "pass\t", "pass=", "pass:", "Pass ", "PASS ", "pwd", "Pwd", "PWD", "secret", "Secret", "SECRET", "token", "Token", "TOKEN", "api-key", "apikey", "apiKey", "ApiKey", "API-KEY", "APIKEY", "access-key", "accesskey", "accessKey", "pass :"],
            format!(r#"(?i)(?:^|[\s"'(\[=])--?(?:[a-z0-9]+[-_.])*(?:password|passwd|passphrase|pass|pwd|secret|token|api-?key|apikey|access-?key|secret-?key|client-?secret|auth-?token|(?:src|dest)?(?:store|key)pass)(?:[ \t]+|=|[ \t]*:[ \t]*){VALUE}"#), Rewrite::Value),
        // Redis and SMTP `AUTH [user] password` (not `AUTH ok`, `AUTH failed`, `AUTH LOGIN`).
        ("password", &["AUTH "], r#"\bAUTH[ \t]+(?P<a>[^\s"']{1,256})(?:[ \t]+(?P<b>[^\s"']{1,256}))?"#.into(), Rewrite::Auth),
        ("password", &["uirepass", "auth", "bindpw", "rootpw", "RootPW", "ROOTPW", "authtok"], format!(r"(?i)\b(?:requirepass|masterauth|bindpw|(?:olc)?rootpw|(?:ldap_default_)?authtok)\b[ \t]*[=:]?[ \t]+{VALUE}"), Rewrite::Value),
        // netrc: `machine host login user password PW`.
        ("password", &["password"], format!(r"\b(?:machine[ \t]+\S+|default)[ \t]+login[ \t]+\S+[ \t]+password[ \t]+{VALUE}"), Rewrite::Value),
        // XML elements named for a secret: `<password>PW</password>`, `<db:apiKey>...</db:apiKey>`.
        ("password", &["</"],
            r"(?i)<(?:[A-Za-z0-9_.-]*:)?[A-Za-z0-9_.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|secret[_-]?key|client[_-]?secret|private[_-]?key|credentials?|passphrase)(?:[ \t][^>\n]{0,200})?>[ \t]*(?P<v>[^<\s]{1,512})[ \t]*</".into(), Rewrite::Value),
        // `pass:PW`, `db_pass=PW` (not `bypass=1`, nor `--- PASS: TestX` of a test run).
        ("password", &["pass:", "pass=", "pass :", "pass =", "Pass:", "Pass=", "PASS=", "PASS:", "pass\":", "pass':", "Pass\"", "Pass'", "Pass\\", "pass\\"],
            format!(r#"\b(?:[A-Za-z0-9]+(?:[_.-](?:pass|Pass|PASS)|Pass)|pass|Pass)(?:\\*["'])?[ \t]*[=:][ \t]*{VALUE}"#), Rewrite::Value),
        ("secret", &["password", "passwd", "passphrase", "pwd", "secret", "token", "api_key", "api-key", "apikey", "access_key", "access-key", "private_key", "private-key", "credential", "session_id", "session-id", "sessionid", "cookie", "PASSWORD", "Password", "PWD", "Pwd", "SECRET", "Secret", "TOKEN", "Token", "API_KEY", "ApiKey", "Api-Key", "AccountKey", "accountkey", "account_key", "ClientSecret", "app_key", "app-key", "APP_KEY", "APP-KEY", "AppKey", "appKey", "application_key", "application-key", "APPLICATION_KEY", "APPLICATION-KEY", "Application-Key", "authtok", "bindpw", "rootpw", "RootPW", "ROOTPW",
            "passcode", "Passcode", "PASSCODE", "ncryptionKey", "ncryption_key", "ncryption-key", "NCRYPTION_KEY", "igningKey", "igning_key", "igning-key", "IGNING_KEY",
            "asterKey", "aster_key", "aster-key", "ASTER_KEY", "hmacKey", "HmacKey", "HMACKey", "hmac_key", "hmac-key", "HMAC_KEY", "icenseKey", "icense_key", "icense-key", "ICENSE_KEY",
            "icenceKey", "icence_key", "ICENCE_KEY", "essionKey", "ession_key", "ESSION_KEY", "jwtKey", "JwtKey", "jwt_key", "JWT_KEY", "aesKey", "AesKey", "aes_key", "AES_KEY",
            "cryptoKey", "CryptoKey", "crypto_key", "CRYPTO_KEY", "cipherKey", "CipherKey", "cipher_key", "CIPHER_KEY"],
            format!(r#"(?i)(\b[A-Za-z0-9_.-]*{KV_KEYS}(?:\\*["'])?\]?(?:\\*["'])?\s*[=:]\s*)({ESCAPED_QUOTED}|"[^"]*"|'[^']*'|[^\s,;&"'}}\]]+)"#), Rewrite::KeepPrefix),
        // The keyed rule on percent-encoded text (`state=%7B%22password%22%3A%22pw%22%7D`,
        // `next=%2Flogin%3Fpassword%3Dpw%26x%3D1`): encoded quotes, `:` and `=`.
        ("secret", &["%3A", "%3a", "%3D", "%3d"],
            format!(r#"(?i)(\b[A-Za-z0-9_.-]*{KV_KEYS}(?:%2[27])?(?:%5D)?(?:%2[27])?(?:%20|\+)*%3[AD](?:%20|\+)*)(%2[27](?:{ENC_QUOTED})*(?:%2[27])?|(?:{ENC_BARE})+)"#), Rewrite::KeepPrefix),
        // A password named by a word before it without `=` or `:` (`AUTH failed for password
        // 'pw'`, `... with password hunter2`); see `Rewrite::NamedValue` for which values count.
        ("password", &["password", "Password", "PASSWORD", "passwd", "Passwd", "passphrase", "Passphrase", "secret", "Secret", "SECRET", "token", "Token", "TOKEN"],
            r#"(?i)\b(?P<w>password|passwd|passphrase|secret|token)[ \t]+(?P<v>'[^'\n]{1,256}'|"[^"\n]{1,256}"|[^\s"'=:,;(\[{<\\][^\s"',;\\]{0,255})"#.into(), Rewrite::NamedValue),
        ("email", &["@"], r"\b[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}\b".into(), Rewrite::Email),
    ]
}

impl RuleSet {
    /// The rules whose trigger literals occur in `text`, as a bit set (bit `i` is `rules[i]`).
    fn armed(&self, text: &str) -> u128 {
        self.triggers.armed(text)
    }

    /// [`armed`](Self::armed) through `AhoCorasick`'s overlapping search: the reference.
    #[cfg(test)]
    fn armed_unfiltered(&self, text: &str) -> u128 {
        let mut armed: u128 = 0;
        for m in self.prefilter.find_overlapping_iter(text) {
            armed |= self.trigger_masks[m.pattern().as_usize()];
        }
        armed
    }

    /// The built-in rules plus the optional kinds asked for, compiled on first use and then shared:
    /// compiling them is most of a redactor's cost (tens of milliseconds in a debug build), and the
    /// engine builds a redactor for every scan.
    fn shared(ip_addresses: bool, user_ids: bool) -> Result<Arc<RuleSet>> {
        static SETS: [OnceLock<Arc<RuleSet>>; 4] = [const { OnceLock::new() }; 4];
        let slot = &SETS[usize::from(ip_addresses) | (usize::from(user_ids) << 1)];
        if let Some(set) = slot.get() {
            return Ok(set.clone());
        }
        let set = Arc::new(RuleSet::compile(ip_addresses, user_ids)?);
        // A racing thread may have set it first; either copy is the same rules.
        Ok(slot.get_or_init(|| set).clone())
    }

    fn compile(ip_addresses: bool, user_ids: bool) -> Result<RuleSet> {
        let mut specs = builtin();
        if ip_addresses {
            specs.push((
                "ip_address",
                &["."],
                r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b".into(),
                Rewrite::Whole,
            ));
            specs.push((
                "ip_address",
                &["::"],
                r"(?i)\b(?:[0-9a-f]{1,4}:){1,7}:?(?::?[0-9a-f]{1,4}){1,7}\b".into(),
                Rewrite::Whole,
            ));
        }
        if user_ids {
            specs.push(("user_id", &["user", "User", "USER"], r#"(?i)(\b(?:user(?:_?id|_?name)?|uid|login)["']?\s*[=:]\s*["']?)[A-Za-z0-9_.@+-]+"#.into(), Rewrite::KeepPrefix));
        }
        if specs.len() > 128 {
            return Err(Error::config(
                "redaction",
                "too many built-in rules for the trigger bit set",
            ));
        }
        let mut rules = Vec::new();
        let mut patterns: Vec<String> = Vec::new();
        let mut trigger_rules: Vec<Vec<usize>> = Vec::new();
        for (kind, triggers, re, rewrite) in specs {
            let regex = LazyRegex::new(re);
            let idx = rules.len();
            for t in triggers {
                match patterns.iter().position(|p| p == t) {
                    Some(p) => trigger_rules[p].push(idx),
                    None => {
                        patterns.push((*t).to_string());
                        trigger_rules.push(vec![idx]);
                    }
                }
            }
            // Keyed rules need their `=`/`:` separator.
            let needs_byte: &'static [u8] = match (kind, rewrite) {
                // The percent-encoded twin: its triggers are the encoded separators.
                ("secret", _) if triggers.iter().all(|t| t.starts_with('%')) => b"",
                ("secret" | "user_id", _) => b"=:",
                // A UUID has dashes; most texts that say `token` or `key` have none.
                ("uuid_credential", _) => b"-",
                _ => b"",
            };
            rules.push(Rule {
                kind,
                triggers,
                regex,
                rewrite,
                placeholder: format!("[REDACTED:{kind}]"),
                needs_byte,
            });
        }
        #[cfg(test)]
        let prefilter = AhoCorasickBuilder::new()
            .ascii_case_insensitive(false)
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&patterns)
            .map_err(|e| Error::config("redaction", e.to_string()))?;
        let trigger_masks: Vec<u128> = trigger_rules
            .iter()
            .map(|rs| rs.iter().fold(0u128, |m, &r| m | (1u128 << r)))
            .collect();
        let triggers = TriggerIndex::new(
            &patterns
                .iter()
                .cloned()
                .zip(trigger_masks.iter().copied())
                .collect::<Vec<_>>(),
        );
        Ok(RuleSet {
            rules,
            #[cfg(test)]
            trigger_masks,
            triggers,
            #[cfg(test)]
            prefilter,
        })
    }
}

impl Redactor {
    /// The default redactor: secrets and emails.
    pub fn new() -> Self {
        Self::build(&RedactionConfig::default()).unwrap_or_else(|e| {
            // The built-in patterns are constants compiled by every test run; this cannot fail.
            unreachable!("built-in redaction patterns are invalid: {e}")
        })
    }

    /// The default redactor, built once per process (for paths without a configuration, such as
    /// error construction).
    pub fn shared() -> &'static Redactor {
        static SHARED: std::sync::OnceLock<Redactor> = std::sync::OnceLock::new();
        SHARED.get_or_init(Redactor::new)
    }

    /// A redactor with the optional kinds and extra patterns of `config`.
    pub fn with_config(config: &RedactionConfig) -> Result<Self> {
        Self::build(config)
    }

    fn build(config: &RedactionConfig) -> Result<Self> {
        let mut custom = Vec::new();
        for (i, p) in config.extra_patterns.iter().enumerate() {
            let regex = extra_pattern(p).map_err(|reason| {
                Error::config(format!("redaction.extra_patterns[{i}]"), reason)
            })?;
            custom.push(Rule {
                kind: "custom",
                triggers: &[],
                regex: LazyRegex::compiled(regex),
                rewrite: Rewrite::Whole,
                placeholder: "[REDACTED:custom]".to_string(),
                needs_byte: b"",
            });
        }
        Ok(Redactor {
            builtin: RuleSet::shared(config.ip_addresses, config.user_ids)?,
            custom,
        })
    }

    /// `text` with every detected secret replaced; borrowed when nothing was found.
    ///
    /// One pass over the text finds the candidates: the trigger literals, which arm the rules
    /// that can match (text with no trigger runs no regular expression), and the runs long enough
    /// for the entropy detector (see `entropy::spans`). Only those are examined further.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let set = &*self.builtin;
        let mut out: Cow<'a, str> = Cow::Borrowed(text);
        // Which rules the triggers arm, as a bit set (at most 128 built-in rules), visited in
        // rule order.
        let mut armed = set.armed(text);
        while armed != 0 {
            let i = armed.trailing_zeros() as usize;
            armed &= armed - 1;
            self.apply_rule(&set.rules[i], &mut out);
        }
        for rule in &self.custom {
            self.apply_rule(rule, &mut out);
        }
        self.redact_high_entropy(out)
    }

    /// `rule` applied to `out`, unless the rule needs a byte the text lacks.
    fn apply_rule<'a>(&self, rule: &Rule, out: &mut Cow<'a, str>) {
        if !rule.needs_byte.is_empty() && !has_any_byte(out.as_bytes(), rule.needs_byte) {
            return;
        }
        // Cheaper than the capturing search `apply` runs, and most armed rules match nothing
        // (`input_tokens: 12` arms the keyed rule).
        if !rule.regex.get().is_some_and(|r| r.is_match(out)) {
            return;
        }
        if let Cow::Owned(s) = apply(rule, out) {
            *out = Cow::Owned(s);
        }
    }

    /// The redactor as it was before its single-pass prefilter: every rule armed by a trigger
    /// tried in turn, and the entropy detector's plain byte-by-byte scan. Kept as the reference
    /// the property test compares [`redact`](Self::redact) with.
    #[cfg(test)]
    fn redact_unfiltered<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let set = &*self.builtin;
        let armed = set.armed_unfiltered(text);
        let mut out: Cow<'a, str> = Cow::Borrowed(text);
        let builtin = set
            .rules
            .iter()
            .enumerate()
            .filter(|(i, _)| armed & (1u128 << i) != 0)
            .map(|(_, rule)| rule);
        for rule in builtin.chain(&self.custom) {
            if !rule.needs_byte.is_empty() && !out.bytes().any(|b| rule.needs_byte.contains(&b)) {
                continue;
            }
            if let Cow::Owned(s) = apply(rule, &out) {
                out = Cow::Owned(s);
            }
        }
        let spans = entropy::spans_unfiltered(&out);
        replace_spans(out, spans)
    }

    /// `out` with the entropy detector's spans replaced.
    fn redact_high_entropy<'a>(&self, out: Cow<'a, str>) -> Cow<'a, str> {
        let spans = entropy::spans(&out);
        replace_spans(out, spans)
    }

    /// Convenience: the redacted text as an owned string.
    pub fn redact_string(&self, text: &str) -> String {
        self.redact(text).into_owned()
    }

    /// The redacted text, typed as fit to leave the process.
    pub fn redacted(&self, text: &str) -> RedactedText {
        RedactedText::new(self.redact_string(text))
    }

    /// `finding` with every free-text field redacted (see [`redact_finding`]), typed as fit to be
    /// stored.
    pub fn redacted_finding(&self, finding: Finding) -> RedactedFinding {
        RedactedFinding::new(redact_finding(self, finding))
    }

    /// `signature` with every free text redacted (template, samples, logger, node names), typed as
    /// fit to leave the process or be stored. Ids, levels, counts, codes and the template
    /// fingerprint are the engine's own values and are kept; the timestamps are kept as written
    /// (the digest takes them from the log source's timestamp, and egress strips their control
    /// characters).
    ///
    /// This does not rebuild a template that masking disguised a secret in; the engine's egress
    /// does that first (`Egress::shown`), then calls this.
    pub fn redacted_signature(&self, mut signature: Signature) -> RedactedSignature {
        let red = |s: &mut String| {
            if let Cow::Owned(r) = self.redact(s) {
                *s = r;
            }
        };
        red(&mut signature.template);
        for s in signature
            .sample_messages
            .iter_mut()
            .chain(signature.source.iter_mut())
            .chain(signature.nodes.iter_mut())
        {
            red(s);
        }
        RedactedSignature::new(signature)
    }

    /// The kinds this redactor detects (for documentation and reports).
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut k: Vec<&'static str> = self.rules().map(|r| r.kind).collect();
        k.dedup();
        k
    }

    /// Trigger literals of every rule (for documentation and reports).
    pub fn triggers(&self) -> usize {
        self.rules().map(|r| r.triggers.len()).sum()
    }

    fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.builtin.rules.iter().chain(&self.custom)
    }
}

impl Default for Redactor {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether `address` is a systemd unit instance (`getty@tty1.service`, `user@1000.service`)
/// rather than an email address: no top-level domain is a unit type.
fn is_systemd_unit(address: &str) -> bool {
    const UNIT_TYPES: &[&str] = &[
        "service",
        "socket",
        "target",
        "timer",
        "mount",
        "automount",
        "path",
        "slice",
        "scope",
        "device",
        "swap",
    ];
    address
        .rsplit_once('.')
        .is_some_and(|(_, tld)| UNIT_TYPES.contains(&tld))
}

/// Whether `bytes` holds any of `needles` (one or two bytes: the separators of keyed rules).
fn has_any_byte(bytes: &[u8], needles: &[u8]) -> bool {
    match *needles {
        [a] => bytes.contains(&a),
        [a, b] => bytes.iter().any(|&c| c == a || c == b),
        _ => bytes.iter().any(|c| needles.contains(c)),
    }
}

/// `out` with each of `spans` (sorted, disjoint) replaced by the high-entropy placeholder.
fn replace_spans(out: Cow<'_, str>, spans: Vec<std::ops::Range<usize>>) -> Cow<'_, str> {
    if spans.is_empty() {
        return out;
    }
    let mut redacted = String::with_capacity(out.len());
    let mut at = 0;
    for r in spans {
        redacted.push_str(&out[at..r.start]);
        redacted.push_str("[REDACTED:high_entropy]");
        at = r.end;
    }
    redacted.push_str(&out[at..]);
    Cow::Owned(redacted)
}

/// `finding` with every free-text field redacted: a model's answer is untrusted and may copy
/// anything it was shown (or that was injected into the logs it read). Ids, codes and the
/// classification are kept; they are validated, not free text.
pub fn redact_finding(redactor: &Redactor, mut finding: Finding) -> Finding {
    let red = |s: &mut String| {
        if let Cow::Owned(r) = redactor.redact(s) {
            *s = r;
        }
    };
    red(&mut finding.title);
    red(&mut finding.summary);
    for s in finding
        .source_files
        .iter_mut()
        .chain(finding.error_type.iter_mut())
        .chain(finding.suspected_cause.iter_mut())
        .chain(finding.suggested_fix.iter_mut())
    {
        red(s);
    }
    finding
}

/// Rewrites every match of `regex` in `text` with `rewrite`, which returns `None` to keep a match
/// as it is. Borrowed unless some match really changed: a rule that matches only what it then keeps
/// (a `git@host:` remote, an already redacted value, a `Basic` word) makes no copy.
fn replace_changed<'t>(
    regex: &Regex,
    text: &'t str,
    mut rewrite: impl FnMut(&Captures<'_>) -> Option<String>,
) -> Cow<'t, str> {
    let mut out: Option<String> = None;
    let mut at = 0;
    for c in regex.captures_iter(text) {
        let Some(m) = c.get(0) else { continue };
        if let Some(new) = rewrite(&c) {
            let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
            o.push_str(&text[at..m.start()]);
            o.push_str(&new);
            at = m.end();
        }
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut o) => {
            o.push_str(&text[at..]);
            Cow::Owned(o)
        }
    }
}

/// Capture group `i` of `c`, empty when it did not participate.
fn group<'t>(c: &Captures<'t>, i: usize) -> &'t str {
    c.get(i).map_or("", |m| m.as_str())
}

fn apply<'t>(rule: &Rule, text: &'t str) -> Cow<'t, str> {
    let Some(regex) = rule.regex.get() else {
        return Cow::Borrowed(text);
    };
    let placeholder = rule.placeholder.as_str();
    match rule.rewrite {
        Rewrite::Whole => regex.replace_all(text, regex::NoExpand(placeholder)),
        Rewrite::KeepPrefix => replace_changed(regex, text, |c| {
            let whole = group(c, 0);
            let prefix = group(c, 1);
            let value = &whole[prefix.len()..];
            (!is_placeholder_value(value)).then(|| format!("{prefix}{placeholder}"))
        }),
        Rewrite::Value => replace_changed(regex, text, |c| {
            let w = c.get(0)?;
            // A value that starts with `-` is the next flag (`mysql -u root -p -h db`).
            let values: Vec<regex::Match<'_>> = [c.name("v"), c.name("v2")]
                .into_iter()
                .flatten()
                .filter(|v| !v.as_str().starts_with('-') && !is_placeholder_value(v.as_str()))
                .collect();
            if values.is_empty() {
                return None;
            }
            let mut out = String::with_capacity(w.as_str().len());
            let mut at = w.start();
            for v in values {
                out.push_str(&text[at..v.start()]);
                out.push_str(placeholder);
                at = v.end();
            }
            out.push_str(&text[at..w.end()]);
            Some(out)
        }),
        Rewrite::NamedValue => replace_changed(regex, text, |c| {
            let (w, word, v) = (c.get(0)?, c.name("w")?, c.name("v")?);
            is_named_secret(word.as_str(), v.as_str()).then(|| {
                format!(
                    "{}{placeholder}{}",
                    &text[w.start()..v.start()],
                    &text[v.end()..w.end()]
                )
            })
        }),
        Rewrite::Base64PrivateKey => replace_changed(regex, text, |c| {
            let m = c.get(0)?;
            let head = &m.as_str()[..m.as_str().len().min(96)];
            let decoded = entropy::decode_base64(head);
            let header = String::from_utf8_lossy(&decoded);
            header
                .contains("PRIVATE KEY")
                .then(|| placeholder.to_string())
        }),
        Rewrite::Auth => replace_changed(regex, text, |c| {
            let (w, a) = (c.get(0)?, c.name("a")?);
            let b = c.name("b");
            let mechanism = SASL_MECHANISMS.contains(&a.as_str().to_ascii_lowercase().as_str());
            // What to replace: the argument after a mechanism; else the first argument, and the
            // second too when it is no status word (`AUTH user password`).
            let mut spans: Vec<regex::Match<'_>> = Vec::new();
            if mechanism {
                spans.extend(b.filter(|b| !is_placeholder_value(b.as_str())));
            } else if !is_placeholder_value(a.as_str()) {
                spans.push(a);
                spans.extend(b.filter(|b| {
                    !is_placeholder_value(b.as_str())
                        && (a.as_str() == "default"
                            || !b.as_str().bytes().all(|c| c.is_ascii_lowercase()))
                }));
            }
            if spans.is_empty() {
                return None;
            }
            let whole = w.as_str();
            let mut out = String::with_capacity(whole.len());
            let mut at = w.start();
            for m in spans {
                out.push_str(&text[at..m.start()]);
                out.push_str(placeholder);
                at = m.end();
            }
            out.push_str(&text[at..w.end()]);
            Some(out)
        }),
        Rewrite::Middle => replace_changed(regex, text, |c| {
            Some(format!("{}{placeholder}{}", group(c, 1), group(c, 3)))
        }),
        Rewrite::Group1 => replace_changed(regex, text, |c| match (c.get(0), c.get(1)) {
            (Some(w), Some(g)) => {
                let whole = w.as_str();
                Some(format!(
                    "{}{placeholder}{}",
                    &whole[..g.start() - w.start()],
                    &whole[g.end() - w.start()..]
                ))
            }
            _ => None,
        }),
        Rewrite::UrlPassword => replace_changed(regex, text, |c| {
            Some(format!("{}{}:{}@", group(c, 1), group(c, 2), placeholder))
        }),
        Rewrite::Email => replace_changed(regex, text, |c| {
            let m = c.get(0)?;
            let next = text[m.end()..].chars().next();
            let git_remote = m.as_str().starts_with("git@") && next == Some(':');
            (!git_remote && !is_systemd_unit(m.as_str())).then(|| placeholder.to_string())
        }),
        Rewrite::BasicAuth => replace_changed(regex, text, |c| {
            let value = group(c, 2);
            let looks_encoded = value.ends_with('=')
                || value
                    .bytes()
                    .any(|b| b.is_ascii_digit() || b == b'+' || b == b'/')
                || (value.bytes().any(|b| b.is_ascii_uppercase())
                    && value.bytes().skip(1).any(|b| b.is_ascii_uppercase())
                    && value.len() >= 12);
            looks_encoded.then(|| format!("{}{}", group(c, 1), placeholder))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> String {
        Redactor::new().redact_string(s)
    }

    #[test]
    fn each_builtin_kind_is_redacted() {
        let cases = [
            (
                "token ghp_abcdefghijklmnopqrstuvwxyz0123456789 used",
                "github_token",
            ),
            (
                "pat github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
                "github_token",
            ),
            ("key AKIAIOSFODNN7EXAMPLE here", "aws_access_key"),
            (
                "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "aws_secret_key",
            ),
            (
                "hook https://hooks.slack.com/services/T000/B000/XXXXXXXX",
                "slack_webhook",
            ),
            ("slack xoxb-123456789012-abcdefghijkl", "slack_token"),
            ("stripe sk_live_abcdefghij0123456789", "stripe_key"),
            (
                "google AIzaSyA-abcdefghijklmnopqrstuvwxyz012345",
                "google_api_key",
            ),
            (
                "anthropic sk-ant-api03-abcdefghijklmnopqrstuv",
                "anthropic_key",
            ),
            ("openai sk-proj-abcdefghijklmnopqrstuvwxyz", "openai_key"),
            (
                "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
                "jwt",
            ),
            (
                "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----",
                "private_key",
            ),
            ("Authorization: Bearer abc.def.ghi123", "authorization"),
            ("header Basic dXNlcjpwYXNzd29yZA==", "authorization"),
            (
                "postgres://admin:hunter2@db.internal:5432/app",
                "url_password",
            ),
            ("login password=hunter2 ok", "secret"),
            ("{\"api_key\": \"abcd1234\"}", "secret"),
            ("Server=db;Uid=sa;Pwd=Sup3r;", "secret"),
            ("mail bob.smith@example.org now", "email"),
            (
                "AWS creds in env: AKIAIOSFODNN7EXAMPLE / wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "aws_secret_key",
            ),
            ("gitlab glpat-Ab3dE5gH7jK9mN1pQ3sT now", "gitlab_token"),
            (
                "pypi-AgEIcHlwaS5vcmcCJDU3OTM5NjZkLTk5ZjktNGQ3Yi1hNGQ4LTI0ZjYxZjQxYzU5",
                "pypi_token",
            ),
            ("npm npm_abcdefghijklmnopqrstuvwxyz0123456789", "npm_token"),
            (
                "SG.abcdefghijklmnopqrstuv.abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ",
                "sendgrid_key",
            ),
            ("twilio SK0123456789abcdef0123456789abcdef", "twilio_key"),
            (
                "do dop_v1_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "digitalocean_token",
            ),
            ("vault hvs.CAESIJ8tE3aZ7kL9mN1pQ3sT5vW7", "vault_token"),
            (
                "AccountName=x;AccountKey=Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYg==;",
                "azure_storage_key",
            ),
            ("unkeyed Zx8Qm3Lp0Rt7Vb2Nc5Kd9Wf1 here", "high_entropy"),
            ("hex 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822c", "high_entropy"),
        ];
        for (input, kind) in cases {
            let out = r(input);
            assert!(
                out.contains(&format!("[REDACTED:{kind}]")),
                "{input:?} -> {out:?}"
            );
        }
    }

    /// Issue #18's second end-to-end check planted these in a `logs.db`; each got through the
    /// redactor (and into issues and the state store) before its rule. Every value is random.
    #[test]
    fn held_out_formats_are_redacted_whole() {
        let cases: &[(&str, &str, &str)] = &[
            // 40/64 hex after a vendor prefix: the entropy detector takes them for hashes.
            ("pulumi login failed with pul-76b338f3c3f447c734496377be72be61df2d36cd", "pulumi_token", "76b338f3c3"),
            ("SONAR_TOKEN squ_444efed29226ee78451fe1b57219f02b5b795796", "sonarqube_token", "444efed292"),
            ("lin_oauth_5a177a2d0f8654987063bb4c90d1fcee9b348b369ce2dbafeb119dcf9b67b255 401", "linear_key", "5a177a2d0f"),
            ("failed: 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", "sentry_token", "2c3984db84"),
            // Base64 of text: the entropy detector takes them for data.
            ("jfrog: reference token cmVmdGtuOjAxOjk0NzA2NzA1NTk6dnhkNmpmd1I0Tzhsb0hPcmpFUEtUUkRHNXhF expired", "artifactory_token", "cmVmdGtuOj"),
            ("kubeconfig client-key-data: LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQpZQU0zUVo0bkZBZFFpRUtRdUtZc09zZDg3UkZCTkFBclpoWjh4", "private_key", "LS0tLS1CRU"),
            // Longer than a secret run the entropy detector judges.
            ("sts returned SessionToken IQoJb3JpZ2luX2VjSxlkwtaTHk82LmMWpim1AVdH78FTUR0FbLW/P7R3vcna5CY/TRBb2RLEJo4HfSv5FVWK3Gij5ps9DrZWhSkMuzGzIVIPYafiRBY9jJ+6tkTKlhquBosAQsfHDl/qu2EdZc9lVMpySwYvtythO8R4bDpvuCMryfpMZ4OaIWpSH6RP9dAyCKxPYOQIpXLD4N2auSOLqASkQNbvTlS3HiCPFhvQWy+FIjqFsQVrvohKrhX83sh0Xor28rrI1D7133NKmIrf+OehzDN4oaKSYIu4gxlUTdxWFls+h8MPXrXDdzihenwI0DBuXayS0meekN7xIxcih5Qp", "aws_session_token", "qu2EdZc9lV"),
            // A UUID after a word naming a credential.
            ("heroku: HEROKU_API_KEY 5b123ec9-4f80-2dfc-fbee-d4ac87d1a7d6 rejected", "uuid_credential", "5b123ec9-4"),
            ("snyk auth b375c35a-4425-ef88-5ada-48fb95735da8 failed: 401", "uuid_credential", "b375c35a-4"),
            // Keys named for an application key or an LDAP bind password.
            ("DD_APP_KEY=a88387f4095d0bffe047aa382f2b5fc27e63f40a monitors sync failed", "secret", "a88387f409"),
            ("datadog: DD-APPLICATION-KEY: a88387f4095d0bffe047aa382f2b5fc27e63f40a forbidden", "secret", "a88387f409"),
            ("nslcd: bindpw 2JtQu3CG22syG failed: Invalid credentials (49)", "password", "2JtQu3CG22"),
            ("olcRootPW: 2JtQu3CG22syG", "password", "2JtQu3CG22"),
            ("sssd: ldap_default_authtok = 2JtQu3CG22syG", "password", "2JtQu3CG22"),
        ];
        for (input, kind, piece) in cases {
            let out = r(input);
            assert!(
                out.contains(&format!("[REDACTED:{kind}]")) && !out.contains(piece),
                "{input:?} -> {out:?}"
            );
        }
    }

    /// Passwords in the short flags and positional shapes of more tools (issue #18's second
    /// end-to-end check); each was kept before its rule. Their flags without a password stay.
    #[test]
    fn passwords_of_more_tools_are_redacted() {
        for input in [
            "backup: 7z a -pHMDMwXh13TWJ -mhe=on /backups/db.7z exited 2",
            "zip -P HMDMwXh13TWJ -r export.zip /data exited 12",
            "openssl enc -aes-256-cbc -k HMDMwXh13TWJ -in db.sql failed",
            "ipmitool -I lanplus -H bmc1 -U admin -P HMDMwXh13TWJ chassis status failed",
            "mosquitto_pub -h mqtt -u sensor -P HMDMwXh13TWJ -t t -m x: Connection refused",
            "snmpwalk -v3 -u mon -a SHA -A HMDMwXh13TWJ -x AES -X HMDMwXh13TWJ host timeout",
            "xfreerdp /v:win1 /u:Administrator /p:HMDMwXh13TWJ /cert:ignore exited 131",
            "lftp -u deploy,HMDMwXh13TWJ sftp://files.internal failed",
            "sqlplus system/HMDMwXh13TWJ@ORCL @migrate.sql failed ORA-01017",
            "oracle: jdbc:oracle:thin:scott/HMDMwXh13TWJ@db2:1521:ORCL ORA-12541",
        ] {
            let out = r(input);
            assert!(
                out.contains("[REDACTED:password]") && !out.contains("HMDMwXh13TWJ"),
                "{input:?} -> {out:?}"
            );
        }
        for kept in [
            "zip -r export.zip /data exited 0",
            "7z l /backups/db.7z listed",
            "ipmitool -H bmc1 chassis status ok",
            "snmpwalk -v2c -c public host1 timed out",
            "sqlplus -S /nolog @report.sql ok",
            "jdbc:oracle:thin:@db1:1521:ORCL connected",
        ] {
            assert_eq!(r(kept), kept);
        }
    }

    /// Credentials of several pieces joined by `.`, `~`, `$`, `%` or `:` are redacted whole: a
    /// piece alone may be short or look like data, and used to be left beside a redacted one.
    #[test]
    fn joined_credentials_are_redacted_whole() {
        for (input, pieces) in [
            ("discord gateway: bot Njk0ODM3ODU5MzA2NTk2MTU5.Q_9lnY.O03b3kiwzvFBYBcjlCIWQEXMn8E disconnected", &["Njk0ODM3OD", "O03b3kiwzv"][..]),
            ("Authorization: Api-Token dt0c01.C5LKXEPJIUD6R8CCS92XUI4F.XYT4I49XMXLXLGFIV9NMBSM2AVTUKINBW2C1F02RMS6H5AOLJ1IQY1D5H70K4PVL", &["C5LKXEPJIU", "XYT4I49XMX"]),
            ("tfe api call with qu2fqIAjQmXmJT.atlasv1.NQ2NzJT-MfK8LqRg0FmJZB6lmhjI0xejq4BWEh8kFgAo4K0lthnkk-F3HkqsiKmuLf0 returned 401", &["qu2fqIAjQm", "NQ2NzJT-Mf"]),
            ("loading /run/secrets/dt0c01.C5LKXEPJIUD6R8CCS92XUI4F.XYT4I49XMXLXLGFIV9NMBSM2AVTUKINBW2C1F02RMS6H5AOLJ1IQY1D5H70K4PVL failed", &["C5LKXEPJIU", "XYT4I49XMX"]),
            ("msal: invalid client secret 3EP8Q~M1nk~0UggzepPeQKlPSWKgPLYHn2REePYJ", &["3EP8Q~M1nk", "0UggzepPeQ"]),
            ("braintree init failed access_token$production$z4h4caaoa3632koh$8f49806c96288ad331dce7408d5e1b59", &["z4h4caaoa3", "8f49806c96"]),
            ("twitter api 401: AAAAAAAAAAAAAAAAAAAAAeGrOLMvKjsisKEkdGSqUn34NRisSqk%3DiyAbVXmOQTDKWjEOIVTzp1YeGilo6ZujNUyLope3cTJcvubBz3", &["eGrOLMvKjs", "iyAbVXmOQT"]),
            ("mapbox upload failed sk.eyJ1IjogIndhYmRldXhnIiwgImEiOiAiOG84dmQxNGRnZjhhbjFvYzh6N2Q5cWhsdiJ9.wHMwAkkEz_Wg_5qJWXp6VS", &["eyJ1IjogIn", "wHMwAkkEz_"]),
            ("GET /sso/callback?ticket=6bYB8E6cSvAX.7Nf7kpB8xoK2~skfHgIUf2tPH 400", &["6bYB8E6cSv", "skfHgIUf2t"]),
            ("FCM send failed: key=AAAAq4eyq1o:APA91bHPRgkFLJu6mUq3Bc0lB1Ul1I3QkeSXHu0ksvZ6Jv0CIzwbG4oDeMF2bFJb4FjmN7Hxxn2a9vq1VZ5PLN8D2QjH1m7lD0BoS8ELvvBtZ4SU1yGg8dF5rnuPL8Ri5Ud_8M7YzNOAq", &["AAAAq4eyq1", "HPRgkFLJu6"]),
        ] {
            let out = r(input);
            for p in pieces {
                assert!(!out.contains(p), "{input:?} -> {out:?} keeps {p}");
            }
        }
        // Joined runs that hold no secret stay.
        for kept in [
            "pkg alpha: version 1.4.12-rc.3+build.4411 installed at 2026-12-07T04:11:59.164307Z",
            "resolved ip-10-0-17-23.eu-west-1.compute.internal to 10.1.2.3 in 17ms",
            "GET /api/v1/search?q=hello%20world%3A4411%2Fsrc&lang=en HTTP/1.1 200 13233",
            "\tat org.apache.kafka.clients.consumer.internals.ConsumerCoordinator.onJoinComplete(ConsumerCoordinator.java:411)",
            "File \"/usr/lib/python3.11/site-packages/starlette/routing.py\", line 74, in app",
        ] {
            assert_eq!(r(kept), kept);
        }
    }

    #[test]
    fn password_shapes_without_a_key_are_redacted() {
        let cases = [
            (
                "command failed: mysql -u root -pMyS3cretPw -h db1",
                "MyS3cretPw",
            ),
            ("mysqldump --user=backup -p'Quoted Pw9' app", "Quoted Pw9"),
            (
                "curl -u admin:AdminPass99 https://api.internal/health failed",
                "AdminPass99",
            ),
            (
                "curl -sS --user 'deploy:Tr1cky!pw' https://x.invalid",
                "Tr1cky!pw",
            ),
            (
                "backup failed: pg_dump --password CliFlagSecret1 --host db",
                "CliFlagSecret1",
            ),
            ("wget --ftp-password=FtpPw_77 ftp://mirror", "FtpPw_77"),
            (
                "keytool -importkeystore -srcstorepass Chang3dIt -deststorepass Chang3dIt2",
                "Chang3dIt",
            ),
            (
                "sshpass -p SshpassSecret24 ssh deploy@host failed",
                "SshpassSecret24",
            ),
            ("sshpass -p'SshQuoted1' scp a b", "SshQuoted1"),
            ("redis-cli -h cache -a RedisCliPw1 ping", "RedisCliPw1"),
            (
                "ldapsearch -x -D cn=admin -w LdapPw123 -b dc=x",
                "LdapPw123",
            ),
            ("sqlcmd -S db -U sa -P SqlCmdPw9 -Q select", "SqlCmdPw9"),
            ("mongosh --host db -u root -p MongoPw42", "MongoPw42"),
            ("smbclient //fs/share -U alice%SmbPw2024", "SmbPw2024"),
            (
                "netrc: machine api.example.com login bob password NetrcSecret7",
                "NetrcSecret7",
            ),
            (
                "redis AUTH RedisSecret18 failed: WRONGPASS invalid username-password pair",
                "RedisSecret18",
            ),
            ("> AUTH default R3disAclPw", "R3disAclPw"),
            ("C: AUTH PLAIN AGFsaWNlAHMzY3JldA==", "AGFsaWNlAHMzY3JldA=="),
            ("config: requirepass Requ1rePw", "Requ1rePw"),
            (
                "login failed user=admin pass:PassColonSecret14",
                "PassColonSecret14",
            ),
            (
                "openssl rsa -passin pass:OpensslPw5 -in key.pem",
                "OpensslPw5",
            ),
            (
                "os.environ['API_TOKEN'] = 'PyEnvSecret19' leaked in traceback",
                "PyEnvSecret19",
            ),
            (
                "os.environ[\"DB_PASSWORD\"]=\"PyEnvSecret20\"",
                "PyEnvSecret20",
            ),
            (
                "env: SECRET_KEY='django-insecure-9x!k2@l#m$n%o^p&q*r' missing",
                "django-insecure",
            ),
            (
                "settings.py: SECRET_KEY = \"Dj4ngoKeyValue\"",
                "Dj4ngoKeyValue",
            ),
            (
                "<password>XmlSecret_4242</password> invalid",
                "XmlSecret_4242",
            ),
            ("<ns:ApiKey> XmlKey998877 </ns:ApiKey>", "XmlKey998877"),
            (
                "{\"private_key_id\":\"GcpKeyId12abcdef0123456789\"}",
                "GcpKeyId12",
            ),
        ];
        for (input, secret) in cases {
            let out = r(input);
            assert!(!out.contains(secret), "{input:?} -> {out:?}");
            assert!(out.contains("[REDACTED:"), "{input:?} -> {out:?}");
            assert_eq!(r(&out), out, "idempotent: {input:?}");
        }
    }

    /// review4 F1: secrets in everyday shapes that got through (each with the piece that must go).
    #[test]
    fn secrets_in_everyday_odd_shapes_are_redacted() {
        let cases: &[(&str, &str, &str)] = &[
            // A URL password holding `@`: the password runs to the last `@` before the host.
            ("connect failed for postgresql://app:p@ssZQX01w0rd@db:5432/app", "ssZQX01w0rd", "postgresql://app:[REDACTED:url_password]@db:5432/app"),
            ("dsn mysql://root:a@b@c9Z@10.0.0.5/app", "c9Z", "mysql://root:[REDACTED:url_password]@10.0.0.5/app"),
            ("{\"dsn\":\"redis://:pw@9Zx@cache\",\"to\":\"ops@example.org\"}", "9Zx", "redis://:[REDACTED:url_password]@cache\""),
            // JSON inside a string: backslash-escaped quotes around keys and values.
            ("bad payload={\\\"password\\\": \\\"ZQX06hunter2\\\", \\\"user\\\": \\\"bob\\\"}", "ZQX06hunter2", "\\\"user\\\": \\\"bob\\\""),
            ("bad request body={\\\"username\\\": \\\"bob\\\", \\\"password\\\": \\\"ZQX72hunter2\\\"}", "ZQX72hunter2", "[REDACTED:secret]"),
            ("{\"msg\":\"{\\\\\\\"api_key\\\\\\\":\\\\\\\"ZQX07deep\\\\\\\"}\"}", "ZQX07deep", "[REDACTED:secret]"),
            ("body={\\\"dbPass\\\":\\\"ZQX08pw\\\"}", "ZQX08pw", "[REDACTED:password]"),
            // Percent-encoded JSON and URLs with credentials.
            ("oauth callback failed state=%7B%22password%22%3A%22ZQX05hunter2%22%7D", "ZQX05hunter2", "%7B%22password%22%3A[REDACTED:secret]%7D"),
            ("login redirect next=%2Flogin%3Fuser%3Dbob%26password%3DZQX09pw%2521%26x%3D1", "ZQX09pw", "password%3D[REDACTED:secret]%26x%3D1"),
            ("redirect failed next=https%3A%2F%2Fdeploy%3AZQX27pw%40hooks.example.com%2Fx", "ZQX27pw", "https%3A%2F%2Fdeploy%3A[REDACTED:url_password]%40hooks.example.com%2Fx"),
            ("next=https%3a%2f%2fdeploy%3aZQX28p%40w%40hooks.example.com", "ZQX28p", "%3a[REDACTED:url_password]%40hooks"),
            // Query parameters named key, sig, signature.
            ("request failed url=https://api.example.com/v1/charge?key=ZQX42abcdefghijk", "ZQX42abcdefghijk", "charge?key=[REDACTED:secret]"),
            ("GET /maps/api?center=x&key=ZQX43abc&zoom=3 403", "ZQX43abc", "&key=[REDACTED:secret]&zoom=3"),
            ("s3 GET /b/o?X-Amz-Credential=x&X-Amz-Signature=ZQX44f00d 403", "ZQX44f00d", "X-Amz-Signature=[REDACTED:secret]"),
            ("GET /f?sig=ZQX45short&se=2026 403", "ZQX45short", "?sig=[REDACTED:secret]&se"),
            // A password word before its value, without `=` or `:`.
            ("redis error AUTH failed for password 'ZQX84hunter2'", "ZQX84hunter2", "for password [REDACTED:password]"),
            ("smtp login failed: 535 5.7.8 Username and Password not accepted for bob with password ZQX77hunter2", "ZQX77hunter2", "with password [REDACTED:password]"),
            ("login rejected: password \"correct horse\" is too common", "correct horse", "password [REDACTED:password] is"),
            ("vault unseal with token s3cretT0ken99 failed", "s3cretT0ken99", "token [REDACTED:password]"),
            // Key names for key material and passwords without one of the usual words.
            ("cfg dump {\"encryptionKey\": \"ZQX103hunter\", \"hmacKey\": \"ZQX113hunter\"}", "ZQX1", "[REDACTED:secret]"),
            ("cfg {\"signingKey\": \"ZQX104\", \"masterKey\": \"ZQX106\", \"license_key\": \"ZQX107\"}", "ZQX10", "[REDACTED:secret]"),
            ("cfg {\"dbPass\": \"ZQX105hunter\", \"passcode\": \"ZQX118hunter\"}", "ZQX1", "[REDACTED:"),
            ("ENCRYPTION_KEY=ZQX119 HMAC_KEY=ZQX120", "ZQX1", "HMAC_KEY=[REDACTED:secret]"),
        ];
        let mut failed = Vec::new();
        for (input, secret, expected) in cases {
            let out = r(input);
            if out.contains(secret) || !out.contains(expected) || r(&out) != out {
                failed.push(format!(
                    "{input:?} -> {out:?} (want {expected:?}, no {secret:?})"
                ));
            }
        }
        assert!(failed.is_empty(), "{}", failed.join("\n"));
    }

    /// The new shapes' neighbours in ordinary text stay as they are.
    #[test]
    fn prose_near_the_everyday_secret_shapes_is_kept() {
        let changed = [
            "password reset email sent to user u42",
            "password reset requested for user bob",
            "FATAL: password authentication failed for user \"app\"",
            "Username and Password not accepted",
            "password changed for user 42",
            "password is too short",
            "wrong password for bob",
            "token expired for user u42; refresh required",
            "SyntaxError: Unexpected token '}' in JSON at position 0",
            "Unexpected token 'function'",
            "Unexpected token u in JSON at position 0",
            "secret scanning finished for alpha: 0 findings",
            "Error: secret \"db-credentials\" not found",
            "secrets \"tls-cert-2024.v2\" is forbidden",
            "secret token rotation finished",
            "cache key=users:42 miss",
            "cache key users:42 evicted",
            "redis GET key=session:9f2 took 3ms",
            "GET /api/v1/search?q=hello%20world%3A4411%2Fsrc&lang=en HTTP/1.1 200",
            "GET /login?next=%2Fdashboard%3Ftab%3Dsettings 302",
            "redirect to https%3A%2F%2Fexample.com%2Fcallback%3Fa%3D1",
            "connected to postgresql://db.internal:5432/cidx as u1",
            "fetch https://api.example.com/v1/items?page=2&sort_key=name 200",
            "{\\\"password\\\": \\\"********\\\"}",
            "with password [REDACTED:password] rejected",
            "password 123 attempts",
            "mysql: [Warning] Using a password on the command line interface can be insecure.",
            "ByPass=true for internal hosts",
            "email bob@example.org, site https://example.org/x",
        ]
        .into_iter()
        .filter_map(|line| {
            let out = r(line);
            (out != line).then(|| format!("{line:?} -> {out:?}"))
        })
        .collect::<Vec<_>>();
        // The email is redacted as always; the URL next to it is not touched.
        let email = r("email bob@example.org, site https://example.org/x");
        assert_eq!(email, "email [REDACTED:email], site https://example.org/x");
        let changed: Vec<_> = changed
            .into_iter()
            .filter(|c| !c.starts_with("\"email bob@"))
            .collect();
        assert!(changed.is_empty(), "{}", changed.join("\n"));
    }

    #[test]
    fn ordinary_lines_shaped_like_passwords_are_kept() {
        let changed = [
            "mysql -u root -p -h db1 app",
            "Enter password:",
            "mysql: [Warning] Using a password on the command line interface can be insecure.",
            "docker login -u ci --password-stdin registry.invalid",
            "pg_dump --password-file /etc/x --host db",
            "python -m http.server -p 8080",
            "ssh -p 2222 deploy@host",
            "AUTH ok",
            "AUTH failed for client 10.0.0.3",
            "C: AUTH LOGIN",
            "password: ********",
            "password=<redacted>",
            "db password: [REDACTED:secret]",
            "--password $DB_PASSWORD given",
            "deploy --token ${DEPLOY_TOKEN} --dry-run",
            "Started getty@tty1.service - Getty on tty1.",
            "foo@123.service: Main process exited, code=exited",
            "user@1000.service: Consumed 2.1s CPU time",
            "--- PASS: TestRedaction (0.00s)",
            "proxy bypass=true for internal hosts",
            "first pass: 3 of 7 shards",
            "<password></password> is empty",
        ]
        .into_iter()
        .filter_map(|line| {
            let out = r(line);
            (out != line).then(|| format!("{line:?} -> {out:?}"))
        })
        .collect::<Vec<_>>();
        assert!(changed.is_empty(), "{}", changed.join("\n"));
    }

    #[test]
    fn secrets_are_gone_from_the_output() {
        let out = r("postgres://admin:hunter2@db/app password=s3cr3t ghp_abcdefghijklmnopqrstuvwxyz0123456789");
        for secret in ["hunter2", "s3cr3t", "ghp_abc"] {
            assert!(!out.contains(secret), "{out}");
        }
        assert!(
            out.contains("postgres://admin:[REDACTED:url_password]@db/app"),
            "{out}"
        );
    }

    #[test]
    fn ordinary_text_is_borrowed_untouched() {
        let text =
            "GET /api/repos/12 200 in 3ms; basic authentication is disabled; input_tokens: 1234";
        // Triggers fire (`token`, `basic`), the regexes run, nothing matches: no copy is made.
        assert!(matches!(Redactor::new().redact(text), Cow::Borrowed(_)));
        assert_eq!(r(text), text);
    }

    #[test]
    fn matches_that_are_kept_make_no_copy() {
        let red = Redactor::new();
        for text in [
            "clone git@github.com:org/repo.git failed",
            "password=[REDACTED:secret] already",
            "auth mode Basic Authentication enabled",
            "token expired for user u42; refresh required",
        ] {
            assert!(matches!(red.redact(text), Cow::Borrowed(_)), "{text}");
        }
    }

    #[test]
    fn git_remotes_are_not_emails() {
        assert_eq!(
            r("clone git@github.com:org/repo.git failed"),
            "clone git@github.com:org/repo.git failed"
        );
        assert_eq!(r("mail git@example.com now"), "mail [REDACTED:email] now");
    }

    #[test]
    fn redaction_is_idempotent() {
        let once = r("password=hunter2 and Authorization: Bearer abcdefgh123 and bob@example.com");
        assert_eq!(r(&once), once);
    }

    #[test]
    fn optional_kinds_and_extra_patterns() {
        let cfg = RedactionConfig {
            ip_addresses: true,
            user_ids: true,
            extra_patterns: vec!["ACME-[0-9]{4}".into()],
        };
        let red = Redactor::with_config(&cfg).unwrap();
        let out = red.redact_string("from 10.1.2.3 user_id=alice ticket ACME-1234");
        assert_eq!(
            out,
            "from [REDACTED:ip_address] user_id=[REDACTED:user_id] ticket [REDACTED:custom]"
        );
        assert_eq!(
            r("from 10.1.2.3"),
            "from 10.1.2.3",
            "IPs stay unless configured"
        );
    }

    #[test]
    fn a_bad_extra_pattern_is_a_config_error() {
        let cfg = RedactionConfig {
            extra_patterns: vec!["(".into()],
            ..Default::default()
        };
        assert!(
            matches!(Redactor::with_config(&cfg), Err(Error::Config { ref field, .. }) if field == "redaction.extra_patterns[0]")
        );
        assert_eq!(cfg.problems().len(), 1);
    }

    #[test]
    fn an_extra_pattern_that_matches_empty_text_is_a_config_error() {
        for pattern in ["", "x*", "a|", "(?:token)?"] {
            let cfg = RedactionConfig {
                extra_patterns: vec!["ACME-[0-9]+".into(), pattern.into()],
                ..Default::default()
            };
            let problems = cfg.problems();
            assert_eq!(problems.len(), 1, "{pattern:?}: {problems:?}");
            assert_eq!(problems[0].0, "extra_patterns[1]");
            assert!(problems[0].1.contains("matches empty text"), "{problems:?}");
            assert!(
                matches!(Redactor::with_config(&cfg), Err(Error::Config { ref field, .. }) if field == "redaction.extra_patterns[1]"),
                "{pattern:?}"
            );
        }
    }

    #[test]
    fn an_unterminated_private_key_is_redacted_to_the_end() {
        let out = r("-----BEGIN PRIVATE KEY-----\nMIIE\nabc");
        assert_eq!(out, "[REDACTED:private_key]");
    }

    /// Pieces of generated log text: every trigger literal, the separators the rules key on,
    /// words, numbers, known secrets, and random base64, hex and mixed runs of every length
    /// around the entropy detector's bounds.
    fn piece() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let triggers: Vec<String> = builtin()
            .iter()
            .flat_map(|(_, triggers, _, _)| triggers.iter().map(|t| t.to_string()))
            .chain(["::", ".", "user", "uid", "login", "0x"].map(String::from))
            .collect();
        let fixed: Vec<String> = [
            " ",
            " ",
            " ",
            "\n",
            "=",
            ":",
            "/",
            "-",
            "_",
            "\"",
            "'",
            "@",
            "==",
            ";",
            ",",
            "&",
            "?",
            "}",
            "]",
            "\t",
            "ERROR",
            "git",
            "clone",
            "GET",
            "200",
            "id=",
            "sha256:",
            "commit ",
            "request_id=",
            "é",
            "日本",
            "\u{202e}",
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
            "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz012345",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
            "550e8400-e29b-41d4-a716-446655440000",
            "da39a3ee5e6b4b0d3255bfef95601890afd80709",
        ]
        .map(String::from)
        .to_vec();
        prop_oneof![
            4 => proptest::sample::select(triggers),
            4 => proptest::sample::select(fixed),
            2 => "[a-z]{1,12}",
            1 => "[0-9]{1,12}",
            2 => "[A-Za-z0-9+/]{10,40}={0,2}",
            1 => "[A-Za-z0-9+/_-]{15,300}",
            1 => "[0-9a-f]{28,70}",
            1 => "[A-Za-z0-9]{18,22}",
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(2_000))]

        /// The single-pass prefilter changes no decision: on generated text the redactor gives
        /// exactly what the unfiltered one (every armed rule, a byte-by-byte entropy scan) gives,
        /// with the optional kinds off and on.
        #[test]
        fn the_prefiltered_redactor_decides_as_the_unfiltered_one(
            pieces in proptest::collection::vec(piece(), 0..40),
        ) {
            let text = pieces.concat();
            let plain = Redactor::new();
            proptest::prop_assert_eq!(
                plain.builtin.armed(&text),
                plain.builtin.armed_unfiltered(&text)
            );
            proptest::prop_assert_eq!(plain.redact(&text), plain.redact_unfiltered(&text));
            let all = Redactor::with_config(&RedactionConfig {
                ip_addresses: true,
                user_ids: true,
                extra_patterns: vec!["tok[0-9]+".into()],
            })
            .unwrap();
            proptest::prop_assert_eq!(all.redact(&text), all.redact_unfiltered(&text));
            proptest::prop_assert_eq!(
                entropy::spans(&text),
                entropy::spans_unfiltered(&text)
            );
        }
    }

    #[test]
    fn every_builtin_rule_compiles() {
        for (ip_addresses, user_ids) in [(false, false), (true, true)] {
            let set = RuleSet::compile(ip_addresses, user_ids).unwrap();
            for rule in &set.rules {
                assert!(
                    rule.regex.get().is_some(),
                    "rule {} does not compile",
                    rule.kind
                );
            }
        }
    }

    #[test]
    fn a_builtin_rule_is_compiled_only_when_a_text_arms_it() {
        let redactor = Redactor {
            builtin: Arc::new(RuleSet::compile(false, false).unwrap()),
            custom: Vec::new(),
        };
        let compiled = |r: &Redactor| {
            r.builtin
                .rules
                .iter()
                .filter(|rule| rule.regex.compiled.get().is_some())
                .map(|rule| rule.kind)
                .collect::<Vec<_>>()
        };
        assert!(compiled(&redactor).is_empty());
        redactor.redact("connection refused after 3 retries");
        assert!(compiled(&redactor).is_empty());
        let line = "token ghp_abcdefghijklmnopqrstuvwxyz0123456789 used";
        assert!(redactor.redact(line).contains("[REDACTED:github_token]"));
        let now = compiled(&redactor);
        assert!(now.contains(&"github_token"), "{now:?}");
        assert!(now.len() < redactor.builtin.rules.len() / 2, "{now:?}");
    }
}
