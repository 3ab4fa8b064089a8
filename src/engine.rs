//! The async shell around `core`: fetch a snapshot from the tracker, plan, apply the plan's
//! steps. Every step looks before it writes (markers, set operations), so running twice, or
//! again after a crash between two steps, writes nothing twice.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use anyhow::{bail, Context as _, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::catalog::Catalog;
use crate::core::checklist;
use crate::core::gate::GateReport;
use crate::core::machine::{self, Plan, PlannedTransition, Step};
use crate::core::marker::{self, IssueMarker, TransitionMarker};
use crate::core::report::{self, Status};
use crate::core::snapshot::{Child, ChildStage, Snapshot, TransitionRecord};
use crate::core::workflow::Workflow;
use crate::render::{Context, IssueRef};
use crate::tracker::{label_spec, Comment, Issue, NewIssue, StateFilter, Tracker};

/// The label and marker of the one summary issue that `report --publish` keeps up to date.
const SUMMARY_LABEL: &str = "shepherd report";
const SUMMARY_MARKER: &str = "<!-- shepherd:report -->";

/// Stands for an issue's own number until the issue exists; replaced right after creation.
const PENDING_REF: &str = "SHEPHERD-PENDING-ISSUE-REF";

pub struct Engine<'a> {
    pub tracker: &'a dyn Tracker,
    pub catalog: &'a Catalog,
    /// Who acts: recorded in audit markers.
    pub actor: String,
    /// How many migrations `reconcile` works on at once.
    pub concurrency: usize,
}

/// A shepherd issue: an issue with a marker naming its workflow.
#[derive(Clone, Debug)]
pub struct Migration {
    pub issue: Issue,
    pub marker: IssueMarker,
}

#[derive(Clone, Debug, Serialize)]
pub struct Started {
    #[serde(rename = "ref")]
    pub number: u64,
    pub url: String,
    pub workflow: String,
    pub stage: Option<String>,
}

