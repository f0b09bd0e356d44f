//! End-to-end tests of `selfmon templates`, running the built binary.

use std::io::Write;
use std::process::{Command, Stdio};

fn run(args: &[&str], stdin: &[u8]) -> (String, String, bool) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_selfmon"))
        .arg("templates")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the selfmon binary runs");
    // The child may exit before reading (e.g. on a bad state file): a broken pipe is fine here.
    let _ = child.stdin.take().expect("stdin").write_all(stdin);
    let out = child.wait_with_output().expect("selfmon finishes");
    (
        String::from_utf8(out.stdout).expect("utf-8 stdout"),
        String::from_utf8(out.stderr).expect("utf-8 stderr"),
        out.status.success(),
    )
}

const INPUT: &str = "\
[GIT-SYNC-001] clone of /repos/a failed after 3 attempts
[GIT-SYNC-001] clone of /repos/b failed after 17 attempts

User alice logged in from 10.0.0.1
User bob logged in from 10.0.0.2
User carol logged in from 10.0.0.3
User dave logged in from 10.0.0.4
User erin logged in from 10.0.0.5
";

#[test]
fn writes_fingerprint_tab_template_for_every_line_in_order() {
    let (out, err, ok) = run(&[], INPUT.as_bytes());
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), INPUT.lines().count());
    let (fp0, t0) = lines[0].split_once('\t').unwrap();
    assert_eq!(fp0.len(), 64);
    assert!(fp0.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(
        t0,
        "[GIT-SYNC-001] clone of <PATH> failed after <NUM> attempts"
    );
    assert_eq!(
        lines[0], lines[1],
        "messages differing only in values share a line"
    );
    assert_eq!(
        lines[2], "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\t",
        "a blank line gets the empty template"
    );
    for l in &lines[4..] {
        assert_eq!(*l, lines[3], "names are clustered into one template");
    }
    assert!(
        lines[3].ends_with("\tUser <*> logged in from <IP>"),
        "{}",
        lines[3]
    );
}

#[test]
fn json_mode_writes_one_object_per_line() {
    let (out, err, ok) = run(&["--json"], INPUT.as_bytes());
    assert!(ok, "{err}");
    let objs: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(objs.len(), INPUT.lines().count());
    assert_eq!(objs[0]["line"], 1);
    assert_eq!(
        objs[0]["template"],
        "[GIT-SYNC-001] clone of <PATH> failed after <NUM> attempts"
    );
    assert_eq!(objs[0]["fingerprint"], objs[1]["fingerprint"]);
    assert_eq!(objs[2]["template"], "");
}

#[test]
fn fingerprints_are_stable_across_runs() {
    let a = run(&[], INPUT.as_bytes());
    let b = run(&[], INPUT.as_bytes());
    assert_eq!(a.0, b.0);
    // Golden value: SHA-256 of the template text; part of selfmon's stable interface.
    assert!(a.0.starts_with("a4482a348e2539085586e528470cea0129fc410d058be85834b8e01c6f3cead1\t[GIT-SYNC-001] clone"), "{}", a.0);
}

#[test]
fn crlf_and_invalid_utf8_are_handled() {
    let (out, err, ok) = run(&[], b"took 12ms\r\nbad \xff byte 7\n");
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].ends_with("\ttook <DURATION>"));
    assert!(
        lines[1].ends_with("\tbad \u{fffd} byte <NUM>"),
        "{}",
        lines[1]
    );
}

#[test]
fn empty_input_gives_empty_output() {
    let (out, _, ok) = run(&[], b"");
    assert!(ok);
    assert_eq!(out, "");
}

#[test]
fn learned_state_is_saved_and_reused() {
    let dir = std::env::temp_dir().join(format!("selfmon-cli-state-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("templater.json");
    let state_arg = state.to_str().unwrap();
    let (_, err, ok) = run(&["--state", state_arg], INPUT.as_bytes());
    assert!(ok, "{err}");
    assert!(state.exists());
    let (out, err, ok) = run(
        &["--state", state_arg],
        b"User zed logged in from 10.9.9.9\n",
    );
    assert!(ok, "{err}");
    assert!(out.ends_with("\tUser <*> logged in from <IP>\n"), "{out}");
    std::fs::write(&state, "not json").unwrap();
    let (_, err, ok) = run(&["--state", state_arg], b"x\n");
    assert!(!ok);
    assert!(err.starts_with("selfmon: "), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unknown_arguments_are_rejected_with_usage() {
    let out = Command::new(env!("CARGO_BIN_EXE_selfmon"))
        .args(["templates", "--bogus"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--bogus"));
}

/// A log line is untrusted text: an ANSI escape sequence or a bidi override in it must not reach
/// the reader's terminal raw (it could recolour, clear or reorder what they see). The text output
/// shows them as `\u{…}`; the fingerprint is the same as in JSON mode (only the display changes).
#[test]
fn control_and_direction_characters_from_a_log_line_are_escaped_for_the_terminal() {
    let line = "evil \u{1b}[2J\u{1b}[31mred text \u{202e}desrever\u{2066} end\n";
    let (out, err, ok) = run(&[], line.as_bytes());
    assert!(ok, "{err}");
    assert!(
        !out.chars()
            .any(|c| (c.is_control() && c != '\n' && c != '\t')
                || c == '\u{202e}'
                || c == '\u{2066}'),
        "raw control or format characters reached the output: {out:?}"
    );
    assert!(
        out.contains("\\u{1b}[") && out.contains("\\u{202e}"),
        "{out:?}"
    );
    let (json, err, ok) = run(&["--json"], line.as_bytes());
    assert!(ok, "{err}");
    let obj: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    let fingerprint = out.split('\t').next().unwrap();
    assert_eq!(
        obj["fingerprint"], fingerprint,
        "the display escapes, the fingerprint is unchanged"
    );
    assert!(
        obj["template"].as_str().unwrap().contains('\u{1b}'),
        "JSON keeps the text as it is"
    );
}
