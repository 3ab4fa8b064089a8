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
#[derive(clap::Args, Debug)]
pub(super) struct ReportArgs {
    /// Write the report to this file instead of standard output
    #[arg(long, value_name = "FILE")]
    pub(super) output: Option<PathBuf>,
    /// Include closed migrations
    #[arg(long)]
    pub(super) include_closed: bool,
    /// Only these workflows; repeatable
    #[arg(long = "workflow", value_name = "WORKFLOW")]
    pub(super) workflow_filter: Vec<String>,
    /// Only migrations in these stages (stage ids); repeatable
    #[arg(long = "stage", value_name = "STAGE")]
    pub(super) stage_filter: Vec<String>,
    /// Only migrations whose tracking issue carries these labels; repeatable
    #[arg(long = "label", value_name = "LABEL")]
    pub(super) label_filter: Vec<String>,
    /// Mark migrations longer than this in their stage (30s, 15m, 2h, 14d, 2w, 1d12h)
    #[arg(long, default_value = "14d", value_name = "DURATION", value_parser = super::values::parse_cli_duration)]
    pub(super) stale_after: chrono::Duration,
    /// Create or update the one summary issue on the tracker (Markdown)
    #[arg(long)]
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
    let filter = checked_filter(
        engine,
        args.workflow_filter,
        args.stage_filter,
        args.label_filter,
    )?;
    // Closed migrations too: their stays make the lead times, forecasts and burn-down.
    let index = engine.index_of(StateFilter::All).await?;
    let statuses = engine
        .statuses(&index, args.include_closed, &filter)
        .await?;
    let past = engine.past(&index, &statuses).await?;
    let workflows: Vec<&Workflow> = engine
        .catalog
        .workflows
        .values()
        .filter(|w| filter.workflows.is_empty() || filter.workflows.contains(&w.name))
        .collect();
    let report = report::build(engine.now(), &workflows, statuses, args.stale_after, &past);
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

/// `shepherd plan`: the open migrations' statuses, per workflow and stage.
pub(super) async fn plan(
    engine: &Engine<'_>,
    format: Format,
    workflows: Vec<String>,
) -> Result<ExitCode> {
    let filter = checked_filter(engine, workflows, Vec::new(), Vec::new())?;
    let index = engine.index().await?;
    let statuses = engine.statuses(&index, false, &filter).await?;
    // The main workflows first: by how many migrations they hold, then by name.
    let mut shown: Vec<&Workflow> = engine
        .catalog
        .workflows
        .values()
        .filter(|w| filter.workflows.is_empty() || filter.workflows.contains(&w.name))
        .collect();
    shown.sort_by_key(|w| {
        let n = statuses.iter().filter(|s| s.workflow == w.name).count();
        (std::cmp::Reverse(n), w.name.clone())
    });
    let plan = crate::core::plan::plan(&shown, &statuses);
    let text = match format {
        Format::Json => serde_json::to_string_pretty(&plan)? + "\n",
        _ => report_format::plan_text(&plan),
    };
    raw(text.as_bytes())?;
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
