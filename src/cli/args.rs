//! The arguments: clap's derive types for the global flags and every subcommand.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "shepherd",
    version,
    about = "Moves migrations and feature-flag rollouts through their stages"
)]
pub(super) struct Cli {
    /// local[:PATH] (default local:.shepherd/tracker.db), gitlab:GROUP/PROJECT or github:OWNER/REPO
    #[arg(long, global = true, env = "SHEPHERD_TRACKER")]
    pub(super) tracker: Option<String>,
    /// Directory of workflow files that override the built-in ones by name
    #[arg(long, global = true)]
    pub(super) workflows: Option<PathBuf>,
    /// Directory of templates that override the built-in ones by name
    #[arg(long, global = true)]
    pub(super) templates: Option<PathBuf>,
    /// The local tracker's clock (RFC 3339), to rehearse a rollout offline
    #[arg(long, global = true)]
    pub(super) now: Option<String>,
    /// Output format: text or json (show: also mermaid; report: also md)
    #[arg(long, global = true)]
    pub(super) format: Option<String>,
    /// Who acts on the local tracker (default: $USER)
    #[arg(long, global = true)]
    pub(super) actor: Option<String>,
    /// How many requests (migrations) run at once against a remote tracker
    #[arg(long, global = true, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub(super) concurrency: u16,
    /// GitLab instance for gitlab:GROUP/PROJECT (self-managed; default https://gitlab.com)
    #[arg(long, global = true, env = "SHEPHERD_GITLAB_URL")]
    pub(super) gitlab_url: Option<String>,
    /// GitHub API for github:OWNER/REPO (Enterprise; default https://api.github.com)
    #[arg(long, global = true, env = "SHEPHERD_GITHUB_URL")]
    pub(super) github_url: Option<String>,
    #[command(subcommand)]
    pub(super) command: Command,
}

#[derive(Subcommand, Debug)]
pub(super) enum Command {
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

pub(super) fn parse_ref(text: &str) -> Result<u64, String> {
    text.trim_start_matches('#')
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("`{text}` is no issue reference: write a number such as 12 or #12"))
}
