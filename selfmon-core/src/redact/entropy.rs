//! The high-entropy detector: unkeyed base64 and hex runs that look random and are not a known
//! harmless shape.
//!
//! Modelled on the two entropy plugins of Yelp's detect-secrets (Shannon entropy of base64 and of
//! hex strings) and on gitleaks's allowlists, with two additions that let it run on free text
//! rather than on quoted strings only: the run must also *switch character classes* often (random
//! text does on about every second character, identifiers and words rarely), and a run that is a
//! known harmless shape is skipped:
//!
//! - hex of exactly 40, 64 or 128 digits (git SHA-1, SHA-256 and SHA-512 content hashes, which the
//!   templater masks as `<HASH>`) and hex shorter than 32 (short SHAs, ids);
//! - UUIDs and anything of only hex and dashes whose groups are short;
//! - base64 that decodes to mostly printable text or starts with the magic of a common file
//!   format (PNG, JPEG, GIF, PDF, gzip, zip): data, not a secret;
//! - runs longer than [`MAX_SECRET_LEN`] (data blobs);
//! - runs keyed by an identifier or hash name (`request_id=`, `trace:`, `sha256:`, `commit `,
//!   `etag`, ...).
//!
//! A run is a maximal stretch of `[A-Za-z0-9+/_-]` and the joiners `.`, `~`, `$`, `%`, `:` (with up
//! to two `=` of padding), trimmed of joiners at its ends. Many credentials are several random
//! pieces joined by such a character (`<id>.<ts>.<hmac>` bot tokens, `dt0c01.<id>.<secret>`,
//! `<id>.atlasv1.<secret>`, `<x>8Q~<secret>` client secrets, `access_token$production$<id>$<hex>`,
//! `<prefix>%3D<secret>`), and a piece alone may be short, or look like data. So a run holding a
//! joiner and no `/` is judged whole first; then each joiner-separated piece is judged as a run of
//! its own (what was judged before joiners joined runs), and when any piece is a secret, **the whole
//! joined run** is (the pieces next to a secret are part of the same credential). When a run is not
//! a secret, its `/`-separated parts are judged on their own (a token in a URL path), then its
//! `-`/`_`-separated parts (a token after a prefix); a run holding a `/` keeps part-sized spans, so
//! a path around a token stays readable.

use std::ops::Range;

/// Shortest base64-like run judged.
pub const MIN_BASE64_LEN: usize = 20;
/// Shortest hex run judged.
pub const MIN_HEX_LEN: usize = 32;
/// Longest run judged; longer runs are data (images, compressed payloads), not credentials.
pub const MAX_SECRET_LEN: usize = 256;

/// `[A-Za-z0-9+/_-]`, as a table: the scan tests every byte of every text that leaves.
const RUN_BYTES: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'_' | b'-');
        b += 1;
    }
    t
};

/// Bytes that join the pieces of one credential (`.`, `~`, `$`, `%`, `:`); see the module docs.
const JOIN_BYTES: [bool; 256] = {
    let mut t = [false; 256];
    t[b'.' as usize] = true;
    t[b'~' as usize] = true;
    t[b'$' as usize] = true;
    t[b'%' as usize] = true;
    t[b':' as usize] = true;
    t
};

/// [`RUN_BYTES`] and [`JOIN_BYTES`]: the bytes a scanned run is made of.
const SCAN_BYTES: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = RUN_BYTES[b] || JOIN_BYTES[b];
        b += 1;
    }
    t
};

#[inline]
fn is_join_byte(b: u8) -> bool {
    JOIN_BYTES[b as usize]
}

#[inline]
fn is_scan_byte(b: u8) -> bool {
    SCAN_BYTES[b as usize]
}

/// Byte ranges of `text` that hold a high-entropy secret.
///
/// Only runs of at least [`MIN_BASE64_LEN`] run bytes are judged, so the scan looks at every
/// `MIN_BASE64_LEN`-th byte: when that byte is not a run byte, no judged run can hold any byte
/// before it, and the scan skips ahead; when it is, the run around it is found and measured. On
/// ordinary text (words and short tokens) that reads a small share of the bytes. The runs judged,
/// and so the spans, are those of [`spans_unfiltered`].
pub(crate) fn spans(text: &str) -> Vec<Range<usize>> {
    let bytes = text.as_bytes();
    let n = bytes.len();
    let mut out = Vec::new();
    // `i` is never inside a run that started before it: `i == 0` or `bytes[i - 1]` is no run byte.
    let mut i = 0;
    while i + MIN_BASE64_LEN <= n {
        let probe = i + MIN_BASE64_LEN - 1;
        if !is_scan_byte(bytes[probe]) {
            i = probe + 1;
            continue;
        }
        let mut start = probe;
        while start > i && is_scan_byte(bytes[start - 1]) {
            start -= 1;
        }
        let mut end = probe + 1;
        while end < n && is_scan_byte(bytes[end]) {
            end += 1;
        }
        if end - start >= MIN_BASE64_LEN {
            let run_end = end;
            while end < n && end - run_end < 2 && bytes[end] == b'=' {
                end += 1;
            }
            judge_run(text, start, end, &mut out);
        }
        i = end;
    }
    out
}

