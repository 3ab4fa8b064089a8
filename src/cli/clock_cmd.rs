//! `shepherd clock`: the local tracker's rehearsal clock, kept in its file. Every command on
//! that tracker reads it (`--now` overrides it for one command); setting it before the
//! newest event in the file warns, since history would then run backwards. Neither `set`
//! nor `advance` moves it past 9999-12-31T23:59:59Z: `set` refuses such a value as a bad
//! flag value (exit 2, from `values::parse_time`), `advance` one that would end there as an
//! error of what it was asked (exit 1), and neither writes anything.

use std::process::ExitCode;

use anyhow::{bail, Result};
use chrono::{DateTime, Utc};
use clap::Subcommand;
use serde_json::json;

use super::config::Session;
use super::output::{print, warn, Format};
use super::values::{parse_cli_duration, parse_time};
use crate::tracker::local::LocalTracker;
use crate::tracker::TrackerSpec;

/// What `shepherd clock` does.
#[derive(Subcommand, Debug)]
pub(super) enum ClockAction {
    /// Print the clock (the default)
    Show,
    /// Set the clock to a time (RFC 3339)
    Set {
        /// The new time, e.g. 2026-03-01T09:00:00Z
        #[arg(value_name = "RFC3339", value_parser = parse_time)]
        time: DateTime<Utc>,
    },
    /// Move the clock on by a duration (30s, 15m, 2h, 1d, 1w)
    Advance {
        /// How far: 30s, 15m, 2h, 1d, 1w, or combined (1d12h)
        #[arg(value_name = "DURATION", value_parser = parse_cli_duration)]
        by: chrono::Duration,
    },
}

pub(super) fn clock(session: &Session, action: Option<ClockAction>) -> Result<ExitCode> {
    let format = session.format(&[Format::Text, Format::Json])?;
    let spec = session.spec()?;
    let TrackerSpec::Local(path) = &spec else {
        bail!("{spec} keeps its own time: the rehearsal clock belongs to the local tracker (--tracker local:PATH)");
    };
    let tracker = match action {
        None | Some(ClockAction::Show) => {
            LocalTracker::open(path, false, session.now, &session.actor)?
        }
        // Setting the clock repairs a file whose stored clock cannot be read.
        Some(ClockAction::Set { .. }) => LocalTracker::open_to_set_clock(path, &session.actor)?,
        Some(ClockAction::Advance { .. }) => {
            LocalTracker::open(path, true, session.now, &session.actor)?
        }
    };
    let (clock, stored) = match action {
        None | Some(ClockAction::Show) => {
            let stored = tracker.clock()?;
            (
                stored.unwrap_or_else(|| crate::tracker::Tracker::now(&tracker)),
                stored.is_some(),
            )
        }
        Some(ClockAction::Set { time }) => (report(tracker.set_clock(time)?), true),
        Some(ClockAction::Advance { by }) => (report(tracker.advance_clock(by)?), true),
    };
    let shown = clock.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    print(
        format,
        &json!({"tracker": spec.to_string(), "clock": shown, "stored": stored}),
        || {
            if stored {
                format!("{shown} (the rehearsal clock of {spec})")
            } else {
                format!("{shown} (no rehearsal clock set: the system clock)")
            }
        },
    )
}

fn report(set: crate::tracker::local::ClockSet) -> chrono::DateTime<chrono::Utc> {
    if let Some(latest) = set.latest_event {
        warn(&format!(
            "the clock is now before the latest event ({}): history will run backwards",
            latest.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ));
    }
    set.clock
}
