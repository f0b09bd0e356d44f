//! Masking: values in a message replaced by typed placeholders.

use std::borrow::Cow;

use unicode_normalization::UnicodeNormalization;

use super::{memo, outcomes};

/// The masked text of `message` (step 1 only), as [`Templater::mask`](crate::template::Templater::mask) without a templater.
pub fn mask(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    mask_into(message, &mut out);
    out
}

/// Whether a template says enough to identify a problem on its own: at least two tokens that are
/// neither placeholders nor `<*>`. Exact template matches against known issues use only such
/// templates, so `<*> <*>` never swallows everything.
pub fn is_specific_template(template: &str) -> bool {
    split_spaces(template)
        .filter(|t| !t.is_empty() && !has_placeholder(t))
        .take(2)
        .count()
        >= 2
}

/// `s.split(' ')` by a plain byte loop: tokens are short, and the general searcher's setup costs
/// more than the scan.
pub(super) fn split_spaces(s: &str) -> SplitSpaces<'_> {
    SplitSpaces {
        s,
        pos: 0,
        done: false,
    }
}

/// The iterator of [`split_spaces`].
pub(super) struct SplitSpaces<'a> {
    s: &'a str,
    pos: usize,
    done: bool,
}

impl<'a> Iterator for SplitSpaces<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.done {
            return None;
        }
        let b = self.s.as_bytes();
        let start = self.pos;
        let end = find_space(b, start);
        if end >= b.len() {
            self.done = true;
        } else {
            self.pos = end + 1;
        }
        // Always a boundary (a space is one byte); `get` keeps the loop free of panics anyway.
        let tok = self.s.get(start..end);
        self.done |= tok.is_none();
        tok
    }
}

/// `0x0101..01` times a byte: that byte in every lane of a word.
const fn lanes(b: u8) -> u64 {
    0x0101_0101_0101_0101 * b as u64
}

/// The high bit of each byte lane of `w` that holds a byte below `n` (`n` at most 128) is set in
/// the result where the first such lane is; lanes above the first may be set wrongly, so only
/// "none" and the lowest set lane can be trusted.
fn lanes_below(w: u64, n: u8) -> u64 {
    w.wrapping_sub(lanes(n)) & !w & lanes(0x80)
}

/// The eight bytes of `b` from `i`, as a little-endian word, when there are eight.
fn word_at(b: &[u8], i: usize) -> Option<u64> {
    let chunk: [u8; 8] = b.get(i..i + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(chunk))
}

/// Whether `needle` occurs at least `n` times in `b`, eight bytes at a time.
pub(super) fn has_at_least(b: &[u8], needle: u8, n: usize) -> bool {
    let low7 = lanes(0x7f);
    let mut count = 0usize;
    let mut i = 0;
    while count < n {
        let Some(w) = word_at(b, i) else {
            return count + b[i..].iter().filter(|&&c| c == needle).count() >= n;
        };
        let x = w ^ lanes(needle);
        // The high bit of exactly the lanes that are zero (the bytes equal to `needle`); their sum
        // is the top byte of the product with `0x0101..01`.
        let equal = !(((x & low7).wrapping_add(low7)) | x | low7);
        count += ((equal >> 7).wrapping_mul(lanes(1)) >> 56) as usize;
        i += 8;
    }
    true
}

