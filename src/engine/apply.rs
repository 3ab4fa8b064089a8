//! Applying a plan: the audit comment (the intent), the on_enter actions (each found by its
//! marker before it is done again), then the stage label move (the commit).

use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};

use super::vars::{check_renders, child_vars};
use super::{Engine, Migration, PENDING_REF, PENDING_URL};
use crate::core::checklist::{self, ItemRef};
use crate::core::machine::{Plan, PlannedTransition, Step};
use crate::core::marker::{self, IssueMarker, TransitionMarker};
use crate::core::snapshot::LabelEvent;
use crate::core::workflow::{Stage, Workflow};
use crate::render::{Context, IssueRef};
use crate::tracker::{
    Comment, Issue, IssueEdit, LabelWrites, NewIssue, ReadBack, StateFilter, Versions,
};

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
}

/// Why a run left a migration after posting its audit comment (and deleted it again).
#[derive(Debug)]
pub(crate) enum LeftAlone {
    /// Another run recorded the same transition first: its run id.
    LostTo(String),
    /// A label changed after this run read the issue (what changed, e.g. "+shepherd::paused").
    LabelsChanged(String),
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
        let number = m.issue.number;
        let mut comments: Vec<Comment> = comments.to_vec();
        let mut labels = m.issue.labels.clone();
        let mut open = m.issue.open;
        // Where the move writes the whole label set, the claim's read-back shows whether a
        // label changed since `labels` were read (at `as_of`).
        let read_back = self.tracker.label_writes() == LabelWrites::ReadBack;
        let mut as_of = m.issue.updated_at;
        let mut applied = Applied::default();
        let me = IssueRef {
            number: number.to_string(),
            url: m.issue.url.clone(),
            title: m.issue.title.clone(),
        };
        for t in &plan.transitions {
            // When this run posts the audit comment and wins the claim, no other run can
            // have begun this entry: nothing to look for before creating.
            let mut claimed = false;
            // `labels` are checked against the tracker during this transition.
            let mut checked = false;
            for step in &t.steps {
                match step {
                    Step::Audit => {
                        let exists = comments.iter().any(|c| {
                            TransitionMarker::find(&c.body).is_some_and(|x| x.seq == t.seq)
                        });
                        if !exists {
                            // The stage's on_enter comments ride along, each with its own
                            // marker: one comment, and the Comment steps find them done.
                            let mut along = Vec::new();
                            for step in &t.steps {
                                if let Step::Comment { index, text } = step {
                                    along.push(self.on_enter_comment(m, &me, t, *index, text)?);
                                }
                            }
                            let mine = self
                                .tracker
                                .add_comment(number, &self.audit_comment(workflow, t, &along))
                                .await?;
                            match self.claim(number, t.seq, &mine).await? {
                                Claim::Won(back) => {
                                    comments = back.comments;
                                    claimed = true;
                                    if read_back {
                                        let events = &back.label_events;
                                        if let Some(what) = labels_changed(&labels, events, as_of) {
                                            self.withdraw(number, &mine).await?;
                                            applied.left = Some(LeftAlone::LabelsChanged(what));
                                            return Ok(applied);
                                        }
                                        checked = true;
                                    }
                                }
                                Claim::Lost(winner) => {
                                    applied.left = Some(LeftAlone::LostTo(winner));
                                    return Ok(applied);
                                }
                            }
                        }
                    }
                    Step::Untick => self.untick(number, &t.untick).await?,
                    Step::CreateIssue {
                        template,
                        workflow: child_workflow,
                    } => {
                        let since = (!claimed).then(|| entry_time(&comments, t.seq)).flatten();
                        let entry = Entry {
                            seq: t.seq,
                            claimed,
                            since,
                            again: entered_before(&comments, &t.to, t.seq),
                        };
                        if let Some(made) = self
                            .create_child(m, &me, template, child_workflow.as_deref(), &entry)
                            .await?
                        {
                            applied.created.push(made);
                        }
                    }
                    Step::Comment { index: i, text } => {
                        let mark = marker::action_marker(t.seq, *i);
                        if !comments
                            .iter()
                            .any(|c| marker::has_action_marker(&c.body, &mark))
                        {
                            let text = self.on_enter_comment(m, &me, t, *i, text)?;
                            let posted = self.tracker.add_comment(number, &text).await?;
                            comments.push(posted);
                        }
                    }
                    Step::FeatureFlag { index: i, flag } => {
                        let mark = marker::action_marker(t.seq, *i);
                        if !comments
                            .iter()
                            .any(|c| marker::has_action_marker(&c.body, &mark))
                        {
                            let said = self.set_flag(m, flag).await?;
                            let text = format!("{said}\n\n{mark}");
                            let posted = self.tracker.add_comment(number, &text).await?;
                            comments.push(posted);
                        }
                    }
                    Step::MoveStage {
                        remove,
                        add,
                        open: want,
                    } => {
                        if read_back && !checked {
                            // No read-back this transition (it resumes an entry an earlier
                            // run recorded): the labels as they are now.
                            let issue = self.tracker.issue(number).await?;
                            labels = issue.labels;
                            open = issue.open;
                            as_of = issue.updated_at;
                        }
                        let edit = IssueEdit {
                            current: labels.clone(),
                            add: add
                                .iter()
                                .filter(|l| !labels.contains(l))
                                .cloned()
                                .collect(),
                            remove: remove
                                .iter()
                                .filter(|l| labels.contains(l))
                                .cloned()
                                .collect(),
                            open: want.filter(|w| *w != open),
                        };
                        if !edit.add.is_empty() || !edit.remove.is_empty() || edit.open.is_some() {
                            let issue = self.tracker.edit_issue(number, &edit).await?;
                            labels = issue.labels.clone();
                            open = issue.open;
                            as_of = issue.updated_at;
                            self.record_move(&issue).await;
                            applied.issue = Some(issue);
                        }
                    }
                }
            }
        }
        // A child that runs its own workflow enters its first stage right away.
        // A new issue is known whole: no comments, no history, no children of its own.
        for (child, needs_start) in &applied.created {
            if *needs_start {
                let n = child.number;
                let Some(marker) = IssueMarker::find(&child.body) else {
                    anyhow::bail!("child #{n} was made without its marker");
                };
                let known = Migration::new(child.clone(), marker);
                self.advance_new(known)
                    .await
                    .with_context(|| format!("starting child #{n}"))?;
            }
        }
        Ok(applied)
    }

    /// Keeps in the Store when a move of `issue` was made, by the tracker's clock, for
    /// `moved_since`. A hint: a Store that lost it only costs a fresh read.
    async fn record_move(&self, issue: &Issue) {
        let key = format!("moved:{}", self.lease_key(issue.number));
        let at = issue
            .updated_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        if let Err(e) = self.store.cache_put(&key, &at, "1").await {
            tracing::warn!("#{}: recording the move: {e}", issue.number);
        }
    }

    /// Whether a process that shares this Store moved `copy`'s issue after `copy` was
    /// read, by the tracker's clock: the copy is stale and must be read again before
    /// anything is written from it. Where `updated_at` has whole seconds, a move in the
    /// copy's own second may be newer than the copy.
    pub(crate) async fn moved_since(&self, copy: &Issue) -> Result<bool> {
        let key = format!("moved:{}", self.lease_key(copy.number));
        let Some(cached) = self.store.cache_get(&key).await? else {
            return Ok(false);
        };
        let Ok(at) = DateTime::parse_from_rfc3339(&cached.value) else {
            return Ok(true);
        };
        let at = at.with_timezone(&Utc);
        Ok(match self.tracker.versions() {
            Versions::EveryWrite => at > copy.updated_at,
            Versions::WholeSeconds => at.timestamp() >= copy.updated_at.timestamp(),
        })
    }

    /// The claim on the tracker: after posting its audit comment `mine` for transition
    /// `seq`, a run reads the comments back. The earliest audit comment for `seq` wins;
    /// a run that finds another's before its own deletes its own and leaves the migration.
    async fn claim(&self, number: u64, seq: u64, mine: &Comment) -> Result<Claim> {
        let mut back = self.tracker.read_back(number).await?;
        let first = back
            .comments
            .iter()
            .filter(|c| TransitionMarker::find(&c.body).is_some_and(|x| x.seq == seq))
            .min_by_key(|c| c.id);
        match first {
            Some(first) if first.id != mine.id => {
                let winner = TransitionMarker::find(&first.body)
                    .and_then(|x| x.run)
                    .unwrap_or_else(|| first.author.clone());
                self.withdraw(number, mine).await?;
                tracing::info!(
                    "#{number}: another shepherd ({winner}) recorded transition {seq} first; leaving it"
                );
                Ok(Claim::Lost(winner))
            }
            _ => {
                if !back.comments.iter().any(|c| c.id == mine.id) {
                    back.comments.push(mine.clone());
                }
                Ok(Claim::Won(back))
            }
        }
    }

    /// Deletes this run's audit comment `mine`: the run leaves the migration alone.
    async fn withdraw(&self, number: u64, mine: &Comment) -> Result<()> {
        self.tracker
            .delete_comment(number, mine.id)
            .await
            .context("deleting this run's audit comment")
    }

    /// Creates the child unless the entry that creates it already did; returns a new
    /// child, and whether it still has to enter its workflow's first stage. After a won
    /// claim nothing can exist yet; when resuming an entry an earlier run began (at
    /// `since`), the child is looked for through the parent's links and then among the
    /// issues with its labels created since that entry — never by listing the whole
    /// project. A child whose first stage does nothing on entering is made in it: its
    /// stage label comes with the creation and its audit comment right after, so no
    /// other run ever sees it without a stage.
    ///
    /// A stage entered again (after a rollback, or by a loop) opens the next attempt: the
    /// new child is titled "… (attempt N)", and the older ones of its template still open
    /// are closed with a comment that points to it.
    async fn create_child(
        &self,
        m: &Migration,
        me: &IssueRef,
        template: &str,
        child_workflow: Option<&str>,
        entry: &Entry,
    ) -> Result<Option<(Issue, bool)>> {
        let Entry {
            seq,
            claimed,
            since,
            again,
        } = *entry;
        let number = m.issue.number;
        let workflow = child_workflow
            .map(|w| self.catalog.workflow(w))
            .transpose()?;
        let vars = match workflow {
            Some(w) => child_vars(w, &m.marker.vars),
            None => m.marker.vars.clone(),
        };
        let pending = IssueRef {
            number: PENDING_REF.into(),
            url: PENDING_URL.into(),
            ..Default::default()
        };
        let cx = Context {
            vars: &vars,
            migration: Some(me.clone()),
            parent: Some(me.clone()),
            issue: Some(pending),
            now: self.now(),
        };
        let rendered = self.catalog.renderer.render(template, &cx.to_value())?;
        let mut labels = rendered.labels.clone();
        if let Some(w) = workflow {
            for l in &w.tracking.labels {
                if !labels.contains(l) {
                    labels.push(l.clone());
                }
            }
        }
        // The labels it is looked for by: those it is made with, but its first stage's.
        let wanted = labels.clone();
        let born_in = workflow
            .map(|w| w.first_stage())
            .filter(|s| s.on_enter.is_empty());
        if let Some(first) = born_in {
            if !labels.contains(&first.label) {
                labels.push(first.label.clone());
            }
        }
        let of_template = |issue: &Issue| {
            IssueMarker::find(&issue.body).is_some_and(|c| {
                c.parent == Some(number) && c.template.as_deref() == Some(template)
            })
        };
        let is_it = |issue: &Issue| {
            of_template(issue)
                && IssueMarker::find(&issue.body).is_some_and(|c| c.entry == Some(seq))
        };
        // The children are read where they can exist: a resumed entry, or a stage entered
        // before (the earlier attempts).
        let siblings: Vec<Issue> = if !claimed || again {
            self.tracker.children(number).await?
        } else {
            Vec::new()
        };
        let earlier: Vec<&Issue> = siblings
            .iter()
            .filter(|i| of_template(i) && !is_it(i))
            .collect();
        if !claimed {
            let mut existing = siblings.iter().find(|i| is_it(i)).cloned();
            if existing.is_none() {
                // A crash may have come between creating the child and linking it.
                let since = since.unwrap_or(m.issue.created_at) - chrono::Duration::minutes(5);
                existing = self
                    .tracker
                    .list_issues_since(StateFilter::All, &wanted, since)
                    .await?
                    .into_iter()
                    .find(|i| is_it(i));
            }
            if let Some(child) = existing {
                // A crash may have come between creating the child, filling in its number
                // and linking it.
                self.fill_pending_ref(&child, true).await?;
                if let (Some(w), Some(first)) = (workflow, born_in) {
                    let recorded = self
                        .tracker
                        .comments(child.number)
                        .await?
                        .iter()
                        .any(|c| TransitionMarker::find(&c.body).is_some_and(|x| x.seq == 1));
                    if !recorded {
                        self.record_birth(w, first, child.number).await?;
                    }
                }
                self.tracker.link(number, child.number).await?;
                self.supersede(&earlier, &child).await?;
                return Ok(None);
            }
        }
        if let Some(w) = workflow {
            self.ensure_labels(w).await?;
        }
        let marker = IssueMarker {
            workflow: child_workflow.map(str::to_string),
            parent: Some(number),
            template: Some(template.to_string()),
            entry: Some(seq),
            vars: vars.clone(),
        };
        let title = match earlier.len() {
            0 => rendered.title,
            n => format!("{} (attempt {})", rendered.title, n + 1),
        };
        let issue = self
            .tracker
            .create_issue(&NewIssue {
                title,
                body: marker.append_to(&rendered.body),
                labels,
            })
            .await?;
        let issue = self.fill_pending_ref(&issue, false).await?;
        if let (Some(w), Some(first)) = (workflow, born_in) {
            self.record_birth(w, first, issue.number).await?;
        }
        self.tracker.link(number, issue.number).await?;
        self.supersede(&earlier, &issue).await?;
        Ok(Some((issue, workflow.is_some() && born_in.is_none())))
    }

    /// Closes the earlier attempts still open, each with one comment pointing to `new`.
    async fn supersede(&self, earlier: &[&Issue], new: &Issue) -> Result<()> {
        for old in earlier.iter().filter(|i| i.open) {
            let mark = format!("<!-- shepherd:superseded-by={} -->", new.number);
            let said = self
                .tracker
                .comments(old.number)
                .await?
                .iter()
                .any(|c| c.body.contains(&mark));
            if !said {
                let text = format!(
                    "**shepherd**: superseded by #{}, the next attempt: the migration entered this stage again.\n\n{mark}",
                    new.number
                );
                self.tracker.add_comment(old.number, &text).await?;
            }
            let edit = IssueEdit {
                current: old.labels.clone(),
                add: Vec::new(),
                remove: Vec::new(),
                open: Some(false),
            };
            self.tracker.edit_issue(old.number, &edit).await?;
        }
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

    /// The audit comment of a child made in its workflow's first stage.
    async fn record_birth(&self, workflow: &Workflow, first: &Stage, child: u64) -> Result<()> {
        let entry = PlannedTransition {
            seq: 1,
            from: None,
            to: first.id.clone(),
            at: self.now(),
            reason: None,
            rollback: false,
            resumed: false,
            passed: Vec::new(),
            untick: Vec::new(),
            steps: Vec::new(),
        };
        self.tracker
            .add_comment(child, &self.audit_comment(workflow, &entry, &[]))
            .await?;
        Ok(())
    }

    /// Fills in a new issue's own number and URL where its body still waits for them.
    /// Only the placeholders change: with `reread` (any time but right after creating
    /// it, when the creation's response is the newest copy) the body is read again right
    /// before writing, so an edit a person made in between is kept.
    pub(crate) async fn fill_pending_ref(&self, issue: &Issue, reread: bool) -> Result<Issue> {
        if !issue.body.contains(PENDING_REF) && !issue.body.contains(PENDING_URL) {
            return Ok(issue.clone());
        }
        let mut current = if reread {
            self.tracker.issue(issue.number).await?
        } else {
            issue.clone()
        };
        let body = current
            .body
            .replace(PENDING_REF, &current.number.to_string())
            .replace(PENDING_URL, &current.url);
        if body != current.body {
            self.tracker.update_body(current.number, &body).await?;
            current.body = body;
        }
        Ok(current)
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
            by: self.actor.clone(),
            reason: t.reason.clone(),
            rollback: t.rollback,
            run: Some(self.run_id.clone()),
            store: self.store_id.get().cloned(),
            untick: t.untick.clone(),
        };
        format!("{text}\n\n{}", mark.render())
    }
}

enum Claim {
    /// This run's audit comment is the first; what was read back.
    Won(ReadBack),
    /// Another run's came first (its run id).
    Lost(String),
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

/// How the entry that creates a child came about.
#[derive(Clone, Copy)]
struct Entry {
    /// The transition's sequence number, which the child's marker records.
    seq: u64,
    /// This run posted the entry's audit comment and won the claim: nothing of it exists.
    claimed: bool,
    /// When an earlier run recorded the entry this run resumes.
    since: Option<DateTime<Utc>>,
    /// The migration was in this stage before: this child is the next attempt.
    again: bool,
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
