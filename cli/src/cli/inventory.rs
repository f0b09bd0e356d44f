//! `selfmon inventory`.

use selfmon::sqlite::{inventory, render_text, Catalog, InventoryOptions};

use super::args::InventoryArgs;
use super::failure::Failure;

/// Prints the error-code inventory of a logs.db.
pub async fn run(args: &InventoryArgs) -> Result<(), Failure> {
    if args.logs.is_dir() {
        return Err(Failure::Usage(format!(
            "log file {} is a folder, not a file: pass the server's logs.db",
            args.logs.display()
        )));
    }
    if !args.logs.is_file() {
        return Err(Failure::Usage(format!(
            "log file {} does not exist",
            args.logs.display()
        )));
    }
    let catalog = match &args.catalog {
        Some(p) => Some(
            Catalog::load(p)
                .map_err(|e| Failure::usage(&format!("cannot load catalog {}", p.display()), &e))?,
        ),
        None => None,
    };
    let logs = args.logs.clone();
    let options = InventoryOptions {
        numeric_levels: args.numeric_levels,
        ..InventoryOptions::default()
    };
    let report = tokio::task::spawn_blocking(move || inventory(&logs, catalog.as_ref(), &options))
        .await
        .map_err(|e| Failure::ScanFailed(format!("inventory task failed: {e}")))?
        .map_err(|e| Failure::usage(&format!("cannot read {}", args.logs.display()), &e))?;
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        out!("{}", super::terminal::safe(&render_text(&report)));
    }
    Ok(())
}