/// The first space in `b` from `from` (or `b.len()`), eight bytes at a time.
pub(super) fn find_space(b: &[u8], from: usize) -> usize {
    let mut i = from;
    while let Some(w) = word_at(b, i) {
        let spaces = lanes_below(w ^ lanes(b' '), 1);
        if spaces != 0 {
            return i + (spaces.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < b.len() && b[i] != b' ' {
        i += 1;
    }
    i
}

/// Masks `message` into `out` (appending).
pub(super) fn mask_into(message: &str, out: &mut String) {
    mask_into_by::<true>(message, out);
}

/// [`mask_into`] without its shortcuts (the leading timestamp, the common token shapes): the
/// reference the shortcuts are tested against.
#[cfg(test)]
pub(super) fn mask_into_general(message: &str, out: &mut String) {
    mask_into_by::<false>(message, out);
}

/// [`mask_into`] with its shortcuts (`FAST`) or without.
fn mask_into_by<const FAST: bool>(message: &str, out: &mut String) {
    let normalised: Cow<'_, str> = if crate::text::is_ascii(message.as_bytes()) {
        Cow::Borrowed(message)
    } else {
        Cow::Owned(message.nfkc().collect())
    };
    mask_normalised::<FAST>(&normalised, out, 0);
}

/// Quoted prose inside quoted prose inside a message is masked word by word; deeper quoted prose
/// is one `<STR>`. (A quoted value cannot hold its own quote unescaped, so with two quote
/// characters real text nests two deep at most; the bound keeps hostile input from recursing.)
const MAX_PROSE_DEPTH: u8 = 2;

/// Masks the NFKC-normalised `s` into `out` (appending); `depth` counts the quoted prose values
/// `s` is inside.
fn mask_normalised<const FAST: bool>(s: &str, out: &mut String, depth: u8) {
    let mask_token = if FAST { mask_token } else { mask_token_general };
    let start_len = out.len();
    let mut pos = 0usize;
    let mut prev_ends_colon = false;
    // The last token (raw), for a number after it that names an outcome (`status 137`); read
    // only when a token opens with a digit.
    let mut previous_token: &str = "";
    let mut glued = false;
    // Where the last three tokens start in `out`, newest last (for folding `Wed Jun 15 <TIME>`).
    let mut recent: [Option<usize>; 3] = [None; 3];
    // A syslog timestamp opening the line is recognised at once: what the loop below would make of
    // it (one `<TIME>`) and the token starts it would record on the way.
    let leading_time = if FAST {
        leading_syslog_time(s.as_bytes())
    } else {
        None
    };
    // Whether `out` may hold a run of equal value tokens for `collapse_value_lists` to fold: set
    // when the token just masked equals the two before it, and whenever a token is rewritten
    // after it was masked (a folded unit or date, a dropped restated value, a quoted value), where
    // the comparison below cannot follow. The general path always looks.
    let mut list_possible = !FAST;
    // Where the last token masked starts in `out` and its length (`usize::MAX`: a word, which
    // ends any run), and how many equal tokens end there.
    let mut last_start = start_len;
    let mut last_len = usize::MAX;
    let mut run = 0usize;
    if let Some(time) = leading_time {
        out.push_str("<TIME>");
        let month = start_len + time.weekday_len.map_or(0, |n| n + 1);
        recent = [
            Some(month),
            Some(month + time.month_len + 1),
            Some(start_len),
        ];
        pos = time.end;
        last_len = out.len() - start_len;
        run = 1;
    }
    while pos < s.len() {
        let Some(mut start) = next_non_space(s, pos) else {
            break;
        };
        // Where the search for the token's end starts: the bytes before it are word bytes.
        let mut scanned = start;
        // Whether a unit word here would fold into the number before it (`fold_unit_into_value`):
        // only a token opening with a letter (or `µ`) can be a unit, so only such a token asks.
        let first = s.as_bytes()[start];
        let mut after_number =
            (!FAST || BYTE_CLASSES[usize::from(first)] & C_ALPHA != 0 || first >= 0x80)
                && recent[2].is_some()
                && ends_in_number(out);
        // Plain words (most tokens) stay as they are and no rule below looks at them, except a
        // unit after a number: a run of them is copied at once, when no number is before it.
        // (The first byte first: most tokens that are not words show it there.)
        if FAST
            && BYTE_CLASSES[usize::from(first)] & C_WORD != 0
            && !(glued && start == pos)
            && !after_number
        {
            let run_of = plain_word_run(s.as_bytes(), start);
            if run_of.words > 0 {
                if out.len() > start_len {
                    out.push(' ');
                }
                let base = out.len();
                out.push_str(&s[start..run_of.end]);
                let at = |k: usize| Some(base + (run_of.starts[k] - start));
                recent = match run_of.words {
                    1 => [recent[1], recent[2], at(2)],
                    2 => [recent[2], at(1), at(2)],
                    _ => [at(0), at(1), at(2)],
                };
                previous_token = &s[run_of.starts[2]..run_of.end];
                prev_ends_colon = false;
                glued = false;
                after_number = false;
                // A word ends any run of equal value tokens.
                last_len = usize::MAX;
                run = 0;
                pos = run_of.end;
            }
            match run_of.next {
                // The token that ended the run (or opened it) is masked below, its end searched
                // for from where the run stopped.
                Some((next, stop)) => {
                    start = next;
                    scanned = stop;
                }
                None => continue,
            }
        }
        let (end, quoted) = next_space(s, scanned);
        let tok = &s[start..end];
        let previous = std::mem::replace(&mut previous_token, tok);
        if out.len() > start_len && !(glued && start == pos) {
            out.push(' ');
        }
        glued = false;
        if let Some((open, close)) = quoted
            .then(|| quoted_value(s, start, tok, prev_ends_colon))
            .flatten()
        {
            let quote = s.as_bytes()[open];
            // The key part (`name=`, `"user":`) is kept, the value masked; what follows the
            // closing quote is scanned on as part of the same token.
            let key = &s[start..open];
            if !key.is_empty() {
                mask_token(key, out);
            }
            mask_quoted_into::<FAST>(&s[open + 1..close], quote, out, depth);
            list_possible = true;
            recent = [None; 3];
            prev_ends_colon = false;
            // `"GET / HTTP/1.1" 404`: the status follows the quoted request.
            previous_token = s[open + 1..close].rsplit(' ').next().unwrap_or("");
            pos = close + 1;
            glued = true;
            continue;
        }
        let token_start = out.len();
        if let Some(prev) = recent[2].filter(|_| after_number || !FAST) {
            if fold_unit_into_value(out, prev, tok) {
                list_possible = true;
                if recent[1].is_some_and(|before| drops_restated_value(out, before, prev)) {
                    out.truncate(prev.saturating_sub(1).max(start_len));
                    recent = [None, recent[0], recent[1]];
                }
                prev_ends_colon = tok.as_bytes().last() == Some(&b':');
                pos = end;
                continue;
            }
        }
        if tok.as_bytes().first().is_some_and(u8::is_ascii_digit)
            && outcomes::keeps_number(outcomes::number_after(previous), tok)
        {
            // An exit status, HTTP status, errno or signal names the outcome: not a value.
            out.push_str(tok);
            list_possible = true;
            recent = [recent[1], recent[2], Some(token_start)];
            prev_ends_colon = false;
            pos = end;
            continue;
        }
        mask_token(tok, out);
        // A restated value opens with `(`: tested here first, as most tokens do not.
        if out.as_bytes().get(token_start) == Some(&b'(')
            && recent[2].is_some_and(|prev| {
                drops_restated_value(out, prev, token_start)
                    || names_the_address(out, prev, token_start, tok)
            })
        {
            // `512 bytes (0.5 KB) sent` is `512 bytes sent` said twice: one value; and
            // `from 10.0.0.5 (db1.example.at)` or `from 10.0.0.5 ()` is the address with what
            // its reverse lookup found (or nothing).
            out.truncate(token_start.saturating_sub(1).max(start_len));
            list_possible = true;
            pos = end;
            continue;
        }
        let masked_at = token_start;
        let token_start = fold_date_into_time(out, &recent, token_start);
        if token_start != masked_at {
            list_possible = true;
        }
        if !list_possible {
            let len = out.len() - token_start;
            let b = out.as_bytes();
            let same = len == last_len && b[last_start..last_start + len] == b[token_start..];
            run = if same { run + 1 } else { 1 };
            list_possible = run >= MIN_LIST_RUN;
            last_start = token_start;
            last_len = len;
        }
        recent = [recent[1], recent[2], Some(token_start)];
        prev_ends_colon = tok.as_bytes().last() == Some(&b':');
        pos = end;
    }
    if list_possible {
        collapse_value_lists(out, start_len);
    }
}

/// Whether `out` (without one trailing space) ends in `<NUM>`, where a unit word after it may fold
/// into the value (see [`fold_unit_into_value`]).
fn ends_in_number(out: &str) -> bool {
    let b = out.as_bytes();
    let end = b.len() - usize::from(b.last() == Some(&b' '));
    end >= 5 && b[end - 5..end] == *b"<NUM>"
}

/// A run of plain words, as [`plain_word_run`] finds it.
struct WordRun {
    /// How many words the run holds (0: the token at its start is not a plain word).
    words: usize,
    /// Where its last word ends.
    end: usize,
    /// Where its last three words start, the last last (as many as there are).
    starts: [usize; 3],
    /// The token that ended the run, when it follows the run's last word after one space (or
    /// opens the run): where it starts, and the first byte of it that is not a word byte.
    next: Option<(usize, usize)>,
}

/// The plain words from `start` on (only [`C_WORD`] bytes, not opening with `(`, each followed by
/// whitespace or the end), separated by single spaces: what [`mask_normalised`] would copy one by
/// one, as [`mask_token`] keeps a word as it is. A word opening with `(` may be the empty reverse
/// lookup after an address (`()`, see [`names_the_address`]), so it takes the general way.
fn plain_word_run(b: &[u8], start: usize) -> WordRun {
    let mut run = WordRun {
        words: 0,
        end: start,
        starts: [start; 3],
        next: None,
    };
    let mut i = start;
    loop {
        let t = i;
        if b.get(t) == Some(&b'(') {
            run.next = Some((t, t));
            break;
        }
        i = word_bytes_end(b, i);
        let Some(&c) = b.get(i) else {
            if i > t {
                run.words += 1;
                run.starts = [run.starts[1], run.starts[2], t];
                run.end = i;
            }
            break;
        };
        match ascii_space(c) {
            Some(true) if i > t => {
                run.words += 1;
                run.starts = [run.starts[1], run.starts[2], t];
                run.end = i;
                if c != b' ' {
                    break;
                }
                i += 1;
            }
            // Two spaces: the next token is found as usual.
            Some(true) => break,
            _ => {
                run.next = Some((t, i));
                break;
            }
        }
    }
    run
}

/// The first byte of `b` from `i` that is not a word byte ([`C_WORD`]: a letter, `_`, `-`, `(`,
/// `)`), or `b.len()`; eight bytes at a time.
pub(super) fn word_bytes_end(b: &[u8], mut i: usize) -> usize {
    const HIGH: u64 = lanes(0x80);
    // The lanes (their high bits) where the 7-bit `u` equals `c`, exactly (no borrow crosses a
    // lane: each is at least 0x80 before the subtraction).
    let equal = |u: u64, c: u8| !(((u ^ lanes(c)) | HIGH).wrapping_sub(lanes(1))) & HIGH;
    while let Some(w) = word_at(b, i) {
        let low = w & lanes(0x7f);
        // Lower-cased: a letter is 0x61..=0x7a.
        let lower = low | lanes(0x20) | HIGH;
        let letter = lower.wrapping_sub(lanes(0x61)) & !lower.wrapping_sub(lanes(0x7b)) & HIGH;
        let word = letter | equal(low, b'_') | equal(low, b'-') | equal(low & lanes(0x7e), b'(');
        // Non-ASCII bytes are not word bytes.
        let stop = !word & HIGH | (w & HIGH);
        if stop != 0 {
            return i + (stop.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < b.len() && BYTE_CLASSES[usize::from(b[i])] & C_WORD != 0 {
        i += 1;
    }
    i
}

/// A unit word after a number is part of the value (`403 bytes`, `0.5 KB`, `3 sec`): when `tok`
/// is a unit and the token masked just before it (from `prev` in `out`) ends in `<NUM>`, that
/// placeholder becomes `<SIZE>` or `<DURATION>` and the unit is not a token of its own. Returns
/// whether it folded `tok`.
fn fold_unit_into_value(out: &mut String, prev: usize, tok: &str) -> bool {
    let end = out.len() - usize::from(out.ends_with(' '));
    // Byte-wise (a fixed-size compare): this runs for every token.
    let ends_with_num = end >= prev + 5 && out.as_bytes()[end - 5..end] == *b"<NUM>";
    if !ends_with_num {
        return false;
    }
    let unit = trim_tail_punct(tok);
    // One letter is a unit only as `B` (`93.0 B`): `s`, `m`, `h`, `d` alone are as often names.
    if unit.len() < 2 && unit != "B" {
        return false;
    }
    // `us` alone is a word more often than microseconds.
    let kind = match unit_kind(unit.as_bytes()) {
        Some(kind) if unit != "us" => kind,
        _ => return false,
    };
    // Only a value token: `(<NUM>`, `<<NUM>`, `<NUM>`, not `count=<NUM>` or `blk_<NUM>`.
    let before = &out[prev..end - "<NUM>".len()];
    if before
        .bytes()
        .any(|b| !matches!(b, b'(' | b'[' | b'<' | b'~'))
    {
        return false;
    }
    out.truncate(end - "<NUM>".len());
    out.push_str(kind);
    out.push_str(&tok[unit.len()..]);
    true
}

/// Tokens a run of one repeated value token needs to be taken for a list.
const MIN_LIST_RUN: usize = 3;

/// Folds every run of at least [`MIN_LIST_RUN`] equal value tokens in `out[start_len..]` into one
/// token: `delete blk_1 blk_2 blk_3` and `delete blk_4` are one event with a list of values of
/// varying length. Pairs stay (`<TIME> <TIME>` is a date and a time, `<NUM> <NUM>` a status and a
/// size).
pub(super) fn collapse_value_lists(out: &mut String, start_len: usize) {
    let b = &out.as_bytes()[start_len..];
    // Each token of a list holds a placeholder, so a `<`: most lines have too few to hold one.
    if !has_at_least(b, b'<', MIN_LIST_RUN) {
        return;
    }
    // One pass over the tokens (split at every space, empty ones included): where each run of
    // equal tokens ends, a run long enough to be a list of values gives the bytes to cut (its
    // tokens after the first, with the spaces before them).
    let mut cuts: Vec<(usize, usize)> = Vec::new();
    let mut prev = (0usize, 0usize);
    let mut head_end = 0usize;
    let mut run = 0usize;
    let mut pos = 0usize;
    let mut close_run = |run: usize, head_end: usize, prev: (usize, usize)| {
        if run >= MIN_LIST_RUN && has_placeholder_bytes(&b[prev.0..prev.1]) {
            cuts.push((head_end, prev.1));
        }
    };
    loop {
        let end = find_space(b, pos);
        if run > 0 && b[pos..end] == b[prev.0..prev.1] {
            run += 1;
        } else {
            close_run(run, head_end, prev);
            run = 1;
            head_end = end;
        }
        prev = (pos, end);
        if end >= b.len() {
            break;
        }
        pos = end + 1;
    }
    close_run(run, head_end, prev);
    if cuts.is_empty() {
        return;
    }
    let mut folded = String::with_capacity(b.len());
    let masked = &out[start_len..];
    let mut from = 0;
    for (cut_start, cut_end) in cuts {
        folded.push_str(&masked[from..cut_start]);
        from = cut_end;
    }
    folded.push_str(&masked[from..]);
    // Folding rejoins the tokens, so spaces opening the text (empty tokens before the first)
    // do not survive it.
    let kept = folded.trim_start_matches(' ').len();
    out.truncate(start_len);
    out.push_str(&folded[folded.len() - kept..]);
}

/// [`collapse_value_lists`] as it was written first (tokens collected, then rejoined): the
/// reference it is tested against.
#[cfg(test)]
pub(super) fn collapse_value_lists_general(out: &mut String, start_len: usize) {
    let masked = &out[start_len..];
    let tokens: Vec<&str> = masked.split(' ').collect();
    if !tokens
        .windows(MIN_LIST_RUN)
        .any(|w| has_placeholder(w[0]) && w.iter().all(|t| *t == w[0]))
    {
        return;
    }
    let mut folded = String::with_capacity(masked.len());
    let mut i = 0;
    while i < tokens.len() {
        let tok = tokens[i];
        let mut j = i + 1;
        while j < tokens.len() && tokens[j] == tok {
            j += 1;
        }
        let keep = if j - i >= MIN_LIST_RUN && has_placeholder(tok) {
            1
        } else {
            j - i
        };
        for _ in 0..keep {
            if !folded.is_empty() {
                folded.push(' ');
            }
            folded.push_str(tok);
        }
        i = j;
    }
    out.truncate(start_len);
    out.push_str(&folded);
}

/// Whether `tok` (raw, masked into `out` from `start`) is the name of the address masked just
/// before it (from `prev`, exactly `<IP>`), in parentheses, as reverse lookups print it: a dotted
/// DNS name whose last label is letters (any suffix: `(x.sh.inode.at)`), or nothing at all
/// (`()`, the lookup found none). Either way the message is the same event as with `(<HOST>)`,
/// which the restated-value rule drops.
fn names_the_address(out: &str, prev: usize, start: usize, tok: &str) -> bool {
    if start <= prev || out[prev..start].trim_end() != "<IP>" {
        return false;
    }
    let Some(inner) = tok
        .trim_end_matches([',', ';', ':'])
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
    else {
        return false;
    };
    if inner.is_empty() {
        return true;
    }
    let b = inner.as_bytes();
    let labels_ok = b
        .split(|&c| c == b'.')
        .all(|l| !l.is_empty() && l.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-'));
    let last = b.rsplit(|&c| c == b'.').next().unwrap_or(b"");
    b.contains(&b'.') && labels_ok && last.len() >= 2 && last.iter().all(u8::is_ascii_alphabetic)
}

/// Whether the token masked from `start` is a value restated in parentheses (`(<SIZE>)`,
/// `(<NUM>),`) right after a value token (from `prev`: `<SIZE>`, `(<NUM>`, `<<DURATION>`).
fn drops_restated_value(out: &str, prev: usize, start: usize) -> bool {
    // Cheap rejection first: a restated value opens with `(`.
    if start <= prev || out.as_bytes().get(start) != Some(&b'(') {
        return false;
    }
    let this = out[start..].trim_end_matches([',', ';', '.']);
    let restated = this
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .is_some_and(is_placeholder);
    let previous = out[prev..start]
        .trim_end()
        .trim_start_matches(['(', '[', '~']);
    let previous = if previous.starts_with("<<") {
        &previous[1..]
    } else {
        previous
    };
    restated && is_placeholder(previous)
}

/// Weekday names, which open a date (see [`fold_date_into_time`]).
pub(super) const WEEKDAYS: &[&str] = &[
    "Mon",
    "Tue",
    "Wed",
    "Thu",
    "Fri",
    "Sat",
    "Sun",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
/// Month names, which open a date (see [`fold_date_into_time`]).
pub(super) const MONTH_NAMES: &[&str] = &[
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
    "January",
    "February",
    "March",
    "April",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
    "Sept",
];

/// A weekday or month name is part of the timestamp it opens: when the token just masked (from
/// `start` in `out`) is a `<TIME>` preceded by `<month> <day>` (and optionally a weekday before
/// that), the whole run becomes one `<TIME>`, so `at Wed Jun 15 12:00:00` and `at Sat Jun 18
/// 09:30:00` are one template. Returns where the (possibly folded) token now starts.
fn fold_date_into_time(out: &mut String, recent: &[Option<usize>; 3], start: usize) -> usize {
    // Its first byte first: this runs for every token, and nearly none is a time (or opens with
    // the punctuation one may stand behind).
    match out.as_bytes().get(start) {
        // Most value tokens open with their placeholder: only a time's can fold.
        Some(b'<') if out.as_bytes().get(start + 1) != Some(&b'T') => return start,
        Some(&b) if b == b'<' || is_lead_punct(b) => {}
        _ => return start,
    }
    let lead = |t: &str| t.len() - trim_lead_punct(t).len();
    let this = &out[start..];
    let core = &this[lead(this)..];
    if core.as_bytes().first() != Some(&b'<') || !core.starts_with("<TIME>") {
        return start;
    }
    let token = |from: usize, to: usize| out[from..to].trim_end_matches(' ');
    let (Some(day), Some(month)) = (recent[2], recent[1]) else {
        return start;
    };
    // After a fold, the starts recorded for the folded tokens point past the folded `<TIME>`
    // (`Nov 14 22:13:57 10:00:00`): only tokens in order can be a date.
    if !(month < day && day < start) {
        return start;
    }
    let day_text = token(day, start);
    let month_text = token(month, day);
    let is_name = |t: &str, names: &[&str]| {
        let core = &t[lead(t)..];
        names.iter().any(|n| n.eq_ignore_ascii_case(core))
    };
    if day_text != "<NUM>" || !is_name(month_text, MONTH_NAMES) {
        return start;
    }
    let first = match recent[0] {
        Some(w) if w < month && is_name(token(w, month), WEEKDAYS) => w,
        _ => month,
    };
    // The first token's leading punctuation, then the time from its placeholder on: what lies
    // between goes (in place, without copying either part out).
    let first_lead = lead(&out[first..]);
    let time_start = start + lead(&out[start..]);
    out.replace_range(first + first_lead..time_start, "");
    first
}

/// A timestamp in the syslog style at the start of a line, as [`leading_syslog_time`] finds it.
struct LeadingTime {
    /// Where the timestamp ends (a whitespace byte or the end of the line).
    end: usize,
    /// The length of the weekday name before the month, if there is one.
    weekday_len: Option<usize>,
    /// The length of the month name.
    month_len: usize,
}

/// `[weekday] month day clock` at the very start of `b` with three-letter names (`Jun 14
/// 15:16:01`, `Wed Jun  4 09:30:00.123`), each a token of its own: the tokens that [`mask_into`]
/// masks token by token and [`fold_date_into_time`] folds into one `<TIME>`. Anything else (long
/// names, punctuation, a zone, a year, non-ASCII whitespace) is left to the general path.
fn leading_syslog_time(b: &[u8]) -> Option<LeadingTime> {
    // The end of a non-empty run of ASCII whitespace from `from`.
    let spaces_end = |from: usize| {
        let n = b
            .get(from..)?
            .iter()
            .take_while(|&&c| ascii_space(c) == Some(true))
            .count();
        (n > 0).then_some(from + n)
    };
    // Most lines fail at once: their fourth byte is not a space.
    let (weekday_len, month_start) = match three_letter_name(b, 0)? {
        Name::Weekday => (Some(3), spaces_end(3)?),
        Name::Month => (None, 0),
    };
    if weekday_len.is_some() && three_letter_name(b, month_start)? != Name::Month {
        return None;
    }
    let day_start = spaces_end(month_start + 3)?;
    let day_end = day_start + digits_run(b, day_start);
    if day_end == day_start {
        return None;
    }
    let clock_start = spaces_end(day_end)?;
    let end = clock_start + parse_clock(&b[clock_start..])?;
    if end < b.len() && ascii_space(b[end]) != Some(true) {
        return None;
    }
    Some(LeadingTime {
        end,
        weekday_len,
        month_len: 3,
    })
}

/// What a three-letter name is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Name {
    /// One of [`WEEKDAYS`].
    Weekday,
    /// One of [`MONTH_NAMES`].
    Month,
}

/// The three-letter weekday or month name (of [`WEEKDAYS`] and [`MONTH_NAMES`], in any case) that
/// `b` holds from `at` as a token of its own (ASCII whitespace after it), if any.
pub(super) fn three_letter_name(b: &[u8], at: usize) -> Option<Name> {
    let w = b.get(at..at + 4)?;
    if ascii_space(w[3]) != Some(true) || !w[..3].iter().all(u8::is_ascii_alphabetic) {
        return None;
    }
    match [
        w[0].to_ascii_lowercase(),
        w[1].to_ascii_lowercase(),
        w[2].to_ascii_lowercase(),
    ]
    .as_slice()
    {
        b"mon" | b"tue" | b"wed" | b"thu" | b"fri" | b"sat" | b"sun" => Some(Name::Weekday),
        b"jan" | b"feb" | b"mar" | b"apr" | b"may" | b"jun" | b"jul" | b"aug" | b"sep" | b"oct"
        | b"nov" | b"dec" => Some(Name::Month),
        _ => None,
    }
}

/// Whitespace as `char::is_whitespace` has it, byte-wise for ASCII (`None`: a non-ASCII byte).
fn ascii_space(b: u8) -> Option<bool> {
    // A table lookup, not a `match`: that compiled to a jump table, which mispredicted on most
    // tokens.
    (b < 0x80).then_some(BYTE_CLASSES[usize::from(b)] & C_SPACE != 0)
}

fn next_non_space(s: &str, from: usize) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = from;
    while i < b.len() {
        match ascii_space(b[i]) {
            Some(true) => i += 1,
            Some(false) => return Some(i),
            None => {
                let c = s[i..].chars().next()?;
                if !c.is_whitespace() {
                    return Some(i);
                }
                i += c.len_utf8();
            }
        }
    }
    None
}

/// Where the token starting at `from` ends, and whether it holds a quote (only then can it hold a
/// quoted value).
fn next_space(s: &str, from: usize) -> (usize, bool) {
    let b = s.as_bytes();
    let mut i = from;
    let mut quote = false;
    // Eight bytes at a time up to the first control, space or non-ASCII byte (the loop below
    // decides what that byte is). The lowest flagged lane of each test is exact.
    while let Some(w) = word_at(b, i) {
        let quotes = lanes_below(w ^ lanes(b'"'), 1) | lanes_below(w ^ lanes(b'\''), 1);
        let stop = lanes_below(w, 0x21) | (w & lanes(0x80));
        if stop != 0 {
            quote |= quotes != 0 && quotes.trailing_zeros() < stop.trailing_zeros();
            i += (stop.trailing_zeros() / 8) as usize;
            break;
        }
        quote |= quotes != 0;
        i += 8;
    }
    while i < b.len() {
        match ascii_space(b[i]) {
            Some(true) => return (i, quote),
            Some(false) => {
                quote |= matches!(b[i], b'"' | b'\'');
                i += 1;
            }
            None => {
                let Some(c) = s[i..].chars().next() else {
                    return (s.len(), quote);
                };
                if c.is_whitespace() {
                    return (i, quote);
                }
                i += c.len_utf8();
            }
        }
    }
    (s.len(), quote)
}

/// Byte offsets (within `tok`, in order) where the opening quote of a quoted value may be: after
/// `=` or `:` inside the token (`name="x`, `"user":"x`), or at the start of the token when the
/// previous token ended with `:` (`"user": "x"`, `KeyError: 'x'`).
fn quoted_value_starts(tok: &str, prev_ends_colon: bool) -> impl Iterator<Item = usize> + '_ {
    let b = tok.as_bytes();
    let first = (prev_ends_colon && matches!(b.first(), Some(b'"' | b'\''))).then_some(0);
    first.into_iter().chain(
        (1..b.len()).filter(|&i| matches!(b[i], b'"' | b'\'') && matches!(b[i - 1], b'=' | b':')),
    )
}

/// The quoted value the token `tok` (from `start` in `s`) opens: where its opening and closing
/// quotes are in `s`. The first opening quote (see [`quoted_value_starts`]) that is closed
/// counts: one left open (`x:'a`) does not hide a value after it (`x:'a:"b c"`), which masking
/// the text again would find (masking is idempotent).
fn quoted_value(s: &str, start: usize, tok: &str, prev_ends_colon: bool) -> Option<(usize, usize)> {
    quoted_value_starts(tok, prev_ends_colon).find_map(|q| {
        let open = start + q;
        let quote = *s.as_bytes().get(open)?;
        find_closing_quote(s, open + 1, quote).map(|close| (open, close))
    })
}

fn find_closing_quote(s: &str, from: usize, quote: u8) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = from;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            c if c == quote => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// Masks a quoted value (without its quotes) into `out`. One token is one value: its kind
/// (`<NUM>`, `<PATH>`, ...) or `<STR>`. Prose (several words) is what the message says, as in
/// `{"level":"error","msg":"disk full on /var"}` or `msg="out of memory"`: its words are masked
/// like the words of any message, inside the quotes, so different messages logged with the same
/// keys are different templates. Prose that masking folds into one value (`"5 KB"`, `"1 2 3"`) is
/// one value, which keeps masking idempotent.
fn mask_quoted_into<const FAST: bool>(value: &str, quote: u8, out: &mut String, depth: u8) {
    let v = value.trim();
    if depth < MAX_PROSE_DEPTH && v.contains(char::is_whitespace) {
        let before = out.len();
        out.push(char::from(quote));
        let words = out.len();
        mask_normalised::<FAST>(v, out, depth + 1);
        if out.as_bytes()[words..].contains(&b' ') {
            out.push(char::from(quote));
            return;
        }
        out.truncate(before);
    }
    out.push_str(mask_quoted(value));
}

fn mask_quoted(value: &str) -> &'static str {
    let v = value.trim();
    if !v.is_empty() && !v.contains(char::is_whitespace) {
        if let Some(m) = classify(v) {
            return m;
        }
    }
    "<STR>"
}

/// Whether `tok` contains a placeholder such as `<NUM>` or `<*>`.
pub(super) fn has_placeholder(tok: &str) -> bool {
    has_placeholder_bytes(tok.as_bytes())
}

/// [`has_placeholder`] of a token's bytes.
fn has_placeholder_bytes(b: &[u8]) -> bool {
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'<' {
            let mut j = i + 1;
            while j < b.len() && (b[j].is_ascii_uppercase() || b[j] == b'*' || b[j] == b'.') {
                j += 1;
            }
            if j > i + 1 && j < b.len() && b[j] == b'>' {
                return true;
            }
            i = j;
        } else {
            i += 1;
        }
    }
    false
}

fn is_placeholder(tok: &str) -> bool {
    let b = tok.as_bytes();
    b.len() >= 3
        && b[0] == b'<'
        && b[b.len() - 1] == b'>'
        && b[1..b.len() - 1]
            .iter()
            .all(|c| c.is_ascii_uppercase() || *c == b'*' || *c == b'.')
}

/// Punctuation that can open a token around its core (`(`, `[`, `{`, quotes).
fn is_lead_punct(b: u8) -> bool {
    BYTE_CLASSES[usize::from(b)] & C_LEAD != 0
}

/// Punctuation that can close a token after its core (brackets, quotes, `,;.:!?`).
fn is_tail_punct(b: u8) -> bool {
    BYTE_CLASSES[usize::from(b)] & C_TAIL != 0
}

/// `s` without its leading punctuation (byte-wise: every such character is ASCII).
pub(super) fn trim_lead_punct(s: &str) -> &str {
    let n = s.bytes().take_while(|&b| is_lead_punct(b)).count();
    &s[n..]
}

/// `s` without its trailing punctuation.
pub(super) fn trim_tail_punct(s: &str) -> &str {
    let b = s.as_bytes();
    let mut end = b.len();
    while end > 0 && is_tail_punct(b[end - 1]) {
        end -= 1;
    }
    &s[..end]
}

pub(super) fn mask_token(token: &str, out: &mut String) {
    // The most common tokens, decided from one pass over the token without its trailing
    // punctuation (each gives what the general path below gives, without its trims and tests):
    // a word, or a word wrapped in punctuation (`sent,`, `'name'`, `[INFO]`) stays as it is, and
    // digits (`42`, `42,`, `512)`) are a number.
    let b = token.as_bytes();
    let mut end = b.len();
    while end > 0 && is_tail_punct(b[end - 1]) {
        end -= 1;
    }
    let (any, all) = byte_classes_of(&b[..end]);
    // Only letters, `_`, `-` and parentheses before the tail: a word, whatever its punctuation.
    // No digit, `.`, `:`, `/`, `\`, `@`, `=` or `<` before the tail: no value test can match (a
    // UUID could only by length, hence the bound).
    if all & C_WORD != 0 || (all & C_SAFE != 0 && end < 36) {
        out.push_str(token);
        return;
    }
    if end > 0 && all & C_DIGIT != 0 {
        out.push_str("<NUM>");
        out.push_str(&token[end..]);
        return;
    }
    // The rest take more work, and the same ones recur (host names, `proc[pid]:`, class names):
    // the memo keeps what they gave.
    if token.len() <= memo::MAX_TOKEN {
        memo::masked(token, out, |out| mask_token_slow(token, end, any, all, out));
    } else {
        mask_token_slow(token, end, any, all, out);
    }
}

/// The [`BYTE_CLASSES`] of the bytes of `b` or-ed and and-ed (`0` and `u16::MAX` for none), four
/// bytes a step.
fn byte_classes_of(b: &[u8]) -> (u16, u16) {
    let class = |c: u8| BYTE_CLASSES[usize::from(c)];
    let mut any = 0u16;
    let mut all = u16::MAX;
    let mut chunks = b.chunks_exact(4);
    for c in &mut chunks {
        let (k0, k1, k2, k3) = (class(c[0]), class(c[1]), class(c[2]), class(c[3]));
        any |= (k0 | k1) | (k2 | k3);
        all &= (k0 & k1) & (k2 & k3);
    }
    for &c in chunks.remainder() {
        let k = class(c);
        any |= k;
        all &= k;
    }
    (any, all)
}

/// [`mask_token`] for a token that is not a word, a word in punctuation or a number: `end` is
/// where its trailing punctuation starts, `any` and `all` its bytes' classes before that, or-ed
/// and and-ed.
fn mask_token_slow(token: &str, end: usize, any: u16, all: u16, out: &mut String) {
    let b = token.as_bytes();
    if is_identifier_with_digits(b, end, any, all) {
        mask_identifier(token, end, out);
        return;
    }
    // No leading punctuation (and so not a placeholder, nor `[` of an IPv6 address): the token is
    // its core and its tail, and the pass above gave the core's shape.
    if end > 0 && !is_lead_punct(b[0]) && b[0] != b'<' {
        mask_core_shaped(&token[..end], Shape::from_classes(any, all), out, 0);
        out.push_str(&token[end..]);
        return;
    }
    mask_token_general(token, out);
}

/// Whether `token` (`b`, its trailing punctuation from `end`, its bytes' classes before that
/// `any` and `all`) is an identifier with digits (`ssh2`, `node-246`, `sshd[19939]:`): a letter,
/// then only letters, digits, `_`, `-`, brackets and parentheses. Of the value tests only a UUID
/// (by its length), a hex id (which its digits are masked to as well) and an error code can match
/// it, and [`mask_identifier`] masks it.
fn is_identifier_with_digits(b: &[u8], end: usize, any: u16, all: u16) -> bool {
    all & C_IDENT != 0 && any & C_DIGIT != 0 && b[0].is_ascii_alphabetic() && end != 36
}

/// Masks an [identifier with digits](is_identifier_with_digits) whose trailing punctuation starts
/// at `end`: an error code stays, other digits are masked (its bytes are ASCII).
fn mask_identifier(token: &str, end: usize, out: &mut String) {
    let core = &token[..end];
    if is_error_code(core) || outcomes::is_foreign_error_code(core) {
        out.push_str(core);
    } else {
        mask_ascii_digits(core, out);
    }
    out.push_str(&token[end..]);
}

/// The placeholder of a boolean value.
const BOOL: &str = "<BOOL>";

/// `true` or `false` in any case: as a key's value (`ret:false`, `interactive=true`), a value
/// whichever it is.
fn is_bool(core: &str) -> bool {
    match core.len() {
        4 => core.eq_ignore_ascii_case("true"),
        5 => core.eq_ignore_ascii_case("false"),
        _ => false,
    }
}

/// [`mask_token`] without its shortcuts: every token gives the same text through either.
pub(super) fn mask_token_general(token: &str, out: &mut String) {
    if is_placeholder(token) {
        out.push_str(token);
        return;
    }
    if token.starts_with('[') {
        let trimmed = trim_tail_punct(token);
        if is_ipv6(trimmed.as_bytes()) && trimmed.contains("]:") {
            out.push_str("<IP>");
            out.push_str(&token[trimmed.len()..]);
            return;
        }
    }
    let core_and_tail = trim_lead_punct(token);
    let lead = &token[..token.len() - core_and_tail.len()];
    let core = trim_tail_punct(core_and_tail);
    let tail = &core_and_tail[core.len()..];
    out.push_str(lead);
    if !core.is_empty() {
        mask_core(core, out, 0);
    }
    if !tail.is_empty() {
        out.push_str(tail);
    }
}

fn mask_core(core: &str, out: &mut String, depth: u8) {
    mask_core_shaped(core, Shape::of(core.as_bytes()), out, depth);
}

/// [`mask_core`] with the core's [`Shape`] known.
fn mask_core_shaped(core: &str, shape: Shape, out: &mut String, depth: u8) {
    // Most tokens are words: nothing to classify.
    if shape.word {
        // A boolean is a value as a key's value (`depth` > 0); alone it is as often the word
        // that tells a short message (`isScreenOn true`).
        out.push_str(if depth > 0 && is_bool(core) {
            BOOL
        } else {
            core
        });
        return;
    }
    // Already masked (partly): leave as is, so masking is idempotent.
    if shape.lt && has_placeholder(core) {
        out.push_str(core);
        return;
    }
    // An error code before the value tests: `AA00000` (an error code's shape) is not `<HEX>`, as
    // the identifier shortcut of `mask_token` has it (masking a code would make two failures one).
    if is_error_code(core) || outcomes::is_foreign_error_code(core) {
        out.push_str(core);
        return;
    }
    if let Some(m) = classify_shaped(core, shape) {
        out.push_str(m);
        return;
    }
    if depth < 4 && (shape.eq || shape.colon) {
        if let Some((key, sep, value)) = split_key_value(core) {
            out.push_str(key);
            out.push(sep);
            if !value.is_empty() {
                let v = trim_lead_punct(value);
                out.push_str(&value[..value.len() - v.len()]);
                if outcomes::keeps_number(outcomes::outcome_key(trim_lead_punct(key)), v) {
                    // `status=503`, `exit_code=137`: the outcome, not a value.
                    out.push_str(v);
                } else if !v.is_empty() {
                    mask_core(v, out, depth + 1);
                }
            }
            return;
        }
    }
    if shape.digit {
        if shape.colon && core.contains("\":") {
            mask_digits_keeping_outcomes(core, out);
        } else {
            mask_digits(core, out);
        }
    } else {
        out.push_str(core);
    }
}

/// [`mask_digits`], but a JSON outcome (`"status":503`, `"exit_code":137`, see
/// [`outcomes`]) keeps its number.
fn mask_digits_keeping_outcomes(core: &str, out: &mut String) {
    let mut from = 0;
    while let Some(i) = core[from..].find("\":") {
        let quote = from + i;
        let number_start = quote + 2;
        // Byte-wise: the byte after the last one outside `[A-Za-z0-9_]` starts a character.
        let key_start = core.as_bytes()[..quote]
            .iter()
            .rposition(|&b| !(b.is_ascii_alphanumeric() || b == b'_'))
            .map_or(0, |j| j + 1);
        let digits = core.as_bytes()[number_start..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let number_end = number_start + digits;
        let ends = core
            .as_bytes()
            .get(number_end)
            .is_none_or(|b| !b.is_ascii_alphanumeric());
        let after = outcomes::outcome_key(&core[key_start.max(from)..quote]);
        if ends && outcomes::keeps_number(after, &core[number_start..number_end]) {
            // Split at non-alphanumerics, so the rest is masked as it would be whole.
            mask_digits(&core[from..number_start], out);
            out.push_str(&core[number_start..number_end]);
            from = number_end;
        } else {
            mask_digits(&core[from..number_start], out);
            from = number_start;
        }
    }
    mask_digits(&core[from..], out);
}

/// `SUBSYSTEM-CATEGORY-NNN` (the same rule as [`crate::model::ErrorCode::parse`], without
/// allocating).
pub(super) fn is_error_code(t: &str) -> bool {
    // Cheap rejection first: the shortest code is `AA-BB-NNN`, and every code ends in `-NNN`.
    let b = t.as_bytes();
    if b.len() < 9 || b[b.len() - 4] != b'-' {
        return false;
    }
    let mut parts = t.split('-');
    let (Some(a), Some(b), Some(n), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let word = |p: &str| (2..=8).contains(&p.len()) && p.bytes().all(|c| c.is_ascii_uppercase());
    word(a) && word(b) && n.len() == 3 && n.bytes().all(|c| c.is_ascii_digit())
}

/// Where the ASCII byte `needle` first occurs in `s` (a plain loop: tokens are short, and a
/// searcher's setup costs more than the scan).
fn byte_position(s: &str, needle: u8) -> Option<usize> {
    s.bytes().position(|b| b == needle)
}

/// `key=value` (any non-empty key) or `key:value` (an identifier key).
fn split_key_value(core: &str) -> Option<(&str, char, &str)> {
    if let Some(i) = byte_position(core, b'=').filter(|&i| i > 0) {
        return Some((&core[..i], '=', &core[i + 1..]));
    }
    let i = byte_position(core, b':').filter(|&i| i > 0)?;
    let key = &core[..i];
    let b = key.as_bytes();
    let ident = (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'));
    if ident && i + 1 < core.len() {
        Some((key, ':', &core[i + 1..]))
    } else {
        None
    }
}

/// Masks the alphanumeric segments of `s` that hold digits: a hex-looking segment (7+ hex digits
/// with a letter) becomes `<HEX>`, a segment where letters sit between digits (`x7Fg9`) `<ID>`, and
/// otherwise each digit run `<NUM>` (`ssh2` → `ssh<NUM>`). A `-` directly before a digit run and
/// after a non-alphanumeric is a sign and is absorbed (`blk_-42` → `blk_<NUM>`).
pub(super) fn mask_digits(s: &str, out: &mut String) {
    if s.is_ascii() {
        mask_ascii_digits(s, out);
    } else {
        mask_digits_by_char(s, out);
    }
}

/// [`mask_digits`] for ASCII text in one pass: text that stays is copied in runs, each segment is
/// decided from the classes gathered while it is scanned (as [`mask_segment`] decides it).
fn mask_ascii_digits(s: &str, out: &mut String) {
    let b = s.as_bytes();
    // `s[flushed..i]` is text that stays as it is and is not pushed yet.
    let mut flushed = 0;
    let mut i = 0;
    let mut prev_alnum = false;
    while i < b.len() {
        let c = b[i];
        if BYTE_CLASSES[usize::from(c)] & (C_DIGIT | C_ALPHA) == 0 {
            // A `-` after a non-alphanumeric and before a digit is a sign: absorbed.
            if c == b'-' && !prev_alnum && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
                out.push_str(&s[flushed..i]);
                flushed = i + 1;
            }
            prev_alnum = false;
            i += 1;
            continue;
        }
        let start = i;
        // The segment's bytes' classes, or-ed and and-ed: one lookup per byte and no branch on
        // what each byte is.
        let mut any = 0u16;
        let mut all = u16::MAX;
        while i < b.len() {
            let k = BYTE_CLASSES[usize::from(b[i])];
            if k & (C_DIGIT | C_ALPHA) == 0 {
                break;
            }
            any |= k;
            all &= k;
            i += 1;
        }
        prev_alnum = true;
        if any & C_DIGIT == 0 {
            continue;
        }
        let whole = if any & C_ALPHA == 0 {
            // Only digits: one run with no letters before it, a number.
            Some("<NUM>")
        } else if i - start >= 7 && all & C_HEX != 0 {
            Some(if i - start >= 32 { "<HASH>" } else { "<HEX>" })
        } else if has_letters_between_digits(&b[start..i]) {
            Some("<ID>")
        } else {
            None
        };
        if let Some(placeholder) = whole {
            out.push_str(&s[flushed..start]);
            out.push_str(placeholder);
            flushed = i;
            continue;
        }
        // Each digit run: a short one glued to two or more letters stays, others are `<NUM>`
        // (see [`keeps_digit_run`]).
        let mut k = start;
        let mut letters_before = 0usize;
        while k < i {
            if b[k].is_ascii_digit() {
                let run = digits_run(&b[..i], k);
                if !keeps_digit_run(run, letters_before, k + run == i) {
                    out.push_str(&s[flushed..k]);
                    out.push_str("<NUM>");
                    flushed = k + run;
                }
                k += run;
                letters_before = 0;
            } else {
                letters_before += 1;
                k += 1;
            }
        }
    }
    out.push_str(&s[flushed..]);
}

/// Whether letters stand between two digits in the ASCII alphanumeric segment `seg` (`a1b2`): a
/// random identifier.
fn has_letters_between_digits(seg: &[u8]) -> bool {
    let Some(first_digit) = seg.iter().position(u8::is_ascii_digit) else {
        return false;
    };
    let rest = &seg[first_digit..];
    let Some(letter) = rest.iter().position(|c| !c.is_ascii_digit()) else {
        return false;
    };
    rest[letter..].iter().any(u8::is_ascii_digit)
}

/// [`mask_digits`] character by character (any text; the reference the ASCII pass is tested
/// against).
pub(super) fn mask_digits_by_char(s: &str, out: &mut String) {
    let b = s.as_bytes();
    let mut i = 0;
    let mut prev_alnum = false;
    while i < b.len() {
        let (alnum, len) = alnum_char_at(s, i);
        if !alnum {
            let next_is_digit = b.get(i + len).is_some_and(u8::is_ascii_digit);
            if !(b[i] == b'-' && next_is_digit && !prev_alnum) {
                // One byte is an ASCII character: pushed as one, not copied as a slice.
                if len == 1 {
                    out.push(char::from(b[i]));
                } else {
                    out.push_str(&s[i..i + len]);
                }
            }
            prev_alnum = false;
            i += len;
            continue;
        }
        let start = i;
        i += len;
        while i < b.len() {
            let (alnum, len) = alnum_char_at(s, i);
            if !alnum {
                break;
            }
            i += len;
        }
        mask_segment(&s[start..i], out);
        prev_alnum = true;
    }
}

/// Whether the character at byte `i` of `s` is alphanumeric (Unicode), and its length in bytes.
fn alnum_char_at(s: &str, i: usize) -> (bool, usize) {
    let b = s.as_bytes()[i];
    if b < 0x80 {
        return (b.is_ascii_alphanumeric(), 1);
    }
    s[i..]
        .chars()
        .next()
        .map_or((false, 1), |c| (c.is_alphanumeric(), c.len_utf8()))
}

pub(super) fn mask_segment(seg: &str, out: &mut String) {
    let b = seg.as_bytes();
    // One pass for what decides the segment: digits, hex digits, letters, letters between digits.
    let mut digit = false;
    let mut all_hex = true;
    let mut alpha = false;
    let mut letters_after_digit = false;
    let mut letters_between_digits = false;
    for &c in b {
        if c.is_ascii_digit() {
            letters_between_digits |= letters_after_digit;
            digit = true;
        } else {
            letters_after_digit |= digit;
        }
        all_hex &= c.is_ascii_hexdigit();
        alpha |= c.is_ascii_alphabetic();
    }
    if !digit {
        out.push_str(seg);
        return;
    }
    if b.len() >= 7 && all_hex && alpha {
        out.push_str(if b.len() >= 32 { "<HASH>" } else { "<HEX>" });
        return;
    }
    // Letters between two digit runs: a random identifier.
    if letters_between_digits {
        out.push_str("<ID>");
        return;
    }
    mask_digit_runs(seg, out);
}

/// [`mask_segment`] as it was written first (a pass per test): the reference it is tested against.
#[cfg(test)]
pub(super) fn mask_segment_general(seg: &str, out: &mut String) {
    let b = seg.as_bytes();
    if !b.iter().any(u8::is_ascii_digit) {
        out.push_str(seg);
        return;
    }
    if b.len() >= 7
        && b.iter().all(u8::is_ascii_hexdigit)
        && b.iter().any(|c| c.is_ascii_alphabetic())
    {
        out.push_str(if b.len() >= 32 { "<HASH>" } else { "<HEX>" });
        return;
    }
    // Letters between two digit runs: a random identifier.
    let mut seen_digit = false;
    let mut letters_after_digit = false;
    for c in b {
        if c.is_ascii_digit() {
            if letters_after_digit {
                out.push_str("<ID>");
                return;
            }
            seen_digit = true;
        } else if seen_digit {
            letters_after_digit = true;
        }
    }
    mask_digit_runs(seg, out);
}

/// Whether a digit run of `run` digits after `letters_before` letters of an alphanumeric
/// segment (ending the segment: `at_end`) is part of a name rather than a value. One digit glued
/// to a word (`sqlite3`, `en0`, `ssh2`, `utf8`, `md5`) and a short run inside one (`log4j`,
/// `win32k`) name a thing; a run of two or more digits ending the name (`bglio46`,
/// `an14`, `db12`, `node07`) numbers one of many siblings, as `bglio559` does: a value, or the
/// same failure on each host would be a problem of its own per host. Runs after a single letter
/// (`t12`, `u0`) and runs of three or more are counters and numbers.
fn keeps_digit_run(run: usize, letters_before: usize, at_end: bool) -> bool {
    letters_before >= 2 && (run == 1 || (run == 2 && !at_end))
}

/// The digit runs of a segment masked: a digit run that is part of a name stays (see
/// [`keeps_digit_run`]), others are `<NUM>`.
fn mask_digit_runs(seg: &str, out: &mut String) {
    let b = seg.as_bytes();
    let mut i = 0;
    let mut letters_before = 0usize;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let run = digits_run(b, i);
            if keeps_digit_run(run, letters_before, i + run == b.len()) {
                out.push_str(&seg[i..i + run]);
            } else {
                out.push_str("<NUM>");
            }
            i += run;
            letters_before = 0;
        } else {
            // The run of non-digits up to the next digit, pushed at once (counted in characters).
            let run_end = b[i..]
                .iter()
                .position(u8::is_ascii_digit)
                .map_or(b.len(), |n| i + n);
            let run = &seg[i..run_end];
            letters_before += if run.is_ascii() {
                run.len()
            } else {
                run.chars().count()
            };
            out.push_str(run);
            i = run_end;
        }
    }
}

/// Which separators and kinds of character a token holds: one pass over its bytes, so each
/// value test below runs only on tokens that have what it needs (a URL has `://`, an e-mail `@`,
/// an IPv4 address and a host name a `.`, a path a slash). Every token that is not a plain word
/// reaches [`classify`], and most are not values.
#[derive(Clone, Copy)]
struct Shape {
    /// Only letters, `_`, `-` and parentheses: a word, nothing to mask.
    word: bool,
    lt: bool,
    eq: bool,
    colon: bool,
    slash: bool,
    backslash: bool,
    dot: bool,
    at: bool,
    all_hex: bool,
    digit: bool,
    alpha: bool,
}

impl Shape {
    fn of(b: &[u8]) -> Shape {
        // What some byte is, and what every byte is.
        let mut any = 0u16;
        let mut all = u16::MAX;
        for &c in b {
            let k = BYTE_CLASSES[usize::from(c)];
            any |= k;
            all &= k;
        }
        Shape::from_classes(any, all)
    }

    /// The shape of bytes whose [`BYTE_CLASSES`] or-ed together give `any` and and-ed `all`.
    fn from_classes(any: u16, all: u16) -> Shape {
        Shape {
            word: all & C_WORD != 0,
            lt: any & C_LT != 0,
            eq: any & C_EQ != 0,
            colon: any & C_COLON != 0,
            slash: any & C_SLASH != 0,
            backslash: any & C_BACKSLASH != 0,
            dot: any & C_DOT != 0,
            at: any & C_AT != 0,
            all_hex: all & C_HEX != 0,
            digit: any & C_DIGIT != 0,
            alpha: any & C_ALPHA != 0,
        }
    }
}

const C_DIGIT: u16 = 1;
const C_ALPHA: u16 = 1 << 1;
const C_HEX: u16 = 1 << 2;
/// Letters, `_`, `-`, `(` and `)`.
pub(super) const C_WORD: u16 = 1 << 3;
const C_LT: u16 = 1 << 4;
const C_EQ: u16 = 1 << 5;
const C_COLON: u16 = 1 << 6;
const C_SLASH: u16 = 1 << 7;
const C_BACKSLASH: u16 = 1 << 8;
const C_DOT: u16 = 1 << 9;
const C_AT: u16 = 1 << 10;
/// [`C_WORD`] bytes and punctuation that no value test looks at: `,;!?"'` and backquote,
/// brackets and braces.
const C_SAFE: u16 = 1 << 11;

/// Letters, digits, `_`, `-`, brackets and parentheses: what identifiers are made of.
const C_IDENT: u16 = 1 << 12;

/// Punctuation that can open a token ([`is_lead_punct`]).
const C_LEAD: u16 = 1 << 13;
/// Punctuation that can close a token ([`is_tail_punct`]).
const C_TAIL: u16 = 1 << 14;
/// ASCII whitespace, as `char::is_whitespace` has it ([`ascii_space`]).
const C_SPACE: u16 = 1 << 15;

/// The `C_*` classes of each byte.
pub(super) static BYTE_CLASSES: [u16; 256] = byte_classes();

const fn byte_classes() -> [u16; 256] {
    let mut t = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        let mut k = 0;
        if c.is_ascii_digit() {
            k |= C_DIGIT | C_HEX;
        }
        if c.is_ascii_alphabetic() {
            k |= C_ALPHA | C_WORD;
        }
        if c.is_ascii_hexdigit() {
            k |= C_HEX;
        }
        if c.is_ascii_alphabetic()
            || matches!(
                c,
                b'_' | b'-'
                    | b'('
                    | b')'
                    | b','
                    | b';'
                    | b'!'
                    | b'?'
                    | b'"'
                    | b'\''
                    | b'`'
                    | b'['
                    | b']'
                    | b'{'
                    | b'}'
            )
        {
            k |= C_SAFE;
        }
        if c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'(' | b')' | b'[' | b']') {
            k |= C_IDENT;
        }
        if matches!(c, b'(' | b'[' | b'{' | b'"' | b'\'' | b'`') {
            k |= C_LEAD;
        }
        if matches!(
            c,
            b')' | b']' | b'}' | b'"' | b'\'' | b',' | b';' | b'.' | b':' | b'`' | b'!' | b'?'
        ) {
            k |= C_TAIL;
        }
        if matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
            k |= C_SPACE;
        }
        k |= match c {
            b'_' | b'-' | b'(' | b')' => C_WORD,
            b'<' => C_LT,
            b'=' => C_EQ,
            b':' => C_COLON,
            b'/' => C_SLASH,
            b'\\' => C_BACKSLASH,
            b'.' => C_DOT,
            b'@' => C_AT,
            _ => 0,
        };
        t[i] = k;
        i += 1;
    }
    t
}

