//! Whole-workflow checks, made once every stage has been read: edge targets, stages that
//! cannot be reached or have no way out, duplicate ids and labels, templates that exist and
//! use only declared variables, gates on children that no stage creates.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::load::{Located, Validator};
use super::{Action, ChecklistGate, Gate, Known, Problem, Workflow};
use crate::core::yaml::Loc;

/// The most issues one transition may open: the stage's own `create_issue`s and those the
/// children's workflows open on entering their first stage.
pub const MAX_CHILDREN: usize = 20;

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

/// The context values whose fields come from people: an issue's title.
const CONTEXT_ISSUES: &[&str] = &["migration", "parent", "issue"];

/// The workflow variables a Handlebars text uses: every path in `{{…}}` that is not a
/// helper, a keyword, a literal or a context value (`migration`, `parent`, `issue`, `now`).
pub fn template_variables(text: &str) -> BTreeSet<String> {
    expressions(text)
        .flat_map(|e| paths(e.inner))
        .filter(|(head, _)| !NOT_VARIABLES.contains(head))
        .map(|(head, _)| head.to_string())
        .collect()
}

/// The untrusted values a Handlebars text prints raw, without `neutralize`: a variable or an
/// issue title in `{{{…}}}` or `{{&…}}`. Each with the byte offset of its `{{`. Raw output of
/// shepherd's own values (`{{{migration.url}}}`, `{{{now}}}`) stays allowed.
pub fn raw_variable_uses(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for e in expressions(text).filter(|e| e.raw) {
        for (head, path) in paths(e.inner) {
            let title = CONTEXT_ISSUES.contains(&head) && path.ends_with(".title");
            if title || !NOT_VARIABLES.contains(&head) {
                out.push((e.offset, path.to_string()));
            }
        }
    }
    out
}

/// The problem of a raw use of `what` (a variable or a title).
pub fn raw_use_message(what: &str) -> String {
    format!(
        "`{what}` is printed raw (`{{{{{{…}}}}}}` or `{{{{&…}}}}`), without the escaping that keeps \
         values on one line and out of quick actions and HTML comments; write `{{{{{what}}}}}`"
    )
}

/// One `{{…}}` of a template: where it starts, whether it prints raw, and what is inside.
struct Expression<'t> {
    offset: usize,
    raw: bool,
    inner: &'t str,
}

fn expressions(text: &str) -> impl Iterator<Item = Expression<'_>> {
    let mut pos = 0;
    std::iter::from_fn(move || loop {
        let start = pos + text.get(pos..)?.find("{{")?;
        let after = &text[start + 2..];
        let end = after.find("}}")?;
        pos = start + 2 + end + 2;
        let head = after.trim_start_matches('~');
        if head.starts_with('!') {
            continue;
        }
        let raw = head.starts_with('{') || head.starts_with('&');
        let inner = after[..end]
            .trim_start_matches(['{', '#', '/', '^', '~', '>', '!', '&'])
            .trim_end_matches(['}', '~']);
        return Some(Expression {
            offset: start,
            raw,
            inner,
        });
    })
}

/// The paths an expression names, each as (its first segment, the whole path).
fn paths(inner: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
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
        if is_path && !token.contains('=') {
            out.push((head, token));
        }
    }
    out
}

/// Checks what only the whole catalogue shows: workflows whose `create_issue`s start each
/// other (or themselves) in a cycle, and transitions that would open more than
/// `MAX_CHILDREN` issues, counting those the children's workflows open on entering their
/// first stage. `files` maps each workflow to the file it came from.
pub fn check_children(
    workflows: &BTreeMap<String, Workflow>,
    files: &BTreeMap<String, String>,
) -> Vec<Problem> {
    let problem = |workflow: &str, loc: Loc, message: String| Problem {
        file: files.get(workflow).cloned().unwrap_or_default(),
        loc,
        message,
    };
    let cycles = cycles(workflows);
    if !cycles.is_empty() {
        return cycles
            .into_iter()
            .map(|(path, loc)| {
                problem(
                    &path[0],
                    loc,
                    format!(
                        "workflows start each other in a cycle: {} (a `create_issue` with a \
                         `workflow` starts that workflow on a new issue)",
                        path.join(" → ")
                    ),
                )
            })
            .collect();
    }
    let mut memo = BTreeMap::new();
    let mut out = Vec::new();
    for w in workflows.values() {
        for stage in &w.stages {
            let opened = opened_on_entry(workflows, w, &stage.id, &mut memo);
            if opened > MAX_CHILDREN {
                let Some(site) = w.create_sites.iter().find(|c| c.stage == stage.id) else {
                    continue;
                };
                out.push(problem(
                    &w.name,
                    site.loc,
                    format!(
                        "entering stage `{}` opens {opened} issues (with those its children's \
                         workflows open on their first stage); at most {MAX_CHILDREN} may open in \
                         one transition",
                        stage.id
                    ),
                ));
            }
        }
    }
    out
}

