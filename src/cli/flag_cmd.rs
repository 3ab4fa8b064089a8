//! `shepherd flag list | get NAME | set NAME`: the configured feature-flag backend, read
//! and set by hand. `set` reads first and writes only when the flag differs.

use std::process::ExitCode;

use anyhow::{anyhow, Result};
use clap::Subcommand;
use serde_json::{json, Value};

use super::config::Session;
use super::output::{print, Format};
use crate::core::facts::{FlagState, FlagWant};
use crate::core::gates::flag_text;
use crate::flags::Flags;

pub(super) async fn flag(session: &Session, action: FlagAction) -> Result<ExitCode> {
    let format = session.format(&[Format::Text, Format::Json])?;
    let Some(flags) = session.flags_backend()? else {
        anyhow::bail!(
            "no flags backend is configured for {}: give --flags (local, gitlab-project, gitlab-instance, unleash) or [flags] backend in shepherd.toml",
            session.spec()?
        );
    };
    match action {
        FlagAction::List => {
            let all = flags
                .list()
                .await
                .map_err(|e| anyhow!("{}: {e}", flags.describe()))?;
            let value = json!({
                "backend": flags.kind(),
                "flags": all.iter().map(|f| shown(f, flags.as_ref())).collect::<Vec<_>>(),
            });
            print(format, &value, || {
                if all.is_empty() {
                    format!("no flags on {}", flags.describe())
                } else {
                    all.iter()
                        .map(|f| format!("{}\t{}", f.name, flag_text(f)))
                        .collect::<Vec<_>>()
                        .join("\n")
                }
            })
        }
        FlagAction::Get { name, environment } => {
            crate::core::facts::check_flag_name(&name).map_err(anyhow::Error::msg)?;
            let state = flags
                .get(&name, environment.as_deref())
                .await
                .map_err(|e| anyhow!("{}: {e}", flags.describe()))?;
            print(format, &shown(&state, flags.as_ref()), || {
                format!("{name}: {}", flag_text(&state))
            })
        }
        FlagAction::Set {
            name,
            percentage,
            on,
            off,
            environment,
        } => {
            crate::core::facts::check_flag_name(&name).map_err(anyhow::Error::msg)?;
            let want = match (percentage, on, off) {
                (Some(p), _, _) => FlagWant::Percentage(p),
                (None, true, _) => FlagWant::Enabled(true),
                (None, _, true) => FlagWant::Enabled(false),
                _ => anyhow::bail!("say what to set: --percentage P, --on or --off"),
            };
            let env = environment.as_deref();
            let before = flags
                .get(&name, env)
                .await
                .map_err(|e| anyhow!("{}: {e}", flags.describe()))?;
            let changed = !crate::core::drift::holds(&before, &want);
            let after = if changed {
                flags
                    .set(&name, env, &want)
                    .await
                    .map_err(|e| anyhow!("{}: {e}", flags.describe()))?
            } else {
                before.clone()
            };
            let mut value = shown(&after, flags.as_ref());
            value["changed"] = json!(changed);
            print(format, &value, || {
                if changed {
                    format!("{name}: {} → {}", flag_text(&before), flag_text(&after))
                } else {
                    format!("{name} is {} already: nothing changed", flag_text(&after))
                }
            })
        }
    }
}

/// `{"name", "enabled", "percentage", "backend"}` (and `exists`, `environment`).
fn shown(state: &FlagState, flags: &dyn Flags) -> Value {
    json!({
        "name": state.name,
        "enabled": state.enabled,
        "percentage": state.percentage,
        "backend": flags.kind(),
        "exists": state.exists,
        "environment": state.environment,
    })
}

/// What `shepherd flag` does.
#[derive(Subcommand, Debug)]
pub(super) enum FlagAction {
    /// Every flag of the backend
    List,
    /// One flag's state
    #[command(after_help = "Examples:\n  shepherd flag get gitaly_find_commit --format json")]
    Get {
        /// The flag's name
        name: String,
        /// The environment (default: every environment, or the backend's own)
        #[arg(long, value_name = "ENV")]
        environment: Option<String>,
    },
    /// Set a flag: a percentage, on or off (read first; written only when it differs)
    #[command(
        after_help = "Examples:\n  shepherd flag set gitaly_find_commit --percentage 50\n  shepherd flag set gitaly_find_commit --on --environment staging"
    )]
    Set {
        /// The flag's name
        name: String,
        /// On for this share of users or time, 0 to 100
        #[arg(long, value_name = "P", conflicts_with_all = ["on", "off"], value_parser = parse_percentage)]
        percentage: Option<f64>,
        /// Fully on
        #[arg(long, conflicts_with = "off")]
        on: bool,
        /// Off
        #[arg(long)]
        off: bool,
        /// The environment (default: every environment)
        #[arg(long, value_name = "ENV")]
        environment: Option<String>,
    },
}

fn parse_percentage(text: &str) -> Result<f64, String> {
    match text.trim().trim_end_matches('%').parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(format!(
            "`{text}` is no percentage: give a number from 0 to 100"
        )),
    }
}