/// The placeholder for a whole value token, if it is one.
fn classify(t: &str) -> Option<&'static str> {
    classify_shaped(t, Shape::of(t.as_bytes()))
}

/// [`classify`] with the token's [`Shape`] known.
fn classify_shaped(t: &str, shape: Shape) -> Option<&'static str> {
    let b = t.as_bytes();
    if b.is_empty() {
        return None;
    }
    if shape.colon && shape.slash && b.windows(3).any(|w| w == b"://") {
        return Some("<URL>");
    }
    if is_uuid(b) {
        return Some("<UUID>");
    }
    if shape.at && is_email(b) {
        return Some("<EMAIL>");
    }
    if shape.dot && is_ipv4(b) {
        return Some("<IP>");
    }
    if is_time(b) {
        return Some("<TIME>");
    }
    if shape.colon && is_ipv6(b) {
        return Some("<IP>");
    }
    if (shape.slash || shape.backslash) && is_path(t) {
        return Some("<PATH>");
    }
    if (t.starts_with("0x") || t.starts_with("0X"))
        && b.len() > 2
        && b[2..].iter().all(u8::is_ascii_hexdigit)
    {
        return Some("<HEX>");
    }
    if b.len() >= 7 && shape.all_hex && shape.digit && shape.alpha {
        return Some(if b.len() >= 32 { "<HASH>" } else { "<HEX>" });
    }
    if is_number(b) {
        return Some("<NUM>");
    }
    if let Some(kind) = number_with_unit(b) {
        return Some(kind);
    }
    if shape.dot && is_host(b) {
        return Some("<HOST>");
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

fn is_email(b: &[u8]) -> bool {
    let Some(at) = b.iter().position(|&c| c == b'@') else {
        return false;
    };
    let (local, domain) = (&b[..at], &b[at + 1..]);
    !local.is_empty()
        && domain.contains(&b'.')
        && domain.first() != Some(&b'.')
        && domain.last() != Some(&b'.')
        && !b.contains(&b'/')
        && local
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || b"._%+-".contains(c))
        && domain
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-')
}

