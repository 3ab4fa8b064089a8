//! `pause`, `resume`, `advance` and `rollback` over a selection instead of one REF:
//! `--workflow W`, `--stage S`, `--label L` (ANDed), each migration they touch printed,
//! `--dry-run` to see the list first. One that fails is reported and the others go on
//! (exit 1 when any failed); each takes its own lease, as the one-REF command does.

use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args;
use serde_json::{json, Value};

use super::move_cmd;
use super::output::{advanced_text, print, Format};
use crate::core::machine::{RollbackTo, PAUSED_LABEL};
use crate::engine::{Engine, Migration};

/// Which open migrations a command acts on, instead of one REF (ANDed; at least one).
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Selection (instead of REF)")]
pub(super) struct Selector {
    /// Every open migration of this workflow
    #[arg(
        long = "workflow",
        value_name = "WORKFLOW",
        conflicts_with = "reference"
    )]
    pub(super) workflow: Option<String>,
    /// Every open migration in this stage (its id)
    #[arg(long = "stage", value_name = "STAGE", conflicts_with = "reference")]
    pub(super) stage: Option<String>,
    /// Every open migration whose tracking issue has this label; repeatable
    #[arg(long = "label", value_name = "LABEL", conflicts_with = "reference")]
    pub(super) labels: Vec<String>,
}

impl Selector {
    pub(super) fn is_empty(&self) -> bool {
        self.workflow.is_none() && self.stage.is_none() && self.labels.is_empty()
    }

    /// Whether migration `m` is selected.
    fn keeps(&self, engine: &Engine<'_>, m: &Migration) -> bool {
        let Some(workflow) = m
            .marker
            .workflow
            .as_deref()
            .and_then(|w| engine.catalog.workflows.get(w))
        else {
            return false;
        };
        let stage = workflow
            .stages_labelled(&m.issue.labels)
            .first()
            .map(|s| s.id.as_str());
        self.workflow.as_ref().is_none_or(|w| *w == workflow.name)
            && self.stage.as_deref().is_none_or(|s| stage == Some(s))
            && self.labels.iter().all(|l| m.issue.labels.contains(l))
    }
}

