//! The command line: arguments (clap), configuration (`--tracker`, `SHEPHERD_TRACKER`,
//! `shepherd.toml`), and the text and JSON output of every command. Errors are printed once,
//! as `error: {:#}`, and give exit code 1; usage errors give 2.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::catalog::{Catalog, Sources, BUILTIN_TEMPLATES, BUILTIN_WORKFLOWS};
use crate::core::report;
use crate::core::workflow::{Gate, Workflow};
use crate::engine::{Advanced, Engine};
use crate::render;
use crate::report_format;
use crate::tracker::local::LocalTracker;
use crate::tracker::{github, gitlab};
use crate::tracker::{StateFilter, Tracker, TrackerSpec};

#[derive(Parser, Debug)]
#[command(
    name = "shepherd",
    version,
    about = "Moves migrations and feature-flag rollouts through their stages"
)]
struct Cli {
    /// local[:PATH] (default local:.shepherd/tracker.db), gitlab:GROUP/PROJECT or github:OWNER/REPO
    #[arg(long, global = true, env = "SHEPHERD_TRACKER")]
    tracker: Option<String>,
    /// Directory of workflow files that override the built-in ones by name
    #[arg(long, global = true)]
    workflows: Option<PathBuf>,
    /// Directory of templates that override the built-in ones by name
    #[arg(long, global = true)]
    templates: Option<PathBuf>,
    /// The local tracker's clock (RFC 3339), to rehearse a rollout offline
    #[arg(long, global = true)]
    now: Option<String>,
    /// Output format: text or json (show: also mermaid; report: also md)
    #[arg(long, global = true)]
    format: Option<String>,
    /// Who acts on the local tracker (default: $USER)
    #[arg(long, global = true)]
    actor: Option<String>,
    /// How many requests (migrations) run at once against a remote tracker
    #[arg(long, global = true, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    concurrency: u16,
    /// GitLab instance for gitlab:GROUP/PROJECT (self-managed; default https://gitlab.com)
    #[arg(long, global = true, env = "SHEPHERD_GITLAB_URL")]
    gitlab_url: Option<String>,
    /// GitHub API for github:OWNER/REPO (Enterprise; default https://api.github.com)
    #[arg(long, global = true, env = "SHEPHERD_GITHUB_URL")]
    github_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write shepherd.toml, workflows/ and templates/ (the defaults) for editing
    Init { dir: Option<PathBuf> },
    /// Validate workflows and templates; exit 1 on any problem
    Validate { paths: Vec<PathBuf> },
    /// List the workflows in use
    Workflows,
    /// Show a workflow's stages, gates and edges
    Show { workflow: String },
    /// Print a rendered issue: "# <title>", a blank line, the body
    Render {
        template: String,
        #[arg(long = "var", value_name = "K=V")]
        vars: Vec<String>,
        #[arg(long)]
        vars_file: Option<PathBuf>,
    },
    /// Print one issue as a person sees it
    Issue {
        #[arg(value_parser = parse_ref)]
        reference: u64,
    },
    /// Open a tracking issue in the workflow's first stage
    Start {
        workflow: String,
        #[arg(long)]
        title: Option<String>,
        #[arg(long = "var", value_name = "K=V")]
        vars: Vec<String>,
        #[arg(long)]
        vars_file: Option<PathBuf>,
    },
    /// One migration (gates, children), or a table of all open ones
    Status {
        #[arg(value_parser = parse_ref)]
        reference: Option<u64>,
    },
    /// Evaluate gates and move as far as they allow
    Advance {
        #[arg(value_parser = parse_ref)]
        reference: u64,
        #[arg(long)]
        dry_run: bool,
    },
    /// Advance every open migration
    Reconcile {
        #[arg(long)]
        dry_run: bool,
    },
    /// Check the task item whose text contains TEXT (exactly one)
    Tick {
        #[arg(value_parser = parse_ref)]
        reference: u64,
        text: String,
        /// Tick in the newest child issue made from this template
        #[arg(long)]
        child: Option<String>,
        /// Only items under a heading containing this text
        #[arg(long)]
        section: Option<String>,
        /// Uncheck instead
        #[arg(long)]
        undo: bool,
    },
    /// Change labels, as a person would
    Label {
        #[arg(value_parser = parse_ref)]
        reference: u64,
        #[arg(long = "add")]
        add: Vec<String>,
        #[arg(long = "remove")]
        remove: Vec<String>,
    },
    /// Close an issue
    Close {
        #[arg(value_parser = parse_ref)]
        reference: u64,
    },
    /// Reopen an issue
    Reopen {
        #[arg(value_parser = parse_ref)]
        reference: u64,
    },
    /// Move a migration back to a stage, recording the reason
    Rollback {
        #[arg(value_parser = parse_ref)]
        reference: u64,
        #[arg(long)]
        to: String,
        #[arg(long)]
        reason: String,
    },
    /// Every transition of a migration: from, to, when, by, why
    History {
        #[arg(value_parser = parse_ref)]
        reference: u64,
    },
    /// Where every migration stands
    Report {
        /// Write the report to this file instead of standard output
        #[arg(long)]
        output: Option<PathBuf>,
        /// Include closed migrations
        #[arg(long)]
        include_closed: bool,
        /// Only these workflows
        #[arg(long = "workflow")]
        workflow_filter: Vec<String>,
        /// Only migrations in these stages (stage ids)
        #[arg(long = "stage")]
        stage_filter: Vec<String>,
        /// Only migrations whose tracking issue carries these labels
        #[arg(long = "label")]
        label_filter: Vec<String>,
        /// Mark migrations longer than this in their stage (15m, 2h, 14d, 2w)
        #[arg(long, default_value = "14d")]
        stale_after: String,
        /// Create or update the one summary issue on the tracker (Markdown)
        #[arg(long)]
        publish: bool,
    },
}

