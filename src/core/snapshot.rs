//! What `core` knows of a migration: the tracking issue, its label history, the transitions
//! recorded in its audit comments, and its child issues. Adapters build these from their
//! own types; nothing here knows where the data came from.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::facts::Facts;

/// An issue as every tracker can describe it.
#[derive(Clone, Debug, PartialEq)]
pub struct IssueView {
    pub number: u64,
    pub title: String,
    /// Shared: a snapshot is cloned to plan with what-ifs, and bodies are long.
    pub body: std::sync::Arc<str>,
    pub labels: Vec<String>,
    pub open: bool,
    pub created_at: DateTime<Utc>,
    pub url: String,
    /// The body's task items, parsed once for all the gates that look.
    pub checklists: super::checklist::Memo,
}

/// One label added to or removed from an issue, by whom and when.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LabelEvent {
    pub label: String,
    pub added: bool,
    pub actor: String,
    pub at: DateTime<Utc>,
}

/// A transition recorded by an audit comment.
#[derive(Clone, Debug, PartialEq)]
pub struct TransitionRecord {
    pub seq: u64,
    pub from: Option<String>,
    pub to: String,
    pub at: DateTime<Utc>,
    pub by: String,
    pub reason: Option<String>,
    pub rollback: bool,
    /// A rollback's task items to untick.
    pub untick: Vec<super::checklist::ItemRef>,
}

/// A child issue of a migration.
#[derive(Clone, Debug, PartialEq)]
pub struct Child {
    pub issue: IssueView,
    pub template: String,
    /// The transition (sequence number) whose entry created the child.
    pub entry: Option<u64>,
    /// The child's stage in its own workflow, when it runs one.
    pub stage: Option<ChildStage>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ChildStage {
    pub id: String,
    pub terminal: bool,
}

/// Everything `plan` needs to know about one migration.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    pub issue: IssueView,
    pub vars: BTreeMap<String, String>,
    /// Label history of the tracking issue, oldest first.
    pub label_events: Vec<LabelEvent>,
    /// The label history was not read (it costs a request): the gates that need it — soak
    /// times and who approved — are taken as holding. A plan made so can only move too
    /// far, never too little, so a plan that moves nothing needs no history; one that moves
    /// is made again with it.
    pub history_unread: bool,
    /// Merge requests, releases and metric values the gates in play asked for
    /// (`core::questions`).
    pub facts: Facts,
    /// Transitions from the audit comments, by sequence number.
    pub transitions: Vec<TransitionRecord>,
    pub children: Vec<Child>,
    /// A freeze in effect and the slots of limited stages (DESIGN §13).
    pub portfolio: super::portfolio::Portfolio,
}

impl Snapshot {
    /// The newest child made from `template`.
    pub fn child(&self, template: &str) -> Option<&Child> {
        self.children
            .iter()
            .filter(|c| c.template == template)
            .max_by_key(|c| c.issue.number)
    }

    /// When the evidence of the migration's current attempt begins: the last rollback.
    /// What people did before it (an approval, a label, a merge) does not carry the
    /// migration forward again; `None` when it was never rolled back, and everything
    /// since its start counts (an approval given in an earlier stage too).
    pub fn evidence_since(&self) -> Option<DateTime<Utc>> {
        self.transitions
            .iter()
            .rev()
            .find(|t| t.rollback)
            .map(|t| t.at)
    }

    /// When the tracking issue last entered the stage with `label`: the label event, else
    /// the audit comment, else the issue's creation.
    pub fn entered_at(&self, stage_id: &str, label: &str) -> DateTime<Utc> {
        let by_event = self
            .label_events
            .iter()
            .rev()
            .find(|e| e.added && e.label == label)
            .map(|e| e.at);
        let by_transition = self
            .transitions
            .iter()
            .rev()
            .find(|t| t.to == stage_id)
            .map(|t| t.at);
        match (by_event, by_transition) {
            (Some(a), Some(b)) => a.max(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => self.issue.created_at,
        }
    }
}
