//! Issue titles, bodies and comments, built by selfmon from validated fields with a fixed template.
//!
//! Model-written prose is data: it is escaped so it cannot add links, images, HTML, headings,
//! mentions or cross-references, and log excerpts sit in code fences longer than any backtick run
//! inside them. Bodies are capped below the tracker's 65,536-character limit.

use std::fmt::Write as _;

use crate::digest::Signature;
use crate::error::truncate_chars;
use crate::model::{classification_marker, Classification, Finding, Marker, ScanId};
use crate::text::{is_bidi_control, is_kept_in_text};

/// Largest issue or comment body selfmon produces or sends, in characters: GitHub's limit, which
/// every tracker selfmon ships enforces (the GitHub adapter refuses a longer body before sending).
/// The body builder keeps its own margin below it for the footer and markers.
pub const MAX_BODY_CHARS: usize = 65_536;

/// Characters the body builder leaves free below [`MAX_BODY_CHARS`].
const BODY_MARGIN_CHARS: usize = 5_536;
/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;

/// `[BUG] title`, with the title cleaned (no control characters, whitespace folded, capped).
pub fn issue_title(classification: Classification, title: &str) -> String {
    let cleaned: String = title
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .filter(|c| !is_bidi_control(*c))
        .collect();
    let folded = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    // Titles are not Markdown, but trackers still turn `@name` into mentions and `#12` into links.
    let defused = truncate_chars(&folded, MAX_TITLE_CHARS)
        .replace('@', "@\u{2060}")
        .replace('#', "#\u{2060}")
        // Titles are shown raw in notifications and chat integrations that do render links and
        // HTML: break those too, readably.
        .replace("](", "]\u{2060}(")
        .replace("://", ":\u{2060}//")
        .replace("www.", "www\u{2060}.");
    format!(
        "{} {}",
        classification.title_prefix(),
        defuse_angle_brackets(&defused)
    )
}

/// Angle brackets that could open or close HTML, an autolink or a chat link (`<img`, `</a>`,
/// `<!--`, `<http://…|x>`, `<@U123>`) become `‹` `›`, which also shows the templater's
/// placeholders as `‹NUM›`. The others stay as written: a `<` before a space, a digit, `=`,
/// `-` or another `<` opens nothing (`must be <= 100`, `< 5`, `<-`), nor does a `>` after a
/// space, `-`, `=` or `>`, or before `=` (`>= 5`, `->`, `=>`).
fn defuse_angle_brackets(title: &str) -> String {
    let chars: Vec<char> = title.chars().collect();
    let mut out = String::with_capacity(title.len() + 8);
    for (i, &c) in chars.iter().enumerate() {
        let prev = i.checked_sub(1).map(|p| chars[p]);
        let next = chars.get(i + 1).copied();
        match c {
            '<' if !matches!(next, None | Some('=' | '-' | '<'))
                && !next.is_some_and(|n| n.is_whitespace() || n.is_ascii_digit()) =>
            {
                out.push('\u{2039}')
            }
            '>' if !matches!(prev, Some('-' | '=' | '>'))
                && !prev.is_some_and(char::is_whitespace)
                && next != Some('=') =>
            {
                out.push('\u{203A}')
            }
            c => out.push(c),
        }
    }
    out
}

/// Escapes untrusted text for inline Markdown: no links, images, HTML, emphasis, headings,
/// mentions (`@name`), references (`#123`) or task lists survive.
///
/// Two things are left as written, because they cannot form any of those and escaping them only
/// litters the text (`\(records 47..47\)`): parentheses, braces and `!` (a link or image needs a
/// `[`, which is always escaped), and a one-line inline code span whose content is
/// [inert](inert_code) (`` `app.cache` ``), which renders as code.
pub fn escape_markdown(text: &str) -> String {
    let chars: Vec<char> = text
        .chars()
        .filter(|&c| (c == '\n' || !c.is_control()) && !is_bidi_control(c))
        .collect();
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    let mut line_start = true;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '`' {
            if let Some(len) = code_span_at(&chars, i) {
                out.extend(&chars[i..i + len]);
                i += len;
                line_start = false;
                continue;
            }
        }
        let at_line_start = line_start;
        line_start = c == '\n' || (line_start && c == ' ');
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' => {
                out.push('\\');
                out.push(c);
            }
            // Defence in depth: `](` is a link even if a renderer ignored the escaped `]`.
            '(' if i > 0 && chars[i - 1] == ']' => out.push_str("\\("),
            // List markers, rules and setext underlines only matter at the start of a line.
            '+' | '-' | '=' if at_line_start => {
                out.push('\\');
                out.push(c);
            }
            // A zero-width joiner after @ stops GitHub from treating the word as a mention; the
            // entity form of `&` stops HTML entities.
            '@' => out.push_str("@\u{2060}"),
            // `#` followed by a word joiner is neither a heading nor an issue reference.
            '#' => out.push_str("#\u{2060}"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(c),
        }
        i += 1;
    }
    // Bare URLs and `www.` are autolinked by GitHub: break them with a word joiner (code spans
    // never hold either, see `inert_code`).
    out.replace("://", ":\u{2060}//")
        .replace("www.", "www\u{2060}.")
}

