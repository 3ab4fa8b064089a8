//! The commands that talk to a tracker: `issue`, `start`, `status`, `advance`,
//! `reconcile`, `tick`, `label`, `close`, `reopen`, `rollback`, `history`, `report`.

use std::process::ExitCode;

use anyhow::Result;
use chrono::Utc;
use serde_json::json;

use super::args::Command;
use super::commands::collect_vars;
use super::config::Session;
use super::label_cmd::label;
use super::output::{advanced_text, print, status_text, Format};
use super::progress::Bar;
use super::report_cmd::{report, ReportArgs};
use crate::core::report;
use crate::engine::Engine;
use crate::tracker::Tracker;

/// The commands that talk to a tracker.
pub(super) async fn tracked(session: &Session, command: Command) -> Result<ExitCode> {
    // Only `start` creates a local tracker; other commands on a missing one see it empty.
    let creates = matches!(command, Command::Start { .. });
    let format = match &command {
        Command::Report { .. } => session.format(&[
            Format::Text,
            Format::Json,
            Format::Md,
            Format::Csv,
            Format::Html,
        ])?,
        _ => session.format(&[Format::Text, Format::Json])?,
    };
    let catalog = session.catalog()?;
    if let Command::Start {
        workflow,
        vars,
        vars_file,
        ..
    } = &command
    {
        let w = catalog.workflow(workflow)?;
        let vars = collect_vars(vars, vars_file.as_deref())?;
        crate::engine::preflight(&catalog, w, &vars, session.now.unwrap_or_else(Utc::now))?;
    }
    let spec = session.spec()?;
    tracing::debug!(tracker = %spec, "opening the tracker");
    let tracker = session.tracker(creates).await?;
    let dry_run = matches!(
        command,
        Command::Advance { dry_run: true, .. } | Command::Reconcile { dry_run: true }
    );
    let state_url = session.state_url();
    let store = crate::store::open(&state_url, dry_run).await?;
    // Remote trackers are read through the Store's cache: a poll costs what changed.
    let cached;
    // `SHEPHERD_CACHE=off` reads everything every time (to rule the cache out).
    let tracker: &dyn Tracker = if spec.is_local() || session.fresh_reads {
        tracker.as_ref()
    } else {
        cached = crate::tracker::cached::CachedTracker::new(tracker.as_ref(), store.as_ref());
        &cached
    };
    // Long runs show a bar on a terminal; the engine moves it and clears it at the end.
    let long_run = match &command {
        Command::Reconcile { .. } => Some("reconciling"),
        Command::Status { reference: None } | Command::Report { .. } => Some("reading migrations"),
        _ => None,
    };
    let bar = Bar::new(
        long_run.unwrap_or_default(),
        long_run.is_some() && Bar::visible(!spec.is_local(), format == Format::Json),
    );
    let prometheus = session.prometheus()?;
    let flags = session.flags_backend()?;
    let mut engine = Engine::new(tracker, &catalog, store.as_ref(), &session.actor);
    engine.concurrency = session.concurrency;
    engine.fresh_reads = session.fresh_reads;
    engine.metrics = prometheus
        .as_ref()
        .map(|p| p as &dyn crate::metrics::Metrics);
    engine.flags = flags.as_deref();
    engine.progress = &bar;
    match command {
        Command::Issue { reference } => {
            let issue = tracker.issue(reference).await?;
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
        Command::Start {
            workflow,
            title,
            vars,
            vars_file,
        } => {
            let w = catalog.workflow(&workflow)?;
            let vars = collect_vars(&vars, vars_file.as_deref())?;
            // A title given here is a person's text, as a variable's value is.
            let title = title.as_deref().map(crate::core::value::clean);
            let started = engine.start(w, title.as_deref(), &vars).await?;
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
        Command::Status { reference: Some(n) } => {
            let status = engine.status(n).await?;
            let mut value = serde_json::to_value(&status)?;
            value["tracker"] = spec.to_string().into();
            print(format, &value, || {
                format!("{}\ntracker: {spec}", status_text(&status))
            })
        }
        Command::Status { reference: None } => {
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
                    return format!("tracker: {spec}\nno open migrations (start one with `shepherd start WORKFLOW --var …`)");
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
        Command::Advance { reference, dry_run } => {
            let advanced = engine.advance(reference, dry_run).await?;
            let mut value = serde_json::to_value(&advanced)?;
            value["dry_run"] = dry_run.into();
            print(format, &value, || advanced_text(&advanced, dry_run))
        }
        Command::Reconcile { dry_run } => {
            let done = engine.reconcile(dry_run).await?;
            let all = &done.migrations;
            let moved = all.iter().filter(|a| !a.transitions.is_empty()).count();
            let code = print(
                format,
                &json!({"dry_run": dry_run, "migrations": all, "errors": done.errors}),
                || {
                    let mut out: Vec<String> =
                        all.iter().map(|a| advanced_text(a, dry_run)).collect();
                    for f in &done.errors {
                        out.push(format!("#{}: failed: {}", f.number, f.error));
                    }
                    out.push(format!(
                        "{} migration(s), {moved} moved{}{}",
                        all.len() + done.errors.len(),
                        if done.errors.is_empty() {
                            String::new()
                        } else {
                            format!(", {} failed", done.errors.len())
                        },
                        if dry_run {
                            " (dry run: nothing written)"
                        } else {
                            ""
                        }
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
        Command::Tick {
            reference,
            text,
            child,
            section,
            undo,
        } => {
            let ticked = engine
                .tick(reference, &text, section.as_deref(), child.as_deref(), undo)
                .await?;
            print(format, &ticked, || {
                let mark = if ticked.checked { "[x]" } else { "[ ]" };
                let note = if ticked.changed { "" } else { " (already so)" };
                format!("#{}: {mark} {}{note}", ticked.number, ticked.item)
            })
        }
        Command::Label {
            reference,
            add,
            remove,
        } => label(&engine, format, reference, add, remove).await,
        Command::Close { reference } | Command::Reopen { reference } => {
            let open = matches!(command, Command::Reopen { .. });
            engine.person_set_open(reference, open).await?;
            let state = if open { "open" } else { "closed" };
            print(format, &json!({"ref": reference, "state": state}), || {
                format!("#{reference} is {state}")
            })
        }
        Command::Rollback {
            reference,
            to,
            reason,
            force,
            keep_checklists,
        } => {
            let back = crate::core::machine::RollbackTo {
                to: &to,
                reason: &reason,
                force,
                keep_checklists,
            };
            let advanced = engine.rollback(reference, &back).await?;
            print(format, &advanced, || {
                format!(
                    "{}\n#{reference} is paused there: `shepherd resume {reference}` lets it move on",
                    advanced_text(&advanced, false)
                )
            })
        }
        Command::Pause { reference, reason } => {
            let p = engine.pause(reference, true, Some(&reason)).await?;
            print(format, &p, || {
                if p.changed {
                    format!("#{reference} is paused: {reason}")
                } else {
                    format!("#{reference} was paused already")
                }
            })
        }
        Command::Resume { reference, reason } => {
            let p = engine.pause(reference, false, reason.as_deref()).await?;
            print(format, &p, || {
                if p.changed {
                    format!("#{reference} may move on again")
                } else {
                    format!("#{reference} was not paused")
                }
            })
        }
        Command::History { reference } => {
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
        Command::Report {
            output,
            include_closed,
            workflow_filter,
            stage_filter,
            label_filter,
            stale_after,
            publish,
        } => {
            let args = ReportArgs {
                output,
                include_closed,
                workflows: workflow_filter,
                stages: stage_filter,
                labels: label_filter,
                stale_after,
                publish,
            };
            report(&engine, &spec, format, args).await
        }
        Command::Init { .. }
        | Command::Validate { .. }
        | Command::Workflows
        | Command::Show { .. }
        | Command::Render { .. }
        | Command::Completions { .. }
        | Command::Clock { .. }
        | Command::Mr { .. }
        | Command::Release { .. }
        | Command::Flag { .. }
        | Command::Serve { .. }
        | Command::Man => unreachable!("handled before opening a tracker"),
    }
}
