//! `checklist: {section, child, items, require}`: the task items under a heading of the
//! tracking issue (or of a child), optionally only those matching a pattern, are done — all,
//! or at least N.

use super::{no_child, outcome, Context, Gate, GateOutcome};
use crate::core::checklist;
use crate::core::workflow::schema::{OneOrMany, Text};
use crate::core::workflow::{ChecklistSite, Validator, Variable};
use crate::core::yaml::{Node, NodeKind};
use schemars::JsonSchema;

#[derive(Clone, Debug, PartialEq)]
pub struct ChecklistGate {
    pub section: Option<String>,
    pub child: Option<String>,
    pub items: Vec<String>,
    pub require: Require,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Require {
    All,
    AtLeast(usize),
}

impl Validator<'_> {
    /// `checklist: {section, child, items, require}` (all optional).
    pub(super) fn checklist_gate(&mut self, _: &str, value: &Node, _: &[Variable]) -> Option<Gate> {
        let mut gate = ChecklistGate {
            section: None,
            child: None,
            items: Vec::new(),
            require: Require::All,
        };
        let mut section_loc = value.loc;
        let mut require_loc = None;
        if !matches!(value.kind, NodeKind::Null) {
            let fields = self.map(
                value,
                "`checklist`",
                &["section", "child", "items", "require"],
            )?;
            for (k, v) in fields {
                match k.as_str() {
                    Some("section") => {
                        gate.section = self.string(v, "`section`");
                        section_loc = v.loc;
                    }
                    Some("child") => gate.child = self.string(v, "`child`"),
                    Some("items") => gate.items = self.strings(v, "an item pattern"),
                    Some("require") => match &v.kind {
                        NodeKind::Str(s) if s == "all" => gate.require = Require::All,
                        NodeKind::Int(n) if *n >= 1 => {
                            gate.require = Require::AtLeast(*n as usize);
                            require_loc = Some(v.loc);
                        }
                        _ => {
                            self.problem(v.loc, "`require` must be `all` or a number of at least 1")
                        }
                    },
                    _ => {}
                }
            }
        }
        self.checklists.push(ChecklistSite {
            gate: gate.clone(),
            section_loc,
            require_loc,
        });
        Some(Gate::Checklist(gate))
    }
}

pub(super) fn describe(c: &ChecklistGate) -> String {
    let which = match c.require {
        Require::All => "all".to_string(),
        Require::AtLeast(n) => format!("at least {n}"),
    };
    let filter = if c.items.is_empty() {
        String::new()
    } else {
        let items: Vec<String> = c.items.iter().map(|i| format!("\"{i}\"")).collect();
        format!(" matching {}", items.join(" or "))
    };
    match &c.section {
        Some(s) => format!(
            "{which} items{filter} under \"{s}\"{} are done",
            super::of_child(&c.child)
        ),
        None => format!(
            "{which} items{filter}{} are done",
            super::of_child(&c.child)
        ),
    }
}

pub(super) fn evaluate(gate: &ChecklistGate, cx: &Context) -> GateOutcome {
    let (issue, whose) = match &gate.child {
        None => (&cx.snapshot.issue, String::new()),
        Some(t) => match cx.snapshot.child(t) {
            Some(c) => (&c.issue, format!("#{}: ", c.issue.number)),
            None => return no_child(t),
        },
    };
    let items = issue.checklists.items(&issue.body, gate.section.as_deref());
    let body = &*issue.body;
    let tally = checklist::tally(&items, gate.section.as_deref(), &gate.items);
    let section = gate
        .section
        .as_deref()
        .map(|s| format!(" in *{s}*"))
        .unwrap_or_default();
    if !tally.section_found
        && gate
            .section
            .as_ref()
            .is_some_and(|s| !checklist::has_section(body, s))
    {
        return outcome(
            false,
            format!(
                "{whose}no heading contains \"{}\"",
                gate.section.as_deref().unwrap_or_default()
            ),
        );
    }
    if tally.total == 0 {
        let matching = if gate.items.is_empty() {
            String::new()
        } else {
            let patterns: Vec<String> = gate.items.iter().map(|i| format!("\"{i}\"")).collect();
            format!(" matching {}", patterns.join(" or "))
        };
        let place = match &gate.section {
            Some(s) => format!("under '{s}'"),
            None => "in the body".to_string(),
        };
        return outcome(false, format!("{whose}no task items{matching} {place}"));
    }
    let passed = match gate.require {
        Require::All => tally.done == tally.total,
        Require::AtLeast(n) => tally.done >= n,
    };
    let need = match gate.require {
        Require::All => String::new(),
        Require::AtLeast(n) => format!(", {n} needed"),
    };
    outcome(
        passed,
        format!("{whose}{}/{} items{section}{need}", tally.done, tally.total),
    )
}

/// The gate's shape in a workflow file, for `shepherd schema`.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
#[schemars(rename = "Checklist")]
pub(crate) struct Raw {
    /// A heading's text (case-insensitive, contained); none: the whole body
    #[serde(default)]
    section: Option<Text>,
    /// The template of the child issue whose checklist counts
    #[serde(default)]
    child: Option<Text>,
    /// Only the items whose text contains one of these
    #[serde(default)]
    items: Option<OneOrMany>,
    /// `all`, or at least this many items
    #[serde(default)]
    require: Option<RawRequire>,
}

#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
#[schemars(rename = "Require")]
pub(crate) enum RawRequire {
    All(AllWord),
    AtLeast(#[schemars(range(min = 1))] u64),
}

#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub(crate) enum AllWord {
    All,
}
