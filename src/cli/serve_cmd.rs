//! `shepherd serve`: assembles an engine for each tracker served (`assemble`), opens the
//! listening socket, checks that webhooks can be authenticated (a webhook secret is
//! needed when a GitLab or GitHub tracker is served; the local tracker sends no
//! webhooks), and runs the service until SIGTERM or SIGINT. The secrets are read from the
//! environment and never printed; so are `SHEPHERD_HEADER_TIMEOUT` and
//! `SHEPHERD_BODY_TIMEOUT` (hidden: tests shorten the 10 s and 30 s limits with them).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};

use super::assemble::Assembly;
use super::config::Session;
use super::output::note;
use crate::engine::Engine;
use crate::serve::{self, Secrets, Shared};
use crate::tracker::TrackerSpec;

/// `serve`'s own flags.
pub(super) struct ServeArgs {
    pub(super) listen: SocketAddr,
    pub(super) resync: Duration,
    pub(super) full_resync: Duration,
    pub(super) insecure: bool,
    pub(super) max_connections: usize,
}

pub(super) async fn serve(session: &Session, args: ServeArgs) -> Result<ExitCode> {
    let remote = session
        .targets()?
        .iter()
        .any(|(spec, _)| !matches!(spec, TrackerSpec::Local(_)));
    let secrets = secrets(args.insecure, remote)?;
    let header_timeout = env_duration("SHEPHERD_HEADER_TIMEOUT")?.unwrap_or(serve::HEADER_TIMEOUT);
    let body_timeout = env_duration("SHEPHERD_BODY_TIMEOUT")?.unwrap_or(serve::BODY_TIMEOUT);
    if session.now.is_some() {
        bail!("--now cannot be used with serve: the service runs on the clock");
    }
    let assembly = Assembly::all(session, session.catalog()?).await?;
    let reads = assembly.reads();
    let engines: Vec<Engine> = (0..reads.len())
        .map(|at| assembly.engine(at, &reads[at]))
        .collect();
    let names: Vec<String> = engines.iter().map(|e| e.tracker.describe()).collect();
    let store = assembly.store.clone();

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener
        .local_addr()
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let mut shared = Shared::new(store.clone(), secrets, names.clone());
    let config = serve::Config {
        resync: args.resync,
        full_resync: args.full_resync,
        concurrency: session.concurrency,
        max_connections: args.max_connections,
        header_timeout,
        ..serve::Config::default()
    };
    shared.page_refresh_seconds = config.page_refresh_seconds;
    shared.body_timeout = body_timeout;
    let shared = Arc::new(shared);
    serve::load_pages(&shared).await;
    note(&format!(
        "shepherd serve: listening on http://{addr} for {} (state {})",
        names.join(", "),
        store.describe()
    ));
    serve::run(&engines, shared, &config, listener, shutdown_signal()).await?;
    note("shepherd serve: stopped");
    Ok(ExitCode::SUCCESS)
}

/// The webhook secrets from the environment. None is an error when a `remote` tracker
/// (GitLab, GitHub) is served, unless `insecure`; with only local trackers, which send no
/// webhooks, none is needed and the hook endpoints refuse every delivery.
fn secrets(insecure: bool, remote: bool) -> Result<Secrets> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let secret = var("SHEPHERD_WEBHOOK_SECRET");
    let signing = var("SHEPHERD_WEBHOOK_SIGNING_TOKEN");
    let secrets = Secrets::new(secret.as_deref(), signing.as_deref(), insecure)
        .map_err(anyhow::Error::msg)?;
    if !secrets.configured() {
        if insecure {
            note("WARNING: --insecure-no-webhook-secret: webhooks are accepted from ANYONE who can reach this port, without a secret or signature");
        } else if remote {
            bail!(
                "serve needs a webhook secret for a GitLab or GitHub tracker: set SHEPHERD_WEBHOOK_SECRET (GitLab's secret token, GitHub's webhook secret) or SHEPHERD_WEBHOOK_SIGNING_TOKEN (GitLab's whsec_… signing token), or pass --insecure-no-webhook-secret on a trusted network"
            );
        }
    }
    Ok(secrets)
}

/// A duration from the environment variable `name` (`10s`, `1m`), if set.
fn env_duration(name: &str) -> Result<Option<Duration>> {
    let Some(text) = std::env::var(name).ok().filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    super::values::parse_std_duration(text.trim())
        .map(Some)
        .map_err(|e| anyhow::anyhow!("{name}: {e}"))
}

/// Completes on SIGTERM or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
