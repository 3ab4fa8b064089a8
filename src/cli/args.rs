//! The arguments: clap's derive types for the global flags and every subcommand, with the
//! help a person reads (every flag described, examples under each command). Flag values
//! are parsed here (`values.rs`), so a bad one is a usage error (exit 2).

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};

use super::bulk_cmd::Selector;
use super::clock_cmd::ClockAction;
use super::output::Format;
use super::report_cmd::ReportArgs;
use super::values::{parse_mr, parse_project, parse_ref, parse_std_duration, parse_time};

/// `--version`: the crate's version and the commit it was built from (`build.rs`).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("SHEPHERD_COMMIT"),
    ")"
);

/// The top-level long help's epilogue: environment, logging, exit codes.
const ENVIRONMENT: &str = "\
Environment:
  SHEPHERD_TRACKER     the tracker, as --tracker (below the flag, above shepherd.toml)
  SHEPHERD_STATE       the state store, as --state
  GITLAB_TOKEN         token for gitlab:… trackers (read from the environment only, never printed)
  GITHUB_TOKEN         token for github:… trackers (likewise)
  SHEPHERD_WEBHOOK_SECRET         serve: GitLab's secret token / GitHub's webhook secret
  SHEPHERD_WEBHOOK_SIGNING_TOKEN  serve: GitLab's signing token (whsec_…)
  SHEPHERD_LOG         log filter for stderr, e.g. `warn`, `debug`, `shepherd=debug`
                       (tracing's EnvFilter syntax); if unset, RUST_LOG; if neither, no logs
  NO_COLOR             when set, logs carry no colour (neither do they when stderr is not
                       a terminal)

Configuration: shepherd.toml is looked for in the current directory and then in each
parent directory, as git finds .git; relative paths in it (local:PATH, workflows,
templates, [state] url = \"sqlite:PATH\") are relative to the file's directory.

Exit codes: 0 done (an advance blocked by its gates is done), 1 error, 2 usage (unknown
flags, bad flag values).

Examples:
  shepherd init && shepherd validate
  shepherd start gitaly-migration --var feature_flag=GITALY_FIND_COMMIT --var grpc_service=CommitService --var grpc_method=FindCommit
  SHEPHERD_LOG=debug shepherd --tracker gitlab:my-group/my-project reconcile --dry-run";

#[derive(Parser, Debug)]
#[command(
    name = "shepherd",
    version = VERSION,
    about = "Moves migrations and feature-flag rollouts through their stages",
    long_about = "Moves migrations and feature-flag rollouts through their stages on GitLab, \
GitHub or a local tracker: renders checklist issues from templates, watches checklists, \
labels, approvals and soak times, moves the stage label when a gate holds, leaves an audit \
comment for every move, and reports where every migration stands.",
    after_help = "Run `shepherd help COMMAND` for examples; `shepherd --help` for the environment (logging, tokens).",
    after_long_help = ENVIRONMENT,
)]
pub(super) struct Cli {
    #[command(flatten)]
    pub(super) global: Global,
    #[command(subcommand)]
    pub(super) command: Command,
}

