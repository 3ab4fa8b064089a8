//! What a person reads: `issue` (one issue as the tracker shows it), `status` (one
//! migration, or every open one as a table) and `history` (the stages a migration went
//! through).

use std::process::ExitCode;

use anyhow::Result;
use serde_json::json;

use super::output::{print, status_text, Format};
use crate::core::report;
use crate::engine::Engine;
use crate::tracker::{StateFilter, TrackerSpec};

/// `issue REF`: one issue as a person sees it.
pub(super) async fn issue(engine: &Engine<'_>, format: Format, reference: u64) -> Result<ExitCode> {
    let issue = engine.tracker.issue(reference).await?;
    let state = if issue.open { "open" } else { "closed" };
    print(
        format,
        &json!({"ref": issue.number, "title": issue.title, "body": issue.body, "labels": issue.labels, "state": state, "url": issue.url}),
        || {
            let labels = issue
                .labels
                .iter()
                .map(|l| format!("~\"{l}\""))
                .collect::<Vec<_>>()
                .join(" ");
            format!(
                "#{} {}\nstate: {state}\nlabels: {labels}\nurl: {}\n\n{}",
                issue.number, issue.title, issue.url, issue.body
            )
        },
    )
}

/// `status REF`: where one migration stands and what it waits for.
pub(super) async fn one(
    engine: &Engine<'_>,
    spec: &TrackerSpec,
    format: Format,
    reference: u64,
) -> Result<ExitCode> {
    let mut status = engine.status(reference).await?;
    status.forecast = engine.forecast(&status).await?;
    let mut value = serde_json::to_value(&status)?;
    value["tracker"] = spec.to_string().into();
    let overdue = overdue_line(engine, &status);
    let forecast = forecast_line(&status);
    print(format, &value, || {
        format!(
            "{}{overdue}{forecast}\ntracker: {spec}",
            status_text(&status)
        )
    })
}

/// `status`: every open migration, one row each.
pub(super) async fn all(
    engine: &Engine<'_>,
    spec: &TrackerSpec,
    format: Format,
) -> Result<ExitCode> {
    let index = engine.index_of(StateFilter::All).await?;
    let mut statuses = engine
        .statuses(&index, false, &report::Filter::default())
        .await?;
    // Each open migration's forecast, from the past of every migration, closed ones too.
    let past = engine.past(&index, &statuses).await?;
    for s in &mut statuses {
        if let Some(workflow) = engine.catalog.workflows.get(&s.workflow) {
            s.forecast = report::forecast_of(workflow, s, engine.now(), &past);
        }
    }
    /// The statuses and the tracker they are on, serialized as they are.
    #[derive(serde::Serialize)]
    struct All<'s> {
        tracker: String,
        migrations: &'s [report::Status],
    }
    let value = All {
        tracker: spec.to_string(),
        migrations: &statuses,
    };
    print(format, &value, || {
        if statuses.is_empty() {
            return format!(
                "tracker: {spec}\nno open migrations (start one with `shepherd start WORKFLOW --var …`)"
            );
        }
        let mut out = format!(
            "tracker: {spec}\n{:<6} {:<30} {:<22} {:<26} {:<10} {}\n",
            "REF", "TITLE", "WORKFLOW", "STAGE", "STATE", "BLOCKED BY"
        );
        for s in &statuses {
            let state = if s.paused { "paused" } else { s.state.as_str() };
            out.push_str(&format!(
                "#{:<5} {:<30} {:<22} {:<26} {:<10} {}\n",
                s.number,
                crate::report_format::truncate(&s.title, 30),
                s.workflow,
                s.stage.as_deref().unwrap_or("-"),
                state,
                report::blockers(s)
            ));
        }
        out.trim_end().to_string()
    })
}

/// `log REF [--child T]`: an issue's comments, oldest first, each with its author and time.
pub(super) async fn log(
    engine: &Engine<'_>,
    format: Format,
    reference: u64,
    child: Option<&str>,
) -> Result<ExitCode> {
    let (number, comments) = engine.log(reference, child).await?;
    let listed: Vec<serde_json::Value> = comments
        .iter()
        .map(|c| json!({"id": c.id, "author": c.author, "at": c.created_at, "body": c.body}))
        .collect();
    print(format, &json!({"ref": number, "comments": listed}), || {
        if comments.is_empty() {
            return format!("#{number} has no comments");
        }
        comments
            .iter()
            .map(|c| {
                format!(
                    "── {} · {} · comment {}\n{}",
                    c.author,
                    c.created_at.format("%Y-%m-%d %H:%M UTC"),
                    c.id,
                    c.body.trim_end()
                )
            })
            .collect::<Vec<_>>()
            .join("\n\n")
    })
}

/// `history REF`: what happened to one migration, oldest first: its transitions, and
/// beside them its rollbacks, pauses and resumes.
pub(super) async fn history(
    engine: &Engine<'_>,
    format: Format,
    reference: u64,
) -> Result<ExitCode> {
    let (transitions, events) = engine.history(reference).await?;
    print(
        format,
        &json!({"ref": reference, "transitions": transitions, "events": events}),
        || {
            let out: Vec<String> = events.iter().map(event_line).collect();
            if out.is_empty() {
                "no transitions yet".to_string()
            } else {
                out.join("\n")
            }
        },
    )
}

/// One line of `history`.
fn event_line(e: &crate::core::events::Event) -> String {
    let reason = e
        .reason
        .as_deref()
        .map(|r| format!("  ({r})"))
        .unwrap_or_default();
    let at = e.at.format("%Y-%m-%d %H:%M");
    let to = e.to.as_deref().unwrap_or_default();
    let from = e.from.as_deref().unwrap_or("(start)");
    match e.kind {
        "transition" => format!("{at}  {from:<26} → {to:<26} by {}{reason}", e.by),
        "rollback" => format!(
            "{at}  {from:<26} ↩ {to:<26} by {} (rolled back){reason}",
            e.by
        ),
        kind => format!("{at}  {kind:<26}   {:<26} by {}{reason}", "", e.by),
    }
}

/// "\nforecast: done by 2026-12-20, 90% by 2027-01-03" for an open migration in a stage
/// (or why there is none), else nothing.
fn forecast_line(status: &report::Status) -> String {
    if status.state != "open" || status.stage.is_none() {
        return String::new();
    }
    let day = |at: chrono::DateTime<chrono::Utc>| at.format("%Y-%m-%d").to_string();
    match &status.forecast {
        Some(f) => format!(
            "\nforecast: done by {}, 90% by {}",
            day(f.expected),
            day(f.p90)
        ),
        None => "\nforecast: unknown (a stage ahead has fewer than 3 past stays and no target)"
            .to_string(),
    }
}

/// "\noverdue: 9d in soak, target 2d" when the stay is overdue, else nothing.
fn overdue_line(engine: &Engine<'_>, status: &report::Status) -> String {
    let target = status
        .stage
        .as_deref()
        .and_then(|id| engine.catalog.workflows.get(&status.workflow)?.stage(id))
        .and_then(|s| s.pacing.target);
    match (status.overdue, status.stage.as_deref(), target) {
        (true, Some(stage), Some(target)) => {
            let stay = engine.now() - status.entered_at;
            let note = crate::core::overdue::note(stage, stay, target);
            format!("\noverdue: {note}")
        }
        _ => String::new(),
    }
}
