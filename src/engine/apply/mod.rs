//! Applying a plan: the audit comment (the intent), the on_enter actions (each found by its
//! marker before it is done again), then the stage label move (the commit).

use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};

mod child;
mod claim;

use child::Entry;
use claim::Claim;

use super::vars::check_renders;
use super::{Engine, Migration};
use crate::core::checklist::{self, ItemRef};
use crate::core::machine::{Plan, PlannedTransition, Step};
use crate::core::marker::{self, TransitionMarker};
use crate::core::snapshot::LabelEvent;
use crate::core::workflow::Workflow;
use crate::render::{Context, IssueRef};
use crate::tracker::{Comment, Issue, IssueEdit, LabelWrites};

/// What applying a plan did.
#[derive(Debug, Default)]
pub(crate) struct Applied {
    /// Child issues created (as their creation and fill-in left them), and whether each
    /// still has to enter the first stage of its own workflow.
    pub created: Vec<(Issue, bool)>,
    /// The tracking issue as the last write's response showed it.
    pub issue: Option<Issue>,
    /// Why this run deleted its own audit comment and left the migration alone.
    pub left: Option<LeftAlone>,
    /// The tracking issue's comments as this run last knew them: the claim's read-back
    /// and what it posted after.
    pub comments: Vec<Comment>,
}

/// What this run knows of the tracking issue while it applies a plan.
struct Writing {
    me: IssueRef,
    comments: Vec<Comment>,
    labels: Vec<String>,
    open: bool,
    /// When `labels` were read: the claim's read-back shows what changed since.
    as_of: DateTime<Utc>,
    /// The move writes the whole label set, so the read-back checks the labels.
    read_back: bool,
    /// This run posted the transition's audit comment and won the claim: no other run
    /// can have begun this entry, so nothing to look for before creating.
    claimed: bool,
    /// `labels` were checked against the tracker during this transition.
    checked: bool,
    applied: Applied,
}