/// What a bulk command does to each migration.
pub(super) enum Action<'a> {
    Advance,
    Pause(&'a str),
    Resume(Option<&'a str>),
    Rollback(RollbackTo<'a>),
}

/// `advance REF`, or `advance` over a selection.
pub(super) async fn advance(
    engine: &Engine<'_>,
    format: Format,
    reference: Option<u64>,
    selector: &Selector,
    dry_run: bool,
) -> Result<ExitCode> {
    match reference {
        Some(n) if selector.is_empty() => move_cmd::advance(engine, format, n, dry_run).await,
        _ => {
            run(
                engine,
                format,
                reference,
                selector,
                &Action::Advance,
                dry_run,
            )
            .await
        }
    }
}

/// `rollback REF`, or over a selection (or with `--dry-run`).
pub(super) async fn rollback(
    engine: &Engine<'_>,
    format: Format,
    reference: Option<u64>,
    selector: &Selector,
    back: RollbackTo<'_>,
    dry_run: bool,
) -> Result<ExitCode> {
    match reference {
        Some(n) if selector.is_empty() && !dry_run => {
            move_cmd::rollback(engine, format, n, &back).await
        }
        _ => {
            let action = Action::Rollback(back);
            run(engine, format, reference, selector, &action, dry_run).await
        }
    }
}

/// `pause REF` / `resume REF` (`action`), or over a selection (or with `--dry-run`).
pub(super) async fn pause_or_resume(
    engine: &Engine<'_>,
    format: Format,
    reference: Option<u64>,
    selector: &Selector,
    action: Action<'_>,
    dry_run: bool,
) -> Result<ExitCode> {
    match (reference, &action) {
        (Some(n), Action::Pause(reason)) if selector.is_empty() && !dry_run => {
            move_cmd::pause(engine, format, n, Some(reason)).await
        }
        (Some(n), Action::Resume(reason)) if selector.is_empty() && !dry_run => {
            move_cmd::resume(engine, format, n, *reason).await
        }
        _ => run(engine, format, reference, selector, &action, dry_run).await,
    }
}

/// The open migrations `selector` (or the one `reference`) names, by number.
async fn select(
    engine: &Engine<'_>,
    reference: Option<u64>,
    selector: &Selector,
) -> Result<Vec<Migration>> {
    if let Some(name) = &selector.workflow {
        engine.catalog.workflow(name)?;
    }
    if let Some(stage) = &selector.stage {
        let known = engine
            .catalog
            .workflows
            .values()
            .filter(|w| selector.workflow.as_ref().is_none_or(|n| *n == w.name))
            .any(|w| w.stage(stage).is_some());
        if !known {
            bail!("--stage {stage}: no such stage in the selected workflows (see `shepherd show WORKFLOW`)");
        }
    }
    let index = engine.index().await?;
    Ok(index
        .into_iter()
        .filter(|m| match reference {
            Some(n) => m.issue.number == n,
            None => selector.keeps(engine, m),
        })
        .collect())
}

/// Runs `action` on each migration `selector` (or `reference`) selects, or says what it
/// would do, printing one line each.
async fn run(
    engine: &Engine<'_>,
    format: Format,
    reference: Option<u64>,
    selector: &Selector,
    action: &Action<'_>,
    dry_run: bool,
) -> Result<ExitCode> {
    let selected = select(engine, reference, selector).await?;
    let mut done: Vec<(Value, String)> = Vec::new();
    let mut errors: Vec<Value> = Vec::new();
    for m in &selected {
        let n = m.issue.number;
        match one(engine, m, action, dry_run).await {
            Ok(value_and_line) => done.push(value_and_line),
            Err(e) => {
                eprintln!("error: #{n}: {e:#}");
                errors.push(json!({"ref": n, "error": format!("{e:#}")}));
            }
        }
    }
    let failed = !errors.is_empty();
    let value = json!({
        "dry_run": dry_run,
        "migrations": done.iter().map(|(v, _)| v.clone()).collect::<Vec<_>>(),
        "errors": errors,
    });
    print(format, &value, || {
        if selected.is_empty() {
            return "no open migration is selected".to_string();
        }
        let lines: Vec<String> = done.iter().map(|(_, l)| l.clone()).collect();
        lines.join("\n")
    })?;
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// One migration: what was done (or would be), as JSON and as a line.
async fn one(
    engine: &Engine<'_>,
    m: &Migration,
    action: &Action<'_>,
    dry_run: bool,
) -> Result<(Value, String)> {
    let n = m.issue.number;
    let title = format!("#{n} {}", m.issue.title);
    let paused = m.issue.labels.iter().any(|l| l == PAUSED_LABEL);
    match action {
        Action::Advance => {
            let a = engine.advance(n, dry_run).await?;
            let mut value = serde_json::to_value(&a)?;
            value["dry_run"] = dry_run.into();
            Ok((value, advanced_text(&a, dry_run)))
        }
        Action::Pause(_) | Action::Resume(_) if dry_run => {
            let wants = matches!(action, Action::Pause(_));
            let changes = wants != paused;
            let verb = match (changes, wants) {
                (false, _) => "would leave",
                (true, true) => "would pause",
                (true, false) => "would resume",
            };
            let note = if changes {
                ""
            } else if wants {
                " (paused already)"
            } else {
                " (not paused)"
            };
            let value = json!({"ref": n, "paused": wants, "changed": changes});
            Ok((value, format!("{verb} {title}{note}")))
        }
        Action::Pause(reason) => {
            let p = engine.pause(n, true, Some(reason)).await?;
            let note = if p.changed { "" } else { " (paused already)" };
            Ok((serde_json::to_value(&p)?, format!("paused {title}{note}")))
        }
        Action::Resume(reason) => {
            let p = engine.pause(n, false, *reason).await?;
            let note = if p.changed { "" } else { " (not paused)" };
            Ok((serde_json::to_value(&p)?, format!("resumed {title}{note}")))
        }
        Action::Rollback(back) if dry_run => {
            let workflow = engine.workflow_of(m)?;
            if workflow.stage(back.to).is_none() {
                bail!("{} has no stage {}", workflow.name, back.to);
            }
            let from = workflow
                .stages_labelled(&m.issue.labels)
                .first()
                .map(|s| s.id.clone());
            let value = json!({"ref": n, "from": from, "to": back.to});
            let from = from.as_deref().unwrap_or("-");
            Ok((
                value,
                format!("would roll back {title} from {from} to {}", back.to),
            ))
        }
        Action::Rollback(back) => {
            let a = engine.rollback(n, back).await?;
            Ok((serde_json::to_value(&a)?, advanced_text(&a, false)))
        }
    }
}
