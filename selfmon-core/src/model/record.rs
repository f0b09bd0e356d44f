//! Log records and levels.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Severity of a log record, ordered from least to most severe.
///
/// Serialised as its canonical upper-case name; read (in configuration and stored JSON alike)
/// from any of [`Level::SPELLINGS`], in any case, as log records are (`"warning"`, `"WARN"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    /// Diagnostic detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that the server handled.
    Warning,
    /// An operation failed.
    Error,
    /// The server or a subsystem cannot continue.
    Critical,
}

impl Level {
    /// All levels, least severe first.
    pub const ALL: [Level; 5] = [
        Level::Debug,
        Level::Info,
        Level::Warning,
        Level::Error,
        Level::Critical,
    ];

    /// The canonical upper-case name (`"WARNING"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
            Level::Critical => "CRITICAL",
        }
    }

    /// The coarse class used to group signatures: `"warning"` or `"error"` (ERROR and CRITICAL), or
    /// `"info"` for anything less severe.
    pub fn class(self) -> &'static str {
        match self {
            Level::Debug | Level::Info => "info",
            Level::Warning => "warning",
            Level::Error | Level::Critical => "error",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Level {
    /// Every spelling [`Level::from_str`] accepts, upper case, with its level: the canonical
    /// names; the aliases of common logging libraries (`WARN`, `ERR`, `CRIT`, `FATAL`, `TRACE`,
    /// `NOTICE`; java.util.logging's `SEVERE`, `CONFIG`, `FINE`, `FINER`, `FINEST`; syslog's
    /// `EMERG`, `EMERGENCY`, `ALERT`, `INFORMATIONAL`; zap's `PANIC`, `DPANIC`; logrus's four-letter
    /// `DEBU`, `ERRO`, `FATA`, `PANI`; loguru's `SUCCESS`; .NET's `INFORMATION`, `VERBOSE`); the
    /// one-letter levels of glog and Android (`V`, `D`, `I`, `W`, `E`, `F`, `A`); and Python's
    /// numeric levels (`10` DEBUG, `20` INFO, `30` WARNING, `40` ERROR, `50` CRITICAL), which a
    /// Python host that stores `levelno` writes. Log sources use this list to filter by level in
    /// their queries; besides it, [`Level::from_str`] reads any whole number above 50 as
    /// CRITICAL (see [`Level::from_number`]); anything else is not a level (a log source reads it
    /// as ERROR and keeps the original).
    pub const SPELLINGS: [(&'static str, Level); 43] = [
        ("TRACE", Level::Debug),
        ("DEBUG", Level::Debug),
        ("DEBU", Level::Debug),
        ("VERBOSE", Level::Debug),
        ("FINE", Level::Debug),
        ("FINER", Level::Debug),
        ("FINEST", Level::Debug),
        ("V", Level::Debug),
        ("D", Level::Debug),
        ("10", Level::Debug),
        ("INFO", Level::Info),
        ("NOTICE", Level::Info),
        ("INFORMATION", Level::Info),
        ("INFORMATIONAL", Level::Info),
        ("CONFIG", Level::Info),
        ("SUCCESS", Level::Info),
        ("I", Level::Info),
        ("20", Level::Info),
        ("WARN", Level::Warning),
        ("WARNING", Level::Warning),
        ("W", Level::Warning),
        ("30", Level::Warning),
        ("ERR", Level::Error),
        ("ERROR", Level::Error),
        ("ERRO", Level::Error),
        ("SEVERE", Level::Error),
        ("E", Level::Error),
        ("40", Level::Error),
        ("CRIT", Level::Critical),
        ("CRITICAL", Level::Critical),
        ("FATAL", Level::Critical),
        ("FATA", Level::Critical),
        ("PANIC", Level::Critical),
        ("PANI", Level::Critical),
        ("DPANIC", Level::Critical),
        ("EMERG", Level::Critical),
        ("EMERGENCY", Level::Critical),
        ("ALERT", Level::Critical),
        ("F", Level::Critical),
        ("A", Level::Critical),
        ("50", Level::Critical),
        ("CRT", Level::Critical),
        ("FTL", Level::Critical),
    ];
}

impl Level {
    /// The level of a numeric level outside [`Level::SPELLINGS`]: any whole number above 50 is
    /// CRITICAL — above Python's CRITICAL (50), and pino's/bunyan's `fatal` (60); nothing else.
    ///
    /// This is Python's scale ([`NumericLevels::Python`], the default), on which
    /// [`Level::from_str`] reads numbers. A log source configured with
    /// [`NumericLevels::Pino`] reads them on pino's/bunyan's scale instead
    /// ([`NumericLevels::parse`], [`NumericLevels::level_of`]). On Python's scale:
    /// - pino/bunyan (10 trace, 20 debug, 30 info, 40 warn, 50 error, 60 fatal) are read one
    ///   step more severe than they mean, except `fatal` (60, CRITICAL): `30` info is read as
    ///   WARNING (and may be filed), `50` error as CRITICAL. Configure
    ///   `logs.numeric_levels: "pino"`, or store the level name, to have them read as meant.
    /// - syslog/journald priorities (0 emerg … 3 err, 4 warning, 6 info, 7 debug): not read on
    ///   the syslog scale, whose order is the reverse (on Python's, 0 would be NOTSET, below
    ///   DEBUG, and an emergency would be dropped). They are not levels: a log source reads them
    ///   as ERROR, keeps the original (`_original_level` in `extra_data`), and drops nothing.
    ///   Store the names (`EMERG`, `ERR`, `WARNING`, `INFO`, `DEBUG` are all accepted).
    /// - Python custom levels between the named ones (`25`, `5`): not levels, read as ERROR,
    ///   likewise.
    pub fn from_number(n: i64) -> Option<Level> {
        (n > 50).then_some(Level::Critical)
    }
}

/// The scale on which a log source reads a level written as a number (`30`), since nothing in a
/// record says which one the writer used. Configured as `logs.numeric_levels`; names
/// (`WARNING`, `warn`, ...) read the same on every scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NumericLevels {
    /// Python's `logging` (`levelno`): 10 DEBUG, 20 INFO, 30 WARNING, 40 ERROR, 50 CRITICAL, and
    /// any whole number above 50 CRITICAL. The default.
    #[default]
    Python,
    /// pino and bunyan (Node.js): 10 trace and 20 debug (DEBUG), 30 info (INFO), 40 warn
    /// (WARNING), 50 error (ERROR), 60 fatal and any whole number above 60 (CRITICAL).
    Pino,
}

impl NumericLevels {
    /// Both scales, the default first.
    pub const ALL: [NumericLevels; 2] = [NumericLevels::Python, NumericLevels::Pino];

    const PYTHON: [(&'static str, Level); 5] = [
        ("10", Level::Debug),
        ("20", Level::Info),
        ("30", Level::Warning),
        ("40", Level::Error),
        ("50", Level::Critical),
    ];

    const PINO: [(&'static str, Level); 6] = [
        ("10", Level::Debug),
        ("20", Level::Debug),
        ("30", Level::Info),
        ("40", Level::Warning),
        ("50", Level::Error),
        ("60", Level::Critical),
    ];

    /// The name a configuration uses (`"python"`, `"pino"`).
    pub fn as_str(self) -> &'static str {
        match self {
            NumericLevels::Python => "python",
            NumericLevels::Pino => "pino",
        }
    }

    /// The numbers this scale names, as a log spells them (`"30"`), with their level. Any whole
    /// number above the last one is CRITICAL as well ([`NumericLevels::level_of`]).
    pub fn named(self) -> &'static [(&'static str, Level)] {
        match self {
            NumericLevels::Python => &Self::PYTHON,
            NumericLevels::Pino => &Self::PINO,
        }
    }

    /// The highest number this scale names; any whole number above it is CRITICAL.
    fn highest(self) -> i64 {
        match self {
            NumericLevels::Python => 50,
            NumericLevels::Pino => 60,
        }
    }

    /// The level of a number stored as one (an `INTEGER` column): a named number of this scale,
    /// or CRITICAL above the highest; `None` for any other number (a log source reads it as
    /// ERROR and keeps the original).
    pub fn level_of(self, n: i64) -> Option<Level> {
        if n > self.highest() {
            return Some(Level::Critical);
        }
        let (tens, rest) = (n / 10, n % 10);
        if rest != 0 || n <= 0 {
            return None;
        }
        usize::try_from(tens - 1)
            .ok()
            .and_then(|i| self.named().get(i))
            .map(|(_, level)| *level)
    }

    /// Every spelling a log source compares a level with, upper case, with its level: the names
    /// of [`Level::SPELLINGS`] and the numbers of this scale ([`NumericLevels::named`]). Under
    /// [`NumericLevels::Python`], exactly [`Level::SPELLINGS`], in its order. Log sources build
    /// their SQL level filters from it, so the filter and [`NumericLevels::parse`] agree.
    pub fn spellings(self) -> Vec<(&'static str, Level)> {
        let names = Level::SPELLINGS
            .into_iter()
            .filter(|(name, _)| self == NumericLevels::Python || !is_number(name));
        let numbers: &[(&'static str, Level)] = match self {
            NumericLevels::Python => &[],
            NumericLevels::Pino => &Self::PINO,
        };
        names.chain(numbers.iter().copied()).collect()
    }

    /// Parses a level as [`Level::from_str`] does (case-insensitive, surrounding whitespace
    /// ignored), reading numbers on this scale: one of [`NumericLevels::spellings`], or a whole
    /// number above the scale's highest (CRITICAL). Anything else is an [`Error::Parse`].
    pub fn parse(self, s: &str) -> Result<Level, Error> {
        let t = s.trim();
        if let Some(level) = spelled_level(t, self) {
            return Ok(level);
        }
        if let Some(level) = t
            .parse::<i64>()
            .ok()
            .filter(|n| *n > self.highest())
            .map(|_| Level::Critical)
        {
            return Ok(level);
        }
        Err(Error::parse(
            "log level",
            s,
            match self {
                NumericLevels::Python => {
                    "expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL (case-insensitive) or \
                     a common alias (WARN, FATAL, SEVERE, W, E, Python's 10-50, a number above 50 \
                     as CRITICAL, ...)"
                }
                NumericLevels::Pino => {
                    "expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL (case-insensitive) or \
                     a common alias (WARN, FATAL, SEVERE, W, E, pino's 10-60, a number above 60 \
                     as CRITICAL, ...)"
                }
            },
        ))
    }
}

impl FromStr for NumericLevels {
    type Err = Error;

    /// `python` or `pino`, in any case, surrounding whitespace ignored; anything else is an
    /// [`Error::Parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NumericLevels::ALL
            .into_iter()
            .find(|scale| scale.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                Error::parse(
                    "numeric level scale",
                    s,
                    "expected python (10 DEBUG .. 50 CRITICAL) or pino (10 trace .. 60 fatal)",
                )
            })
    }
}

