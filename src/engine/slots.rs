//! Slots of a stage with a `limit` (DESIGN §13): a migration whose gates hold for a move
//! into such a stage enters it only while fewer than `limit` open migrations of the
//! workflow stand there and no migration ahead of it in line waits for the slot. The line
//! is kept in the Store (`{tracker}|slots:{workflow}:{stage}`): the label
//! `shepherd::priority` first, then the longest wait. Slots are granted, and the move that
//! takes one is applied, under the stage's lease in the Store, so no two processes that
//! share a Store ever put more than `limit` migrations into a stage.

use anyhow::Result;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::{Engine, Migration};
use crate::core::machine::Plan;
use crate::core::marker::TransitionMarker;
use crate::core::portfolio::{Slots, WaitKind};
use crate::core::workflow::{Stage, Workflow};
use crate::tracker::StateFilter;

/// The label that puts a migration first in line for a slot.
pub const PRIORITY_LABEL: &str = "shepherd::priority";

/// How long a place in line lasts, in minutes, once no run has seen its migration still
/// waiting. A migration that stops waiting gives its place up when a run looks at it, and
/// a reconcile drops those no longer open or no longer before the stage; this bounds
/// what is left of a migration no run looks at any more.
const FORGOTTEN_AFTER: i64 = 24 * 60;

/// One migration waiting for a slot.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Waiter {
    number: u64,
    priority: bool,
    /// When it was first seen waiting.
    since: DateTime<Utc>,
    /// When a run last saw it still waiting.
    seen: DateTime<Utc>,
}

/// The first stage with a `limit` that `plan` enters by a move of its own (a rollback
/// and the end of a move an earlier run began take no new slot).
pub(crate) fn limited_entry<'w>(workflow: &'w Workflow, plan: &Plan) -> Option<&'w Stage> {
    plan.transitions
        .iter()
        .filter(|t| !t.rollback && !t.resumed)
        .filter_map(|t| workflow.stage(&t.to))
        .find(|s| s.pacing.limit.is_some())
}

/// The stages with a `limit` that a migration standing where `labels` say may move into
/// by a `next` edge.
pub(crate) fn limited_next<'w>(workflow: &'w Workflow, labels: &[String]) -> Vec<&'w Stage> {
    let Some(here) = workflow.stages_labelled(labels).first().copied() else {
        return Vec::new();
    };
    here.next
        .iter()
        .filter_map(|e| workflow.stage(&e.to))
        .filter(|s| s.pacing.limit.is_some())
        .collect()
}

/// A limited stage's slots as messages name them.
pub(crate) fn slots_of(workflow: &Workflow, stage: &Stage) -> String {
    format!("the slots of `{}` in {}", stage.id, workflow.name)
}

/// Whether `plan` moves a migration into or out of a stage with a `limit`.
pub(crate) fn touches_limited(workflow: &Workflow, plan: &Plan) -> bool {
    plan.transitions.iter().any(|t| {
        [t.from.as_deref(), Some(t.to.as_str())]
            .into_iter()
            .flatten()
            .filter_map(|id| workflow.stage(id))
            .any(|s| s.pacing.limit.is_some())
    })
}

/// Whether `plan` stops for want of a slot.
pub(crate) fn waits_for_slot(plan: &Plan) -> bool {
    waits(&plan.blocked_by)
}

/// Whether `plan` stops for a change freeze (its gates hold): a migration waiting out a
/// freeze before a limited stage keeps, or takes, its place in that stage's line.
pub(crate) fn waits_for_freeze(plan: &Plan) -> bool {
    plan.blocked_by
        .iter()
        .any(|r| r.gate == WaitKind::Freeze.gate())
}

