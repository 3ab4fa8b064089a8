//! The commands that move migrations: `start` (open a tracking issue in the first stage),
//! `advance` (one migration as far as its gates allow), `reconcile` (every open one),
//! `rollback`, `pause` and `resume`.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Result;
use serde_json::json;

use super::output::{advanced_text, print, Format};
use crate::core::machine::RollbackTo;
use crate::engine::Engine;

/// `start WORKFLOW`: a new tracking issue in the workflow's first stage.
pub(super) async fn start(
    engine: &Engine<'_>,
    format: Format,
    workflow: &str,
    title: Option<&str>,
    vars: &BTreeMap<String, String>,
) -> Result<ExitCode> {
    let w = engine.catalog.workflow(workflow)?;
    // A title given here is a person's text, as a variable's value is.
    let title = title.map(crate::core::value::clean);
    let started = engine.start(w, title.as_deref(), vars).await?;
    print(format, &started, || {
        format!(
            "started #{} ({}) in stage {}\n{}",
            started.number,
            started.workflow,
            started.stage.as_deref().unwrap_or("-"),
            started.url
        )
    })
}

/// `advance REF`: one migration as far as its gates allow.
pub(super) async fn advance(
    engine: &Engine<'_>,
    format: Format,
    reference: u64,
    dry_run: bool,
) -> Result<ExitCode> {
    let advanced = engine.advance(reference, dry_run).await?;
    let mut value = serde_json::to_value(&advanced)?;
    value["dry_run"] = dry_run.into();
    print(format, &value, || advanced_text(&advanced, dry_run))
}

/// `reconcile`: every open migration; one that fails is reported and the others go on
/// (exit 1 when any failed).
pub(super) async fn reconcile(
    engine: &Engine<'_>,
    format: Format,
    dry_run: bool,
) -> Result<ExitCode> {
    let done = engine.reconcile(dry_run).await?;
    let all = &done.migrations;
    let moved = all.iter().filter(|a| !a.transitions.is_empty()).count();
    let code = print(
        format,
        &json!({"dry_run": dry_run, "migrations": all, "errors": done.errors}),
        || {
            let mut out: Vec<String> = all.iter().map(|a| advanced_text(a, dry_run)).collect();
            for f in &done.errors {
                out.push(format!("#{}: failed: {}", f.number, f.error));
            }
            let failed = if done.errors.is_empty() {
                String::new()
            } else {
                format!(", {} failed", done.errors.len())
            };
            let dry = if dry_run {
                " (dry run: nothing written)"
            } else {
                ""
            };
            out.push(format!(
                "{} migration(s), {moved} moved{failed}{dry}",
                all.len() + done.errors.len()
            ));
            out.join("\n")
        },
    )?;
    if !done.errors.is_empty() {
        for f in &done.errors {
            eprintln!("error: #{}: {}", f.number, f.error);
        }
        return Ok(ExitCode::from(1));
    }
    Ok(code)
}

/// `rollback REF --to STAGE`: back to an earlier stage, paused there.
pub(super) async fn rollback(
    engine: &Engine<'_>,
    format: Format,
    reference: u64,
    back: &RollbackTo<'_>,
) -> Result<ExitCode> {
    let advanced = engine.rollback(reference, back).await?;
    print(format, &advanced, || {
        format!(
            "{}\n#{reference} is paused there: `shepherd resume {reference}` lets it move on",
            advanced_text(&advanced, false)
        )
    })
}

/// `pause REF --reason …`: the migration stays where it is until resumed.
pub(super) async fn pause(
    engine: &Engine<'_>,
    format: Format,
    reference: u64,
    reason: Option<&str>,
) -> Result<ExitCode> {
    let p = engine.pause(reference, true, reason).await?;
    print(format, &p, || {
        if p.changed {
            format!("#{reference} is paused: {}", reason.unwrap_or_default())
        } else {
            format!("#{reference} was paused already")
        }
    })
}

/// `resume REF`: a paused migration may move on again.
pub(super) async fn resume(
    engine: &Engine<'_>,
    format: Format,
    reference: u64,
    reason: Option<&str>,
) -> Result<ExitCode> {
    let p = engine.pause(reference, false, reason).await?;
    print(format, &p, || {
        if p.changed {
            format!("#{reference} may move on again")
        } else {
            format!("#{reference} was not paused")
        }
    })
}
