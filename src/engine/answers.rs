//! Answering a snapshot's questions (`core::questions`): merge requests and releases from
//! the tracker, metric values from Prometheus. An answer that cannot be had is kept as its
//! reason (the gate shows it and does not hold), never an error of the whole advance.
//! Answers are kept for a few seconds, so one run asks for a project's releases once and
//! one advance never asks the same thing twice; `advance` forgets merge requests first,
//! since the webhook that brought it may be about one.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::join_all;

use super::Engine;
use crate::core::facts::{FlagState, MergeRequest, MetricAnswer, Peer, Question, Release};
use crate::core::machine::{self, Plan};
use crate::core::questions::{questions, questions_after};
use crate::core::snapshot::Snapshot;
use crate::core::workflow::Workflow;
use crate::fresh::Fresh;

/// How long an answer stays good.
const FRESH: Duration = Duration::from_secs(15);

#[derive(Clone, Debug)]
enum Answer {
    MergeRequests(Result<Vec<MergeRequest>, String>),
    Releases(Result<Vec<Release>, String>),
    Metric(MetricAnswer),
    Flag(Result<FlagState, String>),
    Peers(Result<Vec<Peer>, String>),
}

/// The open migrations standing in a stage, by number (or why they could not be listed).
pub(crate) type Standing = Result<std::sync::Arc<Vec<u64>>, String>;

/// Answers by question, kept `FRESH` and shared by the tasks that ask at once.
pub struct FactCache {
    answers: Fresh<Question, Answer>,
    /// By workflow: its migrations, open and closed (the `after` gates' one list a run).
    migrations: Fresh<String, Result<std::sync::Arc<Vec<crate::tracker::Issue>>, String>>,
    /// By workflow and limited stage: the open migrations standing there, as this run
    /// last listed them (forgotten when it moves one into or out of such a stage).
    pub(crate) standing: Fresh<(String, String), Standing>,
}

impl Default for FactCache {
    fn default() -> FactCache {
        FactCache {
            answers: Fresh::new(FRESH),
            migrations: Fresh::new(FRESH),
            standing: Fresh::new(FRESH),
        }
    }
}

impl FactCache {
    /// Forgets the flags (this run has just set one).
    pub fn forget_flags(&self) {
        self.answers.forget(|q| matches!(q, Question::Flag { .. }));
    }

    /// Forgets who stands in the limited stages (this run moved one in or out).
    pub fn forget_standing(&self) {
        self.standing.forget(|_| true);
    }

    /// Forgets the merge requests (a webhook may be about one).
    pub fn forget_merge_requests(&self) {
        self.answers
            .forget(|q| matches!(q, Question::MergeRequests { .. }));
    }
}

