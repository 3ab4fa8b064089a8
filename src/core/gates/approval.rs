//! `approval: {label, by, count}`: the label is on the tracking issue and was last added,
//! during this stay, by `count` distinct people of `by`. A label added by anyone else does
//! not approve.

use std::collections::BTreeSet;

use super::{outcome, this_attempt, Context, Gate, GateOutcome};
use crate::core::snapshot::LabelEvent;
use crate::core::workflow::schema::{OneOrMany, Text};
use crate::core::workflow::{Validator, Variable};
use crate::core::yaml::{Node, NodeKind};
use schemars::JsonSchema;

impl Validator<'_> {
    /// `approval: {label, by, count}`.
    pub(super) fn approval_gate(&mut self, _: &str, value: &Node, _: &[Variable]) -> Option<Gate> {
        let fields = self.map(value, "`approval`", &["label", "by", "count"])?;
        let mut label = None;
        let mut by = Vec::new();
        let mut count = 1;
        for (k, v) in fields {
            match k.as_str() {
                Some("label") => label = self.label(v, "`label`"),
                Some("by") => by = self.strings(v, "an approver"),
                Some("count") => match v.kind {
                    NodeKind::Int(n) if n >= 1 => count = n as usize,
                    _ => self.problem(v.loc, "`count` must be a number of at least 1"),
                },
                _ => {}
            }
        }
        let Some(label) = label else {
            self.problem(value.loc, "`approval` needs a `label`");
            return None;
        };
        if by.is_empty() {
            self.problem(
                value.loc,
                "`approval` needs `by`: the people whose label counts",
            );
        } else if count > by.len() {
            self.problem(
                value.loc,
                format!(
                    "`approval` asks for {count} approvers but `by` names {}",
                    by.len()
                ),
            );
        }
        Some(Gate::Approval { label, by, count })
    }
}

/// What the gate asks, in a line.
pub(super) fn describe(label: &str, by: &[String], count: usize) -> String {
    let who = by.join(", ");
    if count > 1 {
        format!("{count} of {who} approve with ~\"{label}\"")
    } else {
        format!("~\"{label}\" set by one of {who}")
    }
}

/// `approval`: the label was last added, during this stay, by enough of `by`; until the
/// label history is read, a label that is set holds provisionally.
pub(super) fn evaluate(label: &str, by: &[String], count: usize, cx: &Context) -> GateOutcome {
    let is_set = cx.labels.iter().any(|l| l == label);
    if cx.snapshot.history_unread && is_set {
        return outcome(
            true,
            format!("~\"{label}\" is set; who set it is checked once the other gates hold"),
        );
    }
    let since = cx.snapshot.evidence_since();
    let events = this_attempt(&cx.snapshot.label_events, since);
    let mut o = approval(label, by, count, cx.labels, events);
    if !o.passed && is_set {
        if let Some(since) = since.filter(|_| events.iter().all(|e| e.label != label)) {
            o.detail.push_str(&format!(
                "; it was set before the rollback of {} (or in its very second): set it again to count",
                since.format("%Y-%m-%d %H:%M UTC")
            ));
        }
    }
    o
}

/// `label` must be on the issue, and among the adds since it was last removed, `count`
/// distinct people of `by` must have added it.
fn approval(
    label: &str,
    by: &[String],
    count: usize,
    labels: &[String],
    events: &[LabelEvent],
) -> GateOutcome {
    let who = by.join(", ");
    if !labels.iter().any(|l| l == label) {
        return outcome(false, format!("waits for approval by {who} (~\"{label}\")"));
    }
    let since_removal = events
        .iter()
        .rposition(|e| e.label == label && !e.added)
        .map(|i| &events[i + 1..])
        .unwrap_or(events);
    let adders: BTreeSet<&str> = since_removal
        .iter()
        .filter(|e| e.label == label && e.added)
        .map(|e| e.actor.as_str())
        .collect();
    let approvers: Vec<&str> = adders
        .iter()
        .copied()
        .filter(|a| by.iter().any(|b| b == a))
        .collect();
    if approvers.len() >= count {
        return outcome(true, format!("approved by {}", approvers.join(", ")));
    }
    let others: Vec<&str> = adders
        .iter()
        .copied()
        .filter(|a| !by.iter().any(|b| b == a))
        .collect();
    let mut detail = format!("waits for approval by {who} (~\"{label}\"");
    if !approvers.is_empty() {
        detail.push_str(&format!(
            ", {}/{count} so far: {}",
            approvers.len(),
            approvers.join(", ")
        ));
    }
    detail.push(')');
    if !others.is_empty() {
        detail.push_str(&format!(
            "; set by {}, who may not approve",
            others.join(", ")
        ));
    }
    outcome(false, detail)
}

/// The gate's shape in a workflow file, for `shepherd schema`.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
#[schemars(rename = "Approval")]
pub(crate) struct Raw {
    label: Text,
    /// The people whose label counts
    by: OneOrMany,
    /// How many of them (default 1)
    #[serde(default)]
    #[schemars(range(min = 1))]
    count: Option<u64>,
}
