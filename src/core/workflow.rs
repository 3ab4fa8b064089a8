//! Workflow files: the validated model (`Workflow`, `Stage`, `Gate`, `Action`) and the step
//! from the raw YAML tree to it. Validation never stops at the first problem: it walks the
//! whole file and returns every `Problem` with its file, line and column.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use chrono::Duration;
use regex::Regex;

use super::duration;
use super::yaml::{self, Loc, Node, NodeKind};

/// A named state machine, valid by construction.
#[derive(Clone, Debug)]
pub struct Workflow {
    pub name: String,
    pub description: String,
    pub variables: Vec<Variable>,
    pub tracking: Tracking,
    pub stages: Vec<Stage>,
}

#[derive(Clone, Debug)]
pub struct Variable {
    pub name: String,
    pub required: bool,
    pub default: Option<String>,
    pub pattern: Option<Regex>,
    pub description: String,
}

#[derive(Clone, Debug)]
pub struct Tracking {
    pub template: String,
    pub labels: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct Stage {
    pub id: String,
    pub label: String,
    pub description: String,
    pub gates: Vec<Gate>,
    pub next: Vec<Edge>,
    pub exits: Vec<Edge>,
    pub terminal: bool,
    pub on_enter: Vec<Action>,
}

/// A way out of a stage: taken when every `when` gate holds (no `when`: always).
#[derive(Clone, Debug)]
pub struct Edge {
    pub to: String,
    pub when: Vec<Gate>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Gate {
    Checklist(ChecklistGate),
    Label {
        name: String,
        child: Option<String>,
        present: bool,
    },
    Closed {
        child: String,
    },
    Completed {
        child: String,
        stage: Option<String>,
    },
    MinDuration(DurationSpec),
    Approval {
        label: String,
        by: Vec<String>,
        count: usize,
    },
    Any(Vec<Gate>),
    All(Vec<Gate>),
}

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

/// A soak time, fixed in the file or taken from a migration variable (`"{{release_interval}}"`).
#[derive(Clone, Debug, PartialEq)]
pub enum DurationSpec {
    Fixed(Duration),
    Variable(String),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    CreateIssue {
        template: String,
        workflow: Option<String>,
    },
    Comment(String),
    Labels {
        add: Vec<String>,
        remove: Vec<String>,
    },
    Close,
}

/// One thing wrong with a workflow or template file.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    pub file: String,
    pub loc: Loc,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.loc.line, self.loc.column, self.message
        )
    }
}

/// What the rest of the catalogue offers a workflow: templates (with the variables each
/// uses) and the names of the other workflows.
#[derive(Clone, Debug, Default)]
pub struct Known {
    pub templates: BTreeMap<String, BTreeSet<String>>,
    pub workflows: BTreeSet<String>,
}

impl Workflow {
    pub fn stage(&self, id: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.id == id)
    }

    pub fn first_stage(&self) -> &Stage {
        &self.stages[0]
    }

    pub fn variable(&self, name: &str) -> Option<&Variable> {
        self.variables.iter().find(|v| v.name == name)
    }

    /// The stages whose label is among `labels`, in workflow order.
    pub fn stages_labelled<'a>(&'a self, labels: &[String]) -> Vec<&'a Stage> {
        self.stages
            .iter()
            .filter(|s| labels.iter().any(|l| l == &s.label))
            .collect()
    }

    /// Every label the workflow uses: tracking labels, stage labels, labels named by gates
    /// and actions. Trackers create the missing ones.
    pub fn labels(&self) -> Vec<String> {
        let mut out: Vec<String> = self.tracking.labels.clone();
        for stage in &self.stages {
            out.push(stage.label.clone());
            let gates = stage
                .gates
                .iter()
                .chain(stage.next.iter().chain(&stage.exits).flat_map(|e| &e.when));
            for gate in gates {
                gate.visit(&mut |g| match g {
                    Gate::Label {
                        name, child: None, ..
                    }
                    | Gate::Approval { label: name, .. } => out.push(name.clone()),
                    _ => {}
                });
            }
            for action in &stage.on_enter {
                if let Action::Labels { add, .. } = action {
                    out.extend(add.iter().cloned());
                }
            }
        }
        let mut seen = BTreeSet::new();
        out.retain(|l| seen.insert(l.clone()));
        out
    }
}

