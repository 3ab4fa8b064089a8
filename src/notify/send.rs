//! The sender: under the Store's `outbox` lease, each due event goes to each sink that
//! wants it and has not taken it yet; a 2xx is recorded per sink at once, and an event a
//! sink refused or did not answer is put off with backoff (the sinks that took it are not
//! sent it again). A URL never reaches a message: a sink is named by its place and format.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

use super::{format, Event, Notifier, Sink};
use crate::engine::lease::Leased;
use crate::engine::Engine;
use crate::store::OutboxEntry;

/// The Store lease under which the outbox is sent.
pub const OUTBOX_LEASE: &str = "outbox";

/// Events read from the outbox at a time, and batches per flush.
const BATCH: usize = 100;
const BATCHES: usize = 20;

/// What one flush did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Flushed {
    /// Sends that a sink took (2xx).
    pub sent: usize,
    /// Sends that failed (put off with backoff).
    pub failed: usize,
    /// Another process held the outbox lease: it sends them.
    pub busy: bool,
}

/// What one sink answered to `notify test`.
#[derive(Clone, Debug, Serialize)]
pub struct Answer {
    /// `notify #N`.
    pub sink: String,
    pub format: &'static str,
    /// The HTTP status, when one came back.
    pub status: Option<u16>,
    pub ok: bool,
    /// Why it failed, without the URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Notifier {
    /// Sends what is due now under the outbox lease (waiting for it at most `wait`); a
    /// lease another process holds is left to it.
    pub async fn flush(&self, engine: &Engine<'_>, wait: Duration) -> Result<Flushed> {
        let work = async {
            let mut done = Flushed::default();
            let mut tried: HashSet<String> = HashSet::new();
            // Sinks that failed once in this flush get nothing more in it: a sink that hangs
            // costs one timeout per flush, not one per event.
            let mut down: HashSet<String> = HashSet::new();
            for _ in 0..BATCHES {
                let due = engine.store.outbox_due(BATCH + tried.len()).await?;
                let fresh: Vec<OutboxEntry> =
                    due.into_iter().filter(|e| !tried.contains(&e.id)).collect();
                if fresh.is_empty() {
                    break;
                }
                for entry in fresh {
                    tried.insert(entry.id.clone());
                    self.deliver(engine, &entry, &mut done, &mut down).await?;
                }
            }
            Ok(done)
        };
        Ok(
            match engine
                .leased_on(OUTBOX_LEASE, "the notification outbox", wait, work)
                .await?
            {
                Leased::Done(done) => done,
                Leased::Busy(_) => Flushed {
                    busy: true,
                    ..Flushed::default()
                },
            },
        )
    }

    /// Sends the outbox every `every` until `stop` turns true (`serve`), then once more.
    pub async fn run(
        &self,
        engine: &Engine<'_>,
        every: Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            match self.flush(engine, Duration::ZERO).await {
                Ok(f) if f.failed > 0 => {
                    tracing::warn!("notifications: {} sends failed; retried later", f.failed)
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("notifications: {e:#}"),
            }
            if *stop.borrow() {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// One entry of the outbox to every sink that wants it and has not taken it.
    async fn deliver(
        &self,
        engine: &Engine<'_>,
        entry: &OutboxEntry,
        done: &mut Flushed,
        down: &mut HashSet<String>,
    ) -> Result<()> {
        let store = engine.store;
        let event: Event = match serde_json::from_str(&entry.body) {
            Ok(event) => event,
            Err(e) => {
                tracing::warn!("notification {} cannot be read ({e}); dropped", entry.id);
                store.outbox_done(&entry.id).await?;
                return Ok(());
            }
        };
        let mut errors = Vec::new();
        for sink in self.sinks.iter().filter(|s| {
            s.wants(event.kind, event.workflow.as_deref()) && !entry.sent.contains(&s.key)
        }) {
            if down.contains(&sink.key) {
                errors.push(format!("{} failed earlier in this run", sink.name()));
                continue;
            }
            match self.send(sink, &event).await {
                Ok(_) => {
                    store.outbox_sent(&entry.id, &sink.key).await?;
                    done.sent += 1;
                }
                Err(e) => {
                    tracing::info!("notification {}: {e}", entry.id);
                    errors.push(e.message);
                    down.insert(sink.key.clone());
                    done.failed += 1;
                }
            }
        }
        if errors.is_empty() {
            store.outbox_done(&entry.id).await?;
        } else {
            store
                .outbox_retry(
                    &entry.id,
                    &errors.join("; "),
                    self.retry_min,
                    self.retry_max,
                )
                .await?;
        }
        Ok(())
    }

    /// Sends a test event to every sink, each once, and says what each answered.
    pub async fn test(&self, event: &Event) -> Vec<Answer> {
        let mut answers = Vec::new();
        for sink in &self.sinks {
            let (status, error) = match self.send(sink, event).await {
                Ok(code) => (Some(code), None),
                Err(SendError { status, message }) => (status, Some(message)),
            };
            answers.push(Answer {
                sink: sink.name(),
                format: sink.format.name(),
                status,
                ok: error.is_none(),
                error,
            });
        }
        answers
    }

    /// One request: `event` to `sink`. A 2xx is its status; anything else an error that
    /// names the sink, never its URL.
    async fn send(&self, sink: &Sink, event: &Event) -> Result<u16, SendError> {
        let (content_type, body) = format::payload(sink.format, event);
        let name = format!("{} ({})", sink.name(), sink.format.name());
        let answer = self
            .client
            .post(sink.url().clone())
            .header(http::header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .map_err(|e| SendError {
                status: None,
                message: format!("{name}: {}", scrub(&describe(&e), sink)),
            })?;
        let status = answer.status().as_u16();
        if answer.status().is_success() {
            Ok(status)
        } else {
            Err(SendError {
                status: Some(status),
                message: format!("{name} answered {status}"),
            })
        }
    }
}

/// A send that did not get a 2xx.
#[derive(Debug)]
struct SendError {
    status: Option<u16>,
    message: String,
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// What went wrong with a request, without its URL.
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "no answer in time".to_string();
    }
    if e.is_connect() {
        return "cannot connect".to_string();
    }
    let mut text = "the request failed".to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `text` with the sink's URL, host and path taken out, should any cause have named them.
fn scrub(text: &str, sink: &Sink) -> String {
    let url = sink.url();
    let mut out = text.replace(url.as_str(), "***");
    for part in [url.path(), url.host_str().unwrap_or_default()] {
        if part.len() > 1 {
            out = out.replace(part, "***");
        }
    }
    out
}
