//! Views of migrations: `status`, `history`, the statuses a report is built from, and the
//! one summary issue of `report --publish`.

use std::collections::HashMap;

use anyhow::Result;

use super::lease::{Leased, LEASE_WAIT};
use super::{Engine, Kin, Migration, SUMMARY_LABEL, SUMMARY_MARKER};
use crate::core::machine::PAUSED_LABEL;
use crate::core::marker::{PauseMarker, TransitionMarker};
use crate::core::report::{self, Status};
use crate::core::workflow::{Gate, Workflow};
use crate::tracker::{label_spec, NewIssue, StateFilter};

impl<'a> Engine<'a> {
    /// The transitions of one migration, from its audit comments.
    pub async fn history(
        &self,
        number: u64,
    ) -> Result<(Vec<report::HistoryEntry>, Vec<crate::core::events::Event>)> {
        let (m, workflow) = self.migration(number).await?;
        // History is the audit comments; label history is not needed.
        let (snapshot, comments) = self
            .snapshot(&m, workflow, &[], true, Some(Vec::new()))
            .await?;
        let events =
            crate::core::events::events(comments.iter().map(|c| (c.created_at, c.body.as_str())));
        Ok((report::history(&snapshot), events))
    }

    /// The status of one migration.
    pub async fn status(&self, number: u64) -> Result<Status> {
        let index = self.local_index(number).await?;
        let m = &index[0];
        let workflow = self.workflow_of(m)?;
        let kin = Kin::new(&index);
        let (mut snapshot, comments) = self
            .snapshot(
                m,
                workflow,
                kin.children(number),
                true,
                events_unless_needed(m, workflow),
            )
            .await?;
        self.answer_drift(workflow, &mut snapshot).await;
        let mut status = report::status(workflow, &snapshot, m.marker.parent, self.now());
        self.look_at_slots(workflow, m, &mut snapshot, &status.gates)
            .await?;
        status.waiting = waiting(workflow, &snapshot, &status.gates, self.now());
        status.history = None;
        mark_paused(
            &mut status,
            &m.issue.labels,
            &comments,
            &snapshot.label_events,
        );
        let key = self.lease_key(number);
        status.failing = self
            .store
            .failures()
            .await?
            .into_iter()
            .find(|f| f.key == key)
            .map(|f| f.error);
        Ok(status)
    }

    /// Statuses (with history) of the migrations in `index` that `filter` keeps, open ones
    /// unless `closed`. Reading history costs a request per migration on remote trackers;
    /// they run with bounded concurrency.
    pub async fn statuses(
        &self,
        index: &[Migration],
        closed: bool,
        filter: &report::Filter,
    ) -> Result<Vec<Status>> {
        self.statuses_shown(index, closed, filter, &HashMap::new())
            .await
    }

