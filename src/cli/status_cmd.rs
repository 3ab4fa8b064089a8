//! What a person reads: `issue` (one issue as the tracker shows it), `status` (one
//! migration, or every open one as a table) and `history` (the stages a migration went
//! through).

use std::process::ExitCode;

use anyhow::Result;
use serde_json::json;

use super::output::{print, status_text, Format};
use crate::core::report;
use crate::engine::Engine;
use crate::tracker::TrackerSpec;

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
    let status = engine.status(reference).await?;
    let mut value = serde_json::to_value(&status)?;
    value["tracker"] = spec.to_string().into();
    print(format, &value, || {
        format!("{}\ntracker: {spec}", status_text(&status))
    })
}

/// `status`: every open migration, one row each.
pub(super) async fn all(
    engine: &Engine<'_>,
    spec: &TrackerSpec,
    format: Format,
) -> Result<ExitCode> {
    let index = engine.index().await?;
    let statuses = engine
        .statuses(&index, false, &report::Filter::default())
        .await?;
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
            "tracker: {spec}\n{:<6} {:<22} {:<26} {:<10} {}\n",
            "REF", "WORKFLOW", "STAGE", "STATE", "BLOCKED BY"
        );
        for s in &statuses {
            out.push_str(&format!(
                "#{:<5} {:<22} {:<26} {:<10} {}\n",
                s.number,
                s.workflow,
                s.stage.as_deref().unwrap_or("-"),
                s.state,
                report::blockers(s)
            ));
        }
        out.trim_end().to_string()
    })
}

/// `history REF`: the transitions of one migration, oldest first.
pub(super) async fn history(
    engine: &Engine<'_>,
    format: Format,
    reference: u64,
) -> Result<ExitCode> {
    let history = engine.history(reference).await?;
    print(
        format,
        &json!({"ref": reference, "transitions": history}),
        || {
            let mut out = Vec::new();
            for h in &history {
                let reason = h
                    .reason
                    .as_deref()
                    .map(|r| format!("  ({r})"))
                    .unwrap_or_default();
                out.push(format!(
                    "{}  {:<26} → {:<26} by {}{reason}",
                    h.at.format("%Y-%m-%d %H:%M"),
                    h.from.as_deref().unwrap_or("(start)"),
                    h.to,
                    h.by
                ));
            }
            if out.is_empty() {
                "no transitions yet".to_string()
            } else {
                out.join("\n")
            }
        },
    )
}