impl Engine<'_> {
    /// Asks what the questions of the snapshot's stage need and puts the answers in its
    /// facts. Nothing is asked for a stage whose gates need no fact.
    pub(crate) async fn answer(
        &self,
        workflow: &Workflow,
        snapshot: &mut Snapshot,
        now: DateTime<Utc>,
    ) {
        let asked = questions(workflow, snapshot, now);
        self.answer_these(asked, snapshot).await;
    }

    /// Reads the flags the migration's stages set, to tell drift; nothing without a flags
    /// backend.
    pub(crate) async fn answer_drift(&self, workflow: &Workflow, snapshot: &mut Snapshot) {
        if let Some(flags) = self.flags {
            // A name the backend refuses was never set by shepherd (`set_flag`): no drift.
            let asked = crate::core::drift::questions(workflow, snapshot)
                .into_iter()
                .filter(|q| !crate::core::questions::answered(&snapshot.facts, q))
                .filter(|q| {
                    !matches!(q, Question::Flag { name, .. } if flags.refuses_name(name).is_some())
                })
                .collect();
            self.answer_these(asked, snapshot).await;
        }
    }

    /// Plans, and when the plan moves into a stage whose gates need facts not asked yet,
    /// asks them and plans again (as far as the stages go).
    pub(crate) async fn plan(&self, workflow: &Workflow, snapshot: &mut Snapshot) -> Plan {
        let now = self.now();
        let mut plan = machine::plan(workflow, snapshot, now);
        for _ in 0..workflow.stages.len() {
            let asked = questions_after(workflow, snapshot, &plan, now);
            if asked.is_empty() {
                break;
            }
            self.answer_these(asked, snapshot).await;
            plan = machine::plan(workflow, snapshot, now);
        }
        plan
    }

    async fn answer_these(&self, asked: Vec<Question>, snapshot: &mut Snapshot) {
        if asked.is_empty() {
            return;
        }
        let answers = join_all(asked.iter().map(|q| self.ask(q))).await;
        for (q, a) in asked.into_iter().zip(answers) {
            match (q, a) {
                (Question::MergeRequests { issue, .. }, Answer::MergeRequests(list)) => {
                    snapshot.facts.merge_requests.insert(issue, list);
                }
                (Question::Releases { project }, Answer::Releases(list)) => {
                    snapshot.facts.releases.insert(project, list);
                }
                (Question::Metric(q), Answer::Metric(a)) => {
                    snapshot.facts.metrics.insert(q, a);
                }
                (Question::Flag { name, environment }, Answer::Flag(state)) => {
                    snapshot.facts.flags.insert((name, environment), state);
                }
                (Question::Peers { workflow, stage }, Answer::Peers(peers)) => {
                    snapshot.facts.peers.insert((workflow, stage), peers);
                }
                _ => {}
            }
        }
    }

    async fn ask(&self, question: &Question) -> Answer {
        self.facts
            .answers
            .get(question, || self.fetch(question))
            .await
    }

    async fn fetch(&self, question: &Question) -> Answer {
        let tracker = self.tracker.describe();
        match question {
            Question::MergeRequests { issue, projects } => Answer::MergeRequests(
                self.tracker
                    .merge_requests_in(*issue, projects)
                    .await
                    .map_err(|e| format!("{tracker}: {e}")),
            ),
            Question::Releases { project } => Answer::Releases(
                self.tracker
                    .releases(project.as_deref())
                    .await
                    .map_err(|e| e.to_string()),
            ),
            Question::Flag { name, environment } => Answer::Flag(match self.flags {
                Some(f) => f
                    .get(name, environment.as_deref())
                    .await
                    .map_err(|e| e.to_string()),
                None => Err(
                    "no flags backend is configured (--flags, [flags] backend in shepherd.toml)"
                        .to_string(),
                ),
            }),
            Question::Peers { workflow, stage } => Answer::Peers(self.peers(workflow, stage).await),
            Question::Metric(q) => Answer::Metric(match self.metrics {
                Some(m) => m.ask(q).await,
                None => MetricAnswer::Unavailable(
                    "no Prometheus is configured (--prometheus-url, [prometheus] url in shepherd.toml)"
                        .to_string(),
                ),
            }),
        }
    }

    /// The migrations of `workflow`, open and closed, each placed against `stage`: one
    /// list of the workflow's issues per run, whatever the number of gates that ask.
    async fn peers(&self, workflow: &str, stage: &str) -> Result<Vec<Peer>, String> {
        let w = self.catalog.workflow(workflow).map_err(|e| e.to_string())?;
        let issues = self
            .facts
            .migrations
            .get(&w.name, || async {
                let mut labels = w.tracking.labels.clone();
                labels.sort();
                self.tracker
                    .list_issues(crate::tracker::StateFilter::All, &labels)
                    .await
                    .map(std::sync::Arc::new)
                    .map_err(|e| format!("{}: {e}", self.tracker.describe()))
            })
            .await?;
        Ok(issues
            .iter()
            .filter_map(|issue| {
                let marker = crate::core::marker::IssueMarker::find(&issue.body)?;
                (marker.workflow.as_deref() == Some(workflow)).then_some(())?;
                let at = w
                    .stages_labelled(&issue.labels)
                    .first()
                    .map(|s| s.id.clone());
                Some(Peer {
                    number: issue.number,
                    reach: crate::core::gates::reach(w, at.as_deref(), issue.open, stage),
                    stage: at,
                    vars: marker.vars,
                })
            })
            .collect())
    }
}