impl fmt::Display for NumericLevels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a spelling is a number (`"30"`), whose level depends on the scale.
fn is_number(spelling: &str) -> bool {
    !spelling.is_empty() && spelling.bytes().all(|b| b.is_ascii_digit())
}

/// The level `t` (already trimmed) spells on `scale`, compared upper case, without allocating.
fn spelled_level(t: &str, scale: NumericLevels) -> Option<Level> {
    if is_number(t) {
        return scale
            .named()
            .iter()
            .find(|(name, _)| *name == t)
            .map(|(_, level)| *level);
    }
    if t.len() > 13 {
        return None;
    }
    let mut buf = [0u8; 13];
    let upper = &mut buf[..t.len()];
    upper.copy_from_slice(t.as_bytes());
    upper.make_ascii_uppercase();
    Level::SPELLINGS
        .iter()
        .find(|(name, _)| name.as_bytes() == &*upper)
        .map(|(_, level)| *level)
}

impl<'de> Deserialize<'de> for Level {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Level::from_str(&text).map_err(|_| {
            serde::de::Error::custom(format!(
                "unknown level {}: expected DEBUG, INFO, WARNING, ERROR or CRITICAL (any case) \
                 or a common alias (WARN, FATAL, SEVERE, ...)",
                crate::text::quoted(&text)
            ))
        })
    }
}