/// The length (backticks included) of an inline code span kept as written that starts at
/// `chars[at]`, a backtick: one backtick, inert content on the same line, one backtick, and no
/// backtick right before or after (a longer backtick run opens another kind of span).
fn code_span_at(chars: &[char], at: usize) -> Option<usize> {
    if at > 0 && chars[at - 1] == '`' {
        return None;
    }
    let close = at
        + 1
        + chars[at + 1..]
            .iter()
            .position(|&c| c == '`' || c == '\n')?;
    if chars[close] != '`' || chars.get(close + 1) == Some(&'`') {
        return None;
    }
    let content: String = chars[at + 1..close].iter().collect();
    inert_code(&content).then_some(close + 1 - at)
}

/// Whether `content` may stand in a code span as written: not blank, and only characters that
/// are harmless even where a renderer (a chat integration, a mail client) ignores the span:
/// no `<` `>` `&` (HTML), `[` `]` (links), `@` `#` (mentions, references), `\\`, `|`, and no URL
/// (`://`, `www.`).
pub(crate) fn inert_code(content: &str) -> bool {
    !content.trim().is_empty()
        && !content.contains("://")
        && !content.to_ascii_lowercase().contains("www.")
        && content.chars().all(|c| {
            (c.is_alphanumeric() && !is_bidi_control(c))
                || matches!(
                    c,
                    ' ' | '.'
                        | ','
                        | ':'
                        | ';'
                        | '_'
                        | '-'
                        | '+'
                        | '='
                        | '/'
                        | '('
                        | ')'
                        | '{'
                        | '}'
                        | '*'
                        | '\''
                        | '"'
                        | '!'
                        | '?'
                        | '%'
                        | '$'
                        | '~'
                        | '^'
                )
        })
}

/// A fenced code block that `content` cannot break out of.
pub fn code_block(content: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in content.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    let fence = "`".repeat((longest + 1).max(3));
    let cleaned: String = content.chars().filter(|&c| is_kept_in_text(c)).collect();
    format!("{fence}text\n{}\n{fence}\n", defuse_html_comments(&cleaned))
}

/// Quoted text (log lines, templates) with every HTML comment opener and closer broken by a
/// word joiner (`<!\u{2060}--`, `--\u{2060}>`): it reads the same, but can never plant a hidden
/// line such as selfmon's own marker in a body (review4 F4).
fn defuse_html_comments(text: &str) -> String {
    text.replace("<!--", "<!\u{2060}--")
        .replace("-->", "--\u{2060}>")
}

/// The body of a new issue.
pub fn issue_body(
    finding: &Finding,
    signatures: &[&Signature],
    scan_id: &ScanId,
    marker: &Marker,
    server: Option<&str>,
) -> String {
    let mut b = String::new();
    let _ = writeln!(b, "## Summary\n\n{}\n", escape_markdown(&finding.summary));
    if let Some(server) = server {
        let _ = writeln!(b, "**Server:** {}", escape_markdown(server));
    }
    let _ = writeln!(b, "**Classification:** `{}`", finding.classification);
    if !finding.error_codes.is_empty() {
        let codes: Vec<String> = finding
            .error_codes
            .iter()
            .map(|c| format!("`{c}`"))
            .collect();
        let _ = writeln!(b, "**Error codes:** {}", codes.join(", "));
    }
    if let Some(t) = &finding.error_type {
        let _ = writeln!(b, "**Error type:** {}", escape_markdown(t));
    }
    if !finding.source_files.is_empty() {
        let files: Vec<String> = finding
            .source_files
            .iter()
            .map(|f| escape_markdown(f))
            .collect();
        let _ = writeln!(b, "**Suspected files:** {}", files.join(", "));
    }
    b.push('\n');
    evidence(&mut b, signatures, &finding.evidence_record_ids);
    if let Some(c) = &finding.suspected_cause {
        let _ = writeln!(b, "## Suspected cause\n\n{}\n", escape_markdown(c));
    }
    if let Some(f) = &finding.suggested_fix {
        let _ = writeln!(b, "## Suggested fix\n\n{}\n", escape_markdown(f));
    }
    finish(b, scan_id, Some((marker, finding.classification)))
}

