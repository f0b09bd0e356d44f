//! Keeps the token out of error text: whatever GitHub, a proxy or a URL puts into an error
//! message passes through [`Scrubber::scrub`] first.

use std::fmt;

/// What a removed secret is replaced with.
pub(crate) const REDACTED: &str = "[redacted]";

/// Prefixes of GitHub's token formats (classic, OAuth, user-to-server, server-to-server,
/// refresh, fine-grained).
const TOKEN_PREFIXES: [&str; 6] = ["github_pat_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_"];

/// Removes the configured token, and anything shaped like a GitHub token, from text.
#[derive(Clone)]
pub(crate) struct Scrubber {
    token: String,
}

impl fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Scrubber(<redacted>)")
    }
}

impl Scrubber {
    /// Scrubs `token` (trimmed, as it is sent) and GitHub-shaped tokens.
    pub fn new(token: &str) -> Self {
        Scrubber {
            token: token.trim().to_string(),
        }
    }

    /// Scrubs GitHub-shaped tokens only (before a token is known: configuration errors).
    pub fn shapes_only() -> Self {
        Scrubber {
            token: String::new(),
        }
    }

    /// `text` without the token or anything shaped like a GitHub token.
    pub fn scrub(&self, text: &str) -> String {
        let text = if self.token.is_empty() {
            text.to_string()
        } else {
            text.replace(&self.token, REDACTED)
        };
        scrub_shapes(&text)
    }
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Replaces every `ghp_...`-style run (prefix at a word start, then token characters).
fn scrub_shapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut previous: Option<char> = None;
    while let Some(c) = rest.chars().next() {
        let at_word_start = !previous.is_some_and(is_token_char);
        let prefix = at_word_start
            .then(|| {
                TOKEN_PREFIXES.iter().find(|p| {
                    rest.get(..p.len())
                        .is_some_and(|h| h.eq_ignore_ascii_case(p))
                })
            })
            .flatten();
        if let Some(prefix) = prefix {
            let tail = &rest[prefix.len()..];
            let run = tail.find(|c: char| !is_token_char(c)).unwrap_or(tail.len());
            if run > 0 {
                out.push_str(REDACTED);
                rest = &tail[run..];
                previous = Some('_');
                continue;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
        previous = Some(c);
    }
    out
}

/// An underlying error (the HTTP client's, the JSON decoder's) kept as its scrubbed text, whole
/// chain included. The original is not kept: its `Display` or `Debug` can carry the request URL
/// or an echoed value, and with them the token.
#[derive(Debug, Clone)]
pub struct ScrubbedError {
    message: String,
}

impl ScrubbedError {
    pub(crate) fn new(error: &(dyn std::error::Error + 'static), scrubber: &Scrubber) -> Self {
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(s) = source {
            let text = s.to_string();
            if !message.contains(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = s.source();
        }
        ScrubbedError {
            message: scrubber.scrub(&message),
        }
    }

    /// The scrubbed text.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ScrubbedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ScrubbedError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configured_token_and_github_shaped_tokens_are_removed() {
        let s = Scrubber::new("  plain-secret-value  ");
        assert_eq!(
            s.scrub("Authorization: Bearer plain-secret-value"),
            "Authorization: Bearer [redacted]"
        );
        for token in [
            "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
            "gho_x1",
            "ghu_x1",
            "ghs_test_token_0123456789",
            "ghr_x1",
            "github_pat_11ABCDEFG0_abcdefXYZ",
            "GHP_UPPER1",
        ] {
            let shown = s.scrub(&format!("token={token}&x=1 \"{token}\""));
            assert_eq!(shown, "token=[redacted]&x=1 \"[redacted]\"", "{token}");
        }
    }

    #[test]
    fn words_that_merely_contain_a_prefix_are_left_alone() {
        let s = Scrubber::shapes_only();
        for text in [
            "aghp_notatoken",
            "ghp_",
            "Validation Failed: labels: invalid",
            "é ghs",
        ] {
            assert_eq!(s.scrub(text), text);
        }
    }
}
