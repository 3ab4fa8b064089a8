//! `[[notify]]` at the edge: the sinks resolved from `shepherd.toml` and the environment
//! (an `env:NAME` URL, `SHEPHERD_NOTIFY_RETRY_MS` for tests' short backoff) into the
//! `Notifier` the engine and `serve` get; `shepherd notify test`; and the flush at the end
//! of a command that records events.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Result};
use chrono::Utc;
use serde::Serialize;

use super::args::NotifyAction;
use super::config::Session;
use super::output::{self, Format};
use crate::engine::Engine;
use crate::notify::{Answer, Event, EventKind, Notifier, Timing};

/// How long the flush at the end of a command waits for another process's outbox lease
/// before leaving the sends to it.
const FLUSH_WAIT: Duration = Duration::from_secs(5);

/// The notifier `shepherd.toml` configures; `None` without `[[notify]]`.
pub(super) fn notifier(session: &Session) -> Result<Option<Notifier>> {
    let raw = &session.config.notify;
    if raw.is_empty() {
        return Ok(None);
    }
    let sinks = crate::notify::config::resolve(raw, |name| std::env::var(name).ok())
        .map_err(anyhow::Error::msg)?;
    let defaults = Timing::default();
    let retry_min = std::env::var("SHEPHERD_NOTIFY_RETRY_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(defaults.retry_min, Duration::from_millis);
    // A sink gets at most `--timeout`, and never more than the default (10 s): the end of
    // a command waits for it.
    let timing = Timing {
        timeout: session.timeout.min(defaults.timeout),
        retry_min,
        ..defaults
    };
    Notifier::new(sinks, timing).map_err(anyhow::Error::msg)
}

/// Sends what the outbox holds at the end of a command; a failure is a warning, not the
/// command's (the events stay in the outbox for the next run).
pub(super) async fn flush(engine: &Engine<'_>) {
    let Some(notifier) = engine.notify else {
        return;
    };
    match notifier.flush(engine, FLUSH_WAIT).await {
        Ok(f) if f.failed > 0 => output::note(&format!(
            "warning: {} notification send(s) failed; they are tried again later",
            f.failed
        )),
        Ok(_) => {}
        Err(e) => output::note(&format!("warning: sending notifications: {e:#}")),
    }
}

/// What `notify test` prints.
#[derive(Serialize)]
struct Tested {
    id: String,
    sinks: Vec<Answer>,
}

/// `shepherd notify test`: one test event to each sink; what each answered. Exit 1 when
/// one did not take it.
pub(super) async fn notify(session: &Session, action: NotifyAction) -> Result<ExitCode> {
    let NotifyAction::Test = action;
    let format = session.format(&[Format::Text, Format::Json])?;
    let Some(notifier) = notifier(session)? else {
        bail!("no [[notify]] sink in shepherd.toml: add one (see README, \"Notifications\")");
    };
    let (spec, _) = session.one_target()?;
    let tracker = spec.to_string();
    let at = Utc::now();
    let what = crate::engine::new_run_id("test");
    let event = Event {
        id: Event::id_for(&tracker, 0, EventKind::Test, &what),
        kind: EventKind::Test,
        tracker,
        number: 0,
        workflow: None,
        from: None,
        to: None,
        by: session.actor.clone(),
        reason: Some("a test of the notification sinks".into()),
        at,
        status: serde_json::json!({}),
    };
    let answers = notifier.test(&event).await;
    let failed = answers.iter().filter(|a| !a.ok).count();
    let tested = Tested {
        id: event.id.clone(),
        sinks: answers,
    };
    output::print(format, &tested, || {
        let mut text = format!("test event {}\n", tested.id);
        for a in &tested.sinks {
            let said = match (a.status, &a.error) {
                (Some(code), None) => format!("{code}, taken"),
                (_, Some(error)) => format!("failed: {error}"),
                (None, None) => "no answer".to_string(),
            };
            text.push_str(&format!("{} ({}): {said}\n", a.sink, a.format));
        }
        text.trim_end().to_string()
    })?;
    if failed > 0 {
        output::note(&format!(
            "error: {failed} of {} sinks did not take the test event",
            tested.sinks.len()
        ));
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
