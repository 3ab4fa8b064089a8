//! `shepherd report`: where every migration stands, in every format, with filters checked
//! against the workflows in use (an unknown `--workflow` or `--stage` is an error that
//! lists the known ones), written to stdout or atomically to `--output`, and published to
//! the summary issue with `--publish`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};

use super::output::{check_target, note, raw, write_atomically, Format};
use crate::core::report;
use crate::core::workflow::Workflow;
use crate::engine::Engine;
use crate::report_format;
use crate::tracker::{StateFilter, TrackerSpec};

/// The report's options, as given on the command line.
pub(super) struct ReportArgs {
    pub(super) output: Option<PathBuf>,
    pub(super) include_closed: bool,
    pub(super) workflows: Vec<String>,
    pub(super) stages: Vec<String>,
    pub(super) labels: Vec<String>,
    pub(super) stale_after: chrono::Duration,
    pub(super) publish: bool,
}

/// Builds the report and prints, writes or publishes it.
pub(super) async fn report(
    engine: &Engine<'_>,
    spec: &TrackerSpec,
    format: Format,
    args: ReportArgs,
) -> Result<ExitCode> {
    if let Some(path) = &args.output {
        check_target(path)?;
    }
    let filter = checked_filter(engine, args.workflows, args.stages, args.labels)?;
    let state = if args.include_closed {
        StateFilter::All
    } else {
        StateFilter::Open
    };
    let index = engine.index_of(state).await?;
    let statuses = engine
        .statuses(&index, args.include_closed, &filter)
        .await?;
    let workflows: Vec<&Workflow> = engine
        .catalog
        .workflows
        .values()
        .filter(|w| filter.workflows.is_empty() || filter.workflows.contains(&w.name))
        .collect();
    let report = report::build(engine.now(), &workflows, statuses, args.stale_after);
    if args.publish {
        let (number, created) = engine.publish(&report_format::text(&report, true)).await?;
        let verb = if created { "created" } else { "updated" };
        note(&format!("{verb} the summary issue #{number}"));
    }
    let text = match format {
        Format::Json => {
            /// The report and, after its fields, the tracker it describes.
            #[derive(serde::Serialize)]
            struct Tracked<'r> {
                #[serde(flatten)]
                report: &'r report::Report,
                tracker: String,
            }
            let tracked = Tracked {
                report: &report,
                tracker: spec.to_string(),
            };
            serde_json::to_string_pretty(&tracked)? + "\n"
        }
        Format::Md => report_format::text(&report, true),
        Format::Csv => report_format::csv(&report)?,
        Format::Html => report_format::html(&report),
        _ => format!("tracker: {spec}\n{}", report_format::text(&report, false)),
    };
    match args.output {
        Some(path) => {
            write_atomically(&path, &text)?;
            note(&format!("wrote {}", path.display()));
        }
        None => raw(text.as_bytes())?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The filter, once every workflow and stage it names is known: a typo is an error that
/// lists what exists, not an empty report.
fn checked_filter(
    engine: &Engine<'_>,
    workflows: Vec<String>,
    stages: Vec<String>,
    labels: Vec<String>,
) -> Result<report::Filter> {
    let catalog = engine.catalog;
    for w in &workflows {
        catalog.workflow(w)?;
    }
    let in_scope: Vec<&Workflow> = catalog
        .workflows
        .values()
        .filter(|w| workflows.is_empty() || workflows.contains(&w.name))
        .collect();
    for stage in &stages {
        let known = in_scope
            .iter()
            .any(|w| w.stages.iter().any(|s| &s.id == stage));
        if !known {
            let lists: Vec<String> = in_scope
                .iter()
                .map(|w| {
                    let ids: Vec<&str> = w.stages.iter().map(|s| s.id.as_str()).collect();
                    format!("  {}: {}", w.name, ids.join(", "))
                })
                .collect();
            bail!(
                "unknown stage `{stage}` in --stage; the stages are:\n{}",
                lists.join("\n")
            );
        }
    }
    Ok(report::Filter {
        workflows,
        stages,
        labels,
    })
}