/// The options every command takes, shown apart from a command's own.
#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Global options")]
pub(super) struct Global {
    /// The tracker: local[:PATH] (default local:.shepherd/tracker.db), gitlab:GROUP/PROJECT or github:OWNER/REPO (repeated: `serve` serves them all)
    #[arg(
        long,
        global = true,
        env = "SHEPHERD_TRACKER",
        value_name = "SPEC",
        action = clap::ArgAction::Append
    )]
    pub(super) tracker: Vec<String>,
    /// The state store (leases, cursors): sqlite:PATH (default sqlite:.shepherd/state.db) or postgres://…
    #[arg(
        long,
        global = true,
        env = "SHEPHERD_STATE",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub(super) state: Option<String>,
    /// Directory of workflow files that override the built-in ones by name
    #[arg(long, global = true, value_name = "DIR")]
    pub(super) workflows: Option<PathBuf>,
    /// Directory of templates that override the built-in ones by name
    #[arg(long, global = true, value_name = "DIR")]
    pub(super) templates: Option<PathBuf>,
    /// The time for this one command on the local tracker (RFC 3339, e.g. 2026-01-01T12:00:00Z); overrides its clock
    #[arg(long, global = true, value_name = "RFC3339", value_parser = parse_time)]
    pub(super) now: Option<DateTime<Utc>>,
    /// Output format: text or json (show: also mermaid; report: also md, csv, html)
    #[arg(long, global = true, value_name = "FORMAT")]
    pub(super) format: Option<Format>,
    /// Who acts on the local tracker (default: $USER, else $LOGNAME, else the login name of the running user)
    #[arg(long, global = true, value_name = "USER")]
    pub(super) actor: Option<String>,
    /// How many requests run at once against a remote tracker (twice as many migrations are worked on at once; with 1, one migration at a time, in order)
    #[arg(long, global = true, default_value_t = 8, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub(super) concurrency: u16,
    /// How long one request to a remote tracker may take (e.g. 60s, 1m30s); connecting may take 10s
    #[arg(long, global = true, default_value = "60s", value_name = "DURATION", value_parser = parse_std_duration)]
    pub(super) timeout: std::time::Duration,
    /// The longest shepherd waits for a rate limit or retries before giving up (e.g. 15m)
    #[arg(long, global = true, default_value = "15m", value_name = "DURATION", value_parser = parse_std_duration)]
    pub(super) max_wait: std::time::Duration,
    /// GitLab instance for gitlab:GROUP/PROJECT (self-managed; default https://gitlab.com)
    #[arg(
        long,
        global = true,
        env = "SHEPHERD_GITLAB_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub(super) gitlab_url: Option<String>,
    /// GitHub API for github:OWNER/REPO (Enterprise; default https://api.github.com)
    #[arg(
        long,
        global = true,
        env = "SHEPHERD_GITHUB_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub(super) github_url: Option<String>,
    /// The feature-flag backend: local, gitlab-project, gitlab-instance, unleash or none (default: local on the local tracker, gitlab-project on GitLab)
    #[arg(long, global = true, env = "SHEPHERD_FLAGS", value_name = "BACKEND")]
    pub(super) flags: Option<String>,
    /// Prometheus for metric gates (e.g. http://127.0.0.1:9090); a bearer token from PROMETHEUS_TOKEN
    #[arg(
        long,
        global = true,
        env = "SHEPHERD_PROMETHEUS_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub(super) prometheus_url: Option<String>,
}

