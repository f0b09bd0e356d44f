//! The library's warnings on stderr.
//!
//! selfmon's crates report what an operator should know but that does not fail a scan (a rate
//! limit being waited out, an issue treated as someone else's, learned templates that could not be
//! read) as `tracing` events. A host that embeds the library routes them into its own logs; the
//! CLI prints them on stderr, one line each: `selfmon: warning: <message> (key=value, …)`,
//! redacted like every other line the CLI prints.
//!
//! `SELFMON_LOG` sets how much is printed: `off`, `error`, `warn` (the default), `info`, `debug`
//! or `trace`. Only selfmon's own events are printed, never those of the libraries it uses.

use std::fmt::Write as _;

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::{span, Event, Level, Metadata, Subscriber};

/// Prints selfmon's events at `max` and above on stderr.
struct StderrEvents {
    max: Level,
}

/// The level `SELFMON_LOG` names (`None`: print nothing); `warn` when unset or unknown.
fn level_from(setting: Option<&str>) -> Option<Level> {
    match setting.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
        Some("off" | "none" | "0") => None,
        Some("error") => Some(Level::ERROR),
        Some("info") => Some(Level::INFO),
        Some("debug") => Some(Level::DEBUG),
        Some("trace") => Some(Level::TRACE),
        _ => Some(Level::WARN),
    }
}

/// Installs the stderr printer as the process's subscriber (once; later calls do nothing).
pub fn install() {
    let setting = std::env::var("SELFMON_LOG").ok();
    if let Some(max) = level_from(setting.as_deref()) {
        let _ = tracing::subscriber::set_global_default(StderrEvents { max });
    }
}

/// An event's message and its other fields, as `key=value`.
#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            if !self.rest.is_empty() {
                self.rest.push_str(", ");
            }
            let _ = write!(self.rest, "{}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            if !self.rest.is_empty() {
                self.rest.push_str(", ");
            }
            let _ = write!(self.rest, "{}={value}", field.name());
        }
    }
}

/// The line printed for an event of `level` with `fields`.
fn line(level: &Level, fields: &Fields) -> String {
    let word = match *level {
        Level::ERROR => "error",
        Level::WARN => "warning",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        _ => "trace",
    };
    let mut text = format!("{word}: {}", fields.message);
    if !fields.rest.is_empty() {
        let _ = write!(text, " ({})", fields.rest);
    }
    let text = selfmon::redact::Redactor::shared().redact(&text);
    format!("selfmon: {}", super::terminal::safe(&text))
}

impl Subscriber for StderrEvents {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= &self.max && metadata.target().starts_with("selfmon")
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::from_level(self.max))
    }

    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }

    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}

    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        eprintln!("{}", line(event.metadata().level(), &fields));
    }

    fn enter(&self, _: &span::Id) {}

    fn exit(&self, _: &span::Id) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selfmon_log_names_the_level_and_defaults_to_warnings() {
        assert_eq!(level_from(None), Some(Level::WARN));
        assert_eq!(level_from(Some("bogus")), Some(Level::WARN));
        assert_eq!(level_from(Some(" Debug ")), Some(Level::DEBUG));
        assert_eq!(level_from(Some("off")), None);
    }

    #[test]
    fn a_line_says_the_level_the_message_and_the_fields_redacted() {
        let fields = Fields {
            message: "GitHub rate limit: waiting".into(),
            rest: "seconds=25, token=ghp_abcdefghijklmnopqrstuvwxyz0123456789".into(),
        };
        let l = line(&Level::WARN, &fields);
        assert!(
            l.starts_with("selfmon: warning: GitHub rate limit: waiting (seconds=25"),
            "{l}"
        );
        assert!(
            !l.contains("ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
            "{l}"
        );
    }
}
