//! The `shepherd` binary: logging to stderr, then the CLI.

use std::process::ExitCode;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SHEPHERD_LOG")
                .unwrap_or_else(|_| "off".into()),
        )
        .init();
    shepherd::cli::run(std::env::args_os().collect())
}
