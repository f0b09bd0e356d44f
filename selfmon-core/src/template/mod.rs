//! Message templates and their fingerprints.
//!
//! Templating runs in two steps:
//!
//! 1. **Masking** ([`Templater::mask`], pure and cheap): the message is NFKC-normalised, whitespace
//!    is folded to single spaces, and every token that is a value is replaced by a typed placeholder:
//!    `<NUM>`, `<HEX>`, `<HASH>`, `<UUID>`, `<IP>`, `<HOST>`, `<PATH>`, `<URL>`, `<EMAIL>`, `<TIME>`,
//!    `<DURATION>`, `<SIZE>`, `<BOOL>` (`true`/`false`), `<ID>` (random-looking identifiers) and
//!    `<STR>` (a quoted value of one token after `=` or `:`, as in `key="..."` and JSON). An
//!    address followed by its reverse name in parentheses (`10.0.0.5 (db1.example.at)`, or `()`
//!    when the lookup found none) is one value. A quoted value that is prose (several
//!    words, as the `msg` of JSON and logfmt logs) is what the message says: its words are masked
//!    like any others, inside the quotes (`{"level":<STR>,"msg":"disk full on <PATH>"}`). Digit runs inside identifiers are masked in place
//!    (`job-123` becomes `job-<NUM>`). Error codes such as `GIT-SYNC-001` are kept: they name the
//!    problem. So are numbers that name an outcome: an integer of up to three digits after
//!    `status`, `code`, `errno`, `signal`, `exit`, `rc` (also as `status=503`, `"status":503`) and
//!    an HTTP status after `HTTP` or an HTTP version (`"GET / HTTP/1.1" 404`): `status 1` and
//!    `status 137` are different failures (see the `outcomes` module). Nothing is lower-cased: case can be the only difference between two distinct
//!    messages, and every placeholder test is case-insensitive where the value's syntax is.
//! 2. **Clustering** ([`Templater::learn_and_template`], online, in the spirit of Drain): masked
//!    messages are routed through a fixed-depth prefix tree (token count, then the first
//!    [`TemplaterConfig::depth`] constant tokens) to a leaf of clusters; a message joins the cluster
//!    whose template it matches on at least [`TemplaterConfig::similarity_threshold`] of its
//!    telling positions (positions holding `<*>` or only placeholders, such as `<NUM>:`, say
//!    nothing either way and are not counted), and positions that differ become `<*>`. This merges messages that differ only in
//!    unmasked names (users, hosts, repositories, jobs) while messages whose constant words differ
//!    stay apart. The learned clusters are capped ([`TemplaterConfig::max_clusters`]; the least
//!    recently used are evicted) and serialisable ([`Templater::to_state_json`]) so the same message
//!    maps to the same template in the next scan.
//!
//! Grouping and triage differ in one respect. A word the clustering generalised only because it
//! saw enough distinct ones (`failed to connect to <*> server` after five dependencies) is a
//! value for grouping, but not for triage: the digest gives each signature its cluster's template
//! with its own words put back ([`Templater::template_with_words`]: `failed to connect to ledger
//! server`), so an issue filed for one dependency never makes another's outage "known". Names
//! after a word that introduces them (`user alice`), values and a secret's remains stay `<*>`
//! (see the `words` module).
//!
//! The fingerprint of a template is `sha256_hex(template text)`: lower-case hex SHA-256 of the UTF-8
//! text. It is stable across releases; golden tests pin known values, and changing the masks or the
//! formula is a breaking change.
//!
//! Quality: `tests/template_grouping.rs` measures grouping accuracy (a message counts when its
//! group holds exactly the messages of its true template) on a labelled corpus generated in the
//! style of the public Loghub-2k sets (20 kinds of system, 2,000 messages each, one default
//! configuration) and pins every corpus at 1.000. `tests/loghub_sample.rs` measures GA and FGA on
//! the public Loghub-2.0 labelled samples (32 messages per system, 14 systems, chosen by the
//! benchmark's authors to cover each system's templates; not the 2,000-line sets): average GA
//! 0.982, FGA 0.991 (OpenSSH 0.906 and Zookeeper 0.844 the lowest, both over-splits), and the same
//! lines behind syslog headers group as their content does; the per-system figures are pinned as
//! floors.
//!
//! Speed: a message whose masked text was seen before joins the cluster it joined then (when that
//! still covers it, decided in one walk over the bytes) without being compared with any other, so
//! on real logs nearly all the work is masking. The memory of seen texts keeps two generations, so
//! raw lines (whose host and process names multiply the distinct masked texts) seldom miss it;
//! masking reads a token's bytes once through a class table and runs only the value tests its
//! characters allow: words, words in punctuation, numbers and identifiers with digits (host
//! names, `sshd[19939]:`) are decided from that one pass, and a syslog timestamp opening the line
//! (`Jun 14 15:16:01`) is recognised at once. Each shortcut is tested against the general path it
//! stands for. `selfmon templates` on 1,000,000 Loghub-shaped lines (the Loghub samples and the
//! grouping corpora with their values varied; `benches/templates.rs` builds the same shape)
//! spends about 0.8 s of CPU on content lines (1.2 M lines/s) and 1.4 s on raw lines behind
//! syslog headers (0.7 M lines/s) on the 2-core development machine (best of 10 runs), memory
//! flat (14-18 MB). Measured in instructions, which load does not distort (`valgrind
//! --tool=callgrind` on the release binary, whole process, 200,000 lines of the same shape): about
//! 6,000 per content line and 10,200 per raw line (6,600 and 13,200 before the shortcuts), four
//! fifths of it masking.
//!
//! Clustering is deterministic: the same configuration, starting state and messages in the same
//! order give the same templates. Nothing depends on hash-map iteration order.

mod cluster;
mod config;
mod frames;
mod masks;
mod memo;
mod outcomes;
mod seal;
mod state;
mod words;

pub(crate) use cluster::names_after_an_introducer;
pub use cluster::{ClusterId, Template, Templater, WILDCARD};
pub use config::TemplaterConfig;
pub use frames::is_stack_frame_line;
pub use masks::{is_specific_template, mask};
pub use seal::{
    seal_template, seal_template_with, template_fingerprint, template_text, SecretTokens,
};
pub use state::STATE_VERSION;
pub(crate) use words::with_introduced_names_generalised;

#[cfg(test)]
mod tests;