/// [`spans`] by a plain byte-by-byte scan: the reference its skipping scan is tested against.
#[cfg(test)]
pub(crate) fn spans_unfiltered(text: &str) -> Vec<Range<usize>> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    if bytes.len() < MIN_BASE64_LEN {
        return out;
    }
    let mut i = 0;
    while i < bytes.len() {
        if !is_scan_byte(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && is_scan_byte(bytes[i]) {
            i += 1;
        }
        if i - start >= MIN_BASE64_LEN {
            let mut end = i;
            while end < bytes.len() && end - i < 2 && bytes[end] == b'=' {
                end += 1;
            }
            judge_joined(text, start, end, &mut out);
            i = end;
        }
    }
    out
}

/// Judges the run `text[start..end]`, then its parts.
fn judge_run(text: &str, start: usize, end: usize, out: &mut Vec<Range<usize>>) {
    // A run of one character class (lower-case words and paths, upper-case names, numbers) holds
    // no secret, and neither do its parts: base64 needs two classes or more, and hex needs
    // both letters and digits. Most long runs of ordinary text stop here.
    if classes_in(&text.as_bytes()[start..end]) < 2 {
        return;
    }
    judge_joined(text, start, end, out);
}

/// Judges the scanned run `text[start..end]` (run bytes and joiners), trimmed of joiners at its
/// ends. Without a joiner, as a run. With one: each joiner-separated piece as a run (what was
/// judged before joiners joined runs), then each `/`-separated segment that holds a joiner as one
/// credential: a secret when it is one whole, or when a piece of it is.
fn judge_joined(text: &str, start: usize, end: usize, out: &mut Vec<Range<usize>>) {
    let b = text.as_bytes();
    let (mut start, mut end) = (start, end);
    while start < end && is_join_byte(b[start]) {
        start += 1;
    }
    while end > start && is_join_byte(b[end - 1]) {
        end -= 1;
    }
    if !b[start..end].iter().any(|&c| is_join_byte(c)) {
        if end - start >= MIN_BASE64_LEN {
            judge_run_and_parts(text, start, end, out);
        }
        return;
    }
    let mut pieces = Vec::new();
    let mut s = start;
    for j in (start..=end).filter(|&j| j == end || is_join_byte(b[j])) {
        if j - s >= MIN_BASE64_LEN {
            judge_run_and_parts(text, s, j, &mut pieces);
        }
        s = j + 1;
    }
    let mut segments: Vec<Range<usize>> = Vec::new();
    let mut s = start;
    for j in (start..=end).filter(|&j| j == end || b[j] == b'/') {
        let (mut a, mut z) = (s, j);
        while a < z && (is_join_byte(b[a]) || matches!(b[a], b'-' | b'_' | b'+')) {
            a += 1;
        }
        while z > a && (is_join_byte(b[z - 1]) || matches!(b[z - 1], b'-' | b'_' | b'+')) {
            z -= 1;
        }
        // URL-encoded text (`hello%20world%3A1`) mixes classes by its escapes: judged by its
        // pieces only.
        if b[a..z].iter().any(|&c| is_join_byte(c))
            && (pieces.iter().any(|p| p.start < z && a < p.end)
                || (!has_percent_escape(&b[a..z])
                    && has_random_piece(&b[a..z])
                    && judge_part(text, a, z).is_some()))
        {
            segments.push(a..z);
        }
        s = j + 1;
    }
    // The union of both, in text order and disjoint.
    pieces.extend(segments);
    pieces.sort_by_key(|r| r.start);
    for r in pieces {
        match out.last_mut() {
            Some(last) if last.end > r.start && last.start >= start => {
                last.end = last.end.max(r.end)
            }
            _ => out.push(r),
        }
    }
}

/// Whether some joiner-separated piece of `b` looks random on its own: 8 characters or more, two
/// classes or more, switching often. Names joined by dots (`ScheduledMethodRunnable.java:84`,
/// `org.apache.kafka`) have none and are not judged whole, though together they mix classes.
fn has_random_piece(b: &[u8]) -> bool {
    b.split(|&c| is_join_byte(c))
        .any(|p| p.len() >= 8 && classes_in(p) >= 2 && transitions(p) >= 0.3)
}

