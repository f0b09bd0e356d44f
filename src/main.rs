//! The `selfmon` command line.

fn main() {
    let arg = std::env::args().nth(1);
    match arg.as_deref() {
        Some("--version") | Some("-V") => println!("selfmon {}", env!("CARGO_PKG_VERSION")),
        _ => {
            println!(
                "selfmon {}: self-triage for servers\n\nUSAGE:\n    selfmon [--version | --help]\n\nThe full command line is not built yet; see README.md.",
                env!("CARGO_PKG_VERSION")
            );
        }
    }
}
