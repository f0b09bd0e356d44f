//! The command line, one module per command.

/// `print!` to stdout that never panics: a reader that went away (`selfmon history | head`) ends
/// the output quietly instead of a "failed printing to stdout" panic; any other write error is
/// said once on stderr.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!($($arg)*))
    };
}

/// `println!` to stdout that never panics (see `out!`).
macro_rules! outln {
    () => { out!("\n") };
    ($($arg:tt)*) => {{
        out!($($arg)*);
        out!("\n");
    }};
}

/// Writes to stdout, ignoring a closed pipe and reporting any other error on stderr (the output
/// is what the command prints after its work is done; failing to print it changes nothing).
pub fn write_stdout(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    if let Err(e) = std::io::stdout().lock().write_fmt(args) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("selfmon: cannot write stdout: {e}");
        }
    }
}

pub mod args;
pub mod config_file;
pub mod failure;
pub mod history;
pub mod inventory;
pub mod prompt_cmd;
pub mod run;
pub mod scan;
pub mod scheduler;
pub mod schema;
pub mod signals;
pub mod templates;
pub mod terminal;
pub mod warnings;