impl Engine<'_> {
    /// The Store key of a limited stage's lease and line.
    pub(crate) fn slot_key(&self, workflow: &Workflow, stage: &Stage) -> String {
        format!(
            "{}|slots:{}:{}",
            self.tracker.describe(),
            workflow.name,
            stage.id
        )
    }

    /// The slots of `stage` as `m` sees them: the open migrations of the workflow standing
    /// there and those ahead of `m` in line (the Store). The list is read once a run (and
    /// again after this run moves a migration in or out), so the migrations that get no
    /// slot cost no request each; a slot is granted only on a list read just now, and
    /// checked on the tracker once more before it is taken (`slot_taken`).
    pub(crate) async fn slots(
        &self,
        workflow: &Workflow,
        stage: &Stage,
        m: &Migration,
    ) -> Result<Slots> {
        let limit = stage.pacing.limit.unwrap_or(u32::MAX) as usize;
        let line = self.line(workflow, stage).await;
        let key = (workflow.name.clone(), stage.id.clone());
        let slots = grant(
            limit,
            self.standing(workflow, stage, m).await?,
            &line,
            m,
            self.now(),
        );
        if !slots.granted {
            return Ok(slots);
        }
        // A slot is only ever granted on a fresh list.
        self.facts.standing.forget(|k| *k == key);
        let taken_by = self.standing(workflow, stage, m).await?;
        Ok(grant(limit, taken_by, &line, m, self.now()))
    }

    /// The open migrations of the workflow standing in `stage` but `m`: one list a run
    /// (`FactCache::standing`).
    async fn standing(
        &self,
        workflow: &Workflow,
        stage: &Stage,
        m: &Migration,
    ) -> Result<Vec<u64>> {
        let key = (workflow.name.clone(), stage.id.clone());
        let standing = self
            .facts
            .standing
            .get(&key, || async {
                let listed = self
                    .workflow_issues(workflow)
                    .await
                    .map_err(|e| e.to_string())?;
                let numbers: Vec<u64> = listed
                    .into_iter()
                    .filter(|i| {
                        crate::core::marker::IssueMarker::find(&i.body).is_some_and(|mk| {
                            mk.workflow.as_deref() == Some(workflow.name.as_str())
                        })
                    })
                    .filter(|i| {
                        workflow.stages_labelled(&i.labels).first().map(|s| &s.id)
                            == Some(&stage.id)
                    })
                    .map(|i| i.number)
                    .collect();
                Ok(std::sync::Arc::new(numbers))
            })
            .await
            .map_err(|e| anyhow::anyhow!(e))?;
        Ok(standing
            .iter()
            .copied()
            .filter(|n| *n != m.issue.number)
            .collect())
    }

    /// The open issues of `workflow`'s tracking labels (those of other workflows too), with
    /// the labels they have now. Never a list by a stage's label: through the Store's cache
    /// (`tracker::cached`) a list is brought up to date with the issues changed since it was
    /// read that still have its labels, so an issue that has left the stage since would
    /// stay in it as it was (a migration that moved on from `prep` to the limited stage
    /// would be counted twice, and a slot lost). An issue keeps its tracking labels.
    async fn workflow_issues(
        &self,
        workflow: &Workflow,
    ) -> Result<Vec<crate::tracker::Issue>, crate::tracker::TrackerError> {
        let mut labels = workflow.tracking.labels.clone();
        labels.sort();
        self.tracker.list_issues(StateFilter::Open, &labels).await
    }

    /// For the statuses of a report or `plan`: the slots of the limited stages each
    /// migration's stage leads to, with the migrations standing there taken from `index`
    /// (the list just read), put in the snapshot's portfolio.
    pub(crate) async fn slots_from_index(
        &self,
        workflow: &Workflow,
        m: &Migration,
        index: &[Migration],
        snapshot: &mut crate::core::snapshot::Snapshot,
    ) {
        for stage in limited_next(workflow, &m.issue.labels) {
            let taken_by: Vec<u64> = index
                .iter()
                .filter(|o| o.issue.open && o.issue.number != m.issue.number)
                .filter(|o| o.marker.workflow.as_deref() == Some(workflow.name.as_str()))
                .filter(|o| {
                    workflow
                        .stages_labelled(&o.issue.labels)
                        .first()
                        .map(|s| &s.id)
                        == Some(&stage.id)
                })
                .map(|o| o.issue.number)
                .collect();
            let limit = stage.pacing.limit.unwrap_or(u32::MAX) as usize;
            let line = self.line(workflow, stage).await;
            let slots = grant(limit, taken_by, &line, m, self.now());
            snapshot.portfolio.slots.insert(stage.id.clone(), slots);
        }
    }

    /// Keeps `m`'s place in `stage`'s line while it waits, and gives it up otherwise.
    pub(crate) async fn note_waiting(
        &self,
        workflow: &Workflow,
        stage: &Stage,
        m: &Migration,
        waiting: bool,
    ) -> Result<()> {
        let now = self.now();
        let mut line = self.line(workflow, stage).await;
        let before = line.len();
        let earlier = line.iter().position(|w| w.number == m.issue.number);
        if !waiting && earlier.is_none() {
            return Ok(());
        }
        let kept = earlier.map(|i| line.remove(i));
        line.retain(|w| now.signed_duration_since(w.seen) < Duration::minutes(FORGOTTEN_AFTER));
        if waiting {
            line.push(Waiter {
                number: m.issue.number,
                priority: m.issue.labels.iter().any(|l| l == PRIORITY_LABEL),
                since: kept.map_or(now, |w| w.since),
                seen: now,
            });
        }
        if line.len() == before && !waiting {
            return Ok(());
        }
        let text = serde_json::to_string(&line)?;
        self.store
            .cache_put(&self.slot_key(workflow, stage), &text, "1")
            .await?;
        Ok(())
    }

    /// Drops from every line the migrations `index` (the open ones) no longer holds in a
    /// stage that leads to the line's stage (closed, moved on or elsewhere), and gives
    /// each place the priority its migration's labels say now, before any is looked at.
    /// The places of those still before the stage are seen again (when half their time
    /// is up): a run that finds them where they waited keeps their order, however long
    /// it was since the last run (a weekend's freeze on the rehearsal clock).
    pub(crate) async fn prune_lines(&self, index: &[Migration], dry_run: bool) -> Result<()> {
        if dry_run {
            return Ok(());
        }
        for workflow in self.catalog.workflows.values() {
            for stage in workflow.stages.iter().filter(|s| s.pacing.limit.is_some()) {
                let line = self.line(workflow, stage).await;
                let open = |number: u64| index.iter().find(|m| m.issue.number == number);
                let before_it = |number: u64| {
                    open(number).is_some_and(|m| {
                        m.issue.open
                            && workflow
                                .stages_labelled(&m.issue.labels)
                                .first()
                                .is_some_and(|here| here.next.iter().any(|e| e.to == stage.id))
                    })
                };
                // A place's priority as the migration's labels say now.
                let priority = |number: u64| {
                    open(number).is_some_and(|m| m.issue.labels.iter().any(|l| l == PRIORITY_LABEL))
                };
                let now = self.now();
                let fresh = |w: &Waiter| {
                    now.signed_duration_since(w.seen) < Duration::minutes(FORGOTTEN_AFTER / 2)
                };
                let kept = |line: &[Waiter]| {
                    line.iter().all(|w| {
                        before_it(w.number) && w.priority == priority(w.number) && fresh(w)
                    })
                };
                if kept(&line) {
                    continue;
                }
                let key = self.slot_key(workflow, stage);
                let what = slots_of(workflow, stage);
                let work = async {
                    let mut line = self.line(workflow, stage).await;
                    line.retain(|w| before_it(w.number));
                    for w in &mut line {
                        w.priority = priority(w.number);
                        w.seen = w.seen.max(now);
                    }
                    let text = serde_json::to_string(&line)?;
                    self.store.cache_put(&key, &text, "1").await?;
                    Ok(())
                };
                self.leased_on(&key, &what, std::time::Duration::from_secs(2), work)
                    .await?;
            }
        }
        Ok(())
    }

    /// Whether `number` holds a place in `stage`'s line.
    pub(crate) async fn in_line(&self, workflow: &Workflow, stage: &Stage, number: u64) -> bool {
        self.line(workflow, stage)
            .await
            .iter()
            .any(|w| w.number == number)
    }

    async fn line(&self, workflow: &Workflow, stage: &Stage) -> Vec<Waiter> {
        match self.store.cache_get(&self.slot_key(workflow, stage)).await {
            Ok(Some(c)) => serde_json::from_str(&c.value).unwrap_or_default(),
            Ok(None) => Vec::new(),
            Err(e) => {
                tracing::warn!(
                    "reading the line for {} of {}: {e}",
                    stage.id,
                    workflow.name
                );
                Vec::new()
            }
        }
    }
}

