//! Whole-workflow checks, made once every stage has been read: edge targets, stages that
//! cannot be reached or have no way out, duplicate ids and labels, templates that exist and
//! use only declared variables, gates on children that no stage creates.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::load::{Located, Validator};
use super::{Action, ChecklistGate, Gate, Known};
use crate::core::yaml::Loc;

/// The workflow variables a Handlebars text uses: every path in `{{…}}` that is not a
/// helper, a keyword, a literal or a context value (`migration`, `parent`, `issue`, `now`).
pub fn template_variables(text: &str) -> BTreeSet<String> {
    const NOT_VARIABLES: &[&str] = &[
        "if",
        "unless",
        "each",
        "with",
        "else",
        "lookup",
        "log",
        "this",
        "urlencode",
        "upper",
        "lower",
        "kebab",
        "snake",
        "eq",
        "ne",
        "and",
        "or",
        "not",
        "len",
        "true",
        "false",
        "null",
        "now",
        "migration",
        "parent",
        "issue",
    ];
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let inner = after[..end]
            .trim_start_matches(['{', '#', '/', '^', '~', '>', '!'])
            .trim_end_matches(['}', '~']);
        if !after.starts_with('!') {
            for token in inner.split_whitespace() {
                let token = token.trim_matches(['(', ')']);
                let head = token.split(['.', '/', '[']).next().unwrap_or("");
                let is_path = head
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && head
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if is_path && !token.contains('=') && !NOT_VARIABLES.contains(&head) {
                    out.insert(head.to_string());
                }
            }
        }
        rest = &after[end + 2..];
    }
    out
}

impl Validator<'_> {
    pub(super) fn template_ref(
        &mut self,
        name: &str,
        loc: Loc,
        declared: &BTreeSet<String>,
        known: &Known,
        what: &str,
    ) {
        match known.templates.get(name) {
            None => self.problem(
                loc,
                format!(
                    "{what} `{name}` does not exist (templates: {})",
                    known
                        .templates
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            Some(used) => {
                for var in used.difference(declared) {
                    self.problem(loc, format!("template `{name}` uses variable `{var}`, which the workflow does not declare"));
                }
            }
        }
    }

    pub(super) fn check_graph(
        &mut self,
        stages: &[Located],
        declared: &BTreeSet<String>,
        known: &Known,
    ) {
        let mut ids = BTreeMap::new();
        let mut labels = BTreeMap::new();
        for s in stages {
            if ids.insert(s.stage.id.clone(), s.id_loc).is_some() {
                self.problem(s.id_loc, format!("duplicate stage id `{}`", s.stage.id));
            }
            if !s.stage.label.is_empty()
                && labels.insert(s.stage.label.clone(), s.label_loc).is_some()
            {
                self.problem(
                    s.label_loc,
                    format!("duplicate stage label `{}`", s.stage.label),
                );
            }
        }
        let created: BTreeSet<&str> = stages
            .iter()
            .flat_map(|s| s.creates.iter().map(|(t, _, _)| t.as_str()))
            .collect();
        for s in stages {
            for (to, loc) in &s.edges {
                if !ids.contains_key(to) {
                    self.problem(
                        *loc,
                        format!(
                            "stage `{}` leads to `{to}`, which is no stage of this workflow",
                            s.stage.id
                        ),
                    );
                }
            }
            if !s.stage.terminal && s.edges.is_empty() {
                self.problem(s.id_loc, format!("stage `{}` is not terminal and has no way out (add `next`, `exits` or `terminal: true`)", s.stage.id));
            }
            if s.stage.terminal && !s.stage.next.is_empty() {
                self.problem(
                    s.id_loc,
                    format!("stage `{}` is terminal but has a `next`", s.stage.id),
                );
            }
            for (template, workflow, loc) in &s.creates {
                self.template_ref(template, *loc, declared, known, "the child template");
                if let Some(w) = workflow {
                    if !known.workflows.contains(w) {
                        self.problem(*loc, format!("child workflow `{w}` does not exist"));
                    }
                }
            }
            for action in &s.stage.on_enter {
                if let Action::Comment(text) = action {
                    for var in template_variables(text).difference(declared) {
                        self.problem(s.id_loc, format!("a comment of stage `{}` uses variable `{var}`, which the workflow does not declare", s.stage.id));
                    }
                }
            }
            let gates = s.stage.gates.iter().chain(
                s.stage
                    .next
                    .iter()
                    .chain(&s.stage.exits)
                    .flat_map(|e| &e.when),
            );
            let mut missing = BTreeSet::new();
            for gate in gates {
                gate.visit(&mut |g| {
                    let child = match g {
                        Gate::Checklist(ChecklistGate { child: Some(c), .. })
                        | Gate::Label { child: Some(c), .. }
                        | Gate::Closed { child: c }
                        | Gate::Completed { child: c, .. } => c,
                        _ => return,
                    };
                    if !created.contains(child.as_str()) {
                        missing.insert(child.clone());
                    }
                });
            }
            for child in missing {
                self.problem(s.id_loc, format!("stage `{}` has a gate on child `{child}`, but no stage creates a `{child}` issue", s.stage.id));
            }
        }
        // Reachability from the first stage.
        let Some(first) = stages.first() else { return };
        let mut seen = BTreeSet::from([first.stage.id.as_str()]);
        let mut queue = VecDeque::from([first]);
        while let Some(s) = queue.pop_front() {
            for (to, _) in &s.edges {
                if seen.insert(to.as_str()) {
                    if let Some(next) = stages.iter().find(|x| &x.stage.id == to) {
                        queue.push_back(next);
                    }
                }
            }
        }
        for s in stages {
            if !seen.contains(s.stage.id.as_str()) {
                self.problem(
                    s.id_loc,
                    format!(
                        "stage `{}` is unreachable: no path from `{}` leads to it",
                        s.stage.id, first.stage.id
                    ),
                );
            }
        }
    }
}