/// `b` without one leading `-` or `+`.
fn strip_sign(b: &[u8]) -> &[u8] {
    match b.first() {
        Some(b'-' | b'+') => &b[1..],
        _ => b,
    }
}

fn is_number(b: &[u8]) -> bool {
    let t = strip_sign(b);
    // Cheap rejection first: most tokens that reach here are not numbers.
    if !t.first().is_some_and(u8::is_ascii_digit) {
        return false;
    }
    let (mantissa, exp) = match t.iter().position(|&c| c == b'e' || c == b'E') {
        Some(i) if i > 0 => (&t[..i], Some(&t[i + 1..])),
        _ => (t, None),
    };
    let ok_mantissa = mantissa
        .iter()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'_' | b','))
        && mantissa.last().is_some_and(u8::is_ascii_digit);
    let ok_exp = exp.is_none_or(|e| {
        let e = strip_sign(e);
        !e.is_empty() && e.iter().all(u8::is_ascii_digit)
    });
    ok_mantissa && ok_exp
}

/// Units that make a number a duration (what [`unit_kind`] matches, listed for its tests).
#[cfg(test)]
pub(super) const DURATION_UNITS: &[&str] = &[
    "ns", "us", "µs", "μs", "ms", "s", "sec", "secs", "second", "seconds", "m", "min", "mins", "h",
    "hr", "hrs", "d", "day", "days",
];
/// Units that make a number a size (what [`unit_kind`] matches, listed for its tests).
#[cfg(test)]
pub(super) const SIZE_UNITS: &[&str] = &[
    "b", "kb", "mb", "gb", "tb", "pb", "kib", "mib", "gib", "tib", "k", "g", "bytes",
];

