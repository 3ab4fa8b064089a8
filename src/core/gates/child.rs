//! `closed: {child}` and `completed: {child, stage}`: a child issue is closed, or its own
//! workflow reached a terminal stage (or `stage`).

use super::{no_child, outcome, Context, Gate, GateOutcome};
use crate::core::snapshot::Child;
use crate::core::workflow::schema::Text;
use crate::core::workflow::{Validator, Variable};
use crate::core::yaml::Node;
use schemars::JsonSchema;

impl Validator<'_> {
    /// `closed: {child}` / `completed: {child, stage}`.
    pub(super) fn child_gate(&mut self, kind: &str, value: &Node, _: &[Variable]) -> Option<Gate> {
        let allowed: &[&str] = if kind == "closed" {
            &["child"]
        } else {
            &["child", "stage"]
        };
        let fields = self.map(value, &format!("`{kind}`"), allowed)?;
        let mut child = None;
        let mut stage = None;
        for (k, v) in fields {
            match k.as_str() {
                Some("child") => child = self.string(v, "`child`"),
                Some("stage") => stage = self.string(v, "`stage`"),
                _ => {}
            }
        }
        let Some(child) = child else {
            self.problem(
                value.loc,
                format!("`{kind}` needs a `child` (the template of the child issue)"),
            );
            return None;
        };
        Some(if kind == "closed" {
            Gate::Closed { child }
        } else {
            Gate::Completed { child, stage }
        })
    }
}

/// What `closed` asks, in a line.
pub(super) fn describe_closed(child: &str) -> String {
    format!("the {child} issue is closed")
}

/// What `completed` asks, in a line.
pub(super) fn describe_completed(child: &str, stage: Option<&str>) -> String {
    match stage {
        None => format!("the {child} issue's workflow is complete"),
        Some(s) => format!("the {child} issue's workflow reached {s}"),
    }
}

/// `closed`: the newest child of template `child` is closed.
pub(super) fn closed(child: &str, cx: &Context) -> GateOutcome {
    match cx.snapshot.child(child) {
        Some(c) if !c.issue.open => outcome(true, format!("#{} is closed", c.issue.number)),
        Some(c) => outcome(false, format!("#{} is open", c.issue.number)),
        None => no_child(child),
    }
}

/// `completed`: the newest child of template `child` reached a terminal stage (or
/// `stage`).
pub(super) fn completed(child: &str, stage: Option<&str>, cx: &Context) -> GateOutcome {
    match cx.snapshot.child(child) {
        Some(c) => reached(c, stage),
        None => no_child(child),
    }
}

fn reached(child: &Child, stage: Option<&str>) -> GateOutcome {
    let n = child.issue.number;
    match (&child.stage, stage) {
        (None, _) => outcome(false, format!("#{n} has no stage of its workflow")),
        (Some(s), Some(want)) if s.id == want => outcome(true, format!("#{n} reached {want}")),
        (Some(s), Some(want)) if s.terminal => {
            outcome(false, format!("#{n} ended in {} instead of {want}", s.id))
        }
        (Some(s), None) if s.terminal => outcome(true, format!("#{n} completed ({})", s.id)),
        (Some(s), _) => outcome(false, format!("#{n} is in stage {}", s.id)),
    }
}

/// The gate's shape in a workflow file, for `shepherd schema`.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
#[schemars(rename = "Closed")]
pub(crate) struct RawClosed {
    /// The child issue's template
    child: Text,
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
#[schemars(rename = "Completed")]
pub(crate) struct RawCompleted {
    /// The child issue's template
    child: Text,
    /// A stage of the child's workflow that counts as done
    #[serde(default)]
    stage: Option<Text>,
}
