//! The `shepherd` binary: logging to stderr, then the CLI.

use std::process::ExitCode;

/// Deciding many migrations allocates many small strings: mimalloc does it faster.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    shepherd::cli::init_logging();
    shepherd::cli::run(std::env::args_os().collect())
}
