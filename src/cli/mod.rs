//! The command line: arguments (clap), configuration (`--tracker`, `SHEPHERD_TRACKER`,
//! `shepherd.toml`), and the text and JSON output of every command. Errors are printed once,
//! as `error: {:#}`, and give exit code 1; usage errors give 2.

mod args;
mod commands;
mod config;
mod output;
mod tracked;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};
use clap::Parser;

use args::{Cli, Command};
use commands::{init, render_cmd, show, validate, workflows};
use config::{read_config, Session};
use tracked::tracked;

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