/// `<DURATION>` for a unit of time, `<SIZE>` for a unit of size (in any case):
/// lower-cased into a buffer and matched, as this runs for every word after a number.
pub(super) fn unit_kind(unit: &[u8]) -> Option<&'static str> {
    const LONGEST: usize = 7;
    if unit.is_empty() || unit.len() > LONGEST {
        return None;
    }
    let mut buf = [0u8; LONGEST];
    for (to, from) in buf.iter_mut().zip(unit) {
        *to = from.to_ascii_lowercase();
    }
    match &buf[..unit.len()] {
        b"ns" | b"us" | b"\xc2\xb5s" | b"\xce\xbcs" | b"ms" | b"s" | b"sec" | b"secs"
        | b"second" | b"seconds" | b"m" | b"min" | b"mins" | b"h" | b"hr" | b"hrs" | b"d"
        | b"day" | b"days" => Some("<DURATION>"),
        b"b" | b"kb" | b"mb" | b"gb" | b"tb" | b"pb" | b"kib" | b"mib" | b"gib" | b"tib" | b"k"
        | b"g" | b"bytes" => Some("<SIZE>"),
        _ => None,
    }
}

/// `12ms`, `3.5s`, `1h30m` (durations), `10MB`, `1.5GiB` (sizes).
fn number_with_unit(t: &[u8]) -> Option<&'static str> {
    let mut rest = t;
    let mut kind: Option<&'static str> = None;
    while !rest.is_empty() {
        let num_len = rest
            .iter()
            .position(|&c| !(c.is_ascii_digit() || c == b'.'))
            .unwrap_or(rest.len());
        if num_len == 0 || !rest[0].is_ascii_digit() {
            return None;
        }
        let after = &rest[num_len..];
        let unit_len = after
            .iter()
            .position(u8::is_ascii_digit)
            .unwrap_or(after.len());
        let unit = &after[..unit_len];
        let this = unit_kind(unit)?;
        if kind.is_some_and(|k| k != this) {
            return None;
        }
        kind = Some(this);
        rest = &after[unit_len..];
    }
    kind
}