#[derive(Subcommand, Debug)]
pub(super) enum Command {
    /// Write shepherd.toml, workflows/ and templates/ (the defaults) for editing
    #[command(
        after_help = "Examples:\n  shepherd init\n  shepherd init my-project && cd my-project && shepherd validate"
    )]
    Init {
        /// Where to write (default: the current directory); nothing existing is overwritten
        dir: Option<PathBuf>,
    },
    /// Validate workflows and templates; exit 1 on any problem
    #[command(
        after_help = "Examples:\n  shepherd validate\n  shepherd validate workflows/my-rollout.yaml templates/\n  shepherd validate --format json"
    )]
    Validate {
        /// Workflow or template files, or directories of them, checked with those in use
        paths: Vec<PathBuf>,
    },
    /// List the workflows in use
    #[command(
        after_help = "Examples:\n  shepherd workflows\n  shepherd workflows --workflows ./workflows --format json"
    )]
    Workflows,
    /// Show a workflow's stages, gates and edges
    #[command(
        after_help = "Examples:\n  shepherd show gitaly-migration\n  shepherd show gitaly-migration --format mermaid > gitaly.mmd"
    )]
    Show {
        /// The workflow's name (see `shepherd workflows`)
        workflow: String,
    },
    /// Print a rendered issue: "# <title>", a blank line, the body
    #[command(
        after_help = "Examples:\n  shepherd render feature-flag-rollout --var feature_flag=my_flag\n  shepherd render acceptance-testing --var migration.ref=12 --var issue.ref=13 --vars-file vars.yaml"
    )]
    Render {
        /// The template's name (a workflow's tracking template or a child's)
        template: String,
        /// A variable, dotted for context values (migration.ref=12); repeatable; wins over --vars-file
        #[arg(long = "var", value_name = "K=V")]
        vars: Vec<String>,
        /// A YAML or JSON file mapping variable names to values
        #[arg(long, value_name = "FILE")]
        vars_file: Option<PathBuf>,
    },
    /// Change freezes on the local tracker: add, list or remove a freeze period
    Freeze(super::freeze_cmd::FreezeArgs),
    #[command(flatten)]
    Tracked(Tracked),
    /// Print shell completions for SHELL on standard output
    #[command(
        after_help = "Examples:\n  shepherd completions bash > ~/.local/share/bash-completion/completions/shepherd\n  shepherd completions zsh > \"${fpath[1]}/_shepherd\"\n  shepherd completions fish > ~/.config/fish/completions/shepherd.fish"
    )]
    Completions {
        /// bash, zsh, fish, elvish or powershell
        shell: clap_complete::Shell,
    },
    /// The local tracker's rehearsal clock: show it, set it, or move it on
    #[command(
        after_help = "Examples:\n  shepherd clock set 2026-01-01T00:00:00Z\n  shepherd clock advance 2h\n  shepherd clock"
    )]
    Clock {
        #[command(subcommand)]
        action: Option<ClockAction>,
    },
    /// Merge requests on the local tracker, as a person opens, merges and closes them
    #[command(
        after_help = "The local tracker stands in for GitLab or GitHub in a rehearsal: a merge request references\nissues, and `merge_request` gates read it. On a gitlab:… or github:… tracker, people open and\nmerge them there.\n\nExamples:\n  shepherd mr open --issue 12\n  shepherd mr open --issue 12 --project gitlab-org/gitaly --title \"Add FindCommit\"\n  shepherd mr merge 1\n  shepherd mr close 2 --project gitlab-org/gitaly"
    )]
    Mr {
        #[command(subcommand)]
        action: MrAction,
    },
    /// Releases on the local tracker, as a person publishes them
    #[command(
        after_help = "The local tracker stands in for GitLab or GitHub in a rehearsal: `release` gates read what is\npublished here. On a gitlab:… or github:… tracker, people publish releases there.\n\nExamples:\n  shepherd release publish v1.0.0\n  shepherd release publish v17.3.0 --project gitlab-org/gitlab --now 2026-03-01T12:00:00Z"
    )]
    Release {
        #[command(subcommand)]
        action: ReleaseAction,
    },
    /// Feature flags on the configured backend: list them, read one, set one
    #[command(
        after_help = "The backend is --flags, SHEPHERD_FLAGS or [flags] backend in shepherd.toml: local (the local\ntracker's file; the default there), gitlab-project (the default on GitLab), gitlab-instance,\nunleash, or none.\n\nExamples:\n  shepherd flag list\n  shepherd flag get gitaly_find_commit\n  shepherd flag set gitaly_find_commit --percentage 5 --environment production\n  shepherd flag set gitaly_find_commit --off"
    )]
    Flag {
        #[command(subcommand)]
        action: super::flag_cmd::FlagAction,
    },
    /// Notifications: the [[notify]] sinks of shepherd.toml
    #[command(
        after_help = "Sinks are [[notify]] tables in shepherd.toml (url, or url = \"env:NAME\"; format slack or\ncloudevents; events; workflows). A sink's URL is a secret and is never printed.\n\nExamples:\n  shepherd notify test\n  shepherd notify test --format json"
    )]
    Notify {
        #[command(subcommand)]
        action: NotifyAction,
    },
    /// Run the service: webhooks, workers, resync, dashboard, /metrics
    #[command(
        after_help = "Serving a GitLab or GitHub tracker needs SHEPHERD_WEBHOOK_SECRET (GitLab secret token,\nGitHub webhook secret) or SHEPHERD_WEBHOOK_SIGNING_TOKEN (GitLab signing token, whsec_…),\nread from the environment; the local tracker sends no webhooks and needs neither.\n\nLimits: request headers within 10 s and a webhook body within 30 s, or the connection is\nclosed; at most 8 webhook bodies read at once (more get 503 with Retry-After); bodies\nup to 25 MiB.\n\nEndpoints: POST /hooks/gitlab, POST /hooks/github, GET / (dashboard), GET /api/migrations,\nGET /api/migrations/TRACKER/REF, GET /metrics, GET /healthz, GET /readyz.\n\nExamples:\n  SHEPHERD_WEBHOOK_SECRET=… shepherd --tracker gitlab:my-group/my-project serve\n  shepherd serve --listen 0.0.0.0:8080 --resync 5m --concurrency 16"
    )]
    Serve {
        /// The address to listen on (port 0: any free port, printed at start)
        #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
        listen: std::net::SocketAddr,
        /// Time between incremental resyncs, which catch missed webhooks (e.g. 10m, 30s)
        #[arg(long, default_value = "10m", value_name = "DURATION", value_parser = parse_std_duration)]
        resync: std::time::Duration,
        /// Time between full resyncs, which read every list whole again (e.g. 6h)
        #[arg(long, default_value = "6h", value_name = "DURATION", value_parser = parse_std_duration)]
        full_resync: std::time::Duration,
        /// Accept webhooks without any secret (only on a trusted network; printed loudly)
        #[arg(long)]
        insecure_no_webhook_secret: bool,
        /// The most connections open at once; more wait to be accepted
        #[arg(long, default_value_t = 1024, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        max_connections: u32,
    },
    /// Print the man page (roff) on standard output
    #[command(
        after_help = "Examples:\n  shepherd man | man -l -\n  shepherd man > ~/.local/share/man/man1/shepherd.1"
    )]
    Man,
    /// Print the JSON Schema (2020-12) of workflow files, for editors
    #[command(
        after_help = "Editors that read JSON Schemas complete keys and mark mistakes as you type. Write the schema once and name it on a workflow's first line (the YAML language server: VS Code's YAML extension, Neovim, Helix):\n  # yaml-language-server: $schema=../workflow.schema.json\nThe schema checks the shape (keys, types); `shepherd validate` checks the rest.\n\nExamples:\n  shepherd schema > workflow.schema.json\n  shepherd schema | jq '.[\"$defs\"].Gate'"
    )]
    Schema,
}

