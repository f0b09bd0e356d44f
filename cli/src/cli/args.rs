//! Command-line arguments (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// selfmon: self-triage for servers. Reads the log records your server wrote, works out what is
/// wrong, and files actionable, non-duplicate issues.
#[derive(Debug, Parser)]
#[command(name = "selfmon", version, about, long_about = None, after_help = "Exit codes: 0 success, 1 scan failed, 2 usage or configuration error, 3 another scan holds the lease, 128 + the signal when SIGINT, SIGTERM or SIGHUP interrupted a scan (130, 143, 129).\n\nStart with:\n  selfmon config init --output selfmon.json\n  selfmon scan --config selfmon.json --dry-run")]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one scan with the adapters the configuration names.
    #[command(
        after_help = "Examples:\n  selfmon scan --config selfmon.json\n  selfmon scan --config selfmon.json --dry-run --json > report.json"
    )]
    Scan(ScanArgs),
    /// Print the template and fingerprint of each message read from stdin (one per line).
    #[command(
        after_help = "Examples:\n  tail -n 1000 server.log | selfmon templates\n  echo 'clone of /a failed after 3s' | selfmon templates --json"
    )]
    Templates(TemplatesArgs),
    /// Error-code coverage of a logs.db: coded vs uncoded warnings and errors, top uncoded templates.
    #[command(
        after_help = "Examples:\n  selfmon inventory --logs /var/lib/cidx/logs.db\n  selfmon inventory --logs logs.db --catalog error-codes.json --json"
    )]
    Inventory(InventoryArgs),
    /// Scan history and filed issues from the state store (the dashboard on the command line).
    #[command(
        after_help = "Examples:\n  selfmon history --state selfmon-state.db\n  selfmon history --state selfmon-state.db --scans 50 --issues 0 --json\n  selfmon history --config selfmon.json   # the state store it names (PostgreSQL in cluster mode)\n  selfmon history show 3f2a... --state selfmon-state.db   # what happened to every signature and finding"
    )]
    History(HistoryArgs),
    /// Print the logs.db schema selfmon reads (and the tables it keeps its own state in).
    #[command(
        after_help = "Examples:\n  selfmon schema\n  selfmon schema --ddl | sqlite3 logs.db   # create an empty logs table"
    )]
    Schema {
        /// Print only the `CREATE TABLE` statement of the logs table.
        #[arg(long)]
        ddl: bool,
    },
    /// Write or check a configuration file.
    #[command(
        subcommand,
        after_help = "Examples:\n  selfmon config init --output selfmon.json\n  selfmon config validate --config selfmon.json"
    )]
    Config(ConfigCommand),
    /// Show the shipped analysis prompt, or compare a configured prompt with it.
    #[command(
        subcommand,
        after_help = "Examples:\n  selfmon prompt show\n  selfmon prompt diff --config selfmon.json"
    )]
    Prompt(PromptCommand),
    /// Run the cadence loop in the foreground (SIGUSR1 or touching --trigger-file runs a scan now; SIGHUP reloads the configuration; SIGTERM or SIGINT stops at once, interrupting the scan in flight: it is recorded as failed, "interrupted", and the cursor stays, so the next scan reads the same records).
    #[command(
        name = "serve-scheduler",
        after_help = "Exit codes: 0 when stopped while idle; 143 / 130 when SIGTERM / SIGINT interrupted a scan (recorded as failed, \"interrupted\"; the cursor stays); 2 for a configuration error at start.\n\nExamples:\n  selfmon serve-scheduler --config selfmon.json\n  selfmon serve-scheduler --config selfmon.json --trigger-file /run/selfmon/run-now\n  kill -USR1 <pid>   # run a scan now\n  kill -TERM <pid>   # stop now; a scan in flight is interrupted, not finished"
    )]
    ServeScheduler(SchedulerArgs),
}

/// `selfmon scan`.
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// The configuration file (JSON; `//` comment lines allowed).
    #[arg(long, short)]
    pub config: PathBuf,
    /// Preview: show what this scan would file, comment and defer, and change nothing. A dry run
    /// files no issue, posts no comment, never moves the cursor (the next real scan reads the same
    /// records and files exactly what the preview showed), records no occurrences, and changes
    /// neither the learned templates nor the backlog. It is marked "dry-run" in `selfmon history`.
    /// Same as `"dry_run": true` in the configuration.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the full scan report as JSON instead of a summary.
    #[arg(long)]
    pub json: bool,
}

/// `selfmon templates`.
#[derive(Debug, Args)]
pub struct TemplatesArgs {
    /// One JSON object per line instead of `FINGERPRINT<TAB>TEMPLATE`.
    #[arg(long)]
    pub json: bool,
    /// Only mask values; do not cluster lines that differ in names into shared templates.
    #[arg(long)]
    pub no_cluster: bool,
    /// Learned templater state to start from; updated at the end (created if missing).
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
}