/// Whether `b` holds a URL escape (`%` and two hex digits).
fn has_percent_escape(b: &[u8]) -> bool {
    b.windows(3)
        .any(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit())
}

/// Judges the run `text[start..end]`, then its `/`-separated parts, then its `-`/`_`-separated
/// parts.
fn judge_run_and_parts(text: &str, start: usize, end: usize, out: &mut Vec<Range<usize>>) {
    if let Some(r) = judge_part(text, start, end) {
        out.push(r);
        return;
    }
    for sep in [b'/', b'-'] {
        let run = &text.as_bytes()[start..end];
        if !(run.contains(&sep) || (sep == b'-' && run.contains(&b'_'))) {
            continue;
        }
        let mut found = false;
        let mut s = start;
        for j in start..=end {
            let at_sep = j == end || {
                let b = text.as_bytes()[j];
                b == sep || (sep == b'-' && b == b'_') || (sep == b'-' && b == b'/')
            };
            if at_sep {
                if j > s {
                    if let Some(r) = judge_part(text, s, j) {
                        out.push(r);
                        found = true;
                    }
                }
                s = j + 1;
            }
        }
        if found {
            return;
        }
    }
}

/// `Some(range)` when `text[start..end]` (trimmed of separators) is a secret.
fn judge_part(text: &str, mut start: usize, mut end: usize) -> Option<Range<usize>> {
    let b = text.as_bytes();
    while start < end && (matches!(b[start], b'-' | b'_' | b'/' | b'+') || is_join_byte(b[start])) {
        start += 1;
    }
    while end > start
        && (matches!(b[end - 1], b'-' | b'_' | b'/' | b'+') || is_join_byte(b[end - 1]))
    {
        end -= 1;
    }
    let part = &text[start..end];
    let core = part.trim_end_matches('=');
    let len = core.len();
    if !(MIN_BASE64_LEN..=MAX_SECRET_LEN).contains(&len) {
        return None;
    }
    let cb = core.as_bytes();
    let (mut upper, mut lower, mut digit, mut other) = (0usize, 0usize, 0usize, 0usize);
    for &c in cb {
        match c {
            b'A'..=b'Z' => upper += 1,
            b'a'..=b'z' => lower += 1,
            b'0'..=b'9' => digit += 1,
            _ => other += 1,
        }
    }
    let hex_only = cb.iter().all(u8::is_ascii_hexdigit);
    if hex_only || is_dashed_hex(cb) {
        return judge_hex(text, start, core).then_some(start..end);
    }
    let classes = usize::from(upper > 0) + usize::from(lower > 0) + usize::from(digit > 0);
    // Cheapest test first: most runs in ordinary text (words, paths, identifiers) fail the class
    // or switch test, and never pay for the entropy.
    let entropy_floor = match classes {
        3 => 4.5,
        2 if len >= 32 && digit > 0 && other == 0 => 4.2,
        _ => return None,
    };
    let random = transitions(cb) >= 0.3
        && entropy(cb) >= (0.8 * (len.min(64) as f64).log2()).min(entropy_floor);
    // Mostly punctuation (`---___---`) is a separator line, not a key.
    if !random || other * 4 > len {
        return None;
    }
    if is_data(core) || harmless_key(&text[..start]) {
        return None;
    }
    Some(start..end)
}

/// Hex (`0x`-prefixed or not) that is long, mixed and not a hash shape nor keyed as an id or hash.
fn judge_hex(text: &str, start: usize, core: &str) -> bool {
    let hex = core
        .strip_prefix("0x")
        .or_else(|| core.strip_prefix("0X"))
        .unwrap_or(core);
    let hb = hex.as_bytes();
    if hb.contains(&b'-') {
        // UUIDs and other dashed hex: judged group by group by the caller.
        return false;
    }
    let len = hb.len();
    if len < MIN_HEX_LEN || matches!(len, 40 | 64 | 128) {
        return false;
    }
    let letters = hb.iter().filter(|c| c.is_ascii_alphabetic()).count();
    if letters == 0 || letters == len {
        return false;
    }
    entropy(hb) >= 3.0 && transitions(hb) >= 0.25 && !harmless_key(&text[..start])
}

/// How many of upper case, lower case and digits occur in `b`.
fn classes_in(b: &[u8]) -> u32 {
    let mut seen = 0u8;
    for &c in b {
        seen |= match c {
            b'A'..=b'Z' => 1,
            b'a'..=b'z' => 2,
            b'0'..=b'9' => 4,
            _ => 0,
        };
    }
    seen.count_ones()
}

fn is_dashed_hex(b: &[u8]) -> bool {
    b.contains(&b'-') && b.iter().all(|c| c.is_ascii_hexdigit() || *c == b'-')
}

