//! The commands that talk to a tracker through the engine. Each is assembled the same way
//! (`assemble`) and runs in a function of its own: `status_cmd` (issue, status, history),
//! `move_cmd` (start, advance, reconcile, rollback, pause, resume), `person_cmd` (tick,
//! close, reopen), `label_cmd`, `report_cmd`.

use std::process::ExitCode;

use anyhow::Result;
use chrono::Utc;

use super::args::Tracked;
use super::assemble::{Assembly, Needs};
use super::bulk_cmd::{self, Action};
use super::commands::collect_vars;
use super::config::Session;
use super::output::Format;
use super::progress::Bar;
use super::{label_cmd, move_cmd, person_cmd, report_cmd, status_cmd};

/// Runs one command that talks to a tracker.
pub(super) async fn tracked(session: &Session, command: Tracked) -> Result<ExitCode> {
    let format = session.format(command.formats())?;
    let catalog = session.catalog()?;
    preflight_start(session, &catalog, &command)?;
    let needs = Needs {
        create: matches!(command, Tracked::Start { .. }),
        dry_run: command.dry_run(),
        notify: command.records_events(),
    };
    let assembly = Assembly::one(session, catalog, needs).await?;
    let spec = &assembly.trackers[0].spec;
    let reads = assembly.reads();
    // Long runs show a bar on a terminal; the engine moves it and clears it at the end.
    let long_run = command.long_run();
    let bar = Bar::new(
        long_run.unwrap_or_default(),
        long_run.is_some() && Bar::visible(!spec.is_local(), format == Format::Json),
    );
    let engine = assembly.engine(0, &reads[0]).with_progress(&bar);
    let done = match command {
        Tracked::Issue { reference } => status_cmd::issue(&engine, format, reference).await,
        Tracked::Status { reference: Some(n) } => status_cmd::one(&engine, spec, format, n).await,
        Tracked::Status { reference: None } => status_cmd::all(&engine, spec, format).await,
        Tracked::History { reference } => status_cmd::history(&engine, format, reference).await,
        Tracked::Log { reference, child } => {
            status_cmd::log(&engine, format, reference, child.as_deref()).await
        }
        Tracked::Start {
            workflow,
            title,
            vars,
            vars_file,
        } => {
            let vars = collect_vars(&vars, vars_file.as_deref())?;
            move_cmd::start(&engine, format, &workflow, title.as_deref(), &vars).await
        }
        Tracked::Advance {
            reference,
            dry_run,
            select,
        } => bulk_cmd::advance(&engine, format, reference, &select, dry_run).await,
        Tracked::Rollback {
            reference,
            select,
            dry_run,
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
            bulk_cmd::rollback(&engine, format, reference, &select, back, dry_run).await
        }
        Tracked::Pause {
            reference,
            reason,
            dry_run,
            select,
        } => {
            let action = Action::Pause(&reason);
            bulk_cmd::pause_or_resume(&engine, format, reference, &select, action, dry_run).await
        }
        Tracked::Resume {
            reference,
            reason,
            dry_run,
            select,
        } => {
            let action = Action::Resume(reason.as_deref());
            bulk_cmd::pause_or_resume(&engine, format, reference, &select, action, dry_run).await
        }
        Tracked::Reconcile { dry_run } => move_cmd::reconcile(&engine, format, dry_run).await,
        Tracked::Tick {
            reference,
            text,
            child,
            section,
            undo,
        } => {
            let at = person_cmd::Item {
                text: &text,
                section: section.as_deref(),
                child: child.as_deref(),
            };
            person_cmd::tick(&engine, format, reference, &at, undo).await
        }
        Tracked::Comment {
            reference,
            text,
            child,
        } => person_cmd::comment(&engine, spec, format, reference, &text, child.as_deref()).await,
        Tracked::Label {
            reference,
            add,
            remove,
        } => label_cmd::label(&engine, format, reference, add, remove).await,
        Tracked::Close { reference } => {
            person_cmd::set_open(&engine, format, reference, false).await
        }
        Tracked::Reopen { reference } => {
            person_cmd::set_open(&engine, format, reference, true).await
        }
        Tracked::Report(args) => report_cmd::report(&engine, spec, format, args).await,
        Tracked::Plan { workflow_filter } => {
            report_cmd::plan(&engine, format, workflow_filter).await
        }
    };
    super::notify_cmd::flush(&engine).await;
    done
}

/// What `start` would write, checked before the tracker is even opened.
fn preflight_start(
    session: &Session,
    catalog: &crate::catalog::Catalog,
    command: &Tracked,
) -> Result<()> {
    if let Tracked::Start {
        workflow,
        vars,
        vars_file,
        ..
    } = command
    {
        let w = catalog.workflow(workflow)?;
        let vars = collect_vars(vars, vars_file.as_deref())?;
        crate::engine::preflight(catalog, w, &vars, session.now.unwrap_or_else(Utc::now))?;
    }
    Ok(())
}

impl Tracked {
    /// The output formats the command can print.
    fn formats(&self) -> &'static [Format] {
        match self {
            Tracked::Report(_) => &[
                Format::Text,
                Format::Json,
                Format::Md,
                Format::Csv,
                Format::Html,
            ],
            _ => &[Format::Text, Format::Json],
        }
    }

    /// Whether the command records events that `[[notify]]` sinks hear of (a move, a
    /// pause, a failure): it reads the sinks and, at its end, sends what it recorded (and
    /// anything an earlier run left due).
    fn records_events(&self) -> bool {
        matches!(
            self,
            Tracked::Start { .. }
                | Tracked::Advance { .. }
                | Tracked::Reconcile { .. }
                | Tracked::Rollback { .. }
                | Tracked::Pause { .. }
                | Tracked::Resume { .. }
        )
    }

    /// Whether the command only says what it would write.
    fn dry_run(&self) -> bool {
        matches!(
            self,
            Tracked::Advance { dry_run: true, .. }
                | Tracked::Reconcile { dry_run: true }
                | Tracked::Pause { dry_run: true, .. }
                | Tracked::Resume { dry_run: true, .. }
                | Tracked::Rollback { dry_run: true, .. }
        )
    }

    /// What a progress bar says during a long run, for the commands that make one.
    fn long_run(&self) -> Option<&'static str> {
        match self {
            Tracked::Reconcile { .. } => Some("reconciling"),
            Tracked::Status { reference: None } | Tracked::Report(_) | Tracked::Plan { .. } => {
                Some("reading migrations")
            }
            _ => None,
        }
    }
}
