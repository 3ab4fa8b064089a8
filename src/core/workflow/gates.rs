//! Reading gates: each of `checklist`, `label`, `no_label`, `closed`, `completed`,
//! `min_duration`, `approval`, `any` and `all` with its own fields and checks (the gates on
//! facts outside the issues are read in `fact_gates`).

use super::load::Validator;
use super::{ChecklistGate, ChecklistSite, DurationSpec, Gate, Require, Variable};
use crate::core::duration;
use crate::core::yaml::{Node, NodeKind};

impl Validator<'_> {
    pub(super) fn gates(&mut self, node: &Node, variables: &[Variable]) -> Vec<Gate> {
        let NodeKind::Seq(items) = &node.kind else {
            self.problem(
                node.loc,
                format!("gates must be a list, found {}", node.kind_name()),
            );
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|g| self.gate(g, variables))
            .collect()
    }

    fn gate(&mut self, node: &Node, variables: &[Variable]) -> Option<Gate> {
        let NodeKind::Map(entries) = &node.kind else {
            self.problem(
                node.loc,
                format!(
                    "a gate must be a one-key mapping such as `- label: ready`, found {}",
                    node.kind_name()
                ),
            );
            return None;
        };
        if entries.len() != 1 {
            self.problem(
                node.loc,
                format!("a gate must have exactly one key, found {}", entries.len()),
            );
            return None;
        }
        let (key, value) = &entries[0];
        let Some(kind) = key.as_str() else {
            self.problem(key.loc, "a gate's key must be a string");
            return None;
        };
        let Some((_, read)) = GATE_KINDS.iter().find(|(name, _)| *name == kind) else {
            let kinds: Vec<&str> = GATE_KINDS.iter().map(|(name, _)| *name).collect();
            self.problem(
                key.loc,
                format!("unknown gate `{kind}` (gates: {})", kinds.join(", ")),
            );
            return None;
        };
        read(self, kind, value, variables)
    }

    /// `checklist: {section, child, items, require}` (all optional).
    fn checklist_gate(&mut self, _: &str, value: &Node, _: &[Variable]) -> Option<Gate> {
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

    /// `label: L` / `no_label: L`, or `{name: L, child: T}`.
    fn label_gate(&mut self, kind: &str, value: &Node, _: &[Variable]) -> Option<Gate> {
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

    /// `closed: {child}` / `completed: {child, stage}`.
    fn child_gate(&mut self, kind: &str, value: &Node, _: &[Variable]) -> Option<Gate> {
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

    /// `min_duration: 2h`, or a variable holding one (`"{{soak}}"`).
    fn min_duration_gate(&mut self, _: &str, value: &Node, variables: &[Variable]) -> Option<Gate> {
        let text = match &value.kind {
            NodeKind::Str(s) => s.trim().to_string(),
            _ => {
                self.problem(value.loc, format!("bad duration: `min_duration` must be a string such as 15m, 2h, 1d or 1w, found {}", value.kind_name()));
                return None;
            }
        };
        if let Some(var) = text.strip_prefix("{{").and_then(|t| t.strip_suffix("}}")) {
            let var = var.trim();
            let mut default = None;
            match variables.iter().find(|v| v.name == var) {
                None => self.problem(
                    value.loc,
                    format!(
                        "`min_duration` uses variable `{var}`, which the workflow does not declare"
                    ),
                ),
                Some(v) => {
                    if let Some(d) = &v.default {
                        match duration::parse(d) {
                            Ok(d) => default = Some(d),
                            Err(e) => self.problem(
                                value.loc,
                                format!("bad duration in the default of `{var}`: {e}"),
                            ),
                        }
                    }
                }
            }
            return Some(Gate::MinDuration(DurationSpec::Variable {
                name: var.to_string(),
                default,
            }));
        }
        match duration::parse(&text) {
            Ok(d) => Some(Gate::MinDuration(DurationSpec::Fixed(d))),
            Err(e) => {
                self.problem(value.loc, format!("bad duration: {e}"));
                None
            }
        }
    }

    /// `approval: {label, by, count}`.
    fn approval_gate(&mut self, _: &str, value: &Node, _: &[Variable]) -> Option<Gate> {
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

    /// `any: [gates…]` / `all: [gates…]`.
    fn combinator(&mut self, kind: &str, value: &Node, variables: &[Variable]) -> Option<Gate> {
        let gates = self.gates(value, variables);
        if gates.is_empty() && matches!(&value.kind, NodeKind::Seq(s) if s.is_empty()) {
            self.problem(value.loc, format!("`{kind}` needs at least one gate"));
        }
        Some(if kind == "any" {
            Gate::Any(gates)
        } else {
            Gate::All(gates)
        })
    }
}

/// Reads one kind of gate: the kind's name, its value, the workflow's variables.
type ReadGate = fn(&mut Validator<'_>, &str, &Node, &[Variable]) -> Option<Gate>;

/// Every gate kind, by its key in a workflow file, and how it is read.
const GATE_KINDS: &[(&str, ReadGate)] = &[
    ("checklist", |v, k, n, vars| v.checklist_gate(k, n, vars)),
    ("label", |v, k, n, vars| v.label_gate(k, n, vars)),
    ("no_label", |v, k, n, vars| v.label_gate(k, n, vars)),
    ("closed", |v, k, n, vars| v.child_gate(k, n, vars)),
    ("completed", |v, k, n, vars| v.child_gate(k, n, vars)),
    ("min_duration", |v, k, n, vars| {
        v.min_duration_gate(k, n, vars)
    }),
    ("approval", |v, k, n, vars| v.approval_gate(k, n, vars)),
    ("merge_request", |v, k, n, vars| v.fact_gate(k, n, vars)),
    ("release", |v, k, n, vars| v.fact_gate(k, n, vars)),
    ("metric", |v, k, n, vars| v.fact_gate(k, n, vars)),
    ("flag", |v, k, n, vars| v.fact_gate(k, n, vars)),
    ("any", |v, k, n, vars| v.combinator(k, n, vars)),
    ("all", |v, k, n, vars| v.combinator(k, n, vars)),
];
