//! What a notification says: one `Event` per thing that happened to a migration, with one
//! stable id — the same at every sink and on every retry, so a receiver can drop a repeat.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The kinds of event, as `events = [...]` names them and the CloudEvents `type` carries
/// them (`dev.shepherd.migration.<kind>.v1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A move forward (or the start, from no stage).
    Transition,
    /// A move back (`rollback`, or a rollback exit).
    Rollback,
    Paused,
    Resumed,
    /// A migration's first failure of a spell of failures.
    Failing,
    /// A stay longer than its stage allows (no producer yet).
    Overdue,
    /// A comment command was acted on.
    Command,
    /// `shepherd notify test`: sent to every sink, never configured.
    #[serde(skip_deserializing)]
    Test,
}

impl EventKind {
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Transition => "transition",
            EventKind::Rollback => "rollback",
            EventKind::Paused => "paused",
            EventKind::Resumed => "resumed",
            EventKind::Failing => "failing",
            EventKind::Overdue => "overdue",
            EventKind::Command => "command",
            EventKind::Test => "test",
        }
    }
}

/// One event about one migration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Stable: `{tracker}/{ref}/{kind}/{what}` (`what` is the transition's sequence
    /// number, the pause comment's id, the failure's time…).
    pub id: String,
    pub kind: EventKind,
    /// The tracker, as shepherd names it (`gitlab:group/project`, `local:PATH`).
    pub tracker: String,
    #[serde(rename = "ref")]
    pub number: u64,
    /// The migration's workflow, where the producer knows it.
    pub workflow: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// Who acted.
    pub by: String,
    pub reason: Option<String>,
    /// When it happened, by the tracker's clock.
    pub at: DateTime<Utc>,
    /// The migration's status JSON as the producer knew it without reading anything more
    /// (`ref`, `title`, `url`, `workflow`, `stage`, `label`, `paused`, …).
    pub status: serde_json::Value,
}

impl Event {
    /// The stable id of event `kind` about migration `number` of `tracker`, told apart by
    /// `what`.
    pub fn id_for(tracker: &str, number: u64, kind: EventKind, what: &str) -> String {
        format!("{tracker}/{number}/{}/{what}", kind.name())
    }

    /// One line a person reads: what happened, to which migration, by whom.
    pub fn summary(&self) -> String {
        let stage = |s: &Option<String>| s.clone().unwrap_or_else(|| "(none)".into());
        let what = match self.kind {
            EventKind::Transition if self.from.is_none() => {
                format!("started in {}", stage(&self.to))
            }
            EventKind::Transition => {
                format!("moved from {} to {}", stage(&self.from), stage(&self.to))
            }
            EventKind::Rollback => format!(
                "rolled back from {} to {}",
                stage(&self.from),
                stage(&self.to)
            ),
            EventKind::Paused => "paused".to_string(),
            EventKind::Resumed => "resumed".to_string(),
            EventKind::Failing => "is failing".to_string(),
            EventKind::Overdue => format!("is overdue in {}", stage(&self.to)),
            EventKind::Command => "got a command".to_string(),
            EventKind::Test => "test event from `shepherd notify test`".to_string(),
        };
        let workflow = self
            .workflow
            .as_deref()
            .map(|w| format!(" ({w})"))
            .unwrap_or_default();
        let reason = self
            .reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        let by = match self.kind {
            EventKind::Failing | EventKind::Overdue => String::new(),
            _ => format!(" by {}", self.by),
        };
        format!("#{}{workflow} {what}{by}{reason}", self.number)
    }
}