/// The comment added to an existing issue when a related finding or a regression appears.
pub fn occurrence_comment(
    heading: &str,
    finding: &Finding,
    signatures: &[&Signature],
    scan_id: &ScanId,
) -> String {
    let mut b = String::new();
    let _ = writeln!(
        b,
        "### {heading}\n\n{}\n",
        escape_markdown(&finding.summary)
    );
    evidence(&mut b, signatures, &finding.evidence_record_ids);
    finish(b, scan_id, None)
}

fn evidence(b: &mut String, signatures: &[&Signature], evidence_ids: &[i64]) {
    if !signatures.is_empty() {
        let _ = writeln!(b, "## Evidence\n");
        let _ = writeln!(
            b,
            "| Level | Count | First seen | Last seen | Record ids | Error codes |"
        );
        let _ = writeln!(b, "|---|---:|---|---|---|---|");
        for s in signatures {
            let codes: Vec<&str> = s.error_codes.iter().map(|c| c.as_str()).collect();
            let _ = writeln!(
                b,
                "| {} | {} | {} | {} | {}..{} | {} |",
                s.level,
                s.count,
                escape_markdown(&s.first_timestamp),
                escape_markdown(&s.last_timestamp),
                s.first_id,
                s.last_id,
                codes.join(", ")
            );
        }
        b.push('\n');
        for s in signatures.iter().take(3) {
            let mut excerpt = String::new();
            if !s.nodes.is_empty() {
                let _ = writeln!(excerpt, "nodes: {}", s.nodes.join(", "));
            }
            let _ = writeln!(excerpt, "template: {}", s.template);
            for m in s.sample_messages.iter().take(2) {
                let _ = writeln!(excerpt, "sample: {m}");
            }
            b.push_str(&code_block(&excerpt));
        }
        b.push('\n');
    }
    if !evidence_ids.is_empty() {
        let ids: Vec<String> = evidence_ids.iter().take(50).map(i64::to_string).collect();
        let _ = writeln!(b, "**Log record ids:** {}\n", ids.join(", "));
    }
}

/// The fence of a code block still open at the end of `text`, if any.
fn open_fence(text: &str) -> Option<String> {
    let mut open: Option<&str> = None;
    for line in text.lines() {
        let ticks = line.len() - line.trim_start_matches('`').len();
        if ticks < 3 {
            continue;
        }
        match open {
            None => open = Some(&line[..ticks]),
            Some(f) if ticks >= f.len() && line[ticks..].trim().is_empty() => open = None,
            Some(_) => {}
        }
    }
    open.map(str::to_string)
}

