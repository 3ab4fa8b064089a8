//! `shepherd serve`: opens the tracker (read through the Store's cache when remote), the
//! Store and the listening socket, checks that webhooks can be authenticated, and runs
//! the service until SIGTERM or SIGINT. The secrets are read from the environment and
//! never printed.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};

use super::config::Session;
use super::output::note;
use crate::engine::Engine;
use crate::serve::{self, Secrets, Shared};
use crate::store::Store;
use crate::tracker::cached::CachedTracker;
use crate::tracker::Tracker;

/// `serve`'s own flags.
pub(super) struct ServeArgs {
    pub(super) listen: SocketAddr,
    pub(super) resync: Duration,
    pub(super) full_resync: Duration,
    pub(super) insecure: bool,
}

pub(super) async fn serve(session: &Session, args: ServeArgs) -> Result<ExitCode> {
    let secrets = secrets(args.insecure)?;
    if session.now.is_some() {
        bail!("--now cannot be used with serve: the service runs on the clock");
    }
    let catalog = session.catalog()?;
    let targets = session.targets()?;
    let mut opened: Vec<(String, bool, Box<dyn Tracker>)> = Vec::new();
    for (spec, target) in &targets {
        let tracker = session.open(spec, target, false).await?;
        let name = tracker.describe();
        if opened.iter().any(|(n, _, _)| *n == name) {
            bail!("{name} is served twice: give each tracker once");
        }
        opened.push((name, spec.is_local(), tracker));
    }
    let state_url = session.state_url();
    let store: Arc<dyn Store> = Arc::from(crate::store::open(&state_url, false).await?);
    // Remote trackers are read through the Store's cache; local ones cost nothing to read.
    let no_cache = session.fresh_reads;
    let cached: Vec<Option<CachedTracker>> = opened
        .iter()
        .map(|(_, local, t)| {
            (!(*local || no_cache)).then(|| CachedTracker::new(t.as_ref(), store.as_ref()))
        })
        .collect();
    let trackers: Vec<&dyn Tracker> = opened
        .iter()
        .zip(&cached)
        .map(|((_, _, t), c)| match c {
            Some(c) => c as &dyn Tracker,
            None => t.as_ref(),
        })
        .collect();
    let run_id = crate::engine::new_run_id();
    let prometheus = session.prometheus()?;
    // Each tracker's flags backend (its local file, its GitLab project, or the one
    // configured); one that cannot be opened stops the service with its reason.
    let flags: Vec<Option<Box<dyn crate::flags::Flags>>> = targets
        .iter()
        .map(|(spec, target)| session.flags_backend_for(spec, target))
        .collect::<Result<_>>()?;
    let engines: Vec<Engine> = trackers
        .iter()
        .zip(&flags)
        .map(|(t, flags)| {
            let mut engine = Engine::new(*t, &catalog, store.as_ref(), &session.actor);
            engine.run_id = run_id.clone();
            engine.concurrency = session.concurrency;
            engine.fresh_reads = session.fresh_reads;
            engine.metrics = prometheus
                .as_ref()
                .map(|p| p as &dyn crate::metrics::Metrics);
            engine.flags = flags.as_deref();
            engine.note_drift = true;
            engine
        })
        .collect();
    let names: Vec<String> = opened.iter().map(|(n, _, _)| n.clone()).collect();

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
        ..serve::Config::default()
    };
    shared.page_refresh_seconds = config.page_refresh_seconds;
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

/// The webhook secrets from the environment; none is an error unless `insecure`.
fn secrets(insecure: bool) -> Result<Secrets> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let secret = var("SHEPHERD_WEBHOOK_SECRET");
    let signing = var("SHEPHERD_WEBHOOK_SIGNING_TOKEN");
    let secrets = Secrets::new(secret.as_deref(), signing.as_deref(), insecure)
        .map_err(anyhow::Error::msg)?;
    if !secrets.configured() {
        if !insecure {
            bail!(
                "serve needs a webhook secret: set SHEPHERD_WEBHOOK_SECRET (GitLab's secret token, GitHub's webhook secret) or SHEPHERD_WEBHOOK_SIGNING_TOKEN (GitLab's whsec_… signing token), or pass --insecure-no-webhook-secret on a trusted network"
            );
        }
        note("WARNING: --insecure-no-webhook-secret: webhooks are accepted from ANYONE who can reach this port, without a secret or signature");
    }
    Ok(secrets)
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