/// Share of adjacent pairs that switch between upper case, lower case, digit and other.
fn transitions(b: &[u8]) -> f64 {
    if b.len() < 2 {
        return 0.0;
    }
    let class = |c: u8| match c {
        b'A'..=b'Z' => 0u8,
        b'a'..=b'z' => 1,
        b'0'..=b'9' => 2,
        _ => 3,
    };
    let switches = b.windows(2).filter(|w| class(w[0]) != class(w[1])).count();
    switches as f64 / (b.len() - 1) as f64
}

/// Shannon entropy in bits per character.
fn entropy(b: &[u8]) -> f64 {
    let mut counts = [0u32; 128];
    for &c in b {
        counts[usize::from(c & 0x7f)] += 1;
    }
    let n = b.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

/// Base64 that is data: a known file magic, or text once decoded.
fn is_data(core: &str) -> bool {
    const MAGIC: &[&str] = &[
        "iVBORw0KGgo",
        "/9j/",
        "R0lGOD",
        "JVBERi0",
        "H4sI",
        "UEsDB",
        "AAAA",
    ];
    if MAGIC.iter().any(|m| core.starts_with(m)) {
        return true;
    }
    let decoded = decode_base64(core);
    decoded.len() >= 12
        && decoded
            .iter()
            .filter(|&&c| c == b'\n' || c == b'\t' || (0x20..0x7f).contains(&c))
            .count()
            * 10
            >= decoded.len() * 9
}

/// Decodes standard or URL-safe base64 without padding checks; stops at the first other byte.
pub(super) fn decode_base64(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => break,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// Whether the text before a run names it as an identifier or a hash (`request_id=`, `sha256:`).
fn harmless_key(before: &str) -> bool {
    const KEYS: &[&str] = &[
        "request_id",
        "request-id",
        "requestid",
        "req_id",
        "trace_id",
        "trace-id",
        "traceid",
        "trace",
        "span_id",
        "spanid",
        "correlation_id",
        "correlation-id",
        "message_id",
        "message-id",
        "msg_id",
        "job_id",
        "run_id",
        "build_id",
        "commit",
        "sha",
        "sha1",
        "sha256",
        "sha512",
        "md5",
        "hash",
        "digest",
        "checksum",
        "etag",
        "revision",
        "rev",
        "object",
        "blob",
        "tree",
        "fingerprint",
        "nonce",
        "x-amz-request-id",
        "x-amz-id-2",
    ];
    let tail: &str = {
        let t = before.trim_end_matches([' ', '"', '\'', '=', ':', '\t', '(', '[']);
        let cut = t.len().saturating_sub(24);
        let cut = (cut..=t.len())
            .find(|&i| t.is_char_boundary(i))
            .unwrap_or(t.len());
        &t[cut..]
    };
    let lower = tail.to_ascii_lowercase();
    KEYS.iter().any(|k| {
        lower.ends_with(k)
            && lower[..lower.len() - k.len()]
                .bytes()
                .next_back()
                .is_none_or(|c| !c.is_ascii_alphanumeric())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flagged(s: &str) -> Vec<&str> {
        spans(s).into_iter().map(|r| &s[r]).collect()
    }

    #[test]
    fn random_base64_and_hex_runs_are_flagged() {
        for s in [
            "creds: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY end",
            "value Zx8Qm3Lp0Rt7Vb2Nc5Kd9Wf1 here",
            "hex 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822c end",
            "POST https://api.example.invalid/hooks/Ab3dE5gH7jK9mN1pQ3sT5vW7 404",
            "{\"k\":\"q7W9e2R4t6Y8u1I3o5P7a9S2d4F6g8H0\"}",
        ] {
            assert_eq!(flagged(s).len(), 1, "{s}");
        }
    }

    #[test]
    fn harmless_shapes_are_not_flagged() {
        for s in [
            "commit 3f786850e387550fdab836ed7e6dc881de23001b pushed",
            "HEAD is now at 3f78685 fix",
            "uuid 550e8400-e29b-41d4-a716-446655440000 created",
            "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "payload SGVsbG8sIHRoaXMgaXMgb3JkaW5hcnkgdGV4dCBkYXRh",
            "/srv/repos/code-indexer/src/server/app_handlers.rs",
            "HttpRequestHandlerFactory and AbstractSingletonProxyFactoryBean",
            "request_id=Xk29Dm3LqP0aZ7vB4nW8rT1y done",
            "deployment-web-frontend-7d9f8b6c5-x2k4p restarted",
            "md5 d41d8cd98f00b204e9800998ecf8427e ok",
        ] {
            assert!(flagged(s).is_empty(), "{s}: {:?}", flagged(s));
        }
    }
}
