//! Dispatch: parse arguments, run the command, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;

use super::args::{Cli, Command, ConfigCommand, PromptCommand};
use super::config_file::{default_config_text, CliConfig};
use super::failure::Failure;

/// The binary's entry point.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    super::warnings::install();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("selfmon: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(dispatch(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            // Every failure is redacted once more with the built-in rules: a configuration or
            // I/O error can quote a value, and stderr ends up in journald and cron mail.
            let text = f.to_string();
            let text = selfmon::redact::Redactor::shared().redact(&text);
            eprintln!("selfmon: {}", super::terminal::safe(&text));
            f.exit_code()
        }
    }
}

async fn dispatch(command: Command) -> Result<(), Failure> {
    match command {
        Command::Scan(a) => super::scan::run(&a).await,
        Command::Templates(a) => super::templates::run(&a),
        Command::Inventory(a) => super::inventory::run(&a).await,
        Command::History(a) => super::history::run(&a).await,
        Command::Schema { ddl } => {
            out!("{}", super::schema::text(ddl));
            Ok(())
        }
        Command::Config(ConfigCommand::Init { output, force }) => {
            let text = default_config_text();
            match output {
                None => {
                    out!("{text}");
                    Ok(())
                }
                Some(path) => {
                    if path.exists() && !force {
                        return Err(Failure::Usage(format!(
                            "{} exists; pass --force to overwrite",
                            path.display()
                        )));
                    }
                    std::fs::write(&path, text).map_err(|e| {
                        Failure::Usage(format!("cannot write {}: {e}", path.display()))
                    })?;
                    eprintln!("wrote {}", path.display());
                    Ok(())
                }
            }
        }
        Command::Config(ConfigCommand::Validate { config }) => {
            let c = CliConfig::load(&config)?;
            c.check()?;
            outln!("{}: valid", config.display());
            for n in c.notes() {
                outln!("  note: {}: {}", n.field, n.reason);
            }
            Ok(())
        }
        Command::Prompt(PromptCommand::Show) => {
            super::prompt_cmd::show();
            Ok(())
        }
        Command::Prompt(PromptCommand::Diff { config }) => super::prompt_cmd::diff(&config),
        Command::ServeScheduler(a) => super::scheduler::run(&a).await,
    }
}
