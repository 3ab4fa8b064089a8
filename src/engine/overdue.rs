//! The nudge of an overdue stay (DESIGN §13): once per stay longer than its stage's
//! `target`, a comment on the tracking issue mentions the stage's `owners` (or the issue's
//! assignees), and the `overdue` notification goes into the outbox.
//!
//! An idle poll costs no request for it: the run decides from what it has — the Store's
//! record of the stay (`Known`: the stage, when it was entered, and the transition that
//! began it once read), else the issue's creation, which no stay can precede — and reads
//! the comments only for a migration that may be overdue and whose stay the Store does
//! not record as nudged. The nudge is written under the migration's lease, carries a
//! marker naming the stay (`core::overdue::NudgeMarker`), and, as a command's reply, is
//! read back: of two runs that share no Store, the first nudge stays and the later is
//! taken back.

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::lease::Leased;
use super::{Advanced, Engine, Failed, Migration};
use crate::core::command::{self, Said};
use crate::core::overdue::{self, NudgeMarker, Stay};
use crate::core::workflow::{Stage, Workflow};
use crate::notify::EventKind;
use crate::tracker::Comment;

/// What the Store keeps of a migration's stay: a hint, rebuilt from the comments when lost.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Known {
    stage: String,
    at: DateTime<Utc>,
    /// The transition that began it, once the comments were read.
    seq: Option<u64>,
    /// The Store's record of the migration's last move when this was kept: a move since
    /// (a rollback by a person, another process sharing the Store) makes it stale.
    #[serde(default)]
    moved: Option<String>,
}