    /// `statuses` for a page: the comments of a migration that `seen` holds as an advance
    /// of this process left it are taken from there, not read again, while the issue is
    /// still as that advance's last write left it (its `updated_at` unchanged, on a
    /// tracker whose versions change with every write). Only for display: what a
    /// decision reads never comes from here.
    pub async fn statuses_shown(
        &self,
        index: &[Migration],
        closed: bool,
        filter: &report::Filter,
        seen: &HashMap<u64, super::Seen>,
    ) -> Result<Vec<Status>> {
        use futures::stream::{self, StreamExt, TryStreamExt};
        let exact = self.tracker.versions() == crate::tracker::Versions::EveryWrite;
        let shown = |m: &Migration| {
            seen.get(&m.issue.number)
                .filter(|s| exact && s.issue.updated_at == m.issue.updated_at)
                .map(|s| s.comments.clone())
        };
        let wanted: Vec<(&Migration, &Workflow)> = index
            .iter()
            .filter(|m| closed || m.issue.open)
            .filter(|m| filter.labels.iter().all(|l| m.issue.labels.contains(l)))
            .filter_map(|m| {
                Some((
                    m,
                    m.marker
                        .workflow
                        .as_deref()
                        .and_then(|w| self.catalog.workflows.get(w))?,
                ))
            })
            .filter(|(m, w)| {
                let stage = w
                    .stages_labelled(&m.issue.labels)
                    .first()
                    .map(|s| s.id.clone());
                (filter.workflows.is_empty() || filter.workflows.contains(&w.name))
                    && (filter.stages.is_empty()
                        || stage.is_some_and(|s| filter.stages.contains(&s)))
            })
            .collect();
        let kin = Kin::new(index);
        let kin = &kin;
        let failures: std::collections::HashMap<String, String> = self
            .store
            .failures()
            .await?
            .into_iter()
            .map(|f| (f.key, f.error))
            .collect();
        let failures = &failures;
        self.progress.start(wanted.len());
        // Parsing each migration's checklists is the bulk of the pure work: done first, on
        // every core, for the reads and the decisions below to find.
        super::on_every_core(&wanted, |(m, workflow)| parse_checklists(m, workflow));
        // Reading is I/O and runs concurrently; deciding each status is pure work and is
        // spread over the machine's cores.
        // Where the tracker reads every comment at once more cheaply (a local file), it does.
        let numbers: Vec<u64> = wanted.iter().map(|(m, _)| m.issue.number).collect();
        let known = std::sync::Mutex::new(self.tracker.comments_of(&numbers).await?);
        let known = &known;
        let read: Vec<Read> = stream::iter(wanted)
            .map(|(m, workflow)| async move {
                // One request per migration: its comments (none when it has none), and its
                // label history only where they cannot tell what the status needs.
                let comments = shown(m).or_else(|| {
                    known
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .as_mut()
                        .map(|all| all.remove(&m.issue.number).unwrap_or_default())
                });
                let (mut snapshot, comments) = self
                    .snapshot_with(
                        m,
                        workflow,
                        kin.children(m.issue.number),
                        true,
                        comments,
                        Some(Vec::new()),
                    )
                    .await?;
                if history_needed(m, workflow, &snapshot, &comments) {
                    snapshot.label_events =
                        self.label_history(m, workflow, Some(&comments)).await?;
                }
                self.answer_drift(workflow, &mut snapshot).await;
                self.slots_from_index(workflow, m, index, &mut snapshot)
                    .await;
                self.progress.inc();
                Ok::<_, anyhow::Error>(Read {
                    m,
                    workflow,
                    snapshot,
                    comments,
                })
            })
            .buffer_unordered(self.in_flight())
            .try_collect()
            .await?;
        let now = self.now();
        let decide = |r: &Read| {
            let mut status = report::status(r.workflow, &r.snapshot, r.m.marker.parent, now);
            status.waiting = waiting(r.workflow, &r.snapshot, &status.gates, now);
            status.history = Some(report::history(&r.snapshot));
            status.events = beside_history(&r.comments);
            mark_paused(
                &mut status,
                &r.m.issue.labels,
                &r.comments,
                &r.snapshot.label_events,
            );
            status.failing = failures.get(&self.lease_key(r.m.issue.number)).cloned();
            status
        };
        let mut out = super::on_every_core(&read, decide);
        self.progress.finish();
        out.sort_by_key(|s| s.number);
        Ok(out)
    }

    /// Creates or updates the one summary issue (found by its label and marker) with
    /// `markdown`. Returns its number and whether it was created.
    /// Holds the summary's lease, so that several `report --publish` at once make one.
    pub async fn publish(&self, markdown: &str) -> Result<(u64, bool)> {
        let key = format!("{}#summary", self.tracker.describe());
        match self
            .leased_on(
                &key,
                "the summary issue",
                LEASE_WAIT,
                self.publish_unleased(markdown),
            )
            .await?
        {
            Leased::Done(out) => Ok(out),
            Leased::Busy(who) => anyhow::bail!("{who}; try again in a moment"),
        }
    }

    async fn publish_unleased(&self, markdown: &str) -> Result<(u64, bool)> {
        let label = SUMMARY_LABEL.to_string();
        let body = format!(
            "{}\n\n_shepherd rewrites this issue on every `shepherd report --publish`; comment below instead of editing it._\n\n{SUMMARY_MARKER}\n",
            markdown.trim_end()
        );
        let existing = self
            .tracker
            .list_issues(StateFilter::All, std::slice::from_ref(&label))
            .await?
            .into_iter()
            .filter(|i| i.body.contains(SUMMARY_MARKER))
            .min_by_key(|i| i.number);
        match existing {
            Some(issue) => {
                if issue.body != body {
                    self.tracker.update_body(issue.number, &body).await?;
                }
                if !issue.open {
                    self.tracker.set_open(issue.number, true).await?;
                }
                Ok((issue.number, false))
            }
            None => {
                self.tracker
                    .ensure_labels(&[label_spec(&label, "shepherd: the migration status summary")])
                    .await?;
                let issue = self
                    .tracker
                    .create_issue(&NewIssue {
                        title: "shepherd: where every migration stands".into(),
                        body,
                        labels: vec![label],
                    })
                    .await?;
                Ok((issue.number, true))
            }
        }
    }
}

/// Label history costs a request on remote trackers: a status reads it only when the
/// migration's stage has a gate that looks at it (soak, approval); otherwise the stage's
/// entry time comes from the audit comments.
fn events_unless_needed(
    m: &Migration,
    workflow: &Workflow,
) -> Option<Vec<crate::core::snapshot::LabelEvent>> {
    let needs = workflow
        .stages_labelled(&m.issue.labels)
        .first()
        .is_none_or(|s| s.needs_label_history() || s.checks_labels() || s.pacing.target.is_some());
    (!needs).then(Vec::new)
}

/// One migration as read for its status.
struct Read<'m, 'w> {
    m: &'m Migration,
    workflow: &'w Workflow,
    snapshot: crate::core::snapshot::Snapshot,
    comments: Vec<crate::tracker::Comment>,
}

