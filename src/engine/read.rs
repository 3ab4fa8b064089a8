//! Snapshots: what a migration looks like now — its tracking issue, children, audit
//! comments (the transitions) and label history — read from the tracker.

use anyhow::Result;

use super::{Engine, Migration};
use crate::core::command::{self, Said};
use crate::core::marker::TransitionMarker;
use crate::core::questions::questions;
use crate::core::snapshot::{Child, ChildStage, LabelEvent, Snapshot, TransitionRecord};
use crate::core::workflow::Workflow;
use crate::tracker::Comment;

impl<'a> Engine<'a> {
    /// The cheapest look at a migration: no comments and no label history
    /// (`Snapshot::history_unread`: the gates that need it are taken as holding): a plan
    /// made from it that moves nothing is final; one that moves must look again. With
    /// `fresh_reads`, a whole read instead.
    pub async fn glance(
        &self,
        m: &Migration,
        workflow: &Workflow,
        kids: &[&Migration],
    ) -> Result<Snapshot> {
        if self.fresh_reads {
            return Ok(self.snapshot(m, workflow, kids, true, None).await?.0);
        }
        let (mut snapshot, _) = self
            .snapshot_unanswered(m, workflow, kids, false, None, Some(Vec::new()))
            .await?;
        snapshot.history_unread = true;
        self.answer(workflow, &mut snapshot, self.now()).await;
        Ok(snapshot)
    }

    /// The glance, when it needs no request: the children its stage looks at are all among
    /// `kids`. `None` when the tracker must be asked.
    pub(crate) fn glance_known(
        &self,
        m: &Migration,
        workflow: &Workflow,
        kids: &[&Migration],
    ) -> Option<Snapshot> {
        let stage = workflow.stages_labelled(&m.issue.labels).first().copied();
        if self.fresh_reads || lacks_children(stage, kids) {
            return None;
        }
        let mut snapshot = self.build(m, kids, &[], Vec::new());
        snapshot.history_unread = true;
        // Facts to ask for take requests too.
        questions(workflow, &snapshot, self.now())
            .is_empty()
            .then_some(snapshot)
    }

    /// Builds the snapshot of a migration. `kids` are the children already known (from
    /// the index); the tracker is asked for more only when the current stage's gates look
    /// at a child they lack. Comments (the transitions) and label history cost a request
    /// each on remote trackers: they are fetched when `full`, and label history when the
    /// stage needs it — unless `events` brings them from an earlier look of this advance.
    pub async fn snapshot(
        &self,
        m: &Migration,
        workflow: &Workflow,
        kids: &[&Migration],
        full: bool,
        events: Option<Vec<LabelEvent>>,
    ) -> Result<(Snapshot, Vec<Comment>)> {
        self.snapshot_with(m, workflow, kids, full, None, events)
            .await
    }

    /// `snapshot`, with the comments already read when `comments` brings them.
    pub(crate) async fn snapshot_with(
        &self,
        m: &Migration,
        workflow: &Workflow,
        kids: &[&Migration],
        full: bool,
        comments: Option<Vec<Comment>>,
        events: Option<Vec<LabelEvent>>,
    ) -> Result<(Snapshot, Vec<Comment>)> {
        let (mut snapshot, comments) = self
            .snapshot_unanswered(m, workflow, kids, full, comments, events)
            .await?;
        self.answer(workflow, &mut snapshot, self.now()).await;
        Ok((snapshot, comments))
    }