impl FromStr for Level {
    type Err = Error;

    /// Parses a level case-insensitively, ignoring surrounding whitespace: any of
    /// [`Level::SPELLINGS`], or a whole number above 50 (CRITICAL, [`Level::from_number`]).
    /// Anything else is an [`Error::Parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NumericLevels::Python.parse(s)
    }
}

/// One record the server wrote to its log, as stored in CIDX's `logs.db`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    /// Monotonically increasing id assigned by the log store; the scan cursor.
    pub id: i64,
    /// When the record was written, as the server wrote it (usually ISO 8601). Kept verbatim.
    pub timestamp: String,
    /// Severity.
    pub level: Level,
    /// The logger / module that wrote the record (`code_indexer.server.git`), if any.
    #[serde(default)]
    pub source: Option<String>,
    /// The message text. Untrusted: any client may have influenced it.
    #[serde(default)]
    pub message: String,
    /// Request correlation id, if any.
    #[serde(default)]
    pub correlation_id: Option<String>,
    /// The user on whose behalf the server acted, if any.
    #[serde(default)]
    pub user_id: Option<String>,
    /// The HTTP request path, if any.
    #[serde(default)]
    pub request_path: Option<String>,
    /// Structured extra data (`{"error_code": "GIT-SYNC-001", ...}`), `Null` when absent.
    #[serde(default)]
    pub extra_data: serde_json::Value,
    /// The server node that wrote the record, in a cluster whose nodes share one log table
    /// (`None` for a single server). Untrusted text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
}

