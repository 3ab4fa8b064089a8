//! `questions`: which facts a migration's current stage needs before `plan` can decide —
//! merge requests, releases, metric values — and only those whose answer can change the
//! outcome: the facts of the stage's gates and `next` edges once every other gate holds,
//! those of an exit once the rest of its `when` holds, none of an `any` that a gate
//! without facts already satisfies. A stage whose gates need no fact asks nothing.

use chrono::{DateTime, Utc};

use super::facts::{Facts, Question};
use super::gates::{self, Context};
use super::machine::{Plan, PAUSED_LABEL};
use super::snapshot::{Snapshot, TransitionRecord};
use super::workflow::{Gate, Workflow};

/// The questions the engine answers (into `Snapshot::facts`) before planning.
pub fn questions(workflow: &Workflow, snapshot: &Snapshot, now: DateTime<Utc>) -> Vec<Question> {
    let Some(stage) = workflow
        .stages_labelled(&snapshot.issue.labels)
        .first()
        .copied()
    else {
        return Vec::new();
    };
    if stage.terminal || !snapshot.issue.open || !stage.all_gates().any(has_fact_gate) {
        return Vec::new();
    }
    // Evaluated with every fact taken as holding: what may hold once the facts are in.
    let mut hopeful = snapshot.clone();
    hopeful.facts.unread = true;
    let cx = Context {
        snapshot: &hopeful,
        labels: &snapshot.issue.labels,
        entered_at: snapshot.entered_at(&stage.id, &stage.label),
        now,
        vars: &snapshot.vars,
        exit: false,
    };
    let holds = |g: &Gate| gates::evaluate(g, &cx).passed;
    let exit_cx = Context { exit: true, ..cx };
    let mut out = Vec::new();
    for exit in &stage.exits {
        if exit
            .when
            .iter()
            .all(|g| gates::evaluate(g, &exit_cx).passed)
        {
            for g in &exit.when {
                needs(g, &exit_cx, &mut out);
            }
        }
    }
    let paused = snapshot.issue.labels.iter().any(|l| l == PAUSED_LABEL);
    if !paused && stage.gates.iter().all(holds) {
        for g in stage
            .gates
            .iter()
            .chain(stage.next.iter().flat_map(|e| &e.when))
        {
            needs(g, &cx, &mut out);
        }
    }
    out.sort();
    out.dedup();
    merge_projects(out)
}

/// One merge-request question per issue: the projects of its gates together, or any
/// project when one gate looks in any.
fn merge_projects(asked: Vec<Question>) -> Vec<Question> {
    let mut out: Vec<Question> = Vec::with_capacity(asked.len());
    for q in asked {
        if let (
            Some(Question::MergeRequests {
                issue: last,
                projects: mine,
            }),
            Question::MergeRequests { issue, projects },
        ) = (out.last_mut(), &q)
        {
            if last == issue {
                if mine.is_empty() || projects.is_empty() {
                    mine.clear();
                } else {
                    mine.extend(projects.iter().cloned());
                    mine.sort();
                    mine.dedup();
                }
                continue;
            }
        }
        out.push(q);
    }
    out
}

/// The questions of the stage `plan` ends in, when it moves and that stage's gates need
/// facts not asked yet: the engine answers them and plans again, so an advance that moves
/// into such a stage judges its gates as they are, not as "not checked yet".
pub fn questions_after(
    workflow: &Workflow,
    snapshot: &Snapshot,
    plan: &Plan,
    now: DateTime<Utc>,
) -> Vec<Question> {
    let Some(last) = plan.transitions.last() else {
        return Vec::new();
    };
    let Some(stage) = workflow.stage(&last.to) else {
        return Vec::new();
    };
    if !stage.all_gates().any(has_fact_gate) {
        return Vec::new();
    }
    let mut moved = snapshot.clone();
    moved
        .issue
        .labels
        .retain(|l| !workflow.stages.iter().any(|s| &s.label == l));
    moved.issue.labels.push(stage.label.clone());
    moved.transitions.push(TransitionRecord {
        seq: last.seq,
        from: last.from.clone(),
        to: last.to.clone(),
        at: now,
        by: String::new(),
        reason: None,
        rollback: last.rollback,
        untick: Vec::new(),
    });
    questions(workflow, &moved, now)
        .into_iter()
        .filter(|q| !answered(&snapshot.facts, q))
        .collect()
}

/// Whether `facts` already hold the answer to `question`.
pub fn answered(facts: &Facts, question: &Question) -> bool {
    match question {
        Question::MergeRequests { issue, .. } => facts.merge_requests.contains_key(issue),
        Question::Releases { project } => facts.releases.contains_key(project),
        Question::Metric(q) => facts.metrics.contains_key(q),
        Question::Flag { name, environment } => facts
            .flags
            .contains_key(&(name.clone(), environment.clone())),
        Question::Peers { workflow, stage } => {
            facts.peers.contains_key(&(workflow.clone(), stage.clone()))
        }
    }
}

/// Whether `gate` is, or holds, a gate on facts.
pub fn has_fact_gate(gate: &Gate) -> bool {
    let mut found = false;
    gate.visit(&mut |g| found |= is_fact_gate(g));
    found
}

fn is_fact_gate(gate: &Gate) -> bool {
    matches!(
        gate,
        Gate::MergeRequest { .. }
            | Gate::Release { .. }
            | Gate::Metric(_)
            | Gate::Flag { .. }
            | Gate::After(_)
    )
}

fn needs(gate: &Gate, cx: &Context, out: &mut Vec<Question>) {
    match gate {
        g if is_fact_gate(g) => out.extend(gates::question(g, cx)),
        Gate::Any(gates) => {
            let settled = gates
                .iter()
                .any(|g| !has_fact_gate(g) && gates::evaluate(g, cx).passed);
            if !settled {
                for g in gates {
                    needs(g, cx, out);
                }
            }
        }
        Gate::All(gates) => {
            for g in gates {
                needs(g, cx, out);
            }
        }
        _ => {}
    }
}
