//! Finding the JSON object in output that may carry noise: telemetry lines, `Warning:` lines, ANSI
//! escape sequences, Markdown code fences, stray brackets, several JSON candidates.

use serde::de::DeserializeOwned;

/// Unbalanced `{` tolerated before giving up, so hostile output cannot make extraction quadratic.
const MAX_UNBALANCED_STARTS: usize = 64;

/// Removes ANSI escape sequences (CSI `ESC [ ... final`, OSC `ESC ] ... BEL|ESC \`, and two-byte
/// escapes).
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('[') => {
                for c in chars.by_ref() {
                    if ('\u{40}'..='\u{7e}').contains(&c) {
                        break;
                    }
                }
            }
            Some(']') => {
                while let Some(c) = chars.next() {
                    if c == '\u{7}' {
                        break;
                    }
                    if c == '\u{1b}' && chars.peek() == Some(&'\\') {
                        chars.next();
                        break;
                    }
                }
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

/// The last JSON object in `text` that deserialises as `T` and passes `accept`, after stripping
/// ANSI escapes. Objects that parse but are not a `T` (telemetry, examples) are skipped.
pub fn extract_object<T: DeserializeOwned>(
    text: &str,
    accept: impl Fn(&T) -> bool,
) -> Result<T, String> {
    let clean = strip_ansi(text);
    let spans = object_spans(&clean);
    if spans.is_empty() {
        return Err("no JSON object found".into());
    }
    let mut last_error = None;
    for &(a, b) in spans.iter().rev() {
        match serde_json::from_str::<T>(&clean[a..b]) {
            Ok(v) if accept(&v) => return Ok(v),
            Ok(_) => {}
            Err(e) => {
                if last_error.is_none() {
                    last_error = Some(e.to_string());
                }
            }
        }
    }
    Err(format!(
        "{} JSON object candidate(s), none of the expected shape{}",
        spans.len(),
        last_error
            .map(|e| format!(" (last error: {e})"))
            .unwrap_or_default()
    ))
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
    fn the_candidate_of_the_expected_shape_wins_over_later_ones() {
        let text = "{\"type\":\"result\",\"n\":1}\n{\"type\":\"telemetry\"}\n";
        let v: Value = extract_object(text, result_like).unwrap();
        assert_eq!(v["n"], 1);
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