impl LogRecord {
    /// A record with the given id, level and message and everything else empty.
    pub fn new(id: i64, level: Level, message: impl Into<String>) -> Self {
        LogRecord {
            id,
            timestamp: String::new(),
            level,
            source: None,
            message: message.into(),
            correlation_id: None,
            user_id: None,
            request_path: None,
            extra_data: serde_json::Value::Null,
            node_id: None,
        }
    }

    /// Builder-style setter for `node_id`.
    pub fn with_node_id(mut self, node: impl Into<String>) -> Self {
        self.node_id = Some(node.into());
        self
    }

    /// Builder-style setter for `source`.
    pub fn with_source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Builder-style setter for `timestamp`.
    pub fn with_timestamp(mut self, ts: impl Into<String>) -> Self {
        self.timestamp = ts.into();
        self
    }

    /// Builder-style setter for `extra_data`.
    pub fn with_extra(mut self, extra: serde_json::Value) -> Self {
        self.extra_data = extra;
        self
    }

    /// Builder-style setter for `correlation_id`.
    pub fn with_correlation_id(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_level_in_json_is_read_in_any_case_and_alias_and_written_canonical() {
        // Review L2: the configuration refused "warning" and "WARN", which records may use.
        for (text, level) in [
            ("\"WARNING\"", Level::Warning),
            ("\"warning\"", Level::Warning),
            ("\"WARN\"", Level::Warning),
            ("\"fatal\"", Level::Critical),
        ] {
            let got: Level = serde_json::from_str(text).unwrap();
            assert_eq!(got, level, "{text}");
        }
        assert_eq!(
            serde_json::to_string(&Level::Warning).unwrap(),
            "\"WARNING\""
        );
        let err = serde_json::from_str::<Level>("\"loud\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown level `loud`"), "{err}");
    }

    #[test]
    fn levels_parse_case_insensitively_with_aliases() {
        for (spelling, level) in [
            ("severe", Level::Error),
            ("E", Level::Error),
            ("w", Level::Warning),
            ("20", Level::Info),
            ("30", Level::Warning),
            ("50", Level::Critical),
            ("Verbose", Level::Debug),
            ("ERRO", Level::Error),
            ("emerg", Level::Critical),
        ] {
            assert_eq!(spelling.parse::<Level>().unwrap(), level, "{spelling}");
        }
        for not_a_level in ["", "OK", "25", "WARNINGS", "INFORMATIONALX", "\u{131}nfo"] {
            assert!(not_a_level.parse::<Level>().is_err(), "{not_a_level:?}");
        }
        // Review4 F14: pino's/bunyan's fatal (60) and anything above Python's CRITICAL is
        // CRITICAL, not the ERROR an unknown level is read as (below 50's CRITICAL).
        for above in ["51", "60", " 60 ", "100", "9999999999"] {
            assert_eq!(
                above.parse::<Level>().unwrap(),
                Level::Critical,
                "{above:?}"
            );
        }
        // Syslog's 0..7 and numbers between Python's named ones stay unknown (read as ERROR by
        // the log sources, the original kept): no scale is guessed for them.
        for not_a_level in ["0", "3", "6", "7", "-60", "45", "5", "60.0", "1e3"] {
            assert!(not_a_level.parse::<Level>().is_err(), "{not_a_level:?}");
        }
        for (name, level) in Level::SPELLINGS {
            assert_eq!(name, name.to_ascii_uppercase(), "spellings are upper case");
            assert_eq!(name.parse::<Level>().unwrap(), level);
        }
        assert_eq!("warning".parse::<Level>().unwrap(), Level::Warning);
        assert_eq!(" Warn ".parse::<Level>().unwrap(), Level::Warning);
        assert_eq!("FATAL".parse::<Level>().unwrap(), Level::Critical);
        assert_eq!("eRrOr".parse::<Level>().unwrap(), Level::Error);
    }