fn digits_run(b: &[u8], i: usize) -> usize {
    let mut j = i;
    while j < b.len() && b[j].is_ascii_digit() {
        j += 1;
    }
    j.saturating_sub(i)
}

/// Dates and times: `2024-01-02`, `2024/01/02`, `02/01/2024`, `17/06/09`, `12:30`, `12:30:45.123`,
/// `2024-01-02T12:30:45.123+02:00`, `20240102T123045Z`-free forms; optional `Z` or offset.
fn is_time(b: &[u8]) -> bool {
    if !b.first().is_some_and(u8::is_ascii_digit) {
        return false;
    }
    let mut i = 0;
    let mut matched = false;
    if let Some(n) = parse_date(b) {
        i = n;
        matched = true;
        if i < b.len() && matches!(b[i], b'T' | b'_' | b':' | b'-') {
            match parse_clock(&b[i + 1..]) {
                Some(n) => i += 1 + n,
                None => return false,
            }
        }
    } else if let Some(n) = parse_clock(b) {
        i = n;
        matched = true;
    }
    if !matched {
        return false;
    }
    // Zone: Z, +hh:mm, +hhmm, -hh.
    if i < b.len() && b[i] == b'Z' {
        i += 1;
    } else if i < b.len() && matches!(b[i], b'+' | b'-') {
        let rest = &b[i + 1..];
        let ok = rest.len() == 2 && rest.iter().all(u8::is_ascii_digit)
            || rest.len() == 4 && rest.iter().all(u8::is_ascii_digit)
            || rest.len() == 5
                && rest[2] == b':'
                && rest
                    .iter()
                    .enumerate()
                    .all(|(k, c)| k == 2 || c.is_ascii_digit());
        if ok {
            i = b.len();
        }
    }
    i == b.len()
}

