//! Drift: a feature flag whose real state differs from what the migration's stages set.
//! What the stages set is read from the transitions recorded on the issue: every stage the
//! migration entered (rollbacks run no on_enter) applied its `feature_flag` actions in
//! order, so the last action for a flag and environment is what it should be now. The
//! engine asks the flags backend for those flags (`questions`); `drift` compares.

use std::collections::BTreeMap;

use serde::Serialize;

use super::facts::{FlagState, FlagWant, Question};
use super::gates::flag_text;
use super::snapshot::Snapshot;
use super::workflow::{Action, Workflow};

/// A flag that is not what its migration's stages set.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FlagDrift {
    pub name: String,
    pub environment: Option<String>,
    /// What the stages set ("5%", "on", "off", "deleted").
    pub expected: String,
    /// What the backend holds ("on at 50%", "off", "missing").
    pub actual: String,
}

impl FlagDrift {
    /// Where, for a sentence: " in production", or nothing for every environment.
    pub fn place(&self) -> String {
        self.environment
            .as_ref()
            .map(|e| format!(" in {e}"))
            .unwrap_or_default()
    }
}

/// What the migration's stages set, by flag name and environment, in the order set.
pub fn expected(
    workflow: &Workflow,
    snapshot: &Snapshot,
) -> Vec<((String, Option<String>), FlagWant)> {
    let mut out: BTreeMap<(String, Option<String>), FlagWant> = BTreeMap::new();
    for t in snapshot.transitions.iter().filter(|t| !t.rollback) {
        let Some(stage) = workflow.stage(&t.to) else {
            continue;
        };
        for action in &stage.on_enter {
            let Action::FeatureFlag(flag) = action else {
                continue;
            };
            let Ok(name) = flag.name.resolve(&snapshot.vars) else {
                continue;
            };
            if flag.environment.is_none() {
                // Every environment: what was set per environment is overruled.
                out.retain(|(n, _), _| n != &name);
            }
            out.insert((name, flag.environment.clone()), flag.want.clone());
        }
    }
    out.into_iter().collect()
}

/// The flags to read to tell drift.
pub fn questions(workflow: &Workflow, snapshot: &Snapshot) -> Vec<Question> {
    expected(workflow, snapshot)
        .into_iter()
        .map(|((name, environment), _)| Question::Flag { name, environment })
        .collect()
}

/// The flags whose state, as read into the snapshot's facts, is not what was set. A flag
/// that could not be read is no drift (the gate or the comment says why elsewhere).
pub fn drift(workflow: &Workflow, snapshot: &Snapshot) -> Vec<FlagDrift> {
    expected(workflow, snapshot)
        .into_iter()
        .filter_map(|(key, want)| {
            let Some(Ok(state)) = snapshot.facts.flags.get(&key) else {
                return None;
            };
            (!holds(state, &want)).then(|| FlagDrift {
                name: key.0.clone(),
                environment: key.1.clone(),
                expected: want_text(&want),
                actual: flag_text(&FlagState {
                    environment: None,
                    ..state.clone()
                }),
            })
        })
        .collect()
}

/// Whether the flag already is what `want` says (on at 100 % is on).
pub fn holds(state: &FlagState, want: &FlagWant) -> bool {
    let share = if state.enabled {
        state.percentage.unwrap_or(100.0)
    } else {
        0.0
    };
    match want {
        FlagWant::Delete => !state.exists,
        FlagWant::Enabled(true) => state.exists && state.enabled && share >= 100.0,
        FlagWant::Enabled(false) => !state.enabled,
        FlagWant::Percentage(p) => state.exists && (share - p).abs() < 1e-9,
    }
}

/// A wanted state in a word: "5%", "on", "off", "deleted".
pub fn want_text(want: &FlagWant) -> String {
    match want {
        FlagWant::Percentage(p) => format!("{p}%"),
        FlagWant::Enabled(true) => "on".into(),
        FlagWant::Enabled(false) => "off".into(),
        FlagWant::Delete => "deleted".into(),
    }
}

/// The guardrail GitLab's chatops keeps: a stage that turns a flag up more than tenfold
/// at once (1% → 50%). Stages are taken in the file's order; each finding names the
/// workflow, the stage and the step.
pub fn flag_jumps(workflow: &Workflow) -> Vec<String> {
    let mut last: BTreeMap<(String, Option<String>), f64> = BTreeMap::new();
    let mut out = Vec::new();
    for stage in &workflow.stages {
        for action in &stage.on_enter {
            let Action::FeatureFlag(flag) = action else {
                continue;
            };
            let name = match &flag.name {
                super::workflow::TextSpec::Fixed(n) => n.clone(),
                super::workflow::TextSpec::Variable { name, .. } => format!("{{{{{name}}}}}"),
            };
            let key = (name.clone(), flag.environment.clone());
            match flag.want {
                FlagWant::Percentage(p) => {
                    if let Some(&before) = last.get(&key) {
                        if before > 0.0 && p > before * 10.0 {
                            out.push(format!(
                                "workflow `{}`, stage `{}`: `feature_flag` turns `{name}` from {before}% to {p}% in one step (more than 10×); GitLab's chatops warns about such jumps: add a stage between",
                                workflow.name, stage.id
                            ));
                        }
                    }
                    last.insert(key, p);
                }
                FlagWant::Enabled(false) | FlagWant::Delete => {
                    last.insert(key, 0.0);
                }
                FlagWant::Enabled(true) => {
                    last.insert(key, 100.0);
                }
            }
        }
    }
    out
}
