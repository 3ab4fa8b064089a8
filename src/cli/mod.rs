//! The command line: arguments (clap), configuration (`--tracker`, `SHEPHERD_TRACKER`,
//! `shepherd.toml`), and the text and JSON output of every command. Errors are printed once,
//! as `error: {:#}`, and give exit code 1; usage errors (unknown flags, bad flag values)
//! give 2.

mod args;
mod assemble;
mod bulk_cmd;
mod clock_cmd;
mod commands;
mod config;
mod flag_cmd;
mod freeze_cmd;
mod freeze_config;
mod label_cmd;
mod logging;
mod login;
mod move_cmd;
mod mr_cmd;
mod notify_cmd;
mod output;
mod person_cmd;
mod progress;
mod report_cmd;
mod serve_cmd;
mod status_cmd;
mod tracked;
mod values;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{CommandFactory as _, Parser};

use args::{Cli, Command};
use commands::{init, render_cmd, show, validate, workflows};
use config::Session;
use tracked::tracked;

pub use logging::init_logging;

/// Runs shepherd with `args` (the program name first) and returns the exit code.
pub fn run(args: Vec<OsString>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            output::note(&format!("error: cannot start the async runtime: {e}"));
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(execute(cli)) {
        Ok(code) => code,
        Err(e) => {
            output::note(&format!("error: {e:#}"));
            ExitCode::from(1)
        }
    }
}

async fn execute(cli: Cli) -> Result<ExitCode> {
    // Completions and the manual need no configuration: a broken shepherd.toml does not
    // stop them.
    let session = || Session::new(&cli.global);
    match cli.command {
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "shepherd", &mut out);
            output::raw(&out)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => {
            let mut out = Vec::new();
            clap_mangen::Man::new(Cli::command()).render(&mut out)?;
            output::raw(&out)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Schema => {
            output::raw(format!("{}\n", crate::core::workflow::schema::json_schema()).as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Init { dir } => init(&session()?, dir.unwrap_or_else(|| PathBuf::from("."))),
        Command::Validate { paths } => validate(&session()?, &paths),
        Command::Workflows => workflows(&session()?),
        Command::Show { workflow } => show(&session()?, &workflow),
        Command::Render {
            template,
            vars,
            vars_file,
        } => render_cmd(&session()?, &template, &vars, vars_file.as_deref()),
        Command::Clock { action } => clock_cmd::clock(&session()?, action),
        Command::Freeze(args) => freeze_cmd::freeze(&session()?, args),
        Command::Mr { action } => mr_cmd::mr(&session()?, action),
        Command::Release { action } => mr_cmd::release(&session()?, action),
        Command::Flag { action } => flag_cmd::flag(&session()?, action).await,
        Command::Notify { action } => notify_cmd::notify(&session()?, action).await,
        Command::Serve {
            listen,
            resync,
            full_resync,
            insecure_no_webhook_secret,
            max_connections,
        } => {
            let args = serve_cmd::ServeArgs {
                listen,
                resync,
                full_resync,
                insecure: insecure_no_webhook_secret,
                max_connections: max_connections as usize,
            };
            serve_cmd::serve(&session()?, args).await
        }
        Command::Tracked(command) => tracked(&session()?, command).await,
    }
}