/// The slots as `m` sees them: those taken, and the migrations ahead of it in line that
/// are not in the stage already and were seen waiting lately.
fn grant(
    limit: usize,
    mut taken_by: Vec<u64>,
    line: &[Waiter],
    m: &Migration,
    now: DateTime<Utc>,
) -> Slots {
    taken_by.sort_unstable();
    let mine = rank(m, line.iter().find(|w| w.number == m.issue.number), now);
    let ahead: Vec<u64> = line
        .iter()
        .filter(|w| w.number != m.issue.number && !taken_by.contains(&w.number))
        .filter(|w| now.signed_duration_since(w.seen) < Duration::minutes(FORGOTTEN_AFTER))
        .filter(|w| (!w.priority, w.since, w.number) < mine)
        .map(|w| w.number)
        .collect();
    Slots {
        granted: taken_by.len() + ahead.len() < limit,
        taken_by,
        ahead,
    }
}

/// Where `m` stands in line: priority first, then the longest wait, then the number.
fn rank(m: &Migration, kept: Option<&Waiter>, now: DateTime<Utc>) -> (bool, DateTime<Utc>, u64) {
    let priority = m.issue.labels.iter().any(|l| l == PRIORITY_LABEL);
    (!priority, kept.map_or(now, |w| w.since), m.issue.number)
}

