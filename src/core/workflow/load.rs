//! From the raw YAML tree to the model: `load` walks a workflow file's `Node`s with a
//! `Validator`, which records a `Problem` for everything wrong and keeps going, so that one
//! run reports them all. Gates and actions are read in their own modules; whole-workflow
//! checks are in `validate`.

use std::collections::BTreeSet;

use regex::Regex;

use super::{
    check_label_name, ChecklistSite, CreateSite, Edge, Known, Pacing, Problem, Stage, Tracking,
    Variable, Workflow, PACING_KEYS,
};
use crate::core::yaml::{self, Loc, Node, NodeKind};

/// Loads and validates one workflow file. `expected_name` is the file's stem, when the
/// workflow came from a file named after it.
pub fn load(
    file: &str,
    text: &str,
    expected_name: Option<&str>,
    known: &Known,
) -> Result<Workflow, Vec<Problem>> {
    let root = yaml::parse(text).map_err(|e| {
        vec![Problem {
            file: file.to_string(),
            loc: e.loc,
            message: e.message,
        }]
    })?;
    let mut v = Validator {
        file,
        problems: Vec::new(),
        checklists: Vec::new(),
        afters: Vec::new(),
    };
    let workflow = v.workflow(&root, expected_name, known);
    match workflow {
        Some(w) if v.problems.is_empty() => Ok(w),
        _ => {
            let mut problems = v.problems;
            problems.sort_by_key(|p| (p.loc.line, p.loc.column));
            Err(problems)
        }
    }
}

pub(crate) struct Validator<'a> {
    pub(crate) file: &'a str,
    pub(crate) problems: Vec<Problem>,
    /// The checklist gates read so far, checked against their templates once the
    /// tracking template is known (`sections`).
    pub(crate) checklists: Vec<ChecklistSite>,
    /// The `after` gates read so far, checked across the catalogue (`check_after`).
    pub(crate) afters: Vec<crate::core::gates::AfterSite>,
}

pub(crate) type Entries<'n> = &'n [(Node, Node)];

impl<'a> Validator<'a> {
    pub(crate) fn problem(&mut self, loc: Loc, message: impl Into<String>) {
        self.problems.push(Problem {
            file: self.file.to_string(),
            loc,
            message: message.into(),
        });
    }