/// Whether a status needs the label history beyond the comments already read: who set an
/// approval label that is on, when a stage with a soak was entered (unless an audit
/// comment says), who paused it (unless a comment says), when a label a gate wants was
/// set (after a rollback), or a migration with no stage.
fn history_needed(
    m: &Migration,
    workflow: &Workflow,
    snapshot: &crate::core::snapshot::Snapshot,
    comments: &[crate::tracker::Comment],
) -> bool {
    use crate::core::workflow::Gate;
    let labels = &m.issue.labels;
    let Some(stage) = workflow.stages_labelled(labels).first().copied() else {
        return true;
    };
    let paused_unexplained = labels.iter().any(|l| l == PAUSED_LABEL)
        && !comments.iter().any(|c| {
            PauseMarker::find(&c.body).is_some()
                || TransitionMarker::find(&c.body).is_some_and(|t| t.rollback)
        });
    let entered_by_record = snapshot.transitions.iter().any(|t| t.to == stage.id);
    let rolled_back = snapshot.evidence_since().is_some();
    // Whether a stay is overdue needs its entry, where no audit comment records it.
    let mut needed = paused_unexplained || (stage.pacing.target.is_some() && !entered_by_record);
    for gate in stage.all_gates() {
        gate.visit(&mut |g| match g {
            Gate::Approval { label, .. } => needed |= labels.contains(label),
            Gate::MinDuration(_) => needed |= !entered_by_record,
            // After a rollback, only a label set since counts.
            Gate::Label {
                name,
                child: None,
                present: true,
            } => needed |= rolled_back && labels.contains(name),
            _ => {}
        });
    }
    needed
}

/// Whether the migration is paused, by whom and why: the newest pause comment while the
/// label is on, else whoever added the label (a person in the tracker's own UI).
fn mark_paused(
    status: &mut Status,
    labels: &[String],
    comments: &[crate::tracker::Comment],
    events: &[crate::core::snapshot::LabelEvent],
) {
    status.paused = labels.iter().any(|l| l == PAUSED_LABEL);
    if !status.paused {
        return;
    }
    if let Some((p, at)) = comments
        .iter()
        .rev()
        .find_map(|c| Some((PauseMarker::find(&c.body)?, c.created_at)))
        .filter(|(p, _)| p.paused)
    {
        status.paused_by = Some(p.by);
        status.paused_reason = Some(p.reason).filter(|r| !r.is_empty());
        status.paused_at = Some(at);
        return;
    }
    if let Some((rb, at)) = comments.iter().rev().find_map(|c| {
        Some((
            TransitionMarker::find(&c.body).filter(|t| t.rollback)?,
            c.created_at,
        ))
    }) {
        status.paused_by = Some(rb.by);
        status.paused_reason = rb.reason.map(|r| format!("rolled back: {r}"));
        status.paused_at = Some(at);
        return;
    }
    if let Some(e) = events
        .iter()
        .rev()
        .find(|e| e.added && e.label == PAUSED_LABEL)
    {
        status.paused_by = Some(e.actor.clone());
        status.paused_at = Some(e.at);
    }
}

/// Makes the copy of `m`'s body its snapshots share, and parses the sections the
/// checklist gates of its stage look at into its memo.
fn parse_checklists(m: &Migration, workflow: &Workflow) {
    let body = m.shared_body();
    let Some(stage) = workflow.stages_labelled(&m.issue.labels).first().copied() else {
        return;
    };
    for gate in stage.all_gates() {
        gate.visit(&mut |g| {
            if let Gate::Checklist(c) = g {
                if c.child.is_none() {
                    m.checklists.items(&body, c.section.as_deref());
                }
            }
        });
    }
}

/// Why a migration whose gates hold does not move on yet (a freeze, a slot, a dependency):
/// the waits among the reasons its plan stops for. The plan is made only where one can
/// be: the portfolio holds something back, or a gate of the stage is a wait (`after`).
fn waiting(
    workflow: &Workflow,
    snapshot: &crate::core::snapshot::Snapshot,
    gates: &[crate::core::gates::GateReport],
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<crate::core::portfolio::Waiting> {
    use crate::core::portfolio::{Portfolio, WaitKind};
    let gated = gates.iter().any(|g| WaitKind::of_gate(&g.gate).is_some());
    if snapshot.portfolio == Portfolio::default() && !gated {
        return Vec::new();
    }
    let plan = crate::core::machine::plan(workflow, snapshot, now);
    crate::core::portfolio::waiting(&plan.blocked_by)
}

/// What `comments` record beside the transitions a status's `history` lists: pauses,
/// resumes and comment commands, oldest first.
fn beside_history(comments: &[crate::tracker::Comment]) -> Vec<crate::core::events::Event> {
    crate::core::events::events(comments.iter().map(|c| (c.created_at, c.body.as_str())))
        .into_iter()
        .filter(|e| !matches!(e.kind, "transition" | "rollback"))
        .collect()
}