/// What `advance` did (or, in a dry run, would do) to one migration.
#[derive(Clone, Debug, Serialize)]
pub struct Advanced {
    #[serde(rename = "ref")]
    pub number: u64,
    pub workflow: String,
    pub stage: Option<String>,
    pub transitions: Vec<MoveReport>,
    pub blocked_by: Vec<GateReport>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub created: Vec<u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct MoveReport {
    pub from: Option<String>,
    pub to: String,
    pub at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub resumed: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Ticked {
    #[serde(rename = "ref")]
    pub number: u64,
    pub item: String,
    pub checked: bool,
    pub changed: bool,
}

impl<'a> Engine<'a> {
    pub fn now(&self) -> DateTime<Utc> {
        self.tracker.now()
    }

    /// Opens a tracking issue and enters the workflow's first stage.
    pub async fn start(
        &self,
        workflow: &Workflow,
        title: Option<&str>,
        given: &BTreeMap<String, String>,
    ) -> Result<Started> {
        let vars = resolve_vars(workflow, given)?;
        let pending = IssueRef {
            number: PENDING_REF.into(),
            url: String::new(),
            title: String::new(),
        };
        let cx = Context {
            vars: &vars,
            migration: Some(pending.clone()),
            parent: None,
            issue: Some(pending),
            now: self.now(),
        };
        let rendered = self
            .catalog
            .renderer
            .render(&workflow.tracking.template, &cx.to_value())?;
        // Render every text of the first stage now, so that a bad one fails before any write.
        check_renders(
            self.catalog,
            self.now(),
            workflow,
            &workflow.first_stage().on_enter,
            &vars,
        )?;
        let marker = IssueMarker {
            workflow: Some(workflow.name.clone()),
            vars: vars.clone(),
            ..Default::default()
        };
        let mut labels = rendered.labels.clone();
        for l in &workflow.tracking.labels {
            if !labels.contains(l) {
                labels.push(l.clone());
            }
        }
        self.ensure_labels(workflow).await?;
        let title = title.map(str::to_string).unwrap_or(rendered.title);
        let issue = self
            .tracker
            .create_issue(&NewIssue {
                title,
                body: marker.append_to(&rendered.body),
                labels,
            })
            .await?;
        self.fill_pending_ref(&issue, &workflow.tracking.template, &vars, None)
            .await?;
        let advanced = self.advance(issue.number, false).await?;
        Ok(Started {
            number: issue.number,
            url: issue.url,
            workflow: workflow.name.clone(),
            stage: advanced.stage,
        })
    }

    /// The migration with number `number`, or an error saying why it is none.
    pub async fn migration(&self, number: u64) -> Result<(Migration, &'a Workflow)> {
        let issue = self.tracker.issue(number).await?;
        let Some(marker) = IssueMarker::find(&issue.body) else {
            bail!("#{number} is no migration: it has no shepherd marker (start one with `shepherd start WORKFLOW`)");
        };
        let Some(name) = marker.workflow.clone() else {
            bail!(
                "#{number} is no migration: it is a {} issue of #{} without a workflow of its own",
                marker.template.as_deref().unwrap_or("child"),
                marker.parent.unwrap_or(0)
            );
        };
        let workflow = self
            .catalog
            .workflow(&name)
            .with_context(|| format!("#{number} runs workflow `{name}`"))?;
        Ok((Migration { issue, marker }, workflow))
    }

    /// The open shepherd issues: one filtered list per distinct set of tracking labels
    /// (the tracker pages through it), so a reconcile costs about N/100 list requests.
    pub async fn index(&self) -> Result<Vec<Migration>> {
        self.index_of(StateFilter::Open).await
    }

    /// Like `index`, with closed issues too when `state` says so.
    pub async fn index_of(&self, state: StateFilter) -> Result<Vec<Migration>> {
        let mut sets: Vec<Vec<String>> = self
            .catalog
            .workflows
            .values()
            .map(|w| {
                let mut labels = w.tracking.labels.clone();
                labels.sort();
                labels
            })
            .collect();
        sets.sort();
        sets.dedup();
        if sets.iter().any(|s| s.is_empty()) {
            sets = vec![Vec::new()];
        }
        let lists = futures::future::try_join_all(
            sets.iter()
                .map(|labels| self.tracker.list_issues(state, labels)),
        )
        .await?;
        let mut out: Vec<Migration> = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for issue in lists.into_iter().flatten() {
            if !seen.insert(issue.number) {
                continue;
            }
            if let Some(marker) = IssueMarker::find(&issue.body) {
                out.push(Migration { issue, marker });
            }
        }
        out.sort_by_key(|m| m.issue.number);
        Ok(out)
    }

    /// A migration and all its children, open and closed: what `advance REF` looks at.
    async fn local_index(&self, number: u64) -> Result<Vec<Migration>> {
        let (m, _) = self.migration(number).await?;
        let mut out = vec![m];
        out.extend(self.children(number).await?);
        Ok(out)
    }

    /// The children of a migration, open and closed, from the tracker.
    async fn children(&self, number: u64) -> Result<Vec<Migration>> {
        Ok(self
            .tracker
            .children(number)
            .await?
            .into_iter()
            .filter_map(|issue| {
                let marker = IssueMarker::find(&issue.body)?;
                (marker.parent == Some(number)).then_some(Migration { issue, marker })
            })
            .collect())
    }

    /// Builds the snapshot of a migration. `index` supplies its children; the tracker is
    /// asked for more only when the current stage's gates look at a child the index lacks.
    /// Comments (the transitions) and label history cost a request each on remote
    /// trackers: they are fetched when `full`, and label history when the stage needs it.
    pub async fn snapshot(
        &self,
        m: &Migration,
        workflow: &Workflow,
        index: &[Migration],
        full: bool,
    ) -> Result<(Snapshot, Vec<Comment>)> {
        let number = m.issue.number;
        let stage = workflow.stages_labelled(&m.issue.labels).first().copied();
        let mut children: Vec<&Migration> = index
            .iter()
            .filter(|c| c.marker.parent == Some(number))
            .collect();
        let wanted = stage.map(|s| s.child_templates()).unwrap_or_default();
        let fetched;
        if wanted.iter().any(|t| {
            !children
                .iter()
                .any(|c| c.marker.template.as_deref() == Some(t))
        }) {
            fetched = self.children(number).await?;
            children = fetched.iter().collect();
        }
        let comments = if full {
            self.tracker.comments(number).await?
        } else {
            Vec::new()
        };
        let label_events = if full || stage.is_some_and(|s| s.needs_label_history()) {
            self.tracker.label_events(number).await?
        } else {
            Vec::new()
        };
        let mut transitions: Vec<TransitionRecord> = Vec::new();
        for c in &comments {
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
                    });
                }
            }
        }
        transitions.sort_by_key(|t| t.seq);
        let children = children
            .iter()
            .map(|c| Child {
                issue: c.issue.view(),
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
        let snapshot = Snapshot {
            issue: m.issue.view(),
            vars: m.marker.vars.clone(),
            label_events,
            transitions,
            children,
        };
        Ok((snapshot, comments))
    }

    /// Moves one migration as far as its gates allow.
    pub async fn advance(&self, number: u64, dry_run: bool) -> Result<Advanced> {
        let index = self.local_index(number).await?;
        self.advance_in(number, &index, dry_run).await
    }

    fn advance_boxed<'s>(
        &'s self,
        number: u64,
        dry_run: bool,
    ) -> Pin<Box<dyn Future<Output = Result<Advanced>> + Send + 's>> {
        Box::pin(self.advance(number, dry_run))
    }

    async fn advance_in(
        &self,
        number: u64,
        index: &[Migration],
        dry_run: bool,
    ) -> Result<Advanced> {
        let mut fresh;
        let mut index = index;
        let mut transitions = Vec::new();
        let mut created = Vec::new();
        // Applying can change what the gates see (a child now exists): plan again until
        // nothing moves, so the report ends with the gates that really block.
        for _ in 0..4 {
            if !dry_run && self.start_children(number, index).await? {
                fresh = self.local_index(number).await?;
                index = &fresh;
            }
            let (m, workflow) = match index.iter().find(|m| m.issue.number == number) {
                Some(m) => (m.clone(), self.workflow_of(m)?),
                None => self.migration(number).await?,
            };
            // First the cheap look: most migrations cannot move, and need no comments.
            let (snapshot, _) = self.snapshot(&m, workflow, index, false).await?;
            let mut plan = machine::plan(workflow, &snapshot, self.now());
            let mut comments = Vec::new();
            if !plan.transitions.is_empty() {
                // Something may move: look at the whole history, which may hold a move an
                // earlier run recorded and did not finish.
                let (snapshot, c) = self.snapshot(&m, workflow, index, true).await?;
                plan = machine::plan(workflow, &snapshot, self.now());
                comments = c;
            }
            if dry_run || plan.transitions.is_empty() {
                let mut report = report_plan(number, workflow, plan, created);
                transitions.append(&mut report.transitions);
                report.transitions = transitions;
                return Ok(report);
            }
            created.extend(self.apply(&m, workflow, &plan, &comments).await?);
            transitions.extend(report_plan(number, workflow, plan, Vec::new()).transitions);
            fresh = self.local_index(number).await?;
            index = &fresh;
        }
        bail!("#{number} keeps moving after several rounds: does its workflow loop?")
    }

    fn workflow_of(&self, m: &Migration) -> Result<&'a Workflow> {
        let name = m.marker.workflow.as_deref().with_context(|| {
            format!(
                "#{} is no migration: it has no workflow of its own",
                m.issue.number
            )
        })?;
        self.catalog.workflow(name)
    }

    /// Enters the first stage of children that run a workflow but have no stage yet (a
    /// crash came between creating them and their first move). Returns whether any moved.
    async fn start_children(&self, number: u64, index: &[Migration]) -> Result<bool> {
        let mut moved = false;
        for child in index
            .iter()
            .filter(|c| c.marker.parent == Some(number) && c.issue.open)
        {
            let Some(w) = child
                .marker
                .workflow
                .as_deref()
                .and_then(|w| self.catalog.workflows.get(w))
            else {
                continue;
            };
            if w.stages_labelled(&child.issue.labels).is_empty() {
                self.advance_boxed(child.issue.number, false).await?;
                moved = true;
            }
        }
        Ok(moved)
    }

    /// Advances every open migration, children before their parents.
    pub async fn reconcile(&self, dry_run: bool) -> Result<Vec<Advanced>> {
        use futures::stream::{self, StreamExt, TryStreamExt};
        let mut index = self.index().await?;
        let mut depths: Vec<(usize, u64)> = index
            .iter()
            .filter(|m| m.issue.open && m.marker.workflow.is_some())
            .map(|m| (depth(m, &index), m.issue.number))
            .collect();
        depths.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut out = Vec::new();
        // Deepest first, so that a parent sees what its children did in the same run; each
        // wave runs with bounded concurrency.
        let mut waves: Vec<Vec<u64>> = Vec::new();
        for (d, number) in &depths {
            match waves.last_mut() {
                Some(w) if depth_of(&depths, w[0]) == *d => w.push(*number),
                _ => waves.push(vec![*number]),
            }
        }
        for wave in waves {
            // Unordered: a migration waiting on a request must not hold up the ones behind it.
            let mut results: Vec<Advanced> = stream::iter(wave.iter().copied())
                .map(|number| {
                    let index = &index;
                    async move {
                        self.advance_in(number, index, dry_run)
                            .await
                            .with_context(|| format!("advancing #{number}"))
                    }
                })
                .buffer_unordered(self.concurrency.max(1))
                .try_collect()
                .await?;
            results.sort_by_key(|a| a.number);
            let moved = results
                .iter()
                .any(|a| !a.transitions.is_empty() || !a.created.is_empty());
            out.extend(results);
            if moved && !dry_run {
                index = self.index().await?;
            }
        }
        Ok(out)
    }

    /// Moves a migration back to an earlier (or any other) stage, recording why.
    pub async fn rollback(&self, number: u64, to: &str, reason: &str) -> Result<Advanced> {
        if reason.trim().is_empty() {
            bail!("--reason must say why #{number} is rolled back");
        }
        let index = self.local_index(number).await?;
        let (m, workflow) = self.migration(number).await?;
        let (snapshot, comments) = self.snapshot(&m, workflow, &index, true).await?;
        let plan = machine::rollback(workflow, &snapshot, to, reason, self.now())
            .map_err(anyhow::Error::msg)?;
        self.apply(&m, workflow, &plan, &comments).await?;
        Ok(report_plan(number, workflow, plan, Vec::new()))
    }

    /// Checks (or with `undo` unchecks) the one task item whose text contains `text`.
    pub async fn tick(
        &self,
        number: u64,
        text: &str,
        section: Option<&str>,
        child: Option<&str>,
        undo: bool,
    ) -> Result<Ticked> {
        let target = match child {
            None => number,
            Some(template) => {
                let children = self.children(number).await?;
                children
                    .iter()
                    .filter(|c| {
                        c.marker.parent == Some(number)
                            && c.marker.template.as_deref() == Some(template)
                    })
                    .map(|c| c.issue.number)
                    .max()
                    .with_context(|| format!("#{number} has no {template} child issue"))?
            }
        };
        // Re-read right before writing: a person may have edited the body a moment ago.
        let issue = self.tracker.issue(target).await?;
        let items = checklist::parse(&issue.body);
        let needle = text.to_lowercase();
        let items: Vec<checklist::Item> = match section {
            Some(sect) => items.into_iter().filter(|i| i.in_section(sect)).collect(),
            None => items,
        };
        let place = section
            .map(|s| format!(" under \"{s}\""))
            .unwrap_or_default();
        let matches: Vec<&checklist::Item> = items
            .iter()
            .filter(|i| i.text.to_lowercase().contains(&needle))
            .collect();
        let item = match matches.as_slice() {
            [one] => *one,
            [] => {
                let list: Vec<String> = items
                    .iter()
                    .filter(|i| i.done() == undo)
                    .map(|i| format!("  - {}", i.text))
                    .collect();
                let state = if undo { "checked" } else { "open" };
                bail!(
                    "no task item of #{target}{place} contains \"{text}\"{}",
                    if list.is_empty() {
                        String::new()
                    } else {
                        format!("; its {state} items:\n{}", list.join("\n"))
                    }
                );
            }
            several => {
                let list: Vec<String> = several.iter().map(|i| format!("  - {}", i.text)).collect();
                bail!(
                    "{} task items of #{target}{place} contain \"{text}\"; say which (or narrow with --section):\n{}",
                    several.len(),
                    list.join("\n")
                );
            }
        };
        let changed = item.done() == undo;
        if changed {
            self.tracker
                .update_body(target, &checklist::set(&issue.body, item, !undo))
                .await?;
        }
        Ok(Ticked {
            number: target,
            item: item.text.clone(),
            checked: !undo,
            changed,
        })
    }

    /// The transitions of one migration, from its audit comments.
    pub async fn history(&self, number: u64) -> Result<Vec<report::HistoryEntry>> {
        let (m, workflow) = self.migration(number).await?;
        let (snapshot, _) = self
            .snapshot(&m, workflow, std::slice::from_ref(&m), true)
            .await?;
        Ok(report::history(&snapshot))
    }

    /// The status of one migration.
    pub async fn status(&self, number: u64) -> Result<Status> {
        let index = self.local_index(number).await?;
        let (m, workflow) = self.migration(number).await?;
        let (snapshot, _) = self.snapshot(&m, workflow, &index, true).await?;
        let mut status = report::status(workflow, &snapshot, m.marker.parent, self.now());
        status.history = None;
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
        use futures::stream::{self, StreamExt, TryStreamExt};
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
        let mut out: Vec<Status> = stream::iter(wanted)
            .map(|(m, workflow)| async move {
                let (snapshot, _) = self.snapshot(m, workflow, index, true).await?;
                let mut status = report::status(workflow, &snapshot, m.marker.parent, self.now());
                status.history = Some(report::history(&snapshot));
                Ok::<_, anyhow::Error>(status)
            })
            .buffer_unordered(self.concurrency.max(1))
            .try_collect()
            .await?;
        out.sort_by_key(|s| s.number);
        Ok(out)
    }

    /// Creates or updates the one summary issue (found by its label and marker) with
    /// `markdown`. Returns its number and whether it was created.
    pub async fn publish(&self, markdown: &str) -> Result<(u64, bool)> {
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

    async fn ensure_labels(&self, workflow: &Workflow) -> Result<()> {
        let specs: Vec<_> = workflow
            .labels()
            .iter()
            .map(|l| {
                let description = workflow
                    .stages
                    .iter()
                    .find(|s| &s.label == l)
                    .map(|s| format!("shepherd: {} stage {}", workflow.name, s.id))
                    .unwrap_or_else(|| format!("shepherd: used by {}", workflow.name));
                label_spec(l, &description)
            })
            .collect();
        self.tracker.ensure_labels(&specs).await?;
        Ok(())
    }

    /// Applies a plan's steps in order; returns the child issues created.
    async fn apply(
        &self,
        m: &Migration,
        workflow: &Workflow,
        plan: &Plan,
        comments: &[Comment],
    ) -> Result<Vec<u64>> {
        for t in &plan.transitions {
            let stage = workflow.stage(&t.to).expect("planned stage exists");
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
        let mut labels = m.issue.labels.clone();
        let mut open = m.issue.open;
        let mut created = Vec::new();
        let me = IssueRef {
            number: number.to_string(),
            url: m.issue.url.clone(),
            title: m.issue.title.clone(),
        };
        for t in &plan.transitions {
            for step in &t.steps {
                match step {
                    Step::Audit => {
                        let exists = comments.iter().any(|c| {
                            TransitionMarker::find(&c.body).is_some_and(|x| x.seq == t.seq)
                        });
                        if !exists {
                            self.tracker
                                .add_comment(number, &self.audit_comment(workflow, t))
                                .await?;
                        }
                    }
                    Step::CreateIssue {
                        template,
                        workflow: child_workflow,
                    } => {
                        if let Some(n) = self
                            .create_child(m, &me, template, child_workflow.as_deref(), t.seq)
                            .await?
                        {
                            created.push(n);
                        }
                    }
                    Step::Comment { index: i, text } => {
                        let mark = marker::action_marker(t.seq, *i);
                        if !comments
                            .iter()
                            .any(|c| marker::has_action_marker(&c.body, &mark))
                        {
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
                            self.tracker
                                .add_comment(number, &format!("{}\n\n{mark}", text.trim_end()))
                                .await?;
                        }
                    }
                    Step::Labels { add, remove } => {
                        let add: Vec<String> = add
                            .iter()
                            .filter(|l| !labels.contains(l))
                            .cloned()
                            .collect();
                        let remove: Vec<String> = remove
                            .iter()
                            .filter(|l| labels.contains(l))
                            .cloned()
                            .collect();
                        if !add.is_empty() || !remove.is_empty() {
                            self.tracker
                                .edit_labels(number, &labels, &add, &remove)
                                .await?;
                            labels.retain(|l| !remove.contains(l));
                            labels.extend(add);
                        }
                    }
                    Step::Close | Step::Reopen => {
                        let want_open = matches!(step, Step::Reopen);
                        if open != want_open {
                            self.tracker.set_open(number, want_open).await?;
                            open = want_open;
                        }
                    }
                    Step::MoveStage { remove, add } => {
                        let remove: Vec<String> = remove
                            .iter()
                            .filter(|l| labels.contains(l))
                            .cloned()
                            .collect();
                        let add_list = if labels.contains(add) {
                            Vec::new()
                        } else {
                            vec![add.clone()]
                        };
                        if !remove.is_empty() || !add_list.is_empty() {
                            self.tracker
                                .edit_labels(number, &labels, &add_list, &remove)
                                .await?;
                            labels.retain(|l| !remove.contains(l));
                            labels.extend(add_list);
                        }
                    }
                }
            }
        }
        // A child that runs its own workflow enters its first stage right away.
        for child in &created {
            let issue = self.tracker.issue(*child).await?;
            if IssueMarker::find(&issue.body)
                .and_then(|m| m.workflow)
                .is_some()
            {
                self.advance_boxed(*child, false)
                    .await
                    .with_context(|| format!("starting child #{child}"))?;
            }
        }
        Ok(created)
    }

    /// Creates the child unless the entry that creates it already did; returns a new child's number.
    async fn create_child(
        &self,
        m: &Migration,
        me: &IssueRef,
        template: &str,
        child_workflow: Option<&str>,
        seq: u64,
    ) -> Result<Option<u64>> {
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
        // Ask the tracker, by the labels the child carries, whether a run that crashed
        // created it already; a link may be missing, a label filter does not miss it.
        let existing = self
            .tracker
            .list_issues(StateFilter::All, &labels)
            .await?
            .into_iter()
            .find(|issue| {
                IssueMarker::find(&issue.body).is_some_and(|c| {
                    c.parent == Some(number)
                        && c.template.as_deref() == Some(template)
                        && c.entry == Some(seq)
                })
            });
        if let Some(child) = existing {
            // A crash may have come between creating the child, filling in its number
            // and linking it.
            self.fill_pending_ref(&child, template, &vars, Some(me))
                .await?;
            self.tracker.link(number, child.number).await?;
            return Ok(None);
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
        let issue = self
            .tracker
            .create_issue(&NewIssue {
                title: rendered.title,
                body: marker.append_to(&rendered.body),
                labels,
            })
            .await?;
        self.fill_pending_ref(&issue, template, &vars, Some(me))
            .await?;
        self.tracker.link(number, issue.number).await?;
        Ok(Some(issue.number))
    }

    /// Renders the issue again with its own number, if its body still waits for it.
    async fn fill_pending_ref(
        &self,
        issue: &Issue,
        template: &str,
        vars: &BTreeMap<String, String>,
        parent: Option<&IssueRef>,
    ) -> Result<()> {
        if !issue.body.contains(PENDING_REF) {
            return Ok(());
        }
        let me = IssueRef {
            number: issue.number.to_string(),
            url: issue.url.clone(),
            title: issue.title.clone(),
        };
        let migration = parent.cloned().unwrap_or_else(|| me.clone());
        let cx = Context {
            vars,
            migration: Some(migration),
            parent: parent.cloned(),
            issue: Some(me),
            now: self.now(),
        };
        let rendered = self.catalog.renderer.render(template, &cx.to_value())?;
        let marker = IssueMarker::find(&issue.body).unwrap_or_default();
        self.tracker
            .update_body(issue.number, &marker.append_to(&rendered.body))
            .await?;
        Ok(())
    }

    fn audit_comment(&self, workflow: &Workflow, t: &PlannedTransition) -> String {
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
        let mark = TransitionMarker {
            seq: t.seq,
            from: t.from.clone(),
            to: t.to.clone(),
            by: self.actor.clone(),
            reason: t.reason.clone(),
            rollback: t.rollback,
        };
        format!("{text}\n\n{}", mark.render())
    }
}

/// Renders every text that `actions` need, so that a bad one fails before anything is
/// written.
pub fn check_renders(
    catalog: &Catalog,
    now: DateTime<Utc>,
    workflow: &Workflow,
    actions: &[crate::core::workflow::Action],
    vars: &BTreeMap<String, String>,
) -> Result<()> {
    use crate::core::workflow::Action;
    let pending = IssueRef {
        number: PENDING_REF.into(),
        ..Default::default()
    };
    for action in actions {
        let cx = Context {
            vars,
            migration: Some(pending.clone()),
            parent: Some(pending.clone()),
            issue: Some(pending.clone()),
            now,
        };
        match action {
            Action::Comment(text) => {
                catalog.renderer.render_text(
                    &format!("a comment of {}", workflow.name),
                    text,
                    &cx.to_value(),
                )?;
            }
            Action::CreateIssue {
                template,
                workflow: child,
            } => {
                let child_vars = match child.as_deref().map(|w| catalog.workflow(w)).transpose()? {
                    Some(w) => child_vars(w, vars),
                    None => vars.clone(),
                };
                let cx = Context {
                    vars: &child_vars,
                    ..cx
                };
                catalog.renderer.render(template, &cx.to_value())?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Everything `start` checks before it writes: variables, the tracking template, the first
/// stage's texts. Returns the variables with defaults filled in.
pub fn preflight(
    catalog: &Catalog,
    workflow: &Workflow,
    given: &BTreeMap<String, String>,
    now: DateTime<Utc>,
) -> Result<BTreeMap<String, String>> {
    let vars = resolve_vars(workflow, given)?;
    let pending = IssueRef {
        number: PENDING_REF.into(),
        ..Default::default()
    };
    let cx = Context {
        vars: &vars,
        migration: Some(pending.clone()),
        parent: None,
        issue: Some(pending),
        now,
    };
    catalog
        .renderer
        .render(&workflow.tracking.template, &cx.to_value())?;
    check_renders(
        catalog,
        now,
        workflow,
        &workflow.first_stage().on_enter,
        &vars,
    )?;
    Ok(vars)
}

/// Checks the given variables against the workflow: unknown, missing, pattern-violating.
pub fn resolve_vars(
    workflow: &Workflow,
    given: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>> {
    let mut problems = Vec::new();
    for name in given.keys() {
        if workflow.variable(name).is_none() {
            let names: Vec<&str> = workflow.variables.iter().map(|v| v.name.as_str()).collect();
            problems.push(format!(
                "unknown variable `{name}` (variables of {}: {})",
                workflow.name,
                names.join(", ")
            ));
        }
    }
    let mut vars = BTreeMap::new();
    for v in &workflow.variables {
        let value = match (given.get(&v.name), &v.default) {
            (Some(value), _) => value.clone(),
            (None, Some(default)) => default.clone(),
            (None, None) if v.required => {
                let hint = if v.description.is_empty() {
                    String::new()
                } else {
                    format!(": {}", v.description)
                };
                problems.push(format!(
                    "variable `{}` is required (--var {}=…){hint}",
                    v.name, v.name
                ));
                continue;
            }
            (None, None) => String::new(),
        };
        if let Some(re) = &v.pattern {
            if !re.is_match(&value) {
                problems.push(format!(
                    "variable `{}` = {:?} does not match its pattern `{}`",
                    v.name, value, re
                ));
                continue;
            }
        }
        vars.insert(v.name.clone(), value);
    }
    if !problems.is_empty() {
        bail!("{}", problems.join("\n"));
    }
    Ok(vars)
}

/// The variables a child workflow gets: the parent's, with the child's defaults filled in.
fn child_vars(workflow: &Workflow, parent: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut vars = parent.clone();
    for v in &workflow.variables {
        if !vars.contains_key(&v.name) {
            vars.insert(v.name.clone(), v.default.clone().unwrap_or_default());
        }
    }
    vars
}

fn depth_of(depths: &[(usize, u64)], number: u64) -> usize {
    depths
        .iter()
        .find(|(_, n)| *n == number)
        .map(|(d, _)| *d)
        .unwrap_or(0)
}

fn depth(m: &Migration, index: &[Migration]) -> usize {
    let mut depth = 0;
    let mut parent = m.marker.parent;
    while let Some(p) = parent {
        depth += 1;
        if depth > 16 {
            break;
        }
        parent = index
            .iter()
            .find(|x| x.issue.number == p)
            .and_then(|x| x.marker.parent);
    }
    depth
}

fn report_plan(number: u64, workflow: &Workflow, plan: Plan, created: Vec<u64>) -> Advanced {
    Advanced {
        number,
        workflow: workflow.name.clone(),
        stage: plan.stage,
        transitions: plan
            .transitions
            .iter()
            .map(|t| MoveReport {
                from: t.from.clone(),
                to: t.to.clone(),
                at: t.at,
                reason: t.reason.clone(),
                resumed: t.resumed,
            })
            .collect(),
        blocked_by: plan.blocked_by,
        warnings: plan.warnings,
        created,
    }
}