/// What a marked on_enter comment says: the action's text, or a flag set.
enum Said<'p> {
    Text(&'p str),
    Flag(&'p crate::core::workflow::FlagAction),
}

/// Why a run left a migration after posting its audit comment (and deleted it again).
#[derive(Debug)]
pub(crate) enum LeftAlone {
    /// Another run recorded the same transition first: its run id.
    LostTo(String),
    /// A label changed after this run read the issue (what changed, e.g. "+shepherd::paused").
    LabelsChanged(String),
    /// The stage's slots were taken by runs that share no Store with this one (why).
    NoSlot(String),
}

impl LeftAlone {
    /// Why, for the report of migration `number`.
    pub fn why(&self, number: u64) -> String {
        match self {
            LeftAlone::LostTo(winner) => {
                format!("another shepherd ({winner}) is moving #{number}; left to it")
            }
            LeftAlone::LabelsChanged(what) => format!(
                "#{number}'s labels changed while this run moved it ({what}); the next run decides again"
            ),
            LeftAlone::NoSlot(why) => format!("#{number} waits: {why}"),
        }
    }
}

impl<'a> Engine<'a> {
    /// Applies a plan's steps in order.
    pub(crate) async fn apply(
        &self,
        m: &Migration,
        workflow: &Workflow,
        plan: &Plan,
        comments: &[Comment],
    ) -> Result<Applied> {
        for t in &plan.transitions {
            let stage = workflow.stage(&t.to).context("planned stage exists")?;
            check_renders(
                self.catalog,
                self.now(),
                workflow,
                &stage.on_enter,
                &m.marker.vars,
            )?;
        }
        self.ensure_labels(workflow).await?;
        let mut w = Writing {
            me: IssueRef {
                number: m.issue.number.to_string(),
                url: m.issue.url.clone(),
                title: m.issue.title.clone(),
            },
            comments: comments.to_vec(),
            labels: m.issue.labels.clone(),
            open: m.issue.open,
            as_of: m.issue.updated_at,
            read_back: self.tracker.label_writes() == LabelWrites::ReadBack,
            claimed: false,
            checked: false,
            applied: Applied::default(),
        };
        for t in &plan.transitions {
            w.claimed = false;
            w.checked = false;
            if !self.resumed_has_a_slot(m, workflow, t, &mut w).await? {
                return Ok(w.applied);
            }
            for step in &t.steps {
                let go_on = match step {
                    Step::Audit => {
                        let go_on = self.audit_step(m, workflow, t, &mut w).await?;
                        if go_on {
                            // Recorded and this run's to finish: its event, before the
                            // label move (a rerun that finishes it puts the same id).
                            self.notify_transition(m, workflow, t, &w.comments).await?;
                        }
                        go_on
                    }
                    Step::Untick => {
                        self.untick(m.issue.number, &t.untick).await?;
                        true
                    }
                    Step::CreateIssue {
                        template,
                        workflow: child_workflow,
                    } => {
                        self.create_step(m, t, template, child_workflow.as_deref(), &mut w)
                            .await?;
                        true
                    }
                    Step::Comment { index, text } => {
                        self.comment_step(m, t, *index, Said::Text(text), &mut w)
                            .await?;
                        true
                    }
                    Step::FeatureFlag { index, flag } => {
                        self.comment_step(m, t, *index, Said::Flag(flag), &mut w)
                            .await?;
                        true
                    }
                    Step::MoveStage { remove, add, open } => {
                        self.move_step(m.issue.number, remove, add, *open, &mut w)
                            .await?;
                        true
                    }
                };
                if !go_on {
                    return Ok(w.applied);
                }
            }
        }
        w.applied.comments = w.comments;
        self.note_looked(&w.applied);
        Ok(w.applied)
    }

    /// Whether a resumed entry into a limited stage may be finished. A run that claimed it
    /// may have died before its slot check: it is finished only while the stage has room
    /// for it, counting the claims made before it. Otherwise the claim stays and keeps its
    /// place, and a later run finishes it once a slot is free (`w.applied.left` says so).
    async fn resumed_has_a_slot(
        &self,
        m: &Migration,
        workflow: &Workflow,
        t: &PlannedTransition,
        w: &mut Writing,
    ) -> Result<bool> {
        let limited = workflow.stage(&t.to).filter(|s| s.pacing.limit.is_some());
        let Some(stage) = limited.filter(|_| t.resumed && !t.rollback) else {
            return Ok(true);
        };
        let Some(claim) = record_of(&w.comments, t.seq) else {
            return Ok(true);
        };
        let taken = self
            .slot_taken(workflow, stage, m.issue.number, claim.id)
            .await?;
        match taken {
            Some(why) => {
                w.applied.left = Some(LeftAlone::NoSlot(why));
                Ok(false)
            }
            None => Ok(true),
        }
    }

    /// The audit comment of transition `t` (the intent), with the stage's on_enter
    /// comments riding along, unless it is there already; then the claim. Returns whether
    /// the transition goes on (false: this run left the migration alone, `w.applied.left`
    /// says why).
    async fn audit_step(
        &self,
        m: &Migration,
        workflow: &Workflow,
        t: &PlannedTransition,
        w: &mut Writing,
    ) -> Result<bool> {
        let number = m.issue.number;
        if record_of(&w.comments, t.seq).is_some() {
            return Ok(true);
        }
        // The stage's on_enter comments ride along, each with its own marker: one
        // comment, and the Comment steps find them done.
        let mut along = Vec::new();
        for step in &t.steps {
            if let Step::Comment { index, text } = step {
                along.push(self.on_enter_comment(m, &w.me, t, *index, text)?);
            }
        }
        let mine = self
            .tracker
            .add_comment(number, &self.audit_comment(workflow, t, &along))
            .await?;
        match self.claim(number, t.seq, &mine).await? {
            Claim::Won(back) => {
                w.comments = back.comments;
                w.claimed = true;
                let limited = workflow.stage(&t.to).filter(|s| s.pacing.limit.is_some());
                if let Some(stage) = limited.filter(|_| !t.rollback && !t.resumed) {
                    if let Some(why) = self.slot_taken(workflow, stage, number, mine.id).await? {
                        self.withdraw(number, &mine).await?;
                        w.applied.left = Some(LeftAlone::NoSlot(why));
                        return Ok(false);
                    }
                }
                if w.read_back {
                    if let Some(what) = labels_changed(&w.labels, &back.label_events, w.as_of) {
                        self.withdraw(number, &mine).await?;
                        w.applied.left = Some(LeftAlone::LabelsChanged(what));
                        return Ok(false);
                    }
                    w.checked = true;
                }
                Ok(true)
            }
            Claim::Lost(winner) => {
                w.applied.left = Some(LeftAlone::LostTo(winner));
                Ok(false)
            }
        }
    }

    /// A `create_issue` action of transition `t`: the child, unless this entry made it.
    async fn create_step(
        &self,
        m: &Migration,
        t: &PlannedTransition,
        template: &str,
        child_workflow: Option<&str>,
        w: &mut Writing,
    ) -> Result<()> {
        let since = (!w.claimed)
            .then(|| entry_time(&w.comments, t.seq))
            .flatten();
        let entry = Entry {
            seq: t.seq,
            claimed: w.claimed,
            since,
            again: entered_before(&w.comments, &t.to, t.seq),
        };
        if let Some(made) = self
            .create_child(m, &w.me, template, child_workflow, &entry)
            .await?
        {
            w.applied.created.push(made);
        }
        Ok(())
    }

    /// A `comment` or `feature_flag` action of transition `t`, found by its marker before
    /// it is done again; a flag is read first and written only where it differs, and its
    /// comment says what changed.
    async fn comment_step(
        &self,
        m: &Migration,
        t: &PlannedTransition,
        index: usize,
        said: Said<'_>,
        w: &mut Writing,
    ) -> Result<()> {
        let mark = marker::action_marker(t.seq, index);
        if w.comments
            .iter()
            .any(|c| marker::has_action_marker(&c.body, &mark))
        {
            return Ok(());
        }
        let text = match said {
            Said::Text(text) => self.on_enter_comment(m, &w.me, t, index, text)?,
            Said::Flag(flag) => format!("{}\n\n{mark}", self.set_flag(m, flag).await?),
        };
        let posted = self.tracker.add_comment(m.issue.number, &text).await?;
        w.comments.push(posted);
        Ok(())
    }

    /// The stage label move (the commit), with the stage's label actions and a close: one
    /// edit of what differs from the labels as this run knows them.
    async fn move_step(
        &self,
        number: u64,
        remove: &[String],
        add: &[String],
        want: Option<bool>,
        w: &mut Writing,
    ) -> Result<()> {
        if w.read_back && !w.checked {
            // No read-back this transition (it resumes an entry an earlier run recorded):
            // the labels as they are now.
            let issue = self.tracker.issue(number).await?;
            w.labels = issue.labels;
            w.open = issue.open;
            w.as_of = issue.updated_at;
        }
        let edit = IssueEdit {
            current: w.labels.clone(),
            add: add
                .iter()
                .filter(|l| !w.labels.contains(l))
                .cloned()
                .collect(),
            remove: remove
                .iter()
                .filter(|l| w.labels.contains(l))
                .cloned()
                .collect(),
            open: want.filter(|o| *o != w.open),
        };
        if edit.add.is_empty() && edit.remove.is_empty() && edit.open.is_none() {
            return Ok(());
        }
        let issue = self.tracker.edit_issue(number, &edit).await?;
        w.labels = issue.labels.clone();
        w.open = issue.open;
        w.as_of = issue.updated_at;
        self.record_move(&issue).await;
        w.applied.issue = Some(issue);
        Ok(())
    }

    /// Unticks a rollback's `items` of the tracking issue in one edit of its body, read
    /// right before writing: only those boxes change, and one a person ticked since the
    /// rollback was recorded stays ticked.
    async fn untick(&self, number: u64, items: &[ItemRef]) -> Result<()> {
        let body = self.tracker.issue(number).await?.body;
        if let Some(unticked) = checklist::untick(&body, items) {
            self.tracker.update_body(number, &unticked).await?;
        }
        Ok(())
    }

    /// The `index`th on_enter comment of transition `t`, rendered, with its marker.
    fn on_enter_comment(
        &self,
        m: &Migration,
        me: &IssueRef,
        t: &PlannedTransition,
        index: usize,
        text: &str,
    ) -> Result<String> {
        let cx = Context {
            vars: &m.marker.vars,
            migration: Some(me.clone()),
            parent: None,
            issue: Some(me.clone()),
            now: self.now(),
        };
        let text = self.catalog.renderer.render_text(
            &format!("a comment of stage {}", t.to),
            text,
            &cx.to_value(),
        )?;
        let mark = marker::action_marker(t.seq, index);
        Ok(format!("{}\n\n{mark}", text.trim_end()))
    }

    /// The audit comment of transition `t`, with the on_enter comments that ride along.
    fn audit_comment(
        &self,
        workflow: &Workflow,
        t: &PlannedTransition,
        along: &[String],
    ) -> String {
        let label = |id: &str| {
            workflow
                .stage(id)
                .map(|s| format!("~\"{}\"", s.label))
                .unwrap_or_else(|| id.to_string())
        };
        let mut text = match (&t.from, t.rollback) {
            (None, _) => format!(
                "**shepherd** started this {} migration in {}.",
                workflow.name,
                label(&t.to)
            ),
            (Some(from), true) => format!(
                "**shepherd** rolled this migration back from {} to {}.",
                label(from),
                label(&t.to)
            ),
            (Some(from), false) => format!(
                "**shepherd** moved this migration from {} to {}.",
                label(from),
                label(&t.to)
            ),
        };
        if let Some(reason) = &t.reason {
            text.push_str(&format!(
                "\n\nReason: {}",
                crate::render::neutralize(reason)
            ));
        }
        if !t.passed.is_empty() {
            text.push_str("\n\nGates that held:\n");
            for g in &t.passed {
                text.push_str(&format!("\n- ✅ {} — {}", g.description, g.detail));
            }
        }
        if !t.untick.is_empty() {
            text.push_str("\n\nUnticked, to be checked again for this attempt:\n");
            for ItemRef(section, item) in &t.untick {
                let place = if section.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", crate::render::neutralize(section))
                };
                text.push_str(&format!(
                    "\n- [ ] {}{place}",
                    crate::render::neutralize(item)
                ));
            }
        }
        for comment in along {
            text.push_str("\n\n");
            text.push_str(comment);
        }
        let mark = TransitionMarker {
            seq: t.seq,
            from: t.from.clone(),
            to: t.to.clone(),
            by: t
                .command
                .as_ref()
                .map_or_else(|| self.actor.clone(), |c| c.by.clone()),
            reason: t.reason.clone(),
            rollback: t.rollback,
            run: Some(self.run_id.clone()),
            store: self.store_id.get().cloned(),
            untick: t.untick.clone(),
            command: t.command.as_ref().map(|c| c.id),
        };
        format!("{text}\n\n{}", mark.render())
    }
}