    /// The entries of a mapping whose keys are all among `allowed`; unknown keys are reported.
    pub(crate) fn map<'n>(
        &mut self,
        node: &'n Node,
        what: &str,
        allowed: &[&str],
    ) -> Option<Entries<'n>> {
        let NodeKind::Map(entries) = &node.kind else {
            self.problem(
                node.loc,
                format!("{what} must be a mapping, found {}", node.kind_name()),
            );
            return None;
        };
        for (key, _) in entries {
            match key.as_str() {
                Some(k) if allowed.contains(&k) => {}
                Some(k) => self.problem(
                    key.loc,
                    format!(
                        "unknown key `{k}` in {what} (expected one of: {})",
                        allowed.join(", ")
                    ),
                ),
                None => self.problem(key.loc, format!("keys in {what} must be strings")),
            }
        }
        Some(entries)
    }

    pub(crate) fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        match &node.kind {
            NodeKind::Str(s) if !s.trim().is_empty() => Some(s.clone()),
            NodeKind::Str(_) => {
                self.problem(node.loc, format!("{what} must not be empty"));
                None
            }
            NodeKind::Int(_) | NodeKind::Float(_) | NodeKind::Bool(_) => node.scalar_text(),
            _ => {
                self.problem(
                    node.loc,
                    format!("{what} must be a string, found {}", node.kind_name()),
                );
                None
            }
        }
    }

    pub(crate) fn strings(&mut self, node: &Node, what: &str) -> Vec<String> {
        match &node.kind {
            NodeKind::Seq(items) => items.iter().filter_map(|i| self.string(i, what)).collect(),
            _ => self.string(node, what).into_iter().collect(),
        }
    }

    /// A label name: a string that `check_label_name` accepts (a bad one is reported and
    /// kept, so that the rest of the stage is still checked).
    pub(crate) fn label(&mut self, node: &Node, what: &str) -> Option<String> {
        let name = self.string(node, what)?;
        if let Err(e) = check_label_name(&name) {
            self.problem(node.loc, e);
        }
        Some(name)
    }

    /// One label or a list of them.
    pub(crate) fn labels(&mut self, node: &Node, what: &str) -> Vec<String> {
        match &node.kind {
            NodeKind::Seq(items) => items.iter().filter_map(|i| self.label(i, what)).collect(),
            _ => self.label(node, what).into_iter().collect(),
        }
    }

    pub(crate) fn bool(&mut self, node: &Node, what: &str) -> bool {
        match node.kind {
            NodeKind::Bool(b) => b,
            _ => {
                self.problem(
                    node.loc,
                    format!("{what} must be true or false, found {}", node.kind_name()),
                );
                false
            }
        }
    }

    fn workflow(
        &mut self,
        root: &Node,
        expected_name: Option<&str>,
        known: &Known,
    ) -> Option<Workflow> {
        let entries = self.map(
            root,
            "the workflow",
            &["name", "description", "variables", "tracking", "stages"],
        )?;
        let mut name = None;
        let mut description = String::new();
        let mut variables = Vec::new();
        let mut tracking = None;
        let mut stages = Vec::new();
        let mut stages_node = None;
        for (key, value) in entries {
            match key.as_str() {
                Some("name") => {
                    name = self.string(value, "`name`");
                    if let (Some(n), Some(expected)) = (&name, expected_name) {
                        if n != expected {
                            self.problem(
                                value.loc,
                                format!(
                                    "the workflow is named `{n}` but its file is `{expected}.yaml`"
                                ),
                            );
                        }
                    }
                }
                Some("description") => {
                    description = self.string(value, "`description`").unwrap_or_default()
                }
                Some("variables") => variables = self.variables(value),
                Some("tracking") => tracking = self.tracking(value),
                Some("stages") => {
                    stages_node = Some(value);
                    stages = self.stages(value, &variables);
                }
                _ => {}
            }
        }
        if name.is_none() && !entries.iter().any(|(k, _)| k.as_str() == Some("name")) {
            self.problem(root.loc, "the workflow has no `name`");
        }
        if tracking.is_none() && !entries.iter().any(|(k, _)| k.as_str() == Some("tracking")) {
            self.problem(
                root.loc,
                "the workflow has no `tracking` (template and labels of the tracking issue)",
            );
        }
        match stages_node {
            None => self.problem(root.loc, "the workflow has no `stages`"),
            Some(node)
                if stages.is_empty() && matches!(&node.kind, NodeKind::Seq(s) if s.is_empty()) =>
            {
                self.problem(node.loc, "`stages` is empty")
            }
            _ => {}
        }
        let declared: BTreeSet<String> = variables
            .iter()
            .map(|v: &Variable| v.name.clone())
            .collect();
        if let Some((t, loc)) = &tracking {
            self.template_ref(&t.template, *loc, &declared, known, "the tracking template");
        }
        self.check_graph(&stages, &declared, known);
        self.check_sections(tracking.as_ref().map(|(t, _)| t.template.as_str()), known);
        let (tracking, _) = tracking?;
        let create_sites = stages
            .iter()
            .flat_map(|s| {
                s.creates
                    .iter()
                    .map(|(template, workflow, loc)| CreateSite {
                        stage: s.stage.id.clone(),
                        template: template.clone(),
                        workflow: workflow.clone(),
                        loc: *loc,
                    })
            })
            .collect();
        let stages: Vec<Stage> = stages.into_iter().map(|s| s.stage).collect();
        if stages.is_empty() {
            return None;
        }
        Some(Workflow {
            name: name?,
            description,
            variables,
            tracking,
            stages,
            create_sites,
            checklist_sites: std::mem::take(&mut self.checklists),
            after_sites: std::mem::take(&mut self.afters),
        })
    }

    fn variables(&mut self, node: &Node) -> Vec<Variable> {
        let NodeKind::Map(entries) = &node.kind else {
            self.problem(
                node.loc,
                format!(
                    "`variables` must be a mapping of name to settings, found {}",
                    node.kind_name()
                ),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (key, value) in entries {
            let Some(name) = self.string(key, "a variable name") else {
                continue;
            };
            if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                self.problem(
                    key.loc,
                    format!("variable name `{name}` may hold only letters, digits and `_`"),
                );
            }
            let mut var = Variable {
                name: name.clone(),
                required: false,
                default: None,
                pattern: None,
                description: String::new(),
            };
            if !matches!(value.kind, NodeKind::Null) {
                let what = format!("variable `{name}`");
                if let Some(fields) = self.map(
                    value,
                    &what,
                    &["required", "default", "pattern", "description"],
                ) {
                    for (k, v) in fields {
                        match k.as_str() {
                            Some("required") => var.required = self.bool(v, "`required`"),
                            Some("default") => {
                                var.default = v.scalar_text().or_else(|| {
                                    self.problem(
                                        v.loc,
                                        format!("the default of `{name}` must be a scalar"),
                                    );
                                    None
                                })
                            }
                            Some("pattern") => {
                                if let Some(p) = self.string(v, "`pattern`") {
                                    match Regex::new(&p) {
                                        Ok(re) => var.pattern = Some(re),
                                        Err(e) => self.problem(
                                            v.loc,
                                            format!(
                                                "bad regex in the pattern of `{name}`: {}",
                                                one_line(&e.to_string())
                                            ),
                                        ),
                                    }
                                }
                            }
                            Some("description") => {
                                var.description =
                                    self.string(v, "`description`").unwrap_or_default()
                            }
                            _ => {}
                        }
                    }
                    if let (Some(d), Some(re)) = (&var.default, &var.pattern) {
                        if !re.is_match(d) {
                            self.problem(value.loc, format!("the default `{d}` of `{name}` does not match its pattern `{re}`"));
                        }
                    }
                    if var.required && var.default.is_some() {
                        self.problem(
                            value.loc,
                            format!("variable `{name}` is required and has a default; choose one"),
                        );
                    }
                }
            }
            out.push(var);
        }
        out
    }

    fn tracking(&mut self, node: &Node) -> Option<(Tracking, Loc)> {
        let entries = self.map(node, "`tracking`", &["template", "labels"])?;
        let mut template = None;
        let mut labels = Vec::new();
        for (k, v) in entries {
            match k.as_str() {
                Some("template") => {
                    template = self.string(v, "`tracking.template`").map(|t| (t, v.loc))
                }
                Some("labels") => labels = self.labels(v, "a tracking label"),
                _ => {}
            }
        }
        match template {
            Some((t, loc)) => Some((
                Tracking {
                    template: t,
                    labels,
                },
                loc,
            )),
            None => {
                self.problem(node.loc, "`tracking` has no `template`");
                None
            }
        }
    }

    fn stages(&mut self, node: &Node, variables: &[Variable]) -> Vec<Located> {
        let NodeKind::Seq(items) = &node.kind else {
            self.problem(
                node.loc,
                format!("`stages` must be a list, found {}", node.kind_name()),
            );
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|item| self.stage(item, variables))
            .collect()
    }

    fn stage(&mut self, node: &Node, variables: &[Variable]) -> Option<Located> {
        let entries = self.map(
            node,
            "a stage",
            &[
                "id",
                "label",
                "description",
                "gates",
                "next",
                "exits",
                "terminal",
                "on_enter",
                "limit",
                "target",
                "owners",
                "freeze",
            ],
        )?;
        let mut stage = Stage {
            id: String::new(),
            label: String::new(),
            description: String::new(),
            gates: Vec::new(),
            next: Vec::new(),
            exits: Vec::new(),
            terminal: false,
            on_enter: Vec::new(),
            pacing: Pacing::default(),
        };
        let mut located = Located {
            id_loc: node.loc,
            label_loc: node.loc,
            edges: Vec::new(),
            creates: Vec::new(),
            stage: stage.clone(),
        };
        let mut ok = true;
        for (k, v) in entries {
            match k.as_str() {
                Some("id") => match self.string(v, "a stage `id`") {
                    Some(id) => {
                        located.id_loc = v.loc;
                        stage.id = id;
                    }
                    None => ok = false,
                },
                Some("label") => match self.label(v, "a stage `label`") {
                    Some(label) => {
                        located.label_loc = v.loc;
                        stage.label = label;
                    }
                    None => ok = false,
                },
                Some("description") => {
                    stage.description = self.string(v, "`description`").unwrap_or_default()
                }
                Some("gates") => stage.gates = self.gates(v, variables),
                Some("next") => {
                    stage.next = self.edges(v, "`next`", true, variables, &mut located.edges)
                }
                Some("exits") => {
                    stage.exits = self.edges(v, "`exits`", false, variables, &mut located.edges)
                }
                Some("terminal") => stage.terminal = self.bool(v, "`terminal`"),
                Some("on_enter") => {
                    stage.on_enter = self.actions(v, &mut located.creates, variables)
                }
                Some(key) if PACING_KEYS.contains(&key) => {
                    self.pacing_key(key, v, &mut stage.pacing)
                }
                _ => {}
            }
        }
        if stage.id.is_empty() && ok {
            self.problem(node.loc, "a stage has no `id`");
            return None;
        }
        if stage.label.is_empty() && ok {
            self.problem(node.loc, format!("stage `{}` has no `label`", stage.id));
        }
        if !ok {
            return None;
        }
        located.stage = stage;
        Some(located)
    }

    fn edges(
        &mut self,
        node: &Node,
        what: &str,
        allow_plain: bool,
        variables: &[Variable],
        out: &mut Vec<(String, Loc)>,
    ) -> Vec<Edge> {
        if allow_plain {
            if let NodeKind::Str(to) = &node.kind {
                out.push((to.clone(), node.loc));
                return vec![Edge {
                    to: to.clone(),
                    when: Vec::new(),
                }];
            }
        }
        let NodeKind::Seq(items) = &node.kind else {
            self.problem(
                node.loc,
                format!(
                    "{what} must be a list of {{to, when}}, found {}",
                    node.kind_name()
                ),
            );
            return Vec::new();
        };
        let mut edges = Vec::new();
        for item in items {
            let Some(entries) = self.map(item, &format!("an edge of {what}"), &["to", "when"])
            else {
                continue;
            };
            let mut to = None;
            let mut when = Vec::new();
            for (k, v) in entries {
                match k.as_str() {
                    Some("to") => to = self.string(v, "`to`").map(|t| (t, v.loc)),
                    Some("when") => when = self.gates(v, variables),
                    _ => {}
                }
            }
            match to {
                Some((to, loc)) => {
                    out.push((to.clone(), loc));
                    if !allow_plain && when.is_empty() {
                        self.problem(item.loc, format!("an exit to `{to}` needs a `when`: exits are taken without the stage's gates"));
                    }
                    edges.push(Edge { to, when });
                }
                None => self.problem(item.loc, format!("an edge of {what} has no `to`")),
            }
        }
        edges
    }
}

/// A stage with the locations validation needs to point at.
pub(super) struct Located {
    pub(super) id_loc: Loc,
    pub(super) label_loc: Loc,
    pub(super) edges: Vec<(String, Loc)>,
    pub(super) creates: Vec<(String, Option<String>, Loc)>,
    pub(super) stage: Stage,
}

pub(crate) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
