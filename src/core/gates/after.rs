//! `after: {workflow, stage, where, count}`: other migrations got far enough first. Every
//! open or completed migration of `workflow` whose variables match `where` (values with
//! `{{variable}}`s of this migration filled in) has reached `stage` or a stage after it on
//! its path, and at least `count` (default 1) such migrations exist. A migration that ended
//! elsewhere (a terminal off the path: rolled back, abandoned; closed by hand) does not
//! count either way. The peers are a fact the engine reads from its list of migrations
//! (`Question::Peers`); whether each reached the stage is decided here (`reach`).

use std::collections::{BTreeMap, BTreeSet};

use schemars::JsonSchema;

use super::{outcome, unasked, Context, Gate, GateOutcome};
use crate::core::facts::{Peer, Question, Reach};
use crate::core::workflow::{Validator, Variable, Workflow};
use crate::core::yaml::{Loc, Node, NodeKind};

#[derive(Clone, Debug, PartialEq)]
pub struct AfterGate {
    pub workflow: String,
    pub stage: String,
    /// Variable of the other workflow → the value it must have (`{{v}}`s of this one).
    pub matching: BTreeMap<String, String>,
    pub count: usize,
}

/// An `after` gate and where the file writes it, for the checks across workflows.
#[derive(Clone, Debug, PartialEq)]
pub struct AfterSite {
    pub gate: AfterGate,
    /// The places of its `workflow`, its `stage` and each `where` key.
    pub workflow_loc: Loc,
    pub stage_loc: Loc,
    pub where_locs: BTreeMap<String, Loc>,
}

impl Validator<'_> {
    pub(super) fn after_gate(&mut self, value: &Node, variables: &[Variable]) -> Option<Gate> {
        let fields = self.map(value, "`after`", &["workflow", "stage", "where", "count"])?;
        let (mut workflow, mut stage, mut count) = (None, None, 1);
        let (mut workflow_loc, mut stage_loc) = (value.loc, value.loc);
        let mut matching = BTreeMap::new();
        let mut where_locs = BTreeMap::new();
        for (k, v) in fields {
            match k.as_str() {
                Some("workflow") => {
                    workflow = self.string(v, "`workflow`");
                    workflow_loc = v.loc;
                }
                Some("stage") => {
                    stage = self.string(v, "`stage`");
                    stage_loc = v.loc;
                }
                Some("count") => count = self.count(v).unwrap_or(1),
                Some("where") => matching = self.matching(v, variables, &mut where_locs),
                _ => {}
            }
        }
        let (Some(workflow), Some(stage)) = (workflow, stage) else {
            self.problem(
                value.loc,
                "`after` needs a `workflow` and a `stage` (the other migrations and how far they must be)",
            );
            return None;
        };
        let gate = AfterGate {
            workflow,
            stage,
            matching,
            count,
        };
        self.afters.push(AfterSite {
            gate: gate.clone(),
            workflow_loc,
            stage_loc,
            where_locs,
        });
        Some(Gate::After(gate))
    }

    /// `where: {variable: value}`, each value's `{{v}}`s declared by this workflow.
    fn matching(
        &mut self,
        node: &Node,
        variables: &[Variable],
        locs: &mut BTreeMap<String, Loc>,
    ) -> BTreeMap<String, String> {
        let NodeKind::Map(entries) = &node.kind else {
            self.problem(node.loc, "`where` must map variables to values");
            return BTreeMap::new();
        };
        let mut out = BTreeMap::new();
        for (k, v) in entries {
            let Some(name) = k.as_str() else {
                self.problem(k.loc, "keys in `where` must be variable names");
                continue;
            };
            let Some(text) = self.string(v, "a value in `where`") else {
                continue;
            };
            for used in placeholders(&text) {
                if !variables.iter().any(|d| d.name == used) {
                    self.problem(
                        v.loc,
                        format!(
                            "`where` uses variable `{used}`, which the workflow does not declare"
                        ),
                    );
                }
            }
            locs.insert(name.to_string(), k.loc);
            out.insert(name.to_string(), text);
        }
        out
    }
}

/// The `{{name}}`s of a `where` value.
fn placeholders(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start + 2..].find("}}") else {
            break;
        };
        out.push(rest[start + 2..start + 2 + len].trim().to_string());
        rest = &rest[start + 2 + len + 2..];
    }
    out
}

/// A `where` value with this migration's variables filled in; `None` names a variable
/// this migration leaves empty: it waits for nothing (`depends_on: ""`).
fn fill(text: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = text.to_string();
    for name in placeholders(text) {
        let value = vars
            .get(&name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| name.clone())?;
        out = out
            .replace(&format!("{{{{{name}}}}}"), value)
            .replace(&format!("{{{{ {name} }}}}"), value);
    }
    Ok(out)
}

