//! The `selfmon` command line. Each subcommand lives in its own module under `cmd/`; `main` only
//! parses arguments, dispatches, and turns errors into a message on stderr and a non-zero exit.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd {
    pub mod templates;
}

/// Self-triage for servers: read your own logs, work out what is wrong, file non-duplicate issues.
#[derive(Debug, Parser)]
#[command(name = "selfmon", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Read one log message per line on stdin; write FINGERPRINT<TAB>TEMPLATE per line on stdout.
    Templates(cmd::templates::Args),
}

/// A failure of a subcommand, printed as `selfmon: <message>`.
#[derive(Debug)]
pub struct CliError(String);

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<selfmon_core::Error> for CliError {
    fn from(e: selfmon_core::Error) -> Self {
        CliError(e.to_string())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Templates(args) => cmd::templates::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("selfmon: {e}");
            ExitCode::FAILURE
        }
    }
}