impl Stage {
    /// Every gate of the stage: its own and those of its edges' `when`.
    pub fn all_gates(&self) -> impl Iterator<Item = &Gate> {
        self.gates
            .iter()
            .chain(self.next.iter().chain(&self.exits).flat_map(|e| &e.when))
    }

    /// Whether evaluating the stage needs the tracking issue's label history (soak times
    /// and approvals do). Trackers that charge a request for it fetch it only then.
    pub fn needs_label_history(&self) -> bool {
        let mut needs = false;
        for gate in self.all_gates() {
            gate.visit(&mut |g| needs |= matches!(g, Gate::MinDuration(_) | Gate::Approval { .. }));
        }
        needs
    }

    /// The child templates the stage's gates look at.
    pub fn child_templates(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for gate in self.all_gates() {
            gate.visit(&mut |g| match g {
                Gate::Checklist(ChecklistGate { child: Some(c), .. })
                | Gate::Label { child: Some(c), .. }
                | Gate::Closed { child: c }
                | Gate::Completed { child: c, .. } => {
                    out.insert(c.clone());
                }
                _ => {}
            });
        }
        out
    }
}

impl Gate {
    /// The gate's name as the JSON output spells it.
    pub fn kind(&self) -> &'static str {
        match self {
            Gate::Checklist(_) => "checklist",
            Gate::Label { present: true, .. } => "label",
            Gate::Label { present: false, .. } => "no_label",
            Gate::Closed { .. } => "closed",
            Gate::Completed { .. } => "completed",
            Gate::MinDuration(_) => "min_duration",
            Gate::Approval { .. } => "approval",
            Gate::Any(_) => "any",
            Gate::All(_) => "all",
        }
    }

    /// Calls `f` on this gate and every gate nested in it.
    pub fn visit(&self, f: &mut dyn FnMut(&Gate)) {
        f(self);
        if let Gate::Any(gates) | Gate::All(gates) = self {
            for g in gates {
                g.visit(f);
            }
        }
    }

    /// A one-line description a person can read.
    pub fn describe(&self) -> String {
        let of_child = |child: &Option<String>| match child {
            Some(c) => format!(" of the {c} issue"),
            None => String::new(),
        };
        match self {
            Gate::Checklist(c) => {
                let which = match c.require {
                    Require::All => "all".to_string(),
                    Require::AtLeast(n) => format!("at least {n}"),
                };
                let filter = if c.items.is_empty() {
                    String::new()
                } else {
                    format!(
                        " matching {}",
                        c.items
                            .iter()
                            .map(|i| format!("\"{i}\""))
                            .collect::<Vec<_>>()
                            .join(" or ")
                    )
                };
                match &c.section {
                    Some(s) => format!(
                        "{which} items{filter} under \"{s}\"{} are done",
                        of_child(&c.child)
                    ),
                    None => format!("{which} items{filter}{} are done", of_child(&c.child)),
                }
            }
            Gate::Label {
                name,
                child,
                present: true,
            } => format!("label ~\"{name}\" is set{}", of_child(child)),
            Gate::Label {
                name,
                child,
                present: false,
            } => {
                format!("label ~\"{name}\" is not set{}", of_child(child))
            }
            Gate::Closed { child } => format!("the {child} issue is closed"),
            Gate::Completed { child, stage: None } => {
                format!("the {child} issue's workflow is complete")
            }
            Gate::Completed {
                child,
                stage: Some(s),
            } => format!("the {child} issue's workflow reached {s}"),
            Gate::MinDuration(DurationSpec::Fixed(d)) => {
                format!("at least {} in this stage", duration::human(*d))
            }
            Gate::MinDuration(DurationSpec::Variable(v)) => {
                format!("at least {{{{{v}}}}} in this stage")
            }
            Gate::Approval { label, by, count } => {
                let who = by.join(", ");
                if *count > 1 {
                    format!("{count} of {who} approve with ~\"{label}\"")
                } else {
                    format!("~\"{label}\" set by one of {who}")
                }
            }
            Gate::Any(gates) => format!(
                "any of: {}",
                gates
                    .iter()
                    .map(Gate::describe)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            Gate::All(gates) => format!(
                "all of: {}",
                gates
                    .iter()
                    .map(Gate::describe)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        }
    }
}

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

struct Validator<'a> {
    file: &'a str,
    problems: Vec<Problem>,
}

type Entries<'n> = &'n [(Node, Node)];