/// The commands that talk to a tracker through the engine (`tracked`).
#[derive(Subcommand, Debug)]
pub(super) enum Tracked {
    /// Print one issue as a person sees it
    #[command(after_help = "Examples:\n  shepherd issue 12\n  shepherd issue '#12' --format json")]
    Issue {
        /// The issue's number (12 or #12)
        #[arg(value_parser = parse_ref, value_name = "REF")]
        reference: u64,
    },
    /// Open a tracking issue in the workflow's first stage
    #[command(
        after_help = "Examples:\n  shepherd start gitaly-migration --var feature_flag=GITALY_FIND_COMMIT --var grpc_service=CommitService --var grpc_method=FindCommit\n  shepherd start feature-flag-rollout --title 'Roll out my_flag' --vars-file vars.yaml"
    )]
    Start {
        /// The workflow's name (see `shepherd workflows`)
        workflow: String,
        /// The tracking issue's title (default: the template's)
        #[arg(long)]
        title: Option<String>,
        /// A workflow variable; repeatable; wins over --vars-file
        #[arg(long = "var", value_name = "K=V")]
        vars: Vec<String>,
        /// A YAML or JSON file mapping variable names to values
        #[arg(long, value_name = "FILE")]
        vars_file: Option<PathBuf>,
    },
    /// One migration (gates, children), or a table of all open ones
    #[command(
        after_help = "Examples:\n  shepherd status\n  shepherd status 12\n  shepherd status 12 --format json"
    )]
    Status {
        /// The tracking issue's number (12 or #12); without it, every open migration
        #[arg(value_parser = parse_ref, value_name = "REF")]
        reference: Option<u64>,
    },
    /// Evaluate gates and move as far as they allow
    #[command(
        after_help = "Examples:\n  shepherd advance 12\n  shepherd advance 12 --dry-run --format json"
    )]
    Advance {
        /// The issue's number (12 or #12); or select with --workflow, --stage, --label
        #[arg(value_parser = parse_ref, value_name = "REF", required_unless_present_any = ["workflow", "stage", "labels"])]
        reference: Option<u64>,
        /// Say what would move, write nothing
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        select: Selector,
    },
    /// Advance every open migration
    #[command(
        after_help = "Examples:\n  shepherd reconcile\n  shepherd reconcile --dry-run\n  shepherd --tracker gitlab:my-group/my-project reconcile --concurrency 16"
    )]
    Reconcile {
        /// Say what would move, write nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Check the task item whose text contains TEXT (exactly one)
    #[command(
        after_help = "Examples:\n  shepherd tick 12 \"route to migrate\"\n  shepherd tick 12 \"Monitor Grafana\" --child acceptance-testing --section \"2. Development\"\n  shepherd tick 12 \"route to migrate\" --undo"
    )]
    Tick {
        /// The issue's number (12 or #12)
        #[arg(value_parser = parse_ref, value_name = "REF")]
        reference: u64,
        /// Part of the task item's text; it must match exactly one item
        text: String,
        /// Tick in the newest child issue made from this template
        #[arg(long, value_name = "TEMPLATE")]
        child: Option<String>,
        /// Only items under a heading containing this text
        #[arg(long)]
        section: Option<String>,
        /// Uncheck instead
        #[arg(long)]
        undo: bool,
    },
    /// Write a comment as --actor, as a person would (local tracker): a first line
    /// `/shepherd …` is a comment command
    #[command(
        after_help = "Examples:\n  shepherd comment 12 \"/shepherd pause waiting for the DBA\" --actor dave\n  shepherd comment 12 \"/shepherd approve\" --actor carol\n  shepherd comment 12 \"/shepherd status\" --child acceptance-testing"
    )]
    Comment {
        /// The issue's number (12 or #12)
        #[arg(value_parser = parse_ref, value_name = "REF")]
        reference: u64,
        /// The comment's text (Markdown)
        text: String,
        /// On the newest child issue made from this template
        #[arg(long, value_name = "TEMPLATE")]
        child: Option<String>,
    },
    /// Change labels, as a person would
    #[command(
        after_help = "Examples:\n  shepherd label 12 --add existing-rpc\n  shepherd label 12 --add \"Opt-In Approved\" --actor jacobvosmaer-gitlab\n  shepherd label 12 --remove shelve"
    )]
    Label {
        /// The issue's number (12 or #12)
        #[arg(value_parser = parse_ref, value_name = "REF")]
        reference: u64,
        /// A label to add; repeatable
        #[arg(long = "add", value_name = "LABEL")]
        add: Vec<String>,
        /// A label to remove; repeatable
        #[arg(long = "remove", value_name = "LABEL")]
        remove: Vec<String>,
    },
    /// Close an issue
    #[command(after_help = "Examples:\n  shepherd close 13")]
    Close {
        /// The issue's number (12 or #12)
        #[arg(value_parser = parse_ref, value_name = "REF")]
        reference: u64,
    },
    /// Reopen an issue
    #[command(after_help = "Examples:\n  shepherd reopen 13")]
    Reopen {
        /// The issue's number (12 or #12)
        #[arg(value_parser = parse_ref, value_name = "REF")]
        reference: u64,
    },
    /// Move a migration back to a stage, recording the reason
    #[command(
        after_help = "Examples:\n  shepherd rollback 12 --to selection --reason \"wrong route\""
    )]
    Rollback {
        /// The tracking issue's number (12 or #12); or select with --workflow, --stage, --label
        #[arg(value_parser = parse_ref, value_name = "REF", required_unless_present_any = ["workflow", "stage", "labels"])]
        reference: Option<u64>,
        #[command(flatten)]
        select: Selector,
        /// Say what would be rolled back, write nothing
        #[arg(long)]
        dry_run: bool,
        /// The stage to move back to (its id, see `shepherd show WORKFLOW`)
        #[arg(long, value_name = "STAGE")]
        to: String,
        /// Why, recorded in the audit comment
        #[arg(long, value_name = "TEXT")]
        reason: String,
        /// Move to a stage the migration has never been in
        #[arg(long)]
        force: bool,
        /// Leave the tracking issue's task items ticked (by default the boxes of the stages
        /// it goes back over are unticked, and the audit comment lists them)
        #[arg(long)]
        keep_checklists: bool,
    },
    /// Hold a migration where it is: no forward move until `resume` (exits still apply)
    #[command(
        after_help = "Examples:\n  shepherd pause 12 --reason \"waiting for the DBA\"\n  shepherd pause --workflow gitaly-migration --stage acceptance-testing --reason \"change freeze\" --dry-run\n  shepherd resume 12"
    )]
    Pause {
        /// The migration's number (12 or #12); or select with --workflow, --stage, --label
        #[arg(value_parser = parse_ref, value_name = "REF", required_unless_present_any = ["workflow", "stage", "labels"])]
        reference: Option<u64>,
        /// Why: recorded in a comment on the tracking issue
        #[arg(long)]
        reason: String,
        /// Say what would be paused, write nothing
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        select: Selector,
    },
    /// Let a paused migration move on again
    #[command(
        after_help = "Examples:\n  shepherd resume 12\n  shepherd resume 12 --reason \"DBA approved\""
    )]
    Resume {
        /// The migration's number (12 or #12); or select with --workflow, --stage, --label
        #[arg(value_parser = parse_ref, value_name = "REF", required_unless_present_any = ["workflow", "stage", "labels"])]
        reference: Option<u64>,
        /// Why, if worth saying: recorded in a comment
        #[arg(long)]
        reason: Option<String>,
        /// Say what would be resumed, write nothing
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        select: Selector,
    },
    /// Every transition of a migration: from, to, when, by, why
    #[command(
        after_help = "Examples:\n  shepherd history 12\n  shepherd history 12 --format json"
    )]
    History {
        /// The tracking issue's number (12 or #12)
        #[arg(value_parser = parse_ref, value_name = "REF")]
        reference: u64,
    },
    /// The comments of an issue, shepherd's own included, oldest first: the audit trail
    #[command(
        after_help = "Examples:\n  shepherd log 12\n  shepherd log 12 --child acceptance-testing\n  shepherd log 12 --format json"
    )]
    Log {
        /// The tracking issue's number (12 or #12)
        #[arg(value_parser = parse_ref, value_name = "REF")]
        reference: u64,
        /// The newest child issue made from this template instead
        #[arg(long, value_name = "TEMPLATE")]
        child: Option<String>,
    },
    /// Where every migration stands
    #[command(
        after_help = "Examples:\n  shepherd report --format html --output report.html\n  shepherd report --format md --stale-after 7d --workflow gitaly-migration\n  shepherd report --publish"
    )]
    Report(ReportArgs),
    /// The portfolio as one plan: per workflow and stage, who is in it, who waits for a
    /// slot, a dependency or a freeze, and who is overdue
    #[command(
        after_help = "Examples:\n  shepherd plan\n  shepherd plan --workflow acceptance-testing --format json"
    )]
    Plan {
        /// Only these workflows; repeatable
        #[arg(long = "workflow", value_name = "WORKFLOW")]
        workflow_filter: Vec<String>,
    },
}

