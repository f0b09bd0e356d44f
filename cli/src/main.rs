//! The `selfmon` command line: the whole pipeline for hosts in any language.
//!
//! Exit codes: 0 success, 1 scan failed (recorded as failed), 2 usage or configuration error,
//! 3 another scan holds the lease.

mod cli;

fn main() -> std::process::ExitCode {
    cli::run::main()
}