impl Engine<'_> {
    fn stay_key(&self, number: u64) -> String {
        format!("stay:{}", self.lease_key(number))
    }

    fn nudged_key(&self, number: u64, seq: u64) -> String {
        format!("nudged:{}:{seq}", self.lease_key(number))
    }

    /// The Store's record of the last move of `number` (`claim::record_move`).
    async fn last_move(&self, number: u64) -> Result<Option<String>> {
        let key = format!("moved:{}", self.lease_key(number));
        Ok(self.store.cache_get(&key).await?.map(|c| c.value))
    }

    async fn known(&self, number: u64, stage: &str) -> Result<Option<Known>> {
        let Some(cached) = self.store.cache_get(&self.stay_key(number)).await? else {
            return Ok(None);
        };
        let Some(known) = serde_json::from_str::<Known>(&cached.value)
            .ok()
            .filter(|k| k.stage == stage)
        else {
            return Ok(None);
        };
        let moved = self.last_move(number).await?;
        Ok((known.moved == moved).then_some(known))
    }

    async fn keep_known(&self, number: u64, mut known: Known) {
        known.moved = match self.last_move(number).await {
            Ok(moved) => moved,
            Err(e) => {
                tracing::warn!("#{number}: reading its last move: {e}");
                return;
            }
        };
        let Ok(text) = serde_json::to_string(&known) else {
            return;
        };
        if let Err(e) = self
            .store
            .cache_put(&self.stay_key(number), &text, "1")
            .await
        {
            tracing::warn!("#{number}: recording its stay: {e}");
        }
    }

    /// The stage of `advanced` with a `target`, where `m` stands open in it.
    fn target_stage<'w>(
        &self,
        m: &Migration,
        workflow: &'w Workflow,
        stage: Option<&str>,
    ) -> Option<&'w Stage> {
        let stage = workflow.stage(stage?)?;
        (m.issue.open && !stage.terminal && stage.pacing.target.is_some()).then_some(stage)
    }

    /// Whether `m`'s stay in `stage` may be overdue and not yet nudged, from the Store and
    /// the issue alone (no request), and when it may next become so.
    pub(crate) async fn may_be_overdue(
        &self,
        m: &Migration,
        stage: &Stage,
    ) -> Result<(bool, Option<DateTime<Utc>>)> {
        let Some(target) = stage.pacing.target else {
            return Ok((false, None));
        };
        let known = self.known(m.issue.number, &stage.id).await?;
        // No stay began before the issue was made: its creation bounds the stay from above.
        let entered = known.as_ref().map_or(m.issue.created_at, |k| k.at);
        let due = entered.checked_add_signed(target);
        if due.is_none_or(|d| self.now() <= d) {
            return Ok((false, due));
        }
        if let Some(seq) = known.and_then(|k| k.seq) {
            let key = self.nudged_key(m.issue.number, seq);
            if self.store.cache_get(&key).await?.is_some() {
                return Ok((false, None));
            }
        }
        Ok((true, None))
    }

    /// After an advance of `m` (this run's `advanced`): nudges its stay once it is
    /// overdue. `held`: the caller holds the migration's lease; otherwise it is taken
    /// here, and a busy one is left to its holder.
    pub(crate) async fn nudge_if_overdue(
        &self,
        m: &Migration,
        advanced: &Advanced,
        held: bool,
    ) -> Result<()> {
        if advanced.skipped.is_some() {
            return Ok(());
        }
        let Ok(workflow) = self.workflow_of(m) else {
            return Ok(());
        };
        let Some(stage) = self.target_stage(m, workflow, advanced.stage.as_deref()) else {
            return Ok(());
        };
        let number = m.issue.number;
        if let Some(moved) = advanced.transitions.last() {
            // A stay this run began: when, from the move; which transition, once read.
            let known = Known {
                stage: stage.id.clone(),
                at: moved.at,
                seq: None,
                moved: None,
            };
            self.keep_known(number, known).await;
        }
        if !self.may_be_overdue(m, stage).await?.0 {
            return Ok(());
        }
        if held {
            return self.nudge(m, workflow, stage).await;
        }
        let work = self.nudge(m, workflow, stage);
        match self.leased(number, std::time::Duration::ZERO, work).await? {
            Leased::Done(()) => Ok(()),
            Leased::Busy(_) => Ok(()),
        }
    }

    /// `nudge_if_overdue` for a reconcile, which holds no lease: the failure, named.
    pub(crate) async fn nudge_unless_busy(
        &self,
        m: Option<&Migration>,
        advanced: &Advanced,
    ) -> Option<Failed> {
        let m = m?;
        let e = self.nudge_if_overdue(m, advanced, false).await.err()?;
        Some(Failed {
            number: m.issue.number,
            error: format!("nudging #{} about its overdue stay: {e:#}", m.issue.number),
        })
    }

    /// Reads the stay from the comments and, when it is overdue and no nudge names it,
    /// nudges. The caller holds the lease.
    async fn nudge(&self, m: &Migration, workflow: &Workflow, stage: &Stage) -> Result<()> {
        let number = m.issue.number;
        let comments = self.tracker.comments(number).await?;
        let stay = self.stay_of(m, stage, &comments).await?;
        let known = Known {
            stage: stay.stage.clone(),
            at: stay.at,
            seq: Some(stay.seq),
            moved: None,
        };
        self.keep_known(number, known).await;
        let now = self.now();
        if !stay.overdue(stage, now) {
            return Ok(());
        }
        let nudged = self.nudged_key(number, stay.seq);
        let store = self.store_id().await?.clone();
        let mine = |c: &Comment| NudgeMarker::find(&c.body).filter(|x| x.seq == stay.seq);
        if let Some(first) = comments.iter().filter_map(mine).next() {
            // Posted before (this Store's nudge whose record a crash lost gives its event).
            if first.store.as_deref() == Some(store.as_str()) {
                self.notify_overdue(m, workflow, stage, &stay).await?;
            }
            self.store.cache_put(&nudged, "1", "1").await?;
            return Ok(());
        }
        let marker = NudgeMarker {
            seq: stay.seq,
            stage: stage.id.clone(),
            run: Some(self.run_id.clone()),
            store: Some(store),
        };
        let who = overdue::mentions(stage, &m.issue.assignees);
        let text = overdue::nudge(&stay, stage, now, &who, &marker);
        let posted = self.tracker.add_comment(number, &text).await?;
        let back = self.tracker.read_back(number).await?;
        let first = back
            .comments
            .iter()
            .filter(|c| mine(c).is_some())
            .map(|c| c.id)
            .min();
        self.store.cache_put(&nudged, "1", "1").await?;
        let mut count = back.comments.len() as u64;
        if first.is_some_and(|f| f != posted.id) {
            tracing::info!(
                "#{number}: another shepherd nudged this stay first; taking this nudge back"
            );
            self.tracker.delete_comment(number, posted.id).await?;
            count = count.saturating_sub(1);
        } else {
            self.notify_overdue(m, workflow, stage, &stay).await?;
        }
        if command::pending(back.comments.iter().map(Said::from)).is_empty() {
            // Every comment is seen: the next poll need not read them for commands.
            let mut looked = self.looked.lock().unwrap_or_else(|e| e.into_inner());
            looked.push((number, Some(count)));
        }
        Ok(())
    }

    /// The stay `m` is in: the newest audit comment's, where it went into `stage`; else
    /// (a stage label set by hand) since the label was last added, as stay 0.
    async fn stay_of(&self, m: &Migration, stage: &Stage, comments: &[Comment]) -> Result<Stay> {
        let records = super::read::transitions_of(comments);
        if let Some(stay) = Stay::of(&stage.id, &records) {
            return Ok(stay);
        }
        let events = self.tracker.label_events(m.issue.number).await?;
        let at = events
            .iter()
            .rev()
            .find(|e| e.added && e.label == stage.label)
            .map_or(m.issue.created_at, |e| e.at);
        Ok(Stay {
            stage: stage.id.clone(),
            seq: 0,
            at,
        })
    }

    /// The `overdue` event of `stay` (its id: tracker, issue, the stay's transition).
    async fn notify_overdue(
        &self,
        m: &Migration,
        workflow: &Workflow,
        stage: &Stage,
        stay: &Stay,
    ) -> Result<()> {
        if self.notify.is_none() {
            return Ok(());
        }
        let now = self.now();
        let mut event = self.event(EventKind::Overdue, m, workflow, &stay.seq.to_string(), now);
        event.to = Some(stage.id.clone());
        let target = stage.pacing.target.unwrap_or_else(chrono::Duration::zero);
        event.reason = Some(overdue::note(&stage.id, now - stay.at, target));
        if let Some(status) = event.status.as_object_mut() {
            status.insert("overdue".into(), json!(true));
        }
        self.notify(&event).await.map(drop)
    }
}