/// What `shepherd mr` does.
#[derive(Subcommand, Debug)]
pub(super) enum MrAction {
    /// Open a merge request that references an issue; prints its number
    #[command(
        after_help = "Examples:\n  shepherd mr open --issue 12\n  shepherd mr open --issue 12 --issue 13 --project gitlab-org/gitaly --title \"Add FindCommit\" --actor alice\n  N=$(shepherd mr open --issue 12) && shepherd mr merge \"$N\""
    )]
    Open {
        /// The issue it references (12 or #12); repeatable
        #[arg(long = "issue", value_name = "REF", required = true, value_parser = parse_ref)]
        issues: Vec<u64>,
        /// Its project, GROUP/PROJECT or `local` (default: the local tracker's own, `local`)
        #[arg(long, value_name = "GROUP/PROJECT", value_parser = parse_project)]
        project: Option<String>,
        /// Its title (default: Resolve "<the issue's title>")
        #[arg(long)]
        title: Option<String>,
    },
    /// Merge a merge request (a closed one cannot be)
    #[command(
        after_help = "Examples:\n  shepherd mr merge 1\n  shepherd mr merge '!4' --project gitlab-org/gitaly"
    )]
    Merge {
        /// Its number in its project (1 or !1)
        #[arg(value_name = "N", value_parser = parse_mr)]
        number: u64,
        /// Its project, GROUP/PROJECT or `local` (default: the one project with a merge request so numbered)
        #[arg(long, value_name = "GROUP/PROJECT", value_parser = parse_project)]
        project: Option<String>,
    },
    /// Close a merge request without merging it (a merged one cannot be)
    #[command(
        after_help = "Examples:\n  shepherd mr close 2\n  shepherd mr close 4 --project gitlab-org/gitaly"
    )]
    Close {
        /// Its number in its project (2 or !2)
        #[arg(value_name = "N", value_parser = parse_mr)]
        number: u64,
        /// Its project, GROUP/PROJECT or `local` (default: the one project with a merge request so numbered)
        #[arg(long, value_name = "GROUP/PROJECT", value_parser = parse_project)]
        project: Option<String>,
    },
}