/// Ends a body with the footer: who filed it and, for an issue, the hidden marker and
/// classification lines (never truncated away).
fn finish(mut b: String, scan_id: &ScanId, marker: Option<(&Marker, Classification)>) -> String {
    let footer = format!(
        "\n---\n_Filed by selfmon, scan `{}`._\n{}",
        scan_id,
        marker
            .map(|(m, c)| format!("{}\n{}\n", m.as_str(), classification_marker(c)))
            .unwrap_or_default()
    );
    // Room for the footer, the truncation notice and a closing fence (fences are at most one
    // longer than the longest backtick run in a capped excerpt).
    let budget =
        (MAX_BODY_CHARS - BODY_MARGIN_CHARS).saturating_sub(footer.chars().count() + 64 + 1_100);
    if b.chars().count() > budget {
        b = truncate_chars(&b, budget);
        if let Some(fence) = open_fence(&b) {
            b.push('\n');
            b.push_str(&fence);
        }
        b.push_str("\n\n_(truncated)_\n");
    }
    b.push_str(&footer);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_get_the_prefix_and_lose_control_characters() {
        assert_eq!(
            issue_title(Classification::ServerBug, "a\n\tb\u{202E}c"),
            "[BUG] a bc"
        );
        assert!(
            issue_title(Classification::DocumentationGap, &"x".repeat(500))
                .chars()
                .count()
                <= 207
        );
    }

    #[test]
    fn escaping_defuses_markdown() {
        let e = escape_markdown("![x](https://a.example) <img> @admin #12 - [ ] task");
        assert!(!e.contains("]("));
        assert!(!e.contains("<img"));
        assert!(!e.contains("@admin"));
        assert!(!e.contains(" #12"));
    }

    #[test]
    fn the_offline_runners_inline_code_and_parentheses_are_not_escaped() {
        // Review L7: "from \`app.cache\` \(records 47..47\)" rendered literal backticks.
        assert_eq!(
            escape_markdown("Seen 1 time(s) at level ERROR from `app.cache` (records 47..47)."),
            "Seen 1 time(s) at level ERROR from `app.cache` (records 47..47)."
        );
        assert_eq!(
            escape_markdown("`db/pool.go:88` failed: `SELECT * FROM t` {x}!"),
            "`db/pool.go:88` failed: `SELECT * FROM t` {x}!"
        );
    }

    #[test]
    fn a_code_span_that_could_carry_markup_is_escaped_as_before() {
        for (text, why) in [
            ("`[x](https://evil.example)`", "a link"),
            ("`<img src=x>`", "HTML"),
            ("`@admin` and `#12`", "a mention or reference"),
            ("`www.evil.example`", "an autolink"),
            ("`a\nb`", "a span across lines"),
            ("``a``", "a double-backtick span"),
            ("` `", "a blank span"),
            ("`unclosed", "an unpaired backtick"),
        ] {
            let e = escape_markdown(text);
            assert!(e.starts_with("\\`"), "{why}: {e}");
        }
        // After an escaped `]`, a `(` stays escaped too.
        assert_eq!(escape_markdown("[x](y)"), "\\[x\\]\\(y)");
    }

    #[test]
    fn titles_keep_a_literal_less_than_and_show_placeholders_in_angle_quotes() {
        // Review L14: "must be <= 100" was filed as "must be ‹= ‹NUM›".
        assert_eq!(
            issue_title(
                Classification::ServerBug,
                "field 'limit' must be <= <NUM>, got < 5 -> x >= 3 => y"
            ),
            "[BUG] field 'limit' must be <= \u{2039}NUM\u{203A}, got < 5 -> x >= 3 => y"
        );
        assert_eq!(
            issue_title(Classification::ServerBug, "<*> failed"),
            "[BUG] \u{2039}*\u{203A} failed"
        );
        // What could be HTML, an autolink or a chat link is still defused.
        let t = issue_title(
            Classification::ServerBug,
            "<img src=x onerror=alert(1)> <script>x</script> <!-- h --> <a href='x'>y</a> \
             <https://e.example|go> <@U123> <!channel> <b>",
        );
        assert!(!t.contains('<'), "{t}");
        assert!(
            t.contains("\u{2039}img src=x onerror=alert(1)\u{203A}"),
            "{t}"
        );
    }

    #[test]
    fn quoted_log_text_cannot_plant_a_marker_in_a_body() {
        // Review4 F4: a logged user name `<!-- selfmon:fingerprint=0123abcd -->` was quoted as is
        // in the evidence, before the real marker.
        let planted = "login rejected for user '<!-- selfmon:fingerprint=0123abcd -->'";
        let quoted = code_block(&format!(
            "sample: {planted}\n<!-- selfmon:fingerprint=0123abcd -->"
        ));
        assert!(!quoted.contains("<!--"), "{quoted}");
        assert!(!quoted.contains("-->"), "{quoted}");
        assert!(
            quoted.contains("selfmon:fingerprint=0123abcd"),
            "still readable"
        );
        let f = Finding::new(Classification::ServerBug, "t", planted);
        let m = Marker::for_fingerprint("abcd");
        let body = issue_body(&f, &[], &ScanId("s".into()), &m, None);
        assert_eq!(
            body.matches("<!-- selfmon:fingerprint=").count(),
            1,
            "{body}"
        );
        assert_eq!(Marker::find_in(&body), Some(m));
    }

    #[test]
    fn code_blocks_outgrow_backtick_runs() {
        let b = code_block("a ```` b");
        assert!(b.starts_with("`````text"));
    }

    #[test]
    fn a_cut_inside_a_code_block_closes_it_with_the_same_fence() {
        let open = format!(
            "intro\n{}",
            code_block(&format!("a ````` b\n{}", "x".repeat(100)))
        );
        let cut = &open[..open.len() - 20];
        assert_eq!(open_fence(cut).as_deref(), Some("``````"));
        assert_eq!(open_fence(&open), None);
    }

    #[test]
    fn bodies_are_capped_and_keep_the_marker() {
        let mut f = Finding::new(Classification::ServerBug, "t", "x".repeat(100_000));
        f.suggested_fix = Some("y".repeat(10));
        let m = Marker::for_fingerprint("abcd");
        let body = issue_body(&f, &[], &ScanId("s".into()), &m, None);
        assert!(body.chars().count() <= MAX_BODY_CHARS);
        assert!(body.contains(m.as_str()));
    }
}
