//! `label: L` / `no_label: L` (or `{name, child}`): the label is (not) on the tracking
//! issue or a child. On the tracking issue, a label set before the last rollback is no
//! evidence of this stay.

use chrono::{DateTime, Utc};

use super::{no_child, outcome, this_attempt, Context, Gate, GateOutcome};
use crate::core::workflow::schema::Text;
use crate::core::workflow::{Validator, Variable};
use crate::core::yaml::{Node, NodeKind};
use schemars::JsonSchema;

impl Validator<'_> {
    /// `label: L` / `no_label: L`, or `{name: L, child: T}`.
    pub(super) fn label_gate(&mut self, kind: &str, value: &Node, _: &[Variable]) -> Option<Gate> {
        let present = kind == "label";
        let (name, child) = match &value.kind {
            NodeKind::Map(_) => {
                let fields = self.map(value, &format!("`{kind}`"), &["name", "child"])?;
                let mut name = None;
                let mut child = None;
                for (k, v) in fields {
                    match k.as_str() {
                        Some("name") => name = self.label(v, "`name`"),
                        Some("child") => child = self.string(v, "`child`"),
                        _ => {}
                    }
                }
                let Some(name) = name else {
                    self.problem(value.loc, format!("`{kind}` needs a `name`"));
                    return None;
                };
                (name, child)
            }
            _ => (self.label(value, &format!("`{kind}`"))?, None),
        };
        Some(Gate::Label {
            name,
            child,
            present,
        })
    }
}

/// What the gate asks, in a line.
pub(super) fn describe(name: &str, child: &Option<String>, present: bool) -> String {
    let is = if present { "is" } else { "is not" };
    format!("label ~\"{name}\" {is} set{}", super::of_child(child))
}

/// `label` / `no_label`: on the tracking issue, a label set before the last rollback does
/// not count for this stay.
pub(super) fn evaluate(
    name: &str,
    child: Option<&str>,
    present: bool,
    cx: &Context,
) -> GateOutcome {
    let (labels, whose) = match child {
        None => (cx.labels.to_vec(), String::new()),
        Some(t) => match cx.snapshot.child(t) {
            Some(c) => (c.issue.labels.clone(), format!(" on #{}", c.issue.number)),
            None => return no_child(t),
        },
    };
    let is_set = labels.iter().any(|l| l == name);
    let state = if is_set { "is set" } else { "is not set" };
    if is_set && present && child.is_none() {
        if let Some(since) = set_before(name, cx) {
            return outcome(
                false,
                format!(
                    "~\"{name}\" was set before the rollback of {} (or in its very second): set it again to count",
                    since.format("%Y-%m-%d %H:%M UTC")
                ),
            );
        }
    }
    outcome(is_set == present, format!("~\"{name}\" {state}{whose}"))
}

/// When the migration was rolled back, if label `name` (on the tracking issue) was last
/// added before that: it is no evidence of the current attempt. Without the label
/// history the label is taken as set since (an upper bound, read before any move).
fn set_before(name: &str, cx: &Context) -> Option<DateTime<Utc>> {
    let since = cx.snapshot.evidence_since()?;
    if cx.snapshot.history_unread {
        return None;
    }
    let added_since = this_attempt(&cx.snapshot.label_events, Some(since))
        .iter()
        .any(|e| e.label == name && e.added);
    (!added_since).then_some(since)
}

/// The gate's shape in a workflow file, for `shepherd schema`.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
#[schemars(rename = "LabelRef")]
pub(crate) enum Raw {
    Name(Text),
    On(RawOn),
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
#[schemars(rename = "LabelOn")]
pub(crate) struct RawOn {
    name: Text,
    /// The child issue's template
    #[serde(default)]
    child: Option<Text>,
}
