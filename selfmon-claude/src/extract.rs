//! Finding the JSON object in output that may carry noise: telemetry lines, `Warning:` lines, ANSI
//! escape sequences, Markdown code fences, stray brackets, several JSON candidates.

use serde::de::DeserializeOwned;

/// Unbalanced `{` tolerated before giving up, so hostile output cannot make extraction quadratic.
const MAX_UNBALANCED_STARTS: usize = 16;

/// Removes ANSI escape sequences: CSI (`ESC [` parameters, intermediates, final byte), OSC
/// (`ESC ]` up to BEL, `ESC \\` or the end of the line) and two-character escapes. A malformed
/// sequence never swallows more than its own line.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        match chars.peek() {
            Some('[') => {
                chars.next();
                while chars
                    .next_if(|c| ('\u{20}'..='\u{3f}').contains(c))
                    .is_some()
                {}
                // Braces are never final bytes in practice; keeping them protects the JSON after a
                // truncated sequence.
                chars.next_if(|c| ('\u{40}'..='\u{7e}').contains(c) && !matches!(c, '{' | '}'));
            }
            Some(']') => {
                chars.next();
                while let Some(c) = chars.next_if(|&c| c != '\n') {
                    if c == '\u{7}' {
                        break;
                    }
                    if c == '\u{1b}' {
                        chars.next_if_eq(&'\\');
                        break;
                    }
                }
            }
            Some(c) if ('\u{40}'..='\u{5f}').contains(c) => {
                chars.next();
            }
            _ => {}
        }
    }
    out
}

/// Every balanced top-level `{...}` span in `text`, in order, found by string-literal-aware brace
/// matching. Spans are byte ranges; nested objects are part of their outer span.
pub fn object_spans(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    let mut unbalanced = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'{' {
            i += 1;
            continue;
        }
        match matching_brace(bytes, i) {
            Some(end) => {
                spans.push((i, end + 1));
                i = end + 1;
            }
            None => {
                unbalanced += 1;
                if unbalanced > MAX_UNBALANCED_STARTS {
                    break;
                }
                i += 1;
            }
        }
    }
    spans
}

fn matching_brace(bytes: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (off, &b) in bytes[start..].iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(start + off);
                }
            }
            _ => {}
        }
    }
    None
}

/// Candidates parsed at most. Work is already linear in the text per nesting level (top-level
/// spans do not overlap); this only caps pathological outputs made of tiny objects.
const MAX_CANDIDATES: usize = 65_536;
/// How deep extraction looks inside objects that are not of the expected shape.
const MAX_NESTING: usize = 4;

/// The last JSON object in `text` that deserialises as `T` and passes `accept`, after stripping
/// ANSI escapes. Objects that parse but are not a `T` (telemetry, examples) are skipped; a balanced
/// span that is not a `T` (a stray `{` closed by a later stray `}`, or a wrapper object) is searched
/// inside as well.
pub fn extract_object<T: DeserializeOwned>(
    text: &str,
    accept: impl Fn(&T) -> bool,
) -> Result<T, String> {
    let clean = strip_ansi(text);
    let mut search = Search {
        accept: &accept,
        budget: MAX_CANDIDATES,
        seen: 0,
        first_error: None,
    };
    if let Some(v) = search.within(&clean, 0) {
        return Ok(v);
    }
    if search.seen == 0 {
        return Err("no JSON object found".into());
    }
    Err(format!(
        "{} JSON object candidate(s), none of the expected shape{}",
        search.seen,
        search
            .first_error
            .map(|e| format!(" (error: {e})"))
            .unwrap_or_default()
    ))
}

struct Search<'a, T> {
    accept: &'a dyn Fn(&T) -> bool,
    budget: usize,
    seen: usize,
    first_error: Option<String>,
}