    /// The snapshot without the facts its gates ask for.
    async fn snapshot_unanswered(
        &self,
        m: &Migration,
        workflow: &Workflow,
        kids: &[&Migration],
        full: bool,
        comments: Option<Vec<Comment>>,
        events: Option<Vec<LabelEvent>>,
    ) -> Result<(Snapshot, Vec<Comment>)> {
        let number = m.issue.number;
        let stage = workflow.stages_labelled(&m.issue.labels).first().copied();
        let mut children: Vec<&Migration> = kids.to_vec();
        let fetched;
        if lacks_children(stage, kids) {
            fetched = self.children(number).await?;
            children = fetched.iter().collect();
        }
        // An issue its tracker lists with no comment has none to read.
        let comments = match comments {
            Some(known) => known,
            None if full && m.issue.comment_count != Some(0) => {
                self.tracker.comments(number).await?
            }
            None => Vec::new(),
        };
        let (label_events, read) = match events {
            Some(events) => (events, true),
            None if full || stage.is_some_and(|s| s.needs_label_history()) => {
                let read = (full && m.issue.comment_count != Some(0)).then_some(&comments[..]);
                (self.label_history(m, workflow, read).await?, true)
            }
            None => (Vec::new(), false),
        };
        let mut snapshot = self.build(m, &children, &comments, label_events);
        snapshot.history_unread = !read;
        snapshot.portfolio.frozen_until = self.frozen_until(workflow, self.now()).await?;
        Ok((snapshot, comments))
    }

    /// The label history of `m`, with the approvals given by comment command where it may
    /// lack them (`commands::may_lack_approvals`): only then are the comments read, unless
    /// the caller has them.
    pub(crate) async fn label_history(
        &self,
        m: &Migration,
        workflow: &Workflow,
        comments: Option<&[Comment]>,
    ) -> Result<Vec<LabelEvent>> {
        let mut events = self.tracker.label_events(m.issue.number).await?;
        if super::commands::may_lack_approvals(workflow, &events) {
            match comments {
                Some(known) => command::merge_approvals(&mut events, known.iter().map(Said::from)),
                None => {
                    let read = self.tracker.comments(m.issue.number).await?;
                    command::merge_approvals(&mut events, read.iter().map(Said::from));
                }
            }
        }
        Ok(events)
    }

    /// The snapshot from what was read: no request.
    fn build(
        &self,
        m: &Migration,
        children: &[&Migration],
        comments: &[Comment],
        label_events: Vec<LabelEvent>,
    ) -> Snapshot {
        let transitions = transitions_of(comments);
        let children = children
            .iter()
            .map(|c| Child {
                issue: c.view(),
                template: c.marker.template.clone().unwrap_or_default(),
                entry: c.marker.entry,
                stage: c
                    .marker
                    .workflow
                    .as_deref()
                    .and_then(|w| self.catalog.workflows.get(w))
                    .and_then(|w| {
                        w.stages_labelled(&c.issue.labels)
                            .first()
                            .map(|s| ChildStage {
                                id: s.id.clone(),
                                terminal: s.terminal,
                            })
                    }),
            })
            .collect();
        Snapshot {
            issue: m.view(),
            vars: m.marker.vars.clone(),
            label_events,
            history_unread: false,
            portfolio: Default::default(),
            facts: Default::default(),
            transitions,
            children,
        }
    }
}

/// Whether the gates of `stage` look at a child template none of `kids` was made from.
fn lacks_children(stage: Option<&crate::core::workflow::Stage>, kids: &[&Migration]) -> bool {
    let wanted = stage.map(|s| s.child_templates()).unwrap_or_default();
    wanted
        .iter()
        .any(|t| !kids.iter().any(|c| c.marker.template.as_deref() == Some(t)))
}

/// The transitions the audit comments record, by sequence number; of two comments for one
/// transition (a claim another run lost, not yet withdrawn), the first.
pub(crate) fn transitions_of(comments: &[Comment]) -> Vec<TransitionRecord> {
    let mut transitions: Vec<TransitionRecord> = Vec::new();
    for c in comments {
        if let Some(t) = TransitionMarker::find(&c.body) {
            if !transitions.iter().any(|x| x.seq == t.seq) {
                transitions.push(TransitionRecord {
                    seq: t.seq,
                    from: t.from,
                    to: t.to,
                    at: c.created_at,
                    by: c.author.clone(),
                    reason: t.reason,
                    rollback: t.rollback,
                    untick: t.untick,
                });
            }
        }
    }
    transitions.sort_by_key(|t| t.seq);
    transitions
}