/// One cycle per group of workflows that start each other: the path (first workflow again
/// at the end) and the place of the `create_issue` that leaves the first one.
fn cycles(workflows: &BTreeMap<String, Workflow>) -> Vec<(Vec<String>, Loc)> {
    fn visit<'w>(
        name: &'w str,
        workflows: &'w BTreeMap<String, Workflow>,
        stack: &mut Vec<(&'w str, Loc)>,
        done: &mut BTreeSet<&'w str>,
        found: &mut Vec<(Vec<String>, Loc)>,
    ) {
        let Some(w) = workflows.get(name) else { return };
        for site in &w.create_sites {
            let Some(child) = site.workflow.as_deref() else {
                continue;
            };
            stack.push((name, site.loc));
            if let Some(i) = stack.iter().position(|(n, _)| *n == child) {
                let mut path: Vec<String> = stack[i..].iter().map(|(n, _)| n.to_string()).collect();
                path.push(child.to_string());
                found.push((path, stack[i].1));
            } else if !done.contains(child) && workflows.contains_key(child) {
                visit(child, workflows, stack, done, found);
            }
            stack.pop();
        }
        done.insert(name);
    }
    let mut done = BTreeSet::new();
    let mut found = Vec::new();
    for name in workflows.keys() {
        if !done.contains(name.as_str()) {
            visit(name, workflows, &mut Vec::new(), &mut done, &mut found);
        }
    }
    // The same cycle seen from two of its workflows is reported once.
    let mut seen = BTreeSet::new();
    found.retain(|(path, _)| {
        let mut members: Vec<&String> = path[1..].iter().collect();
        members.sort();
        seen.insert(members.into_iter().cloned().collect::<Vec<_>>())
    });
    found
}

/// How many issues entering `stage` of `w` opens, children's first stages included. Called
/// only on a catalogue without cycles; the sum saturates rather than overflows.
fn opened_on_entry(
    workflows: &BTreeMap<String, Workflow>,
    w: &Workflow,
    stage: &str,
    memo: &mut BTreeMap<(String, String), usize>,
) -> usize {
    let key = (w.name.clone(), stage.to_string());
    if let Some(n) = memo.get(&key) {
        return *n;
    }
    let mut total: usize = 0;
    for site in w.create_sites.iter().filter(|c| c.stage == stage) {
        let grandchildren = match site.workflow.as_deref().and_then(|c| workflows.get(c)) {
            Some(child) => {
                let first = child.first_stage().id.clone();
                opened_on_entry(workflows, child, &first, memo)
            }
            None => 0,
        };
        total = total.saturating_add(1).saturating_add(grandchildren);
    }
    memo.insert(key, total);
    total
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

/// Across the catalogue: every `after` gate names a workflow there, one of its stages, and
/// only variables that workflow declares in `where`.
pub fn check_after(
    workflows: &BTreeMap<String, Workflow>,
    files: &BTreeMap<String, String>,
) -> Vec<Problem> {
    let mut out = Vec::new();
    for w in workflows.values() {
        for site in &w.after_sites {
            let g = &site.gate;
            let mut problem = |loc: Loc, message: String| {
                out.push(Problem {
                    file: files.get(&w.name).cloned().unwrap_or_default(),
                    loc,
                    message,
                })
            };
            let Some(other) = workflows.get(&g.workflow) else {
                let known: Vec<&str> = workflows.keys().map(String::as_str).collect();
                problem(
                    site.workflow_loc,
                    format!(
                        "`after` names workflow `{}`, which is not in the catalogue ({})",
                        g.workflow,
                        known.join(", ")
                    ),
                );
                continue;
            };
            if other.stage(&g.stage).is_none() {
                let stages: Vec<&str> = other.stages.iter().map(|s| s.id.as_str()).collect();
                problem(
                    site.stage_loc,
                    format!(
                        "`after` names stage `{}`, which workflow `{}` does not have ({})",
                        g.stage,
                        g.workflow,
                        stages.join(", ")
                    ),
                );
            }
            for (name, loc) in &site.where_locs {
                if !other.variables.iter().any(|v| &v.name == name) {
                    problem(
                        *loc,
                        format!(
                        "`after` matches variable `{name}`, which workflow `{}` does not declare",
                        g.workflow
                    ),
                    );
                }
            }
        }
    }
    out
}