impl<'a> Validator<'a> {
    fn problem(&mut self, loc: Loc, message: impl Into<String>) {
        self.problems.push(Problem {
            file: self.file.to_string(),
            loc,
            message: message.into(),
        });
    }

    /// The entries of a mapping whose keys are all among `allowed`; unknown keys are reported.
    fn map<'n>(&mut self, node: &'n Node, what: &str, allowed: &[&str]) -> Option<Entries<'n>> {
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

    fn string(&mut self, node: &Node, what: &str) -> Option<String> {
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

    fn strings(&mut self, node: &Node, what: &str) -> Vec<String> {
        match &node.kind {
            NodeKind::Seq(items) => items.iter().filter_map(|i| self.string(i, what)).collect(),
            _ => self.string(node, what).into_iter().collect(),
        }
    }

    fn bool(&mut self, node: &Node, what: &str) -> bool {
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
        let (tracking, _) = tracking?;
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
        })
    }

    fn template_ref(
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
                Some("labels") => labels = self.strings(v, "a tracking label"),
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
                Some("label") => match self.string(v, "a stage `label`") {
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
                Some("on_enter") => stage.on_enter = self.actions(v, &mut located.creates),
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

    fn gates(&mut self, node: &Node, variables: &[Variable]) -> Vec<Gate> {
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
        const GATES: &[&str] = &[
            "checklist",
            "label",
            "no_label",
            "closed",
            "completed",
            "min_duration",
            "approval",
            "any",
            "all",
        ];
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
        match kind {
            "checklist" => {
                let mut gate = ChecklistGate {
                    section: None,
                    child: None,
                    items: Vec::new(),
                    require: Require::All,
                };
                if !matches!(value.kind, NodeKind::Null) {
                    let fields = self.map(
                        value,
                        "`checklist`",
                        &["section", "child", "items", "require"],
                    )?;
                    for (k, v) in fields {
                        match k.as_str() {
                            Some("section") => gate.section = self.string(v, "`section`"),
                            Some("child") => gate.child = self.string(v, "`child`"),
                            Some("items") => gate.items = self.strings(v, "an item pattern"),
                            Some("require") => match &v.kind {
                                NodeKind::Str(s) if s == "all" => gate.require = Require::All,
                                NodeKind::Int(n) if *n >= 1 => {
                                    gate.require = Require::AtLeast(*n as usize)
                                }
                                _ => self.problem(
                                    v.loc,
                                    "`require` must be `all` or a number of at least 1",
                                ),
                            },
                            _ => {}
                        }
                    }
                }
                Some(Gate::Checklist(gate))
            }
            "label" | "no_label" => {
                let present = kind == "label";
                let (name, child) = match &value.kind {
                    NodeKind::Map(_) => {
                        let fields = self.map(value, &format!("`{kind}`"), &["name", "child"])?;
                        let mut name = None;
                        let mut child = None;
                        for (k, v) in fields {
                            match k.as_str() {
                                Some("name") => name = self.string(v, "`name`"),
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
                    _ => (self.string(value, &format!("`{kind}`"))?, None),
                };
                Some(Gate::Label {
                    name,
                    child,
                    present,
                })
            }
            "closed" | "completed" => {
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
            "min_duration" => {
                let text = match &value.kind {
                    NodeKind::Str(s) => s.trim().to_string(),
                    _ => {
                        self.problem(value.loc, format!("bad duration: `min_duration` must be a string such as 15m, 2h, 1d or 1w, found {}", value.kind_name()));
                        return None;
                    }
                };
                if let Some(var) = text.strip_prefix("{{").and_then(|t| t.strip_suffix("}}")) {
                    let var = var.trim();
                    match variables.iter().find(|v| v.name == var) {
                        None => self.problem(value.loc, format!("`min_duration` uses variable `{var}`, which the workflow does not declare")),
                        Some(v) => {
                            if let Some(d) = &v.default {
                                if let Err(e) = duration::parse(d) {
                                    self.problem(value.loc, format!("bad duration in the default of `{var}`: {e}"));
                                }
                            }
                        }
                    }
                    return Some(Gate::MinDuration(DurationSpec::Variable(var.to_string())));
                }
                match duration::parse(&text) {
                    Ok(d) => Some(Gate::MinDuration(DurationSpec::Fixed(d))),
                    Err(e) => {
                        self.problem(value.loc, format!("bad duration: {e}"));
                        None
                    }
                }
            }
            "approval" => {
                let fields = self.map(value, "`approval`", &["label", "by", "count"])?;
                let mut label = None;
                let mut by = Vec::new();
                let mut count = 1;
                for (k, v) in fields {
                    match k.as_str() {
                        Some("label") => label = self.string(v, "`label`"),
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
            "any" | "all" => {
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
            other => {
                self.problem(
                    key.loc,
                    format!("unknown gate `{other}` (gates: {})", GATES.join(", ")),
                );
                None
            }
        }
    }

    fn actions(
        &mut self,
        node: &Node,
        creates: &mut Vec<(String, Option<String>, Loc)>,
    ) -> Vec<Action> {
        const ACTIONS: &[&str] = &["create_issue", "comment", "labels", "close"];
        let NodeKind::Seq(items) = &node.kind else {
            self.problem(
                node.loc,
                format!(
                    "`on_enter` must be a list of actions, found {}",
                    node.kind_name()
                ),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items {
            let NodeKind::Map(entries) = &item.kind else {
                self.problem(
                    item.loc,
                    format!(
                        "an action must be a one-key mapping such as `- close: true`, found {}",
                        item.kind_name()
                    ),
                );
                continue;
            };
            if entries.len() != 1 {
                self.problem(
                    item.loc,
                    format!(
                        "an action must have exactly one key, found {}",
                        entries.len()
                    ),
                );
                continue;
            }
            let (key, value) = &entries[0];
            match key.as_str() {
                Some("create_issue") => {
                    let Some(fields) = self.map(value, "`create_issue`", &["template", "workflow"])
                    else {
                        continue;
                    };
                    let mut template = None;
                    let mut workflow = None;
                    for (k, v) in fields {
                        match k.as_str() {
                            Some("template") => {
                                template = self.string(v, "`template`").map(|t| (t, v.loc))
                            }
                            Some("workflow") => workflow = self.string(v, "`workflow`"),
                            _ => {}
                        }
                    }
                    match template {
                        Some((t, loc)) => {
                            creates.push((t.clone(), workflow.clone(), loc));
                            out.push(Action::CreateIssue {
                                template: t,
                                workflow,
                            });
                        }
                        None => self.problem(value.loc, "`create_issue` needs a `template`"),
                    }
                }
                Some("comment") => {
                    if let Some(text) = self.string(value, "`comment`") {
                        out.push(Action::Comment(text));
                    }
                }
                Some("labels") => match &value.kind {
                    NodeKind::Map(_) => {
                        let Some(fields) = self.map(value, "`labels`", &["add", "remove"]) else {
                            continue;
                        };
                        let (mut add, mut remove) = (Vec::new(), Vec::new());
                        for (k, v) in fields {
                            match k.as_str() {
                                Some("add") => add = self.strings(v, "a label"),
                                Some("remove") => remove = self.strings(v, "a label"),
                                _ => {}
                            }
                        }
                        out.push(Action::Labels { add, remove });
                    }
                    _ => out.push(Action::Labels {
                        add: self.strings(value, "a label"),
                        remove: Vec::new(),
                    }),
                },
                Some("close") => {
                    if self.bool(value, "`close`") {
                        out.push(Action::Close);
                    }
                }
                Some(other) => self.problem(
                    key.loc,
                    format!("unknown action `{other}` (actions: {})", ACTIONS.join(", ")),
                ),
                None => self.problem(key.loc, "an action's key must be a string"),
            }
        }
        out
    }

    fn check_graph(&mut self, stages: &[Located], declared: &BTreeSet<String>, known: &Known) {
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

/// A stage with the locations validation needs to point at.
struct Located {
    id_loc: Loc,
    label_loc: Loc,
    edges: Vec<(String, Loc)>,
    creates: Vec<(String, Option<String>, Loc)>,
    stage: Stage,
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Known {
        let mut k = Known::default();
        k.templates
            .insert("t".into(), BTreeSet::from(["table".to_string()]));
        k.templates.insert("child".into(), BTreeSet::new());
        k
    }

    const GOOD: &str = r#"
name: db
variables:
  table: {required: true, pattern: "^[a-z_]+$"}
  wait: {default: 2h}
tracking: {template: t, labels: [db]}
stages:
  - id: a
    label: "db::a"
    gates:
      - checklist: {section: Proposal, require: 2}
    next:
      - to: c
        when: [{label: small}]
      - to: b
    exits:
      - to: x
        when: [{label: rejected}]
  - id: b
    label: "db::b"
    on_enter: [{create_issue: {template: child}}, {comment: "go {{table}}"}]
    gates:
      - checklist: {child: child}
      - min_duration: "{{wait}}"
      - any: [{label: ok}, {approval: {label: lgtm, by: [alice, bob], count: 2}}]
    next: c
  - id: c
    label: "db::c"
    terminal: true
    on_enter: [{close: true}]
  - id: x
    label: "db::x"
    terminal: true
"#;

    #[test]
    fn a_good_workflow_loads() {
        let w = load("db.yaml", GOOD, Some("db"), &known()).unwrap();
        assert_eq!(w.stages.len(), 4);
        assert_eq!(w.stages[0].next[0].to, "c");
        assert_eq!(
            w.stages[1].gates[1],
            Gate::MinDuration(DurationSpec::Variable("wait".into()))
        );
        assert!(w.labels().contains(&"lgtm".to_string()));
    }

    /// Each case: a change to GOOD, and the messages (with line) that validation must give.
    #[test]
    #[allow(clippy::type_complexity)] // the test table's rows
    fn every_problem_is_reported_with_its_place() {
        let cases: &[(&str, &str, &[(u32, &str)])] = &[
            (
                "next: c\n  - id: c",
                "next: nowhere\n  - id: c",
                &[(26, "`nowhere`, which is no stage")],
            ),
            (
                "min_duration: \"{{wait}}\"",
                "min_duration: 2x",
                &[(24, "bad duration")],
            ),
            (
                "pattern: \"^[a-z_]+$\"",
                "pattern: \"^[a-z_+$\"",
                &[(4, "bad regex")],
            ),
            (
                "- checklist: {section: Proposal, require: 2}",
                "- checklist: {section: Proposal, reqire: 2}",
                &[(11, "unknown key `reqire`")],
            ),
            (
                "- any: [",
                "- sometimes: [",
                &[(25, "unknown gate `sometimes`")],
            ),
            (
                "label: \"db::b\"",
                "label: \"db::a\"",
                &[(20, "duplicate stage label")],
            ),
            (
                "    exits:\n      - to: x\n        when: [{label: rejected}]\n",
                "",
                &[(28, "`x` is unreachable")],
            ),
            (
                "{create_issue: {template: child}}",
                "{create_issue: {template: nope}}",
                &[
                    (21, "`nope` does not exist"),
                    (19, "no stage creates a `child`"),
                ],
            ),
            (
                "table: {required: true, pattern: \"^[a-z_]+$\"}\n",
                "",
                &[(5, "template `t` uses variable `table`")],
            ),
            (
                "    terminal: true\n    on_enter: [{close: true}]",
                "    on_enter: [{close: true}]",
                &[(27, "no way out")],
            ),
        ];
        for (from, to, expected) in cases {
            assert!(GOOD.contains(from), "case text not found: {from}");
            let text = GOOD.replacen(from, to, 1);
            let problems = load("db.yaml", &text, Some("db"), &known()).expect_err(to);
            for (line, message) in *expected {
                assert!(
                    problems
                        .iter()
                        .any(|p| p.loc.line == *line && p.message.contains(message)),
                    "expected line {line}: {message}\ngot: {problems:#?}"
                );
            }
        }
    }

    #[test]
    fn several_problems_come_at_once() {
        let text = GOOD
            .replace("next: c\n  - id: c", "next: nowhere\n  - id: c")
            .replace("min_duration: \"{{wait}}\"", "min_duration: 5y");
        let problems = load("db.yaml", &text, None, &known()).unwrap_err();
        assert!(problems.len() >= 2, "{problems:#?}");
        assert!(problems[0].to_string().starts_with("db.yaml:"));
    }

    #[test]
    fn template_variables_skip_helpers_and_context() {
        let vars = template_variables("{{feature_flag}} {{urlencode grpc_method}} {{migration.ref}} {{#if depends_on}}x{{/if}} {{{raw}}} {{upper (lower name)}}");
        assert_eq!(
            vars,
            BTreeSet::from(
                ["depends_on", "feature_flag", "grpc_method", "name", "raw"].map(String::from)
            )
        );
    }
}
