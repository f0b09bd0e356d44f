//! The finding fingerprint (dedup tier 2) and the title and file normalisation it uses.

use crate::hash::sha256_hex;
use crate::model::Finding;

/// Title without a `[BUG]`-style prefix, lower-cased, whitespace folded.
pub fn normalise_title(title: &str) -> String {
    // Undo the defusing applied to filed titles (word joiners, angle quotes for `<` `>`).
    let undone: String = title
        .chars()
        .filter(|&c| c != '\u{2060}')
        .map(|c| match c {
            '\u{2039}' => '<',
            '\u{203A}' => '>',
            c => c,
        })
        .collect();
    let t = undone.trim();
    let t = match t.strip_prefix('[').and_then(|r| r.split_once(']')) {
        Some((_, rest)) => rest,
        None => t,
    };
    t.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The finding fingerprint (dedup tier 2), stable across releases:
///
/// `sha256_hex("selfmon-fp-v1\n" + classification + "\n" + error_type + "\n" + files + "\n" + templates)`
/// where `error_type` is trimmed and lower-cased (empty if none), `files` are the source files
/// trimmed, with `\` turned into `/` and a leading `./` removed, sorted, deduplicated and joined with
/// `,`, and `templates` are the message templates of the signatures the finding covers, sorted,
/// deduplicated and joined with `\n` (the normalised title when it covers none).
pub fn finding_fingerprint(finding: &Finding, templates: &[String]) -> String {
    let error_type = finding
        .error_type
        .as_deref()
        .unwrap_or("")
        .trim()
        .to_lowercase();
    let mut files: Vec<String> = finding
        .source_files
        .iter()
        .map(|f| normalise_file(f))
        .collect();
    files.sort();
    files.dedup();
    let mut tpls: Vec<&str> = templates.iter().map(String::as_str).collect();
    tpls.sort_unstable();
    tpls.dedup();
    let title;
    let tpl_text = if tpls.is_empty() {
        title = normalise_title(&finding.title);
        title.clone()
    } else {
        tpls.join("\n")
    };
    let input = format!(
        "selfmon-fp-v1\n{}\n{}\n{}\n{}",
        finding.classification.as_str(),
        error_type,
        files.join(","),
        tpl_text
    );
    sha256_hex(input.as_bytes())
}

/// Normalised source file: trimmed, `\` as `/`, without a leading `./`, case kept.
pub(super) fn normalise_file(f: &str) -> String {
    let f = f.trim().replace('\\', "/");
    f.strip_prefix("./").unwrap_or(&f).to_string()
}