    /// Review4 F14: pino/bunyan write 30 for info; read on Python's scale it was WARNING and
    /// could be filed. On the pino scale every number means what pino means.
    #[test]
    fn numeric_levels_on_the_pino_scale_mean_what_pino_means() {
        let pino = NumericLevels::Pino;
        for (text, level) in [
            ("10", Level::Debug),
            ("20", Level::Debug),
            ("30", Level::Info),
            (" 40 ", Level::Warning),
            ("50", Level::Error),
            ("60", Level::Critical),
            ("61", Level::Critical),
            ("9999999999", Level::Critical),
            ("warn", Level::Warning),
            ("FATAL", Level::Critical),
        ] {
            assert_eq!(pino.parse(text).unwrap(), level, "{text:?}");
        }
        for not_a_level in ["0", "5", "25", "55", "-60", "60.0", "LOUD", ""] {
            assert!(pino.parse(not_a_level).is_err(), "{not_a_level:?}");
        }
        assert_eq!(pino.level_of(30), Some(Level::Info));
        assert_eq!(pino.level_of(60), Some(Level::Critical));
        assert_eq!(pino.level_of(55), None);
        // The default scale is Python's, unchanged.
        assert_eq!(NumericLevels::default(), NumericLevels::Python);
        assert_eq!(NumericLevels::Python.parse("30").unwrap(), Level::Warning);
        assert_eq!(NumericLevels::Python.parse("50").unwrap(), Level::Critical);
        assert_eq!(NumericLevels::Python.level_of(55), Some(Level::Critical));
        assert_eq!(
            serde_json::from_str::<NumericLevels>("\"pino\"").unwrap(),
            NumericLevels::Pino
        );
        assert!(serde_json::from_str::<NumericLevels>("\"syslog\"").is_err());
        assert_eq!(
            " Pino ".parse::<NumericLevels>().unwrap(),
            NumericLevels::Pino
        );
        let err = "syslog".parse::<NumericLevels>().unwrap_err().to_string();
        assert!(err.contains("syslog") && err.contains("pino"), "{err}");
    }

    #[test]
    fn each_scale_reads_integers_stored_as_numbers_as_their_text_and_spells_every_level_once() {
        assert_eq!(NumericLevels::Python.spellings(), Level::SPELLINGS.to_vec());
        for scale in NumericLevels::ALL {
            for n in -120..=120 {
                assert_eq!(
                    scale.level_of(n),
                    scale.parse(&n.to_string()).ok(),
                    "{scale} {n}"
                );
            }
            assert_eq!(scale.level_of(i64::MAX), Some(Level::Critical));
            assert_eq!(scale.level_of(i64::MIN), None);
            let spellings = scale.spellings();
            for (name, level) in &spellings {
                assert_eq!(scale.parse(name).unwrap(), *level, "{scale} {name}");
                assert_eq!(
                    spellings.iter().filter(|(n, _)| n == name).count(),
                    1,
                    "{scale} {name}"
                );
            }
            for (number, _) in scale.named() {
                assert!(spellings.iter().any(|(n, _)| n == number), "{number}");
            }
        }
    }

    #[test]
    fn unknown_level_is_a_parse_error_naming_the_input() {
        let err = "LOUD".parse::<Level>().unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("log level") && msg.contains("LOUD"), "{msg}");
    }

    #[test]
    fn levels_order_by_severity() {
        assert!(Level::Critical > Level::Error && Level::Error > Level::Warning);
        assert_eq!(Level::Critical.class(), "error");
    }

    #[test]
    fn record_round_trips_through_json() {
        let r = LogRecord::new(7, Level::Error, "boom")
            .with_source("svc")
            .with_extra(serde_json::json!({"error_code": "GIT-SYNC-001"}));
        let back: LogRecord = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }
}