impl Engine<'_> {
    /// After a reconcile: where this run moved migrations out of a limited stage, those
    /// that waited for a slot there in the same run (looked at before the slot was freed)
    /// get another look, in order, so a freed slot is taken in the run that freed it (none
    /// in a dry run).
    pub(crate) async fn fill_freed_slots(&self, out: &mut super::Reconciled, dry_run: bool) {
        if dry_run {
            return;
        }
        let freed: std::collections::BTreeSet<&str> = out
            .migrations
            .iter()
            .filter(|a| {
                let Ok(w) = self.catalog.workflow(&a.workflow) else {
                    return false;
                };
                a.transitions.iter().any(|t| {
                    t.from
                        .as_deref()
                        .and_then(|f| w.stage(f))
                        .is_some_and(|s| s.pacing.limit.is_some())
                })
            })
            .map(|a| a.workflow.as_str())
            .collect();
        let again: Vec<(usize, u64)> = out
            .migrations
            .iter()
            .enumerate()
            .filter(|(_, a)| freed.contains(a.workflow.as_str()) && waits(&a.blocked_by))
            .map(|(i, a)| (i, a.number))
            .collect();
        for (i, number) in again {
            match self.advance(number, false).await {
                Ok(mut a) => {
                    let mut earlier = std::mem::take(&mut out.migrations[i].transitions);
                    earlier.append(&mut a.transitions);
                    a.transitions = earlier;
                    out.migrations[i] = a;
                }
                Err(e) => tracing::warn!("#{number}, looked at again for a freed slot: {e:#}"),
            }
        }
    }
}

fn waits(blocked_by: &[crate::core::gates::GateReport]) -> bool {
    blocked_by.iter().any(|r| r.gate == "slot")
}

impl Engine<'_> {
    /// For a status: the slots of the limited stages `m`'s stage leads to, put in the
    /// snapshot's portfolio when its gates hold (a look, under no lease), so the status
    /// says what it waits for.
    pub(crate) async fn look_at_slots(
        &self,
        workflow: &Workflow,
        m: &Migration,
        snapshot: &mut crate::core::snapshot::Snapshot,
        gates: &[crate::core::gates::GateReport],
    ) -> Result<()> {
        if !gates.iter().all(|g| g.passed) {
            return Ok(());
        }
        for stage in limited_next(workflow, &m.issue.labels) {
            let slots = self.slots(workflow, stage, m).await?;
            snapshot.portfolio.slots.insert(stage.id.clone(), slots);
        }
        Ok(())
    }
}

impl Engine<'_> {
    /// Through the tracker, after posting `mine` (the audit comment of a move into the
    /// limited `stage`): whether the move may take a slot — fewer than `limit` open
    /// migrations of the workflow stand there, counting the entries other runs claimed
    /// before this one (their audit comment into `stage`, posted before `mine`, is their
    /// last, and their move is not made yet). Runs that share no Store agree this way, as
    /// they do on a transition's claim: of two that want the last slot, the earlier comment
    /// wins. `Some` says why the slot is not this move's.
    pub(crate) async fn slot_taken(
        &self,
        workflow: &Workflow,
        stage: &Stage,
        number: u64,
        mine: u64,
    ) -> Result<Option<String>> {
        let Some(limit) = stage.pacing.limit else {
            return Ok(None);
        };
        let standing = |labels: &[String], id: &str| {
            workflow
                .stages_labelled(labels)
                .first()
                .map(|s| s.id.as_str())
                == Some(id)
        };
        let of_workflow = |i: &crate::tracker::Issue| {
            i.number != number
                && crate::core::marker::IssueMarker::find(&i.body)
                    .is_some_and(|mk| mk.workflow.as_deref() == Some(workflow.name.as_str()))
        };
        let issues: Vec<crate::tracker::Issue> = self
            .workflow_issues(workflow)
            .await?
            .into_iter()
            .filter(of_workflow)
            .collect();
        let mut taken: Vec<u64> = issues
            .iter()
            .filter(|i| standing(&i.labels, &stage.id))
            .map(|i| i.number)
            .collect();
        let sources: Vec<&str> = workflow
            .stages
            .iter()
            .filter(|s| s.next.iter().chain(&s.exits).any(|e| e.to == stage.id) && s.id != stage.id)
            .map(|s| s.id.as_str())
            .collect();
        for issue in &issues {
            if !sources.iter().any(|s| standing(&issue.labels, s)) || issue.comment_count == Some(0)
            {
                continue;
            }
            let comments = self.tracker.comments(issue.number).await?;
            let last = comments
                .iter()
                .filter_map(|c| Some((c.id, TransitionMarker::find(&c.body)?)))
                .max_by_key(|(_, t)| t.seq);
            if let Some((id, t)) = last {
                if t.to == stage.id && !t.rollback && id < mine {
                    taken.push(issue.number);
                }
            }
        }
        if taken.len() < limit as usize {
            return Ok(None);
        }
        taken.sort_unstable();
        let refs: Vec<String> = taken.iter().map(|n| format!("#{n}")).collect();
        Ok(Some(format!(
            "the slots of {} ({limit}) were taken meanwhile by {}",
            stage.id,
            refs.join(", ")
        )))
    }
}