impl<T: DeserializeOwned> Search<'_, T> {
    fn within(&mut self, text: &str, depth: usize) -> Option<T> {
        for (a, b) in object_spans(text).into_iter().rev() {
            if self.budget == 0 {
                return None;
            }
            self.budget -= 1;
            self.seen += 1;
            match serde_json::from_str::<T>(&text[a..b]) {
                Ok(v) if (self.accept)(&v) => return Some(v),
                Ok(_) => {}
                Err(e) => {
                    self.first_error.get_or_insert_with(|| e.to_string());
                }
            }
            // Braces are ASCII, so `a + 1` and `b - 1` are character boundaries.
            if depth < MAX_NESTING && b - a > 2 {
                if let Some(v) = self.within(&text[a + 1..b - 1], depth + 1) {
                    return Some(v);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn result_like(v: &Value) -> bool {
        v.get("type").and_then(Value::as_str) == Some("result")
    }

    #[test]
    fn ansi_sequences_are_removed() {
        assert_eq!(
            strip_ansi("\u{1b}[1;31mred\u{1b}[0m \u{1b}]0;title\u{7}x"),
            "red x"
        );
    }

    #[test]
    fn braces_inside_strings_do_not_end_the_object() {
        let t = r#"noise {"a":"}{\"}","b":{"c":1}} tail"#;
        let spans = object_spans(t);
        assert_eq!(spans.len(), 1);
        let v: Value = serde_json::from_str(&t[spans[0].0..spans[0].1]).unwrap();
        assert_eq!(v["a"], "}{\"}");
    }

    #[test]
    fn noisy_preambles_fences_and_stray_brackets_are_tolerated() {
        for text in [
            "telemetry: {\"event\":\"start\"}\nWarning: something\n{\"type\":\"result\",\"n\":1}\n",
            "```json\n{\"type\":\"result\",\"n\":1}\n```",
            "]} [{\"type\":\"result\",\"n\":1}",
            "{ unclosed\n\u{1b}[2K{\"type\":\"result\",\"n\":1}",
        ] {
            let v: Value = extract_object(text, result_like).unwrap();
            assert_eq!(v["n"], 1, "{text}");
        }
    }

    #[test]
    fn a_stray_brace_closed_later_does_not_hide_the_object() {
        let text = "{ progress\n{\"type\":\"result\",\"n\":1}\n} done";
        let v: Value = extract_object(text, result_like).unwrap();
        assert_eq!(v["n"], 1);
    }

    #[test]
    fn the_candidate_of_the_expected_shape_wins_over_later_ones() {
        let text = "{\"type\":\"result\",\"n\":1}\n{\"type\":\"telemetry\"}\n";
        let v: Value = extract_object(text, result_like).unwrap();
        assert_eq!(v["n"], 1);
    }

    #[test]
    fn a_result_followed_by_many_telemetry_objects_is_found() {
        let text = format!(
            "{{\"type\":\"result\",\"n\":7}}\n{}",
            "{\"event\":\"tick\"}\n".repeat(5_000)
        );
        let v: Value = extract_object(&text, result_like).unwrap();
        assert_eq!(v["n"], 7);
    }

    #[test]
    fn output_without_any_candidate_is_an_error_not_a_panic() {
        assert!(extract_object::<Value>("", result_like).is_err());
        assert!(extract_object::<Value>("{{{{{{", result_like).is_err());
        assert!(extract_object::<Value>("{\"x\":1}", result_like).is_err());
        let hostile = "{".repeat(10_000);
        assert!(extract_object::<Value>(&hostile, result_like).is_err());
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;

    proptest! {
        #[test]
        fn extraction_never_panics_on_arbitrary_text(text in ".{0,400}") {
            let _ = extract_object::<Value>(&text, |_| true);
        }

        #[test]
        fn a_result_object_is_found_inside_noise_without_braces_quotes_or_escapes(
            before in "[^{}\"\u{1b}]{0,200}",
            after in "[^{}\"\u{1b}]{0,200}",
            n in 0u32..1000,
        ) {
            let text = format!("{before}{{\"type\":\"result\",\"n\":{n}}}{after}");
            let v: Value = extract_object(&text, |v: &Value| v["type"] == "result").unwrap();
            prop_assert_eq!(v["n"].as_u64(), Some(u64::from(n)));
        }
    }
}
