//! Logs on stderr (tracing): the filter comes from `SHEPHERD_LOG`, else `RUST_LOG`
//! (tracing's `EnvFilter` syntax, e.g. `warn` or `shepherd=debug`); with neither, nothing
//! is logged. Colour only when stderr is a terminal and `NO_COLOR` is not set.
//!
//! Logs are for diagnosis. What a person must see (warnings, notes) the commands print
//! themselves, once, as `warning: …`, whatever the filter.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

/// Sets up logging for the process; called once, by `main`.
pub fn init_logging() {
    let (filter, problem) = match filter_from_env() {
        Ok(filter) => (filter, None),
        Err(problem) => (EnvFilter::new("off"), Some(problem)),
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(colour())
        .with_env_filter(filter)
        .try_init();
    if let Some(problem) = problem {
        super::output::warn(&problem);
    }
}

/// The filter of `SHEPHERD_LOG`, else of `RUST_LOG`, else `off`.
fn filter_from_env() -> Result<EnvFilter, String> {
    for var in ["SHEPHERD_LOG", "RUST_LOG"] {
        match std::env::var(var) {
            Ok(value) if !value.trim().is_empty() => {
                return EnvFilter::try_new(&value).map_err(|e| {
                    format!("{var}=`{value}` is not a log filter ({e}); logging is off")
                });
            }
            _ => {}
        }
    }
    Ok(EnvFilter::new("off"))
}

/// Colour in logs: stderr is a terminal and `NO_COLOR` is unset or empty.
fn colour() -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    std::io::stderr().is_terminal() && !no_color
}