/// `selfmon inventory`.
#[derive(Debug, Args)]
pub struct InventoryArgs {
    /// The logs.db to read.
    #[arg(long)]
    pub logs: PathBuf,
    /// An error-code catalog (JSON array or object, or one code per line).
    #[arg(long)]
    pub catalog: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// The scale of levels stored as numbers: `python` (10 DEBUG .. 50 CRITICAL) or `pino`
    /// (pino/bunyan: 10 trace, 20 debug, 30 info, 40 warn, 50 error, 60 fatal).
    #[arg(long, value_name = "SCALE", default_value = "python")]
    pub numeric_levels: selfmon::NumericLevels,
}

/// `selfmon history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// `show SCAN_ID`: one scan's full report.
    #[command(subcommand)]
    pub command: Option<HistoryCommand>,
    /// The SQLite state store file (or pass `--config`).
    #[arg(long, global = true, conflicts_with = "config")]
    pub state: Option<PathBuf>,
    /// The configuration file: reads the state store it names, SQLite or PostgreSQL (cluster
    /// mode).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// How many scans to show (newest first).
    #[arg(long, default_value_t = 20)]
    pub scans: u64,
    /// How many filed issues to show (newest first).
    #[arg(long, default_value_t = 20)]
    pub issues: u64,
    /// Print JSON (`{"scans": {...}, "issues": {...}}` with totals).
    #[arg(long)]
    pub json: bool,
}

/// `selfmon history ...`.
#[derive(Debug, Subcommand)]
pub enum HistoryCommand {
    /// One scan's report: the fate of every signature (known, ignored, analysed) and every finding
    /// (filed, duplicate, related, regression, rejected, deferred, skipped by the runner), the
    /// model, tokens and cost, the digest as sent, the cursor range, gaps and resets.
    #[command(
        after_help = "Examples:\n  selfmon history show 3f2a6c1e-... --state selfmon-state.db\n  selfmon history show 3f2a6c1e-... --state selfmon-state.db --json --digest"
    )]
    Show {
        /// The scan id (the first column of `selfmon history`).
        scan_id: String,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Also print the digest exactly as it was sent to the runner.
        #[arg(long)]
        digest: bool,
    },
    /// Forget a filed issue: remove selfmon's record of it, so its problem is no longer known
    /// and its next recurrence is analysed and filed as a new issue. For an issue deleted or
    /// transferred on the tracker (a scan says "the issue tracker no longer has #N"), which
    /// otherwise holds its problem for good. Scan reports keep what happened to it.
    #[command(
        after_help = "Examples:\n  selfmon history forget 12 --config selfmon.json\n  selfmon history forget 12 --state selfmon-state.db"
    )]
    Forget {
        /// The issue number, as `selfmon history` lists it.
        issue: u64,
    },
}

/// `selfmon config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Write a commented default configuration.
    #[command(
        after_help = "Examples:\n  selfmon config init > selfmon.json\n  selfmon config init --output selfmon.json"
    )]
    Init {
        /// Write here instead of stdout (refuses to overwrite without --force).
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Check a configuration file and print every problem with its field path, including what
    /// this environment must provide: the Claude runner's `binary` must resolve (a path to an
    /// executable file, or a name on PATH) and the GitHub tracker's `token_env` variable must be
    /// set. Exits 2 when there is a problem; notes (valid, but worth knowing) do not fail it.
    #[command(after_help = "Example:\n  selfmon config validate --config selfmon.json")]
    Validate {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
}

/// `selfmon prompt ...`.
#[derive(Debug, Subcommand)]
pub enum PromptCommand {
    /// Print the prompt shipped with this version.
    #[command(after_help = "Example:\n  selfmon prompt show")]
    Show,
    /// Show how the configured prompt differs from the shipped one.
    #[command(after_help = "Example:\n  selfmon prompt diff --config selfmon.json")]
    Diff {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
}

/// `selfmon serve-scheduler`.
#[derive(Debug, Args)]
pub struct SchedulerArgs {
    /// The configuration file; re-read when it changes and on SIGHUP. The monitoring settings at
    /// the top level (enabled, cadence, model, budgets, ignore, redaction, ...) apply from the next
    /// scan; changes to the `logs`, `state`, `runner` or `tracker` sections or to `page_size` need
    /// a restart (the log names them when it reloads).
    #[arg(long, short)]
    pub config: PathBuf,
    /// Touching this file (changing its modification time) runs a scan now.
    #[arg(long)]
    pub trigger_file: Option<PathBuf>,
    /// Seconds between checks of the cadence.
    #[arg(long, default_value_t = 30)]
    pub tick_secs: u64,
}
