//! Moving migrations: `start` opens one, `advance` moves one as far as its gates allow,
//! `reconcile` advances every open one, `rollback` moves one back.

use std::collections::{BTreeMap, HashMap};

use anyhow::{bail, Context as _, Result};
use chrono::{DateTime, Utc};

use super::commands::Commands;
use super::drive::Advance;
use super::lease::Leased;
use super::vars::{check_renders, resolve_vars};
use super::{
    report_plan, waves, Advanced, Engine, Failed, Kin, Migration, Reconciled, Started, PENDING_REF,
    PENDING_URL,
};
use crate::core::machine;
use crate::core::marker::IssueMarker;
use crate::core::portfolio::Slots;
use crate::core::snapshot::LabelEvent;
use crate::core::workflow::Workflow;
use crate::render::{Context, IssueRef};
use crate::tracker::{Comment, LabelWrites};

impl<'a> Engine<'a> {
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
            url: PENDING_URL.into(),
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
            .create_marked(title, &rendered.body, &marker, labels)
            .await?;
        let m = Migration::new(issue.clone(), marker);
        let advanced = self
            .with_lease(issue.number, self.drive(Advance::new_issue(m)))
            .await?;
        // All its comments are this run's: the next poll need not read them for commands.
        self.keep_scans(&self.take_looked()).await;
        Ok(Started {
            number: issue.number,
            url: issue.url,
            workflow: workflow.name.clone(),
            stage: advanced.stage,
        })
    }

    /// Moves one migration as far as its gates allow, holding its lease while it writes.
    pub async fn advance(&self, number: u64, dry_run: bool) -> Result<Advanced> {
        self.advance_with(number, dry_run, &[]).await
    }

    /// `advance`, looking for comment commands on the issues `also` too (children of the
    /// migration that a webhook says have a new comment, which its advance may not read).
    pub async fn advance_with(&self, number: u64, dry_run: bool, also: &[u64]) -> Result<Advanced> {
        // What brought this advance (a webhook, a person) may be a merge request.
        self.facts.forget_merge_requests();
        self.tracker.forget_merge_requests();
        if dry_run {
            let index = self.local_index(number).await?;
            return self
                .drive(Advance::new(number, index, true, None, true))
                .await;
        }
        self.with_lease(number, async {
            let (mut index, mut kin_read) = self.family(number).await?;
            // Comment commands first: what they change, the advance sees.
            let mut on = self.scans().await.among(&index.iter().collect::<Vec<_>>());
            on.extend(also.iter().filter(|n| **n != number));
            on.sort_unstable();
            on.dedup();
            let mut commands = Commands::default();
            if !on.is_empty() {
                commands = self.answer_commands(number, &on).await?;
                if !commands.answered.is_empty() {
                    (index, kin_read) = self.family(number).await?;
                }
            }
            let head = index.first().cloned();
            let mut advanced = self
                .drive(Advance::new(number, index, false, None, kin_read))
                .await?;
            self.answer_advances(&mut commands, &advanced).await?;
            if let Some(head) = head.filter(|h| h.issue.number == number) {
                self.nudge_if_overdue(&head, &advanced, true).await?;
            }
            commands.looked.extend(self.take_looked());
            self.keep_scans(&commands.looked).await;
            advanced.commands = commands.answered;
            self.note_drift_after(number, &advanced).await?;
            Ok(advanced)
        })
        .await
    }

    /// What may move now, reading no more than that takes. First the cheap look (no
    /// comments; label history only where the stage's gates need it, or as `events`
    /// brings it from an earlier look of this advance): a plan that moves nothing from it
    /// is final, since it can only go too far. When something may move, the label history
    /// where that plan leaned on it, then the comments (the transitions, which may hold a
    /// move an earlier run recorded and did not finish; none on an issue this run has just
    /// made, unless `read_comments`), and the plan again. A plan that then moves out of a
    /// stage whose gates need the history it lacks is made once more with it: every stage
    /// is judged on what its own gates need, never on a look made for an earlier stage.
    pub(super) async fn decide(
        &self,
        m: &Migration,
        workflow: &Workflow,
        kids: &[&Migration],
        events: Option<Vec<LabelEvent>>,
        read_comments: bool,
        slots: &BTreeMap<String, Slots>,
    ) -> Result<(machine::Plan, Vec<Comment>)> {
        let mut snapshot = match events {
            Some(events) => {
                self.snapshot(m, workflow, kids, false, Some(events))
                    .await?
                    .0
            }
            None => self.glance(m, workflow, kids).await?,
        };
        snapshot.portfolio.slots = slots.clone();
        let mut plan = self.plan(workflow, &mut snapshot).await;
        if plan.transitions.is_empty() {
            return Ok((plan, Vec::new()));
        }
        self.history_if_it_decides(m, workflow, &mut snapshot, &mut plan)
            .await?;
        if plan.transitions.is_empty() {
            return Ok((plan, Vec::new()));
        }
        let history = (!snapshot.history_unread).then_some(snapshot.label_events);
        let read = history.is_some();
        let (mut snapshot, comments) = self
            .snapshot(
                m,
                workflow,
                kids,
                read_comments,
                Some(history.unwrap_or_default()),
            )
            .await?;
        snapshot.history_unread = !read;
        snapshot.portfolio.slots = slots.clone();
        plan = self.plan(workflow, &mut snapshot).await;
        if machine::leans_on_history(workflow, &snapshot, &plan) {
            snapshot.label_events = self.label_history(m, workflow, None).await?;
            snapshot.history_unread = false;
            plan = self.plan(workflow, &mut snapshot).await;
        }
        Ok((plan, comments))
    }

    /// After a look without label history whose plan moves: when the gates of the stage
    /// the migration is in need that history (a soak, an approval), it is read now and
    /// the plan made again — the other gates hold, so the history decides.
    async fn history_if_it_decides(
        &self,
        m: &Migration,
        workflow: &Workflow,
        snapshot: &mut crate::core::snapshot::Snapshot,
        plan: &mut machine::Plan,
    ) -> Result<()> {
        let decides = workflow
            .stages_labelled(&m.issue.labels)
            .first()
            .is_some_and(|s| s.needs_label_history());
        if snapshot.history_unread && decides && !plan.transitions.is_empty() {
            snapshot.label_events = self.label_history(m, workflow, None).await?;
            snapshot.history_unread = false;
            *plan = self.plan(workflow, snapshot).await;
        }
        Ok(())
    }

    /// A transition recorded moments ago by a run that shares no Store with this one (so
    /// its lease is not seen here) and not finished yet is most likely being finished by
    /// that run right now: it is left to it. Only one older than twice
    /// the lease's life is taken for a crash and resumed here.
    pub(super) fn in_other_hands(
        &self,
        number: u64,
        plan: &crate::core::machine::Plan,
        comments: &[crate::tracker::Comment],
        store_id: &str,
    ) -> Option<String> {
        let t = plan.transitions.first().filter(|t| t.resumed)?;
        let (run, store, at) = comments.iter().find_map(|c| {
            let m = crate::core::marker::TransitionMarker::find(&c.body)?;
            (m.seq == t.seq).then_some((m.run, m.store, c.created_at))
        })?;
        let run = run.filter(|r| r != &self.run_id)?;
        if store.as_deref() == Some(store_id) {
            // It shares this Store, and this run holds the lease: it is not working.
            return None;
        }
        let age = self.now() - at;
        let grace = chrono::Duration::from_std(self.lease_ttl * 2).ok()?;
        (age < grace).then(|| {
            format!(
                "another shepherd ({run}) recorded the move of #{number} to {} {}s ago and is finishing it",
                t.to,
                age.num_seconds().max(0)
            )
        })
    }

    /// Whether `m` runs a workflow but carries none of its stage labels yet.
    pub(super) fn unstarted(&self, m: &Migration) -> bool {
        m.marker
            .workflow
            .as_deref()
            .and_then(|w| self.catalog.workflows.get(w))
            .is_some_and(|w| w.stages_labelled(&m.issue.labels).is_empty())
    }

    /// Advances every open migration, children before their parents. A migration that
    /// fails is reported in `errors` (and recorded in the Store, with backoff for the
    /// service) and the others still move; one whose lease another process holds is
    /// skipped and says so.
    /// The Store keys of the migrations recorded as failing (none looked at in a dry run).
    async fn failing_keys(&self, dry_run: bool) -> Result<std::collections::BTreeSet<String>> {
        if dry_run {
            return Ok(Default::default());
        }
        Ok(self
            .store
            .failures()
            .await?
            .into_iter()
            .map(|f| f.key)
            .collect())
    }

    pub async fn reconcile(&self, dry_run: bool) -> Result<Reconciled> {
        use futures::stream::{self, StreamExt};
        let mut index = self.index().await?;
        let failing = self.failing_keys(dry_run).await?;
        self.prune_lines(&index, dry_run).await?;
        let waves = waves(&index);
        let mut out = Reconciled::default();
        // Comment commands: only issues whose count of comments changed since the last
        // look are read for them (none in a dry run).
        let scans = if dry_run {
            None
        } else {
            Some(self.scans().await)
        };
        let looked = std::sync::Mutex::new(Vec::new());
        self.progress.start(waves.iter().map(Vec::len).sum());
        let last = waves.len().saturating_sub(1);
        for (i, wave) in waves.into_iter().enumerate() {
            // Children by parent and migrations by number, once per wave: nothing below
            // scans the whole index per migration.
            let kin = Kin::new(&index);
            let by_number: HashMap<u64, &Migration> =
                index.iter().map(|m| (m.issue.number, m)).collect();
            // Most cannot move, and their glance needs no request: those are settled first,
            // on every core (a checklist to parse each).
            let now = self.now();
            let on = scans
                .as_ref()
                .map(|s| s.of_wave(&wave, &by_number, &kin))
                .unwrap_or_default();
            let settled: Vec<Option<Advanced>> = super::on_every_core(&wave, |number| {
                let m = by_number.get(number)?;
                if on.contains_key(number) {
                    return None;
                }
                self.settled(m, kin.children(*number), now)
            });
            let mut results: Vec<(u64, Result<Advanced>)> = Vec::new();
            let mut rest = Vec::new();
            for (number, settled) in wave.iter().copied().zip(settled) {
                match settled {
                    Some(a) => {
                        self.progress.inc();
                        results.push((number, Ok(a)));
                    }
                    None => rest.push(number),
                }
            }
            // Unordered: a migration waiting on a request must not hold up the ones behind it.
            let looked: Vec<(u64, Result<Advanced>)> = stream::iter(rest)
                .map(|number| {
                    let (kin, by_number, on, looked) = (&kin, &by_number, &on, &looked);
                    async move {
                        let on = on.get(&number).map(Vec::as_slice).unwrap_or_default();
                        let r = match by_number.get(&number) {
                            Some(m) => {
                                let kids = kin.children(number);
                                self.reconcile_one(m, kids, dry_run, on, looked).await
                            }
                            None => Err(anyhow::anyhow!("#{number} left the index")),
                        };
                        self.progress.inc();
                        (number, r)
                    }
                })
                .buffer_unordered(self.in_flight())
                .collect()
                .await;
            results.extend(looked);
            drop(kin);
            let mut moved = false;
            for (number, result) in results {
                let key = self.lease_key(number);
                match result {
                    Ok(a) => {
                        moved |= !a.transitions.is_empty() || !a.created.is_empty();
                        let m = by_number.get(&number).filter(|_| !dry_run);
                        out.errors
                            .extend(self.nudge_unless_busy(m.copied(), &a).await);
                        if !dry_run && failing.contains(&key) {
                            self.store.clear_failure(&key).await?;
                        }
                        out.migrations.push(a);
                    }
                    Err(e) => {
                        let error = format!("{e:#}");
                        if !dry_run {
                            let m = by_number.get(&number).and_then(|m| {
                                let w = m.marker.workflow.as_deref()?;
                                Some((*m, self.catalog.workflow(w).ok()?))
                            });
                            self.record_failing(number, m, &error).await?;
                        }
                        out.errors.push(Failed { number, error });
                    }
                }
            }
            drop(by_number);
            // What moved changes what the next wave's gates see.
            if moved && !dry_run && i < last {
                index = self.index().await?;
            }
        }
        self.progress.finish();
        self.fill_freed_slots(&mut out, dry_run).await;
        let mut looked = looked.into_inner().unwrap_or_else(|e| e.into_inner());
        looked.extend(self.take_looked());
        self.keep_scans(&looked).await;
        out.migrations.sort_by_key(|a| a.number);
        out.errors.sort_by_key(|f| f.number);
        Ok(out)
    }

    /// The report of a migration whose glance, made without a request, says nothing can
    /// move; `None` when that takes a request or something may move.
    fn settled(&self, m: &Migration, kids: &[&Migration], now: DateTime<Utc>) -> Option<Advanced> {
        let workflow = self.workflow_of(m).ok()?;
        let snapshot = self.glance_known(m, workflow, kids)?;
        let plan = machine::plan(workflow, &snapshot, now);
        let unstarted_children = kids.iter().any(|c| c.issue.open && self.unstarted(c));
        (plan.transitions.is_empty() && !unstarted_children)
            .then(|| report_plan(m.issue.number, workflow, plan, Vec::new()))
    }

    /// One migration of a reconcile: a cheap look without the lease (most cannot move,
    /// and it reads no comments, nor label history unless the other gates hold), then, when something may move, the lease, a fresh read of
    /// the tracking issue, and the whole advance — reusing the label history the look read
    /// while the issue is unchanged.
    async fn reconcile_one(
        &self,
        m: &Migration,
        kids: &[&Migration],
        dry_run: bool,
        on: &[u64],
        looked: &std::sync::Mutex<Vec<(u64, Option<u64>)>>,
    ) -> Result<Advanced> {
        let number = m.issue.number;
        let context = || format!("advancing #{number}");
        let family = |head: Migration| {
            let mut family = vec![head];
            family.extend(kids.iter().map(|k| (*k).clone()));
            family
        };
        if dry_run {
            return self
                .drive(Advance::new(number, family(m.clone()), true, None, true))
                .await
                .with_context(context);
        }
        let workflow = self.workflow_of(m).with_context(context)?;
        // Cheapest first: without label history, soaks and approvals taken as holding.
        let mut snapshot = self.glance(m, workflow, kids).await.with_context(context)?;
        let mut plan = self.plan(workflow, &mut snapshot).await;
        self.history_if_it_decides(m, workflow, &mut snapshot, &mut plan)
            .await
            .with_context(context)?;
        let history_read = !snapshot.history_unread;
        let unstarted_children = kids.iter().any(|c| c.issue.open && self.unstarted(c));
        if plan.transitions.is_empty() && !unstarted_children && on.is_empty() {
            return Ok(report_plan(number, workflow, plan, Vec::new()));
        }
        let look = report_plan(number, workflow, plan, Vec::new());
        let events = snapshot.label_events;
        let work = async {
            // Another process may have moved it since the list was read. The cheap look
            // first: the Store's record of the last move (`moved_since`), which every
            // process sharing the Store keeps; when it is newer than the list's copy, the
            // issue is read again, so a transition another process already made is not
            // posted again, even briefly. Where a move writes the whole label set and
            // nothing else would show a label set since, it is read again anyway.
            // Elsewhere the list's copy does: a move a process that shares no Store made
            // meanwhile shows in the comments read next (or in the claim's read-back), and
            // is finished, not repeated; a label a person set meanwhile is kept, by the
            // tracker (relative edits) or by the claim's read-back (`apply`).
            let mut commands = Commands::default();
            if !on.is_empty() {
                commands = self.answer_commands(number, on).await?;
                looked
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(commands.looked.drain(..));
            }
            let acted = !commands.answered.is_empty();
            let issue = match self.tracker.label_writes() {
                _ if acted => self.tracker.issue(number).await?,
                LabelWrites::Relative | LabelWrites::ReadBack
                    if !self.moved_since(&m.issue).await? =>
                {
                    m.issue.clone()
                }
                _ => self.tracker.issue(number).await?,
            };
            let events = (issue.updated_at == m.issue.updated_at && history_read).then_some(events);
            let Some(marker) = IssueMarker::find(&issue.body) else {
                bail!("#{number} lost its shepherd marker");
            };
            let head = Migration::new(issue, marker);
            let mut advanced = self
                .drive(Advance::new(number, family(head), false, events, true))
                .await?;
            self.answer_advances(&mut commands, &advanced).await?;
            advanced.commands = commands.answered;
            Ok(advanced)
        };
        match self.leased(number, std::time::Duration::ZERO, work).await {
            Ok(Leased::Done(a)) => Ok(a),
            Ok(Leased::Busy(who)) => Ok(Advanced {
                transitions: Vec::new(),
                created: Vec::new(),
                skipped: Some(who),
                ..look
            }),
            Err(e) => Err(e.context(context())),
        }
    }
}
