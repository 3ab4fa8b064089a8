//! Notifications (DESIGN §12): `[[notify]]` sinks — Slack or Mattermost incoming webhooks,
//! CloudEvents receivers — told of transitions, rollbacks, pauses, resumes, failures and
//! comment commands.
//!
//! Record, then send (STYLE 16): the engine puts each event into the Store's outbox in the
//! same step as what it reports (`hooks`: after a transition's audit comment is claimed and
//! before its label move; after a pause's comment and before its label; when a failure
//! spell begins), keyed by a stable id, so a rerun that finishes the same transition puts
//! nothing new. Whoever holds the `outbox` lease — the end of every CLI command that
//! writes, and a task beside `serve`'s workers — sends what is due (`send`), records each
//! sink that answered 2xx, and puts a failed event off with backoff on the wall clock.
//! Nothing reported is lost across kill -9; a duplicate can only follow a crash between a
//! send and its record.
//!
//! - `config`: `[[notify]]` raw and resolved (`Sink`: the URL a secret, never shown).
//! - `event`: `Event`, `EventKind`, stable ids.
//! - `format`: the Slack message and the CloudEvent of an event.
//! - `send`: the sender (`Notifier::flush`, `Notifier::run`, `Notifier::test`).
//! - `hooks`: the engine's side (`Engine::notify`, the one door for producers).

pub mod config;
pub mod event;
pub mod format;
mod hooks;
pub mod send;

use std::time::Duration;

pub use config::{Format, RawSink, Sink};
pub use event::{Event, EventKind};
pub use send::{Answer, Flushed};

/// The sinks and how they are sent to, decided at the edge (`shepherd.toml`, the
/// environment) and handed to the engine.
pub struct Notifier {
    pub sinks: Vec<Sink>,
    client: reqwest::Client,
    /// Backoff of an event whose send failed: from `retry_min` doubling to `retry_max`.
    pub retry_min: Duration,
    pub retry_max: Duration,
}

/// How a `Notifier` sends.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Setting up a connection.
    pub connect_timeout: Duration,
    /// One whole request.
    pub timeout: Duration,
    /// The first retry's delay (`SHEPHERD_NOTIFY_RETRY_MS` in tests; 1 min by default).
    pub retry_min: Duration,
    /// The longest delay between tries (1 h).
    pub retry_max: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(10),
            retry_min: Duration::from_secs(60),
            retry_max: Duration::from_secs(3600),
        }
    }
}

impl Notifier {
    /// A notifier for `sinks`; `None` when there are none (nothing is then enqueued or sent).
    pub fn new(sinks: Vec<Sink>, timing: Timing) -> Result<Option<Notifier>, String> {
        if sinks.is_empty() {
            return Ok(None);
        }
        // A new connection for every send: sends are few, and a kept connection that the
        // receiver has closed meanwhile would fail a send that never reached it.
        let client = crate::http::service::builder(timing.connect_timeout)
            .timeout(timing.timeout)
            .pool_max_idle_per_host(0)
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        Ok(Some(Notifier {
            sinks,
            client,
            retry_min: timing.retry_min,
            retry_max: timing.retry_max,
        }))
    }

    /// Whether some sink wants an event of `kind` about a migration of `workflow`.
    pub fn wanted(&self, kind: EventKind, workflow: Option<&str>) -> bool {
        self.sinks.iter().any(|s| s.wants(kind, workflow))
    }
}
