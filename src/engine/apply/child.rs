//! Child issues: made once per entry into the stage that opens them — after a crash found
//! again (through the parent's links, then among the issues with its labels made since the
//! entry) rather than made twice, their own number filled in, their first move recorded,
//! earlier attempts closed with a pointer to the new one.

use anyhow::Result;
use chrono::{DateTime, Utc};

use super::super::vars::child_vars;
use super::super::{Engine, Migration, PENDING_REF, PENDING_URL};
use crate::core::machine::PlannedTransition;
use crate::core::marker::{IssueMarker, TransitionMarker};
use crate::core::workflow::{Stage, Workflow};
use crate::render::{Context, IssueRef};
use crate::tracker::{Issue, IssueEdit, NewIssue, StateFilter};

/// How the entry that creates a child came about.
#[derive(Clone, Copy)]
pub(super) struct Entry {
    /// The transition's sequence number, which the child's marker records.
    pub(super) seq: u64,
    /// This run posted the entry's audit comment and won the claim: nothing of it exists.
    pub(super) claimed: bool,
    /// When an earlier run recorded the entry this run resumes.
    pub(super) since: Option<DateTime<Utc>>,
    /// The migration was in this stage before: this child is the next attempt.
    pub(super) again: bool,
}

impl Engine<'_> {
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
    pub(super) async fn create_child(
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
        let rendered = self.render_child(me, template, &vars)?;
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
                let born = workflow.zip(born_in);
                self.finish_child(number, &child, born, &earlier).await?;
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
            .create_marked(title, &rendered.body, &marker, labels)
            .await?;
        if let (Some(w), Some(first)) = (workflow, born_in) {
            self.record_birth(w, first, issue.number).await?;
        }
        self.tracker.link(number, issue.number).await?;
        self.supersede(&earlier, &issue).await?;
        Ok(Some((issue, workflow.is_some() && born_in.is_none())))
    }

    /// A child's title, body and labels, rendered with the parent as `migration` and
    /// `parent`, and placeholders for its own number and URL (filled in once it exists).
    pub(super) fn render_child(
        &self,
        me: &IssueRef,
        template: &str,
        vars: &std::collections::BTreeMap<String, String>,
    ) -> Result<crate::render::Rendered> {
        let pending = IssueRef {
            number: PENDING_REF.into(),
            url: PENDING_URL.into(),
            ..Default::default()
        };
        let cx = Context {
            vars,
            migration: Some(me.clone()),
            parent: Some(me.clone()),
            issue: Some(pending),
            now: self.now(),
        };
        Ok(self.catalog.renderer.render(template, &cx.to_value())?)
    }

    /// Finishes what a crash may have left undone after creating `child`: its own number
    /// filled in, its first move recorded (`born`: its workflow and the stage it was made
    /// in), its link to the parent, the earlier attempts closed.
    pub(super) async fn finish_child(
        &self,
        number: u64,
        child: &Issue,
        born: Option<(&Workflow, &Stage)>,
        earlier: &[&Issue],
    ) -> Result<()> {
        self.fill_pending_ref(child, true).await?;
        if let Some((w, first)) = born {
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
        self.supersede(earlier, child).await
    }

    /// Closes the earlier attempts still open, each with one comment pointing to `new`.
    pub(super) async fn supersede(&self, earlier: &[&Issue], new: &Issue) -> Result<()> {
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

    /// The audit comment of a child made in its workflow's first stage.
    pub(super) async fn record_birth(
        &self,
        workflow: &Workflow,
        first: &Stage,
        child: u64,
    ) -> Result<()> {
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
            command: None,
        };
        self.tracker
            .add_comment(child, &self.audit_comment(workflow, &entry, &[]))
            .await?;
        Ok(())
    }

    /// Creates an issue whose body ends with `marker`, and fills in its own number (the
    /// creation's response is the newest copy: nothing is read again).
    pub(crate) async fn create_marked(
        &self,
        title: String,
        body: &str,
        marker: &IssueMarker,
        labels: Vec<String>,
    ) -> Result<Issue> {
        let body = marker.append_to(body);
        let new = NewIssue {
            title,
            body,
            labels,
        };
        let issue = self.tracker.create_issue(&new).await?;
        self.fill_pending_ref(&issue, false).await
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
}