/// Where a migration of `workflow` standing in `at` (open or not) is against `stage`.
pub fn reach(workflow: &Workflow, at: Option<&str>, open: bool, stage: &str) -> Reach {
    let Some(here) = at.and_then(|id| workflow.stage(id)) else {
        return Reach::Elsewhere;
    };
    let on_path = path_from(workflow, stage).contains(here.id.as_str());
    match (on_path, here.terminal, open) {
        // On the path: there, or completed on it; closed by hand before the end: neither.
        (true, true, _) | (true, false, true) => Reach::Reached,
        // Off the path: still on its way, or ended elsewhere.
        (false, false, true) => Reach::Before,
        _ => Reach::Elsewhere,
    }
}

/// `stage` and every stage its `next` edges lead to, however far.
fn path_from<'w>(workflow: &'w Workflow, stage: &str) -> BTreeSet<&'w str> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<&str> = workflow
        .stage(stage)
        .map(|s| s.id.as_str())
        .into_iter()
        .collect();
    while let Some(id) = todo.pop() {
        if seen.insert(id) {
            if let Some(s) = workflow.stage(id) {
                todo.extend(s.next.iter().map(|e| e.to.as_str()));
            }
        }
    }
    seen
}

pub(super) fn describe(g: &AfterGate, vars: &BTreeMap<String, String>) -> String {
    let who = if g.count == 1 {
        format!("every {} migration", g.workflow)
    } else {
        format!(
            "at least {} {} migrations, and every one",
            g.count, g.workflow
        )
    };
    let matching: Vec<String> = g
        .matching
        .iter()
        .map(|(k, v)| match fill(v, vars) {
            Ok(value) => format!("{k} = {value}"),
            Err(empty) => format!("{k} = this migration's `{empty}` (not set)"),
        })
        .collect();
    let with = if matching.is_empty() {
        String::new()
    } else {
        format!(" with {}", matching.join(", "))
    };
    format!("{who}{with} reached {}", g.stage)
}

pub(super) fn question(g: &AfterGate) -> Option<Question> {
    Some(Question::Peers {
        workflow: g.workflow.clone(),
        stage: g.stage.clone(),
    })
}

pub(super) fn evaluate(g: &AfterGate, cx: &Context) -> GateOutcome {
    let mut wanted = BTreeMap::new();
    for (k, v) in &g.matching {
        match fill(v, cx.vars) {
            Ok(v) => wanted.insert(k.clone(), v),
            Err(empty) => {
                return outcome(true, format!("nothing to wait for: `{empty}` is not set"));
            }
        };
    }
    let key = (g.workflow.clone(), g.stage.clone());
    let peers = match cx.snapshot.facts.peers.get(&key) {
        None => return unasked(&format!("{} migrations", g.workflow), cx),
        Some(Err(e)) => return outcome(false, format!("{} migrations: {e}", g.workflow)),
        Some(Ok(peers)) => peers,
    };
    let matching: Vec<&Peer> = peers
        .iter()
        .filter(|p| p.number != cx.snapshot.issue.number)
        .filter(|p| wanted.iter().all(|(k, v)| p.vars.get(k) == Some(v)))
        .filter(|p| p.reach != Reach::Elsewhere)
        .collect();
    let reached = matching
        .iter()
        .filter(|p| p.reach == Reach::Reached)
        .count();
    let before = matching.iter().any(|p| p.reach == Reach::Before);
    if matching.is_empty() {
        let with: Vec<String> = wanted.iter().map(|(k, v)| format!("{k} = {v}")).collect();
        let with = if with.is_empty() {
            String::new()
        } else {
            format!(" with {}", with.join(", "))
        };
        return outcome(
            false,
            format!("no open or completed {} migration{with} yet", g.workflow),
        );
    }
    let said: Vec<String> = matching
        .iter()
        .map(|p| match (&p.reach, &p.stage) {
            (Reach::Reached, Some(s)) => format!("#{} reached {s}", p.number),
            (_, Some(s)) => format!("#{} is in {s}", p.number),
            (_, None) => format!("#{} has no stage", p.number),
        })
        .collect();
    let short = if reached < g.count && !before {
        format!(" ({reached} of {} needed)", g.count)
    } else {
        String::new()
    };
    outcome(
        !before && reached >= g.count,
        format!("{} {}{short}", g.workflow, said.join(", ")),
    )
}

/// The gate's shape in a workflow file, for `shepherd schema`.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
#[schemars(rename = "After")]
pub(crate) struct Raw {
    /// The workflow of the migrations waited for
    workflow: String,
    /// The stage (or one after it on its path) they must have reached
    stage: String,
    /// Their variables' values (`{{variable}}`s of this migration filled in)
    #[serde(default, rename = "where")]
    matching: Option<BTreeMap<String, String>>,
    /// At least this many such migrations (default 1)
    #[serde(default)]
    #[schemars(range(min = 1))]
    count: Option<u64>,
}