/// What changed in `labels` (read at `as_of`) by the label events after it, e.g.
/// "+shepherd::paused −db::rollout"; `None` when nothing did. The events from `as_of`'s
/// second on are played over `labels` in order: those `labels` already show change
/// nothing (a label set the way it already is), so the result is the labels as they are
/// now, and differs from `labels` only where someone changed one after the read.
fn labels_changed(
    labels: &[String],
    events: &[LabelEvent],
    as_of: DateTime<Utc>,
) -> Option<String> {
    let mut now: Vec<&str> = labels.iter().map(String::as_str).collect();
    for e in events
        .iter()
        .filter(|e| e.at.timestamp() >= as_of.timestamp())
    {
        now.retain(|l| *l != e.label);
        if e.added {
            now.push(&e.label);
        }
    }
    let added = now.iter().filter(|l| !labels.iter().any(|k| k == *l));
    let removed = labels.iter().filter(|k| !now.contains(&k.as_str()));
    let what: Vec<String> = added
        .map(|l| format!("+{l}"))
        .chain(removed.map(|l| format!("−{l}")))
        .collect();
    (!what.is_empty()).then(|| what.join(" "))
}

/// Whether an audit comment before transition `seq` moved the migration into `stage`.
fn entered_before(comments: &[Comment], stage: &str, seq: u64) -> bool {
    comments
        .iter()
        .any(|c| TransitionMarker::find(&c.body).is_some_and(|x| x.seq < seq && x.to == stage))
}

