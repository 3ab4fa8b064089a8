//! `shepherd freeze add|list|remove`: the local tracker's change freezes (DESIGN §13),
//! kept in its file and evaluated on its rehearsal clock, so a rehearsal meets a freeze as
//! production would. On a remote tracker they are a usage error (exit 2): there freezes are
//! `[[freeze]]` in `shepherd.toml` or, on GitLab, the project's deploy freeze periods.

use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::config::Session;
use super::output::{note, print, Format};
use crate::core::freeze::{self, Freeze};
use crate::tracker::local::LocalTracker;
use crate::tracker::{FreezePeriod, Tracker, TrackerSpec};

// `shepherd freeze`: its help text is the variant's in `args.rs`.
#[derive(Args, Debug)]
#[command(
    after_help = "A freeze period starts and ends at five-field crons, as GitLab deploy freeze periods are\nwritten; a stage with `freeze: wait` is not entered while one is in effect. These are the local\ntracker's, on its rehearsal clock (`shepherd clock`). Elsewhere, write [[freeze]] tables in\nshepherd.toml, or set freezes = \"gitlab\" under [tracker] to use the GitLab project's own.\n\nExamples:\n  shepherd freeze add --start \"0 23 * * 5\" --end \"0 7 * * 1\"\n  shepherd freeze add --start \"0 0 20 12 *\" --end \"0 0 3 1 *\" --timezone Europe/Berlin\n  shepherd freeze list --format json\n  shepherd freeze remove 1"
)]
pub(super) struct FreezeArgs {
    #[command(subcommand)]
    action: FreezeAction,
}

/// What `shepherd freeze` does.
#[derive(Subcommand, Debug)]
enum FreezeAction {
    /// Add a freeze period: from every START until the END that follows
    Add {
        /// When it starts: a five-field cron, e.g. "0 23 * * 5" (Fridays 23:00)
        #[arg(long, value_name = "CRON")]
        start: String,
        /// When it ends: a five-field cron, e.g. "0 7 * * 1" (Mondays 07:00)
        #[arg(long, value_name = "CRON")]
        end: String,
        /// The IANA time zone of both crons (default UTC), e.g. Europe/Berlin
        #[arg(long, value_name = "TZ")]
        timezone: Option<String>,
    },
    /// Every freeze period, and whether one is in effect now
    List,
    /// Remove a freeze period by its id (`freeze list` shows them)
    Remove {
        /// The period's id
        id: u64,
    },
}

/// Runs `shepherd freeze`.
pub(super) fn freeze(session: &Session, args: FreezeArgs) -> Result<ExitCode> {
    let format = session.format(&[Format::Text, Format::Json])?;
    let spec = session.spec()?;
    let TrackerSpec::Local(path) = &spec else {
        let gitlab = match spec {
            TrackerSpec::GitLab(_) => {
                ", or the project's deploy freeze periods with freezes = \"gitlab\" under [tracker]"
            }
            _ => "",
        };
        note(&format!(
            "error: `shepherd freeze` keeps change freezes in the local tracker's file; on {spec}, write them as [[freeze]] tables in shepherd.toml{gitlab}"
        ));
        return Ok(ExitCode::from(2));
    };
    let create = matches!(args.action, FreezeAction::Add { .. });
    let tracker = LocalTracker::open(path, create, session.now, &session.actor)?;
    let now = tracker.now();
    match args.action {
        FreezeAction::Add {
            start,
            end,
            timezone,
        } => {
            let checked = Freeze::new(&start, &end, timezone.as_deref())
                .context("cannot add the freeze period")?;
            let added = tracker.add_freeze(&checked.start, &checked.end, checked.zone_name())?;
            let until = checked.until(now);
            let mut value = shown(&added, "tracker", until);
            value["tracker"] = spec.to_string().into();
            print(format, &value, || {
                let effect = until
                    .map(|u| format!("; in effect now, until {}", freeze::shown(u)))
                    .unwrap_or_default();
                format!("freeze {} added: {}{effect}", added.id, line(&added))
            })
        }
        FreezeAction::List => list(session, &spec, &tracker, format, now),
        FreezeAction::Remove { id } => {
            if !tracker.remove_freeze(id)? {
                bail!("{spec} has no freeze period {id} (`shepherd freeze list` shows them)");
            }
            print(
                format,
                &json!({"tracker": spec.to_string(), "removed": id}),
                || format!("freeze {id} removed"),
            )
        }
    }
}

/// `freeze list`: the tracker's periods and `shepherd.toml`'s, and until when the freeze
/// in effect lasts, on the tracker's clock.
fn list(
    session: &Session,
    spec: &TrackerSpec,
    tracker: &LocalTracker,
    format: Format,
    now: DateTime<Utc>,
) -> Result<ExitCode> {
    let stored = tracker.freezes()?;
    let mut all: Vec<Freeze> = session.config.freeze.iter().map(|f| f.0.clone()).collect();
    let mut rows: Vec<Value> = all
        .iter()
        .map(|f| {
            let period = FreezePeriod {
                id: 0,
                start: f.start.clone(),
                end: f.end.clone(),
                timezone: f.zone_name().to_string(),
            };
            let mut row = shown(&period, "shepherd.toml", f.until(now));
            row["id"] = Value::Null;
            row
        })
        .collect();
    for p in &stored {
        let checked = Freeze::new(&p.start, &p.end, Some(&p.timezone))
            .with_context(|| format!("freeze period {} of {spec}", p.id))?;
        rows.push(shown(p, "tracker", checked.until(now)));
        all.push(checked);
    }
    let until = freeze::frozen_until(&all, now);
    let value = json!({
        "tracker": spec.to_string(),
        "now": now,
        "frozen_until": until,
        "freezes": rows,
    });
    print(format, &value, || {
        let mut out = match until {
            Some(u) => format!(
                "frozen until {} (now {})\n",
                freeze::shown(u),
                freeze::shown(now)
            ),
            None => format!("no freeze in effect (now {})\n", freeze::shown(now)),
        };
        if rows.is_empty() {
            out.push_str(
                "no freeze periods (add one with `shepherd freeze add --start CRON --end CRON`)",
            );
        }
        for f in session.config.freeze.iter().map(|f| &f.0) {
            out.push_str(&format!(
                "-  {} → {} ({}), from shepherd.toml\n",
                f.start,
                f.end,
                f.zone_name()
            ));
        }
        for p in &stored {
            out.push_str(&format!("{}  {}\n", p.id, line(p)));
        }
        out.trim_end().to_string()
    })
}

/// A period as JSON: `{"id", "start", "end", "timezone", "source", "in_effect", "until"}`.
fn shown(p: &FreezePeriod, source: &str, until: Option<DateTime<Utc>>) -> Value {
    json!({
        "id": p.id,
        "start": p.start,
        "end": p.end,
        "timezone": p.timezone,
        "source": source,
        "in_effect": until.is_some(),
        "until": until,
    })
}

/// A period on one line: `0 23 * * 5 → 0 7 * * 1 (UTC)`.
fn line(p: &FreezePeriod) -> String {
    format!("{} → {} ({})", p.start, p.end, p.timezone)
}