const MONTHS: &[&[u8]] = &[
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

fn parse_date(b: &[u8]) -> Option<usize> {
    let a = digits_run(b, 0);
    // Common log format: 10/Oct/2000
    if (1..=2).contains(&a) && b.get(a) == Some(&b'/') && b.len() >= a + 9 {
        let mon = &b[a + 1..a + 4];
        if MONTHS.contains(&mon) && b[a + 4] == b'/' && digits_run(b, a + 5) == 4 {
            return Some(a + 9);
        }
    }
    let sep = *b.get(a)?;
    if !matches!(sep, b'-' | b'/' | b'.') {
        return None;
    }
    let m = digits_run(b, a + 1);
    if b.get(a + 1 + m) != Some(&sep) {
        return None;
    }
    let d = digits_run(b, a + 2 + m);
    let ok = (a == 4 && (1..=2).contains(&m) && (1..=2).contains(&d))
        || ((1..=2).contains(&a) && (1..=2).contains(&m) && (d == 2 || d == 4));
    // Dotted forms (`1.2.3`) are versions unless they look like dd.mm.yyyy.
    if sep == b'.' && !(a <= 2 && d == 4) {
        return None;
    }
    ok.then_some(a + 2 + m + d)
}

fn parse_clock(b: &[u8]) -> Option<usize> {
    let h = digits_run(b, 0);
    if !(1..=2).contains(&h) || b.get(h) != Some(&b':') {
        return None;
    }
    let m = digits_run(b, h + 1);
    if m != 2 {
        return None;
    }
    let mut i = h + 1 + m;
    if b.get(i) == Some(&b':') {
        let s = digits_run(b, i + 1);
        if s != 2 {
            return None;
        }
        i += 1 + s;
        if matches!(b.get(i), Some(b'.' | b',')) {
            let f = digits_run(b, i + 1);
            if f == 0 {
                return None;
            }
            i += 1 + f;
        }
    }
    Some(i)
}

/// `b` without a `:port` suffix (a non-empty run of digits after the last `:`), if it has one.
fn without_port(b: &[u8]) -> &[u8] {
    match b.iter().rposition(|&c| c == b':') {
        Some(i) if i + 1 < b.len() && b[i + 1..].iter().all(u8::is_ascii_digit) => &b[..i],
        _ => b,
    }
}

/// IPv4 with an optional `:port` and an optional leading `/` (`/10.0.0.1:50010`), read in one
/// pass: four groups of one to three digits, then `:` and digits or nothing.
pub(super) fn is_ipv4(t: &[u8]) -> bool {
    let t = t.strip_prefix(b"/").unwrap_or(t);
    let mut i = 0;
    for group in 0..4 {
        if group > 0 {
            if t.get(i) != Some(&b'.') {
                return false;
            }
            i += 1;
        }
        let n = digits_run(t, i);
        if !(1..=3).contains(&n) {
            return false;
        }
        i += n;
    }
    match t.get(i) {
        None => true,
        Some(b':') => i + 1 < t.len() && t[i + 1..].iter().all(u8::is_ascii_digit),
        Some(_) => false,
    }
}

/// [`is_ipv4`] as it was written first (the port cut off, the rest split at dots): the reference
/// it is tested against.
#[cfg(test)]
pub(super) fn is_ipv4_general(t: &[u8]) -> bool {
    let t = t.strip_prefix(b"/").unwrap_or(t);
    let host = without_port(t);
    let mut parts = 0;
    for p in host.split(|&c| c == b'.') {
        parts += 1;
        if p.is_empty() || p.len() > 3 || !p.iter().all(u8::is_ascii_digit) {
            return false;
        }
    }
    parts == 4
}

/// IPv6 (`fe80::1`, `[::1]:8080`, `2001:db8::1%eth0`) and colon-separated hardware addresses.
fn is_ipv6(t: &[u8]) -> bool {
    let v6 = t.strip_prefix(b"[").unwrap_or(t);
    let v6 = v6.split(|&c| c == b']').next().unwrap_or(v6);
    let v6 = v6.split(|&c| c == b'%').next().unwrap_or(v6);
    let mut colons = 0usize;
    let mut hex = false;
    // The current colon-separated group: its length and whether it holds a `.`.
    let mut group = 0usize;
    let mut group_dot = false;
    for &c in v6 {
        match c {
            b':' => {
                if group > 4 && !group_dot {
                    return false;
                }
                colons += 1;
                group = 0;
                group_dot = false;
            }
            b'.' => {
                group += 1;
                group_dot = true;
            }
            _ if c.is_ascii_hexdigit() => {
                group += 1;
                hex = true;
            }
            _ => return false,
        }
    }
    colons >= 2 && hex && (group <= 4 || group_dot)
}

fn is_path(t: &str) -> bool {
    let b = t.as_bytes();
    if b.len() < 2 {
        return false;
    }
    if b[0] == b'/'
        || t.starts_with("./")
        || t.starts_with("../")
        || t.starts_with("~/")
        || t.starts_with("\\\\")
    {
        return b[0] != b'/' || b[1] != b'/' || b.len() > 2;
    }
    if b.len() > 2 && b[0].is_ascii_alphabetic() && b[1] == b':' && (b[2] == b'\\' || b[2] == b'/')
    {
        return true;
    }
    let slashes = b.iter().filter(|&&c| c == b'/').count();
    let backslashes = b.iter().filter(|&&c| c == b'\\').count();
    if slashes >= 2 || backslashes >= 2 {
        return t.split(['/', '\\']).filter(|s| !s.is_empty()).count() >= 2;
    }
    if slashes == 1 || backslashes == 1 {
        // `src/main.rs`, `app\models.py`: one separator and a file name with an extension.
        let last = t.rsplit(['/', '\\']).next().unwrap_or("");
        let first = t.split(['/', '\\']).next().unwrap_or("");
        return !first.is_empty()
            && last.split_once('.').is_some_and(|(stem, ext)| {
                !stem.is_empty() && ext.starts_with(|c: char| c.is_ascii_alphabetic())
            });
    }
    false
}

/// DNS suffixes that make a dotted name a host name ([`is_host_suffix`] matches them).
pub(super) const HOST_SUFFIXES: &[&str] = &[
    "com",
    "org",
    "net",
    "edu",
    "gov",
    "mil",
    "int",
    "io",
    "local",
    "localdomain",
    "internal",
    "lan",
    "corp",
    "home",
    "arpa",
    "cloud",
    "dev",
    "app",
    "info",
    "biz",
    "co",
    "uk",
    "de",
    "fr",
    "jp",
    "cn",
    "ru",
    "nl",
    "eu",
    "us",
    "ca",
    "au",
    "in",
    "br",
];

/// The length of the longest of [`HOST_SUFFIXES`].
const LONGEST_HOST_SUFFIX: usize = {
    let mut longest = 0;
    let mut i = 0;
    while i < HOST_SUFFIXES.len() {
        if HOST_SUFFIXES[i].len() > longest {
            longest = HOST_SUFFIXES[i].len();
        }
        i += 1;
    }
    longest
};

/// Whether `label` is one of [`HOST_SUFFIXES`], in any case: lower-cased into a buffer and matched
/// (this runs for every dotted token that is not an address).
pub(super) fn is_host_suffix(label: &[u8]) -> bool {
    if !(2..=LONGEST_HOST_SUFFIX).contains(&label.len()) {
        return false;
    }
    let mut buf = [0u8; LONGEST_HOST_SUFFIX];
    for (to, from) in buf.iter_mut().zip(label) {
        *to = from.to_ascii_lowercase();
    }
    matches!(
        &buf[..label.len()],
        b"com"
            | b"org"
            | b"net"
            | b"edu"
            | b"gov"
            | b"mil"
            | b"int"
            | b"io"
            | b"local"
            | b"localdomain"
            | b"internal"
            | b"lan"
            | b"corp"
            | b"home"
            | b"arpa"
            | b"cloud"
            | b"dev"
            | b"app"
            | b"info"
            | b"biz"
            | b"co"
            | b"uk"
            | b"de"
            | b"fr"
            | b"jp"
            | b"cn"
            | b"ru"
            | b"nl"
            | b"eu"
            | b"us"
            | b"ca"
            | b"au"
            | b"in"
            | b"br"
    )
}

/// A DNS name ending in a common suffix (`api.github.com`, `db-1.cluster.local:5432`), or in a
/// two-letter country suffix with at least three labels, one holding a digit or `-` as the names
/// of addresses do (`5.36.59.76.dynamic-dsl-ip.omantel.net.om`; not `com.tencent.mm`).
pub(super) fn is_host(t: &[u8]) -> bool {
    let host = without_port(t);
    // The suffix first: most dotted tokens (`java.lang.Error`) fail it at once.
    let Some(last_dot) = host.iter().rposition(|&c| c == b'.') else {
        return false;
    };
    let suffix = &host[last_dot + 1..];
    if !is_host_suffix(suffix) {
        let country = suffix.len() == 2 && suffix.iter().all(u8::is_ascii_alphabetic);
        if !country
            || host.iter().filter(|&&c| c == b'.').count() < 2
            || !host.iter().any(|&c| c.is_ascii_digit() || c == b'-')
        {
            return false;
        }
    }
    // Then every label, in one pass: non-empty, at most 63 bytes, letters, digits and `-`.
    let mut label = 0usize;
    for &c in host {
        if c == b'.' {
            if label == 0 {
                return false;
            }
            label = 0;
        } else if c.is_ascii_alphanumeric() || c == b'-' {
            label += 1;
            if label > 63 {
                return false;
            }
        } else {
            return false;
        }
    }
    label > 0
}

/// [`is_host`] as it was written first (a pass per test): the reference it is tested against.
#[cfg(test)]
pub(super) fn is_host_general(t: &[u8]) -> bool {
    if !t.contains(&b'.') {
        return false;
    }
    let host = without_port(t);
    let last = host.rsplit(|&c| c == b'.').next().unwrap_or(b"");
    let country = last.len() == 2
        && last.iter().all(u8::is_ascii_alphabetic)
        && host.split(|&c| c == b'.').count() >= 3
        && host.iter().any(|&c| c.is_ascii_digit() || c == b'-');
    if !is_host_suffix(last) && !country {
        return false;
    }
    host.split(|&c| c == b'.').all(|l| {
        !l.is_empty() && l.len() <= 63 && l.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
    })
}