/// What `shepherd notify` does.
#[derive(Subcommand, Debug)]
pub(super) enum NotifyAction {
    /// Send one test event to each sink and say what each answered (its HTTP status)
    Test,
}

/// What `shepherd release` does.
#[derive(Subcommand, Debug)]
pub(super) enum ReleaseAction {
    /// Publish a release of a project now (the tracker's clock); a tag once per project
    #[command(
        after_help = "Examples:\n  shepherd release publish v1.0.0\n  shepherd release publish v17.3.0 --project gitlab-org/gitlab --format json"
    )]
    Publish {
        /// The release's tag, e.g. v17.3.0
        tag: String,
        /// Its project, GROUP/PROJECT or `local` (default: the local tracker's own, `local`)
        #[arg(long, value_name = "GROUP/PROJECT", value_parser = parse_project)]
        project: Option<String>,
    },
}

#[cfg(test)]
mod tests {
    use clap::{Command, CommandFactory, Parser};

    /// Every subcommand, with each of its options given a value (and every positional
    /// argument one), is read into the types without a panic: an option whose id is a
    /// global option's too (`--workflows`) would make clap panic when it is read.
    #[test]
    fn every_option_of_every_subcommand_is_read_without_a_panic() {
        fn walk(cmd: &Command, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
            let positionals: Vec<String> = cmd.get_positionals().map(|_| "1".to_string()).collect();
            for arg in cmd.get_arguments().filter(|a| !a.is_global_set()) {
                let Some(long) = arg.get_long() else { continue };
                let mut argv = path.clone();
                argv.extend(positionals.iter().cloned());
                argv.push(format!("--{long}"));
                if arg.get_action().takes_values() {
                    argv.push("1".into());
                }
                out.push(argv);
            }
            for sub in cmd.get_subcommands() {
                path.push(sub.get_name().to_string());
                walk(sub, path, out);
                path.pop();
            }
        }
        let mut lines = Vec::new();
        walk(
            &super::Cli::command(),
            &mut vec!["shepherd".into()],
            &mut lines,
        );
        assert!(lines.len() > 50, "{}", lines.len());
        for argv in lines {
            let read = std::panic::catch_unwind(|| super::Cli::try_parse_from(&argv).is_ok());
            assert!(read.is_ok(), "shepherd panics on {argv:?}");
        }
    }
}