/// When the audit comment of transition `seq` was posted.
fn entry_time(comments: &[Comment], seq: u64) -> Option<DateTime<Utc>> {
    comments
        .iter()
        .filter(|c| TransitionMarker::find(&c.body).is_some_and(|x| x.seq == seq))
        .map(|c| c.created_at)
        .min()
}

/// The audit comment among `comments` that records transition `seq`, if one does.
fn record_of(comments: &[Comment], seq: u64) -> Option<&Comment> {
    comments
        .iter()
        .find(|c| TransitionMarker::find(&c.body).is_some_and(|x| x.seq == seq))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, s).unwrap()
    }

    fn event(label: &str, added: bool, s: u32) -> LabelEvent {
        LabelEvent {
            label: label.into(),
            added,
            actor: "someone".into(),
            at: at(s),
        }
    }

    #[test]
    fn a_label_set_after_the_read_is_a_change() {
        let labels = vec!["gitaly-migration".to_string(), "rpc-design".to_string()];
        let history = [
            event("gitaly-migration", true, 0),
            event("rpc-design", true, 5),
        ];
        assert_eq!(labels_changed(&labels, &history, at(5)), None, "as read");
        let paused = [&history[..], &[event("shepherd::paused", true, 5)]].concat();
        assert_eq!(
            labels_changed(&labels, &paused, at(5)).as_deref(),
            Some("+shepherd::paused")
        );
        let moved = [
            &history[..],
            &[event("rpc-design", false, 7), event("opt-in", true, 7)],
        ]
        .concat();
        assert_eq!(
            labels_changed(&labels, &moved, at(5)).as_deref(),
            Some("+opt-in −rpc-design")
        );
    }

    #[test]
    fn events_that_change_nothing_are_no_change() {
        let labels = vec!["opt-in".to_string()];
        // The event that made `labels` may be stamped in the read's second or the next.
        let history = [event("rpc-design", false, 5), event("opt-in", true, 6)];
        assert_eq!(labels_changed(&labels, &history, at(5)), None);
        // Taken off and put back: as read.
        let back = [event("opt-in", false, 8), event("opt-in", true, 9)];
        assert_eq!(labels_changed(&labels, &back, at(5)), None);
    }
}
