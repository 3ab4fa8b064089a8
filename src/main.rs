//! The `shepherd` binary: logging to stderr, then the CLI.

use std::process::ExitCode;

fn main() -> ExitCode {
    shepherd::cli::init_logging();
    shepherd::cli::run(std::env::args_os().collect())
}
