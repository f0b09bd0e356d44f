//! The command line, one module per command.

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
