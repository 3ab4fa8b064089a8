//! `shepherd plan`: the portfolio as one plan (DESIGN §13) — per workflow and stage, who
//! is in it, who waits (for a slot, a dependency, a freeze) and who is overdue, built from
//! the statuses alone.

use serde::Serialize;

use super::portfolio::WaitKind;
use super::report::Status;
use super::workflow::Workflow;

#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    pub workflows: Vec<WorkflowPlan>,
}

#[derive(Clone, Debug, Serialize)]
pub struct WorkflowPlan {
    pub name: String,
    pub stages: Vec<StagePlan>,
}

#[derive(Clone, Debug, Serialize)]
pub struct StagePlan {
    pub id: String,
    /// The stage's `limit`, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// The open migrations standing in the stage.
    #[serde(rename = "in")]
    pub within: Vec<u64>,
    /// Those of them whose gates hold but who wait to move on, and why.
    pub waiting: Vec<Wait>,
    /// Those whose stay is longer than the stage's `target`.
    pub overdue: Vec<u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Wait {
    #[serde(rename = "ref")]
    pub number: u64,
    pub kind: WaitKind,
    pub detail: String,
}

/// The plan of `workflows` (in their order) from the statuses of their open migrations:
/// every stage of a workflow with a migration in it, in the workflow's order; a workflow
/// with none is left out.
pub fn plan(workflows: &[&Workflow], statuses: &[Status]) -> Plan {
    let workflows = workflows
        .iter()
        .filter_map(|w| {
            let mine: Vec<&Status> = statuses
                .iter()
                .filter(|s| s.workflow == w.name && s.state == "open")
                .collect();
            let stages: Vec<StagePlan> = w
                .stages
                .iter()
                .filter_map(|stage| {
                    let here: Vec<&&Status> = mine
                        .iter()
                        .filter(|s| s.stage.as_deref() == Some(stage.id.as_str()))
                        .collect();
                    (!here.is_empty()).then(|| StagePlan {
                        id: stage.id.clone(),
                        limit: stage.pacing.limit,
                        within: here.iter().map(|s| s.number).collect(),
                        waiting: here
                            .iter()
                            .flat_map(|s| {
                                s.waiting.iter().map(|w| Wait {
                                    number: s.number,
                                    kind: w.kind,
                                    detail: w.detail.clone(),
                                })
                            })
                            .collect(),
                        overdue: here
                            .iter()
                            .filter(|s| s.overdue)
                            .map(|s| s.number)
                            .collect(),
                    })
                })
                .collect();
            (!stages.is_empty()).then(|| WorkflowPlan {
                name: w.name.clone(),
                stages,
            })
        })
        .collect();
    Plan { workflows }
}
