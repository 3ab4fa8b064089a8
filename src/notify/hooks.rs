//! The engine's side of notifications: `Engine::notify`, the one door through which a
//! producer puts an event into the outbox, and the events of what the engine records —
//! a transition or rollback (after its audit comment is claimed, before its label move),
//! a pause or resume (after its comment, before its label), the first failure of a spell.
//! With no `[[notify]]` configured, nothing is put and nothing is read.

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::{Event, EventKind};
use crate::core::machine::{PlannedTransition, PAUSED_LABEL};
use crate::core::marker::TransitionMarker;
use crate::core::workflow::Workflow;
use crate::engine::{Engine, Migration};
use crate::store::Failure;
use crate::tracker::Comment;

impl<'a> Engine<'a> {
    /// The same engine, putting events for `notify`'s sinks into the outbox.
    pub fn with_notify(mut self, notify: Option<&'a super::Notifier>) -> Self {
        self.notify = notify;
        self
    }

    /// Puts `event` into the outbox, unless no sink wants it (or none is configured).
    /// Idempotent on `event.id`: an event put before, sent or not, is not put again.
    /// Returns whether it is new. This is what a producer outside the engine calls (the
    /// comment commands' `command` event).
    pub async fn notify(&self, event: &Event) -> Result<bool> {
        let Some(notifier) = self.notify else {
            return Ok(false);
        };
        if !notifier.wanted(event.kind, event.workflow.as_deref()) {
            return Ok(false);
        }
        let body = serde_json::to_string(event)?;
        Ok(self.store.outbox_put(&event.id, &body).await?)
    }

    /// The event of an engine producer: `kind` about `m`, told apart by `what`.
    pub fn event(
        &self,
        kind: EventKind,
        m: &Migration,
        workflow: &Workflow,
        what: &str,
        at: DateTime<Utc>,
    ) -> Event {
        let tracker = self.tracker.describe();
        Event {
            id: Event::id_for(&tracker, m.issue.number, kind, what),
            kind,
            tracker,
            number: m.issue.number,
            workflow: Some(workflow.name.clone()),
            from: None,
            to: None,
            by: self.actor.clone(),
            reason: None,
            at,
            status: status_of(m, workflow),
        }
    }

    /// Transition `t` of `m`, recorded by its audit comment among `comments` (its marker
    /// says who made it, for a run that finishes another's).
    pub(crate) async fn notify_transition(
        &self,
        m: &Migration,
        workflow: &Workflow,
        t: &PlannedTransition,
        comments: &[Comment],
    ) -> Result<()> {
        if self.notify.is_none() {
            return Ok(());
        }
        let kind = if t.rollback {
            EventKind::Rollback
        } else {
            EventKind::Transition
        };
        let mut event = self.event(kind, m, workflow, &t.seq.to_string(), t.at);
        let marker = comments
            .iter()
            .filter_map(|c| TransitionMarker::find(&c.body))
            .find(|x| x.seq == t.seq);
        if let Some(marker) = marker {
            event.by = marker.by;
        }
        event.from = t.from.clone();
        event.to = Some(t.to.clone());
        event.reason = t.reason.clone();
        if let Some(status) = event.status.as_object_mut() {
            // The migration as the move leaves it: in the new stage; a rollback pauses it.
            let stage = workflow.stage(&t.to);
            status.insert("stage".into(), json!(t.to));
            status.insert("label".into(), json!(stage.map(|s| s.label.clone())));
            if m.issue.open && stage.is_some_and(|s| s.terminal) {
                status.insert("state".into(), json!("completed"));
            }
            if t.rollback {
                status.insert("paused".into(), json!(true));
            }
        }
        self.notify(&event).await.map(drop)
    }

    /// A pause (or resume) of `m` recorded by comment `comment`.
    pub(crate) async fn notify_pause(
        &self,
        m: &Migration,
        workflow: &Workflow,
        paused: bool,
        reason: Option<&str>,
        by: &str,
        comment: &Comment,
    ) -> Result<()> {
        if self.notify.is_none() {
            return Ok(());
        }
        let kind = if paused {
            EventKind::Paused
        } else {
            EventKind::Resumed
        };
        let mut event = self.event(
            kind,
            m,
            workflow,
            &comment.id.to_string(),
            comment.created_at,
        );
        event.reason = reason.map(str::to_string);
        event.by = by.to_string();
        if let Some(status) = event.status.as_object_mut() {
            status.insert("paused".into(), json!(paused));
        }
        self.notify(&event).await.map(drop)
    }

    /// Records a failure of migration `number` (its Store key `key`) with the engine's
    /// backoff, and, when it begins a spell of failures, the `failing` event (once per
    /// spell: its id is the spell's first failure time). `m` is the migration where the
    /// caller knows it (its workflow and status go with the event).
    pub async fn record_failing(
        &self,
        number: u64,
        m: Option<(&Migration, &Workflow)>,
        error: &str,
    ) -> Result<Failure> {
        let key = self.lease_key(number);
        let failure = self
            .store
            .record_failure(
                &key,
                error,
                crate::engine::BACKOFF_MIN,
                crate::engine::BACKOFF_MAX,
            )
            .await?;
        if failure.attempts == 1 && self.notify.is_some() {
            let what = failure.failed_at.timestamp_millis().to_string();
            let mut event = match m {
                Some((m, workflow)) => {
                    self.event(EventKind::Failing, m, workflow, &what, failure.failed_at)
                }
                None => {
                    let tracker = self.tracker.describe();
                    Event {
                        id: Event::id_for(&tracker, number, EventKind::Failing, &what),
                        kind: EventKind::Failing,
                        tracker,
                        number,
                        workflow: None,
                        from: None,
                        to: None,
                        by: self.actor.clone(),
                        reason: None,
                        at: failure.failed_at,
                        status: json!({"ref": number}),
                    }
                }
            };
            event.reason = Some(error.to_string());
            if let Some(status) = event.status.as_object_mut() {
                status.insert("failing".into(), json!(error));
            }
            self.notify(&event).await?;
        }
        Ok(failure)
    }
}

/// The status JSON of `m` as far as its issue tells without another read: the fields of
/// `status REF --format json` that need no gate evaluation.
fn status_of(m: &Migration, workflow: &Workflow) -> Value {
    let stage = workflow
        .stages
        .iter()
        .find(|s| m.issue.labels.contains(&s.label));
    let state = match (m.issue.open, stage.is_some_and(|s| s.terminal)) {
        (false, _) => "closed",
        (true, true) => "completed",
        (true, false) => "open",
    };
    json!({
        "ref": m.issue.number,
        "title": m.issue.title,
        "url": m.issue.url,
        "workflow": workflow.name,
        "stage": stage.map(|s| s.id.clone()),
        "label": stage.map(|s| s.label.clone()),
        "state": state,
        "paused": m.issue.labels.iter().any(|l| l == PAUSED_LABEL),
    })
}