fn parse_ref(text: &str) -> Result<u64, String> {
    text.trim_start_matches('#')
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("`{text}` is no issue reference: write a number such as 12 or #12"))
}

/// `shepherd.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    tracker: Option<TrackerConfig>,
    workflows: Option<PathBuf>,
    templates: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrackerConfig {
    spec: Option<String>,
    gitlab_url: Option<String>,
    github_url: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Text,
    Json,
    Mermaid,
    Md,
    Csv,
    Html,
}

/// Runs shepherd with `args` (the program name first) and returns the exit code.
pub fn run(args: Vec<OsString>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(execute(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

struct Session {
    cli_format: Option<String>,
    config: Config,
    tracker_spec: Option<String>,
    now: Option<DateTime<Utc>>,
    actor: String,
    workflows: Option<PathBuf>,
    templates: Option<PathBuf>,
    concurrency: usize,
    gitlab_url: Option<String>,
    github_url: Option<String>,
}

impl Session {
    fn format(&self, allowed: &[Format]) -> Result<Format> {
        let format = match self.cli_format.as_deref() {
            None | Some("text") => Format::Text,
            Some("json") => Format::Json,
            Some("mermaid") => Format::Mermaid,
            Some("md" | "markdown") => Format::Md,
            Some("csv") => Format::Csv,
            Some("html") => Format::Html,
            Some(other) => {
                bail!("unknown --format `{other}` (formats: text, json, mermaid, md, csv, html)")
            }
        };
        if !allowed.contains(&format) {
            bail!(
                "this command cannot print --format {}",
                self.cli_format.as_deref().unwrap_or("text")
            );
        }
        Ok(format)
    }

    fn sources(&self) -> Result<Sources> {
        let mut sources = Sources::builtin();
        let workflows = self
            .workflows
            .clone()
            .or_else(|| self.config.workflows.clone())
            .or_else(|| existing_dir("workflows"));
        let templates = self
            .templates
            .clone()
            .or_else(|| self.config.templates.clone())
            .or_else(|| existing_dir("templates"));
        if let Some(dir) = templates {
            sources.add_template_dir(&dir)?;
        }
        if let Some(dir) = workflows {
            sources.add_workflow_dir(&dir)?;
        }
        Ok(sources)
    }

    fn catalog(&self) -> Result<Catalog> {
        self.sources()?.load().map_err(|problems| {
            let list: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
            anyhow::anyhow!(
                "the workflows and templates in use have {} problem(s):\n{}",
                problems.len(),
                list.join("\n")
            )
        })
    }

    fn spec(&self) -> Result<TrackerSpec> {
        let text = self
            .tracker_spec
            .clone()
            .or_else(|| self.config.tracker.as_ref().and_then(|t| t.spec.clone()))
            .unwrap_or_else(|| format!("local:{}", TrackerSpec::DEFAULT_LOCAL));
        TrackerSpec::parse(&text).map_err(anyhow::Error::msg)
    }

    /// Opens the tracker. `create` creates a missing local tracker; other commands see an
    /// empty one. Remote trackers read their token from the environment.
    async fn tracker(&self, create: bool) -> Result<Box<dyn Tracker>> {
        let spec = self.spec()?;
        if self.now.is_some() && !spec.is_local() {
            bail!("--now sets the local tracker's clock and cannot be used with {spec}: remote trackers keep their own time");
        }
        match spec {
            TrackerSpec::Local(path) => Ok(Box::new(LocalTracker::open(
                &path,
                create,
                self.now,
                &self.actor,
            )?)),
            TrackerSpec::GitLab(project) => {
                let token = std::env::var("GITLAB_TOKEN").ok().filter(|t| !t.is_empty()).context(
                    "GITLAB_TOKEN is not set: shepherd reads the GitLab token from the environment",
                )?;
                let url = self
                    .gitlab_url
                    .clone()
                    .or_else(|| {
                        self.config
                            .tracker
                            .as_ref()
                            .and_then(|t| t.gitlab_url.clone())
                    })
                    .unwrap_or_else(|| "https://gitlab.com".to_string());
                let mut config = gitlab::Config::new(&url, &project);
                config.concurrency = self.concurrency;
                Ok(Box::new(
                    gitlab::GitLabTracker::connect(config, &token).await?,
                ))
            }
            TrackerSpec::GitHub(repo) => {
                let token = std::env::var("GITHUB_TOKEN").ok().filter(|t| !t.is_empty()).context(
                    "GITHUB_TOKEN is not set: shepherd reads the GitHub token from the environment",
                )?;
                let url = self
                    .github_url
                    .clone()
                    .or_else(|| {
                        self.config
                            .tracker
                            .as_ref()
                            .and_then(|t| t.github_url.clone())
                    })
                    .unwrap_or_else(|| "https://api.github.com".to_string());
                let mut config = github::Config::new(&url, &repo);
                config.concurrency = self.concurrency;
                Ok(Box::new(github::GitHubTracker::connect(config, &token)?))
            }
        }
    }
}

fn existing_dir(name: &str) -> Option<PathBuf> {
    let p = PathBuf::from(name);
    p.is_dir().then_some(p)
}

async fn execute(cli: Cli) -> Result<ExitCode> {
    let config = read_config(Path::new("shepherd.toml"))?;
    let now = cli
        .now
        .as_deref()
        .map(|t| {
            DateTime::parse_from_rfc3339(t)
                .map(|d| d.with_timezone(&Utc))
                .with_context(|| {
                    format!("--now `{t}` is not an RFC 3339 time such as 2026-01-01T12:00:00Z")
                })
        })
        .transpose()?;
    let actor = cli
        .actor
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| "shepherd".to_string());
    let session = Session {
        cli_format: cli.format.clone(),
        config,
        tracker_spec: cli.tracker.clone(),
        now,
        actor,
        workflows: cli.workflows.clone(),
        templates: cli.templates.clone(),
        concurrency: cli.concurrency as usize,
        gitlab_url: cli.gitlab_url.clone(),
        github_url: cli.github_url.clone(),
    };
    match cli.command {
        Command::Init { dir } => init(&session, dir.unwrap_or_else(|| PathBuf::from("."))),
        Command::Validate { paths } => validate(&session, &paths),
        Command::Workflows => workflows(&session),
        Command::Show { workflow } => show(&session, &workflow),
        Command::Render {
            template,
            vars,
            vars_file,
        } => render_cmd(&session, &template, &vars, vars_file.as_deref()),
        command => tracked(&session, command).await,
    }
}

/// The commands that talk to a tracker.
async fn tracked(session: &Session, command: Command) -> Result<ExitCode> {
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
    let tracker = session.tracker(creates).await?;
    let engine = Engine {
        tracker: tracker.as_ref(),
        catalog: &catalog,
        actor: session.actor.clone(),
        concurrency: session.concurrency,
    };
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
            print(format, &status, || status_text(&status))
        }
        Command::Status { reference: None } => {
            let index = engine.index().await?;
            let statuses = engine
                .statuses(&index, false, &report::Filter::default())
                .await?;
            print(format, &json!({"migrations": statuses}), || {
                if statuses.is_empty() {
                    return "no open migrations (start one with `shepherd start WORKFLOW --var …`)"
                        .to_string();
                }
                let mut out = format!(
                    "{:<6} {:<22} {:<26} {:<10} {}\n",
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
            let all = engine.reconcile(dry_run).await?;
            let moved = all.iter().filter(|a| !a.transitions.is_empty()).count();
            print(
                format,
                &json!({"dry_run": dry_run, "migrations": all}),
                || {
                    let mut out: Vec<String> =
                        all.iter().map(|a| advanced_text(a, dry_run)).collect();
                    out.push(format!(
                        "{} migration(s), {moved} moved{}",
                        all.len(),
                        if dry_run {
                            " (dry run: nothing written)"
                        } else {
                            ""
                        }
                    ));
                    out.join("\n")
                },
            )
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
        } => {
            if add.is_empty() && remove.is_empty() {
                bail!("say what to change: --add LABEL and/or --remove LABEL");
            }
            let issue = tracker.issue(reference).await?;
            let add: Vec<String> = add
                .into_iter()
                .filter(|l| !issue.labels.contains(l))
                .collect();
            let remove: Vec<String> = remove
                .into_iter()
                .filter(|l| issue.labels.contains(l))
                .collect();
            if !add.is_empty() || !remove.is_empty() {
                tracker
                    .edit_labels(reference, &issue.labels, &add, &remove)
                    .await?;
            }
            let issue = tracker.issue(reference).await?;
            print(
                format,
                &json!({"ref": reference, "labels": issue.labels}),
                || format!("#{reference}: {}", issue.labels.join(", ")),
            )
        }
        Command::Close { reference } | Command::Reopen { reference } => {
            let open = matches!(command, Command::Reopen { .. });
            let issue = tracker.issue(reference).await?;
            if issue.open != open {
                tracker.set_open(reference, open).await?;
            }
            let state = if open { "open" } else { "closed" };
            print(format, &json!({"ref": reference, "state": state}), || {
                format!("#{reference} is {state}")
            })
        }
        Command::Rollback {
            reference,
            to,
            reason,
        } => {
            let advanced = engine.rollback(reference, &to, &reason).await?;
            print(format, &advanced, || advanced_text(&advanced, false))
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
            let stale_after = crate::core::duration::parse(&stale_after)
                .map_err(|e| anyhow::anyhow!("--stale-after: {e}"))?;
            for w in &workflow_filter {
                catalog.workflow(w)?;
            }
            let filter = report::Filter {
                workflows: workflow_filter,
                stages: stage_filter,
                labels: label_filter,
            };
            let state = if include_closed {
                StateFilter::All
            } else {
                StateFilter::Open
            };
            let index = engine.index_of(state).await?;
            let statuses = engine.statuses(&index, include_closed, &filter).await?;
            let workflows: Vec<&Workflow> = catalog
                .workflows
                .values()
                .filter(|w| filter.workflows.is_empty() || filter.workflows.contains(&w.name))
                .collect();
            let report = report::build(engine.now(), &workflows, statuses, stale_after);
            if publish {
                let (number, created) = engine.publish(&report_format::text(&report, true)).await?;
                let verb = if created { "created" } else { "updated" };
                eprintln!("{verb} the summary issue #{number}");
            }
            let text = match format {
                Format::Json => serde_json::to_string_pretty(&report)? + "\n",
                Format::Md => report_format::text(&report, true),
                Format::Csv => report_format::csv(&report)?,
                Format::Html => report_format::html(&report),
                _ => report_format::text(&report, false),
            };
            match output {
                Some(path) => {
                    write_atomically(&path, &text)?;
                    eprintln!("wrote {}", path.display());
                }
                None => print!("{text}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Init { .. }
        | Command::Validate { .. }
        | Command::Workflows
        | Command::Show { .. }
        | Command::Render { .. } => unreachable!("handled before opening a tracker"),
    }
}

fn print<T: Serialize>(
    format: Format,
    value: &T,
    text: impl FnOnce() -> String,
) -> Result<ExitCode> {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(value)?),
        _ => println!("{}", text()),
    }
    Ok(ExitCode::SUCCESS)
}

fn status_text(s: &report::Status) -> String {
    let mut out = format!(
        "#{} {}\nworkflow: {}\nstage: {} ({})\nstate: {}\nin stage since: {}\nurl: {}\n",
        s.number,
        s.title,
        s.workflow,
        s.stage.as_deref().unwrap_or("-"),
        s.label.as_deref().unwrap_or("no stage label"),
        s.state,
        s.entered_at.format("%Y-%m-%d %H:%M UTC"),
        s.url
    );
    if !s.gates.is_empty() {
        out.push_str("gates:\n");
        for g in &s.gates {
            out.push_str(&format!(
                "  {} {}: {} — {}\n",
                if g.passed { "✔" } else { "✘" },
                g.gate,
                g.description,
                g.detail
            ));
        }
    }
    if !s.children.is_empty() {
        out.push_str("children:\n");
        for c in &s.children {
            out.push_str(&format!(
                "  #{} {} — {} ({})\n",
                c.number,
                c.template,
                c.stage.as_deref().unwrap_or("-"),
                c.state
            ));
        }
    }
    out.trim_end().to_string()
}

fn advanced_text(a: &Advanced, dry_run: bool) -> String {
    let verb = if dry_run { "would move" } else { "moved" };
    let mut out = Vec::new();
    for t in &a.transitions {
        let from = t.from.as_deref().unwrap_or("(start)");
        let why = t
            .reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        let resumed = if t.resumed {
            " [finished an interrupted move]"
        } else {
            ""
        };
        out.push(format!(
            "#{}: {verb} {from} → {}{why}{resumed}",
            a.number, t.to
        ));
    }
    if a.transitions.is_empty() {
        out.push(format!(
            "#{}: stays in {}",
            a.number,
            a.stage.as_deref().unwrap_or("-")
        ));
    }
    for b in &a.blocked_by {
        out.push(format!(
            "  blocked by {}: {} — {}",
            b.gate, b.description, b.detail
        ));
    }
    for w in &a.warnings {
        out.push(format!("  warning: {w}"));
    }
    for c in &a.created {
        out.push(format!("  created #{c}"));
    }
    out.join("\n")
}

fn read_config(path: &Path) -> Result<Config> {
    if !path.exists() {
        return Ok(Config::default());
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.to_string().trim_end()))
}

/// `--var K=V` and `--vars-file F` (a YAML or JSON mapping); `--var` wins.
fn collect_vars(pairs: &[String], file: Option<&Path>) -> Result<BTreeMap<String, String>> {
    let mut vars = BTreeMap::new();
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read vars file {}", path.display()))?;
        let node = crate::core::yaml::parse(&text).map_err(|e| {
            anyhow::anyhow!(
                "{}:{}:{}: {}",
                path.display(),
                e.loc.line,
                e.loc.column,
                e.message
            )
        })?;
        let crate::core::yaml::NodeKind::Map(entries) = &node.kind else {
            bail!(
                "{}:{}:{}: a vars file is a mapping of name: value",
                path.display(),
                node.loc.line,
                node.loc.column
            );
        };
        for (k, v) in entries {
            let (Some(key), Some(value)) = (k.scalar_text(), v.scalar_text()) else {
                bail!(
                    "{}:{}:{}: each variable must be `name: value` with a scalar value",
                    path.display(),
                    k.loc.line,
                    k.loc.column
                );
            };
            vars.insert(key, value);
        }
    }
    for pair in pairs {
        let Some((k, v)) = pair.split_once('=') else {
            bail!("--var `{pair}` must be NAME=VALUE");
        };
        if k.is_empty() {
            bail!("--var `{pair}` has no name before `=`");
        }
        vars.insert(k.to_string(), v.to_string());
    }
    Ok(vars)
}

fn init(session: &Session, dir: PathBuf) -> Result<ExitCode> {
    let format = session.format(&[Format::Text, Format::Json])?;
    let toml = "# shepherd configuration\n\n[tracker]\n# local[:PATH], gitlab:GROUP/PROJECT or github:OWNER/REPO\nspec = \"local:.shepherd/tracker.db\"\n";
    let mut files: Vec<(PathBuf, &str)> = vec![(dir.join("shepherd.toml"), toml)];
    for (name, text) in BUILTIN_WORKFLOWS {
        files.push((dir.join("workflows").join(format!("{name}.yaml")), text));
    }
    for (name, text) in BUILTIN_TEMPLATES {
        files.push((dir.join("templates").join(format!("{name}.md.hbs")), text));
    }
    let existing: Vec<String> = files
        .iter()
        .filter(|(p, _)| p.exists())
        .map(|(p, _)| p.display().to_string())
        .collect();
    if !existing.is_empty() {
        bail!(
            "init writes nothing over existing files; these exist already:\n{}",
            existing.join("\n")
        );
    }
    for (path, text) in &files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        write_atomically(path, text)?;
    }
    let written: Vec<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
    print(format, &json!({"written": written}), || {
        format!("wrote:\n{}", written.join("\n"))
    })
}

fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("shepherd-tmp");
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn validate(session: &Session, paths: &[PathBuf]) -> Result<ExitCode> {
    let format = session.format(&[Format::Text, Format::Json])?;
    let mut sources = session.sources()?;
    for path in paths {
        if path.is_dir() {
            sources.add_workflow_dir(path)?;
            sources.add_template_dir(path)?;
        } else {
            sources.add_file(path)?;
        }
    }
    let result = sources.load();
    let problems = result.as_ref().err().cloned().unwrap_or_default();
    let checked = sources.workflows.len() + sources.templates.len();
    let json = json!({
        "ok": problems.is_empty(),
        "problems": problems.iter().map(|p| json!({"file": p.file, "line": p.loc.line, "column": p.loc.column, "message": p.message})).collect::<Vec<_>>(),
    });
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&json)?),
        _ if problems.is_empty() => println!(
            "ok: {} workflows, {} templates",
            sources.workflows.len(),
            sources.templates.len()
        ),
        _ => {
            for p in &problems {
                eprintln!("{p}");
            }
            eprintln!("error: {} problem(s) in {checked} files", problems.len());
        }
    }
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn workflows(session: &Session) -> Result<ExitCode> {
    let format = session.format(&[Format::Text, Format::Json])?;
    let catalog = session.catalog()?;
    let list: Vec<_> = catalog
        .workflows
        .values()
        .map(|w| json!({"name": w.name, "description": w.description, "stages": w.stages.len(), "source": catalog.origins.get(&w.name)}))
        .collect();
    print(format, &list, || {
        catalog
            .workflows
            .values()
            .map(|w| {
                format!(
                    "{:<22} {:>2} stages  {}",
                    w.name,
                    w.stages.len(),
                    w.description
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    })
}

fn show(session: &Session, name: &str) -> Result<ExitCode> {
    let format = session.format(&[Format::Text, Format::Json, Format::Mermaid])?;
    let catalog = session.catalog()?;
    let w = catalog.workflow(name)?;
    match format {
        Format::Json => {
            let value = json!({
                "name": w.name,
                "description": w.description,
                "variables": w.variables.iter().map(|v| json!({"name": v.name, "required": v.required, "default": v.default, "pattern": v.pattern.as_ref().map(|p| p.as_str()), "description": v.description})).collect::<Vec<_>>(),
                "tracking": {"template": w.tracking.template, "labels": w.tracking.labels},
                "stages": w.stages.iter().map(|s| json!({
                    "id": s.id,
                    "label": s.label,
                    "description": s.description,
                    "terminal": s.terminal,
                    "gates": s.gates.iter().map(gate_json).collect::<Vec<_>>(),
                    "next": s.next.iter().map(|e| json!({"to": e.to, "when": e.when.iter().map(gate_json).collect::<Vec<_>>()})).collect::<Vec<_>>(),
                    "exits": s.exits.iter().map(|e| json!({"to": e.to, "when": e.when.iter().map(gate_json).collect::<Vec<_>>()})).collect::<Vec<_>>(),
                    "on_enter": s.on_enter.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            });
            println!("{}", serde_json::to_string_pretty(&value)?);
        }
        Format::Mermaid => println!("{}", mermaid(w)),
        _ => {
            let mut out = format!("{} — {}\n", w.name, w.description);
            for s in &w.stages {
                out.push_str(&format!(
                    "\n{} ~\"{}\"{}\n",
                    s.id,
                    s.label,
                    if s.terminal { " (terminal)" } else { "" }
                ));
                for g in &s.gates {
                    out.push_str(&format!("  gate: {}\n", g.describe()));
                }
                for e in &s.next {
                    let when = if e.when.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " when {}",
                            e.when
                                .iter()
                                .map(Gate::describe)
                                .collect::<Vec<_>>()
                                .join(" and ")
                        )
                    };
                    out.push_str(&format!("  next → {}{when}\n", e.to));
                }
                for e in &s.exits {
                    out.push_str(&format!(
                        "  exit → {} when {}\n",
                        e.to,
                        e.when
                            .iter()
                            .map(Gate::describe)
                            .collect::<Vec<_>>()
                            .join(" and ")
                    ));
                }
            }
            println!("{}", out.trim_end());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn gate_json(g: &Gate) -> serde_json::Value {
    json!({"gate": g.kind(), "description": g.describe()})
}

fn mermaid(w: &Workflow) -> String {
    let id = |s: &str| s.replace(['-', ' ', ':'], "_");
    let mut out = String::from("stateDiagram-v2\n");
    for s in &w.stages {
        out.push_str(&format!(
            "    state \"{}\" as {}\n",
            s.label.replace('"', "'"),
            id(&s.id)
        ));
    }
    out.push_str(&format!("    [*] --> {}\n", id(&w.first_stage().id)));
    for s in &w.stages {
        for e in &s.next {
            let when = if e.when.is_empty() {
                String::new()
            } else {
                format!(
                    " : when {}",
                    e.when
                        .iter()
                        .map(Gate::describe)
                        .collect::<Vec<_>>()
                        .join(" and ")
                        .replace(['"', ':', ';'], "")
                )
            };
            out.push_str(&format!("    {} --> {}{when}\n", id(&s.id), id(&e.to)));
        }
        for e in &s.exits {
            out.push_str(&format!("    {} --> {} : exit\n", id(&s.id), id(&e.to)));
        }
        if s.terminal {
            out.push_str(&format!("    {} --> [*]\n", id(&s.id)));
        }
    }
    out.trim_end().to_string()
}

fn render_cmd(
    session: &Session,
    template: &str,
    pairs: &[String],
    file: Option<&Path>,
) -> Result<ExitCode> {
    let format = session.format(&[Format::Text, Format::Json])?;
    let catalog = session.catalog()?;
    let vars = collect_vars(pairs, file)?;
    if catalog.renderer.template(template).is_none() {
        bail!(
            "unknown template `{template}` (templates: {})",
            catalog.renderer.names().collect::<Vec<_>>().join(", ")
        );
    }
    let used = &catalog
        .renderer
        .template(template)
        .expect("checked")
        .variables;
    for name in vars.keys() {
        let head = name.split('.').next().unwrap_or_default();
        if !used.contains(head) && !["migration", "parent", "issue", "now"].contains(&head) {
            tracing::warn!("template `{template}` does not use variable `{name}`");
            eprintln!("warning: template `{template}` does not use variable `{name}`");
        }
    }
    let now = session.now.unwrap_or_else(Utc::now);
    let rendered = catalog
        .renderer
        .render(template, &render::context_from_dotted(&vars, now))?;
    print(
        format,
        &json!({"title": rendered.title, "labels": rendered.labels, "body": rendered.body}),
        || format!("# {}\n\n{}", rendered.title, rendered.body.trim_end()),
    )
}
