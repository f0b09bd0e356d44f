//! The `selfmon` command line: the whole pipeline for hosts in any language.
//!
//! Exit codes: 0 success, 1 scan failed (recorded as failed), 2 usage or configuration error,
//! 3 another scan holds the lease, 128 + the signal number when SIGINT, SIGTERM or SIGHUP
//! interrupted a scan (130, 143, 129).
//!
//! The library's warnings are printed on stderr (`SELFMON_LOG` sets the level; see
//! `cli::warnings`).

mod cli;

fn main() -> std::process::ExitCode {
    cli::run::main()
}
