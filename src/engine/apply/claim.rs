//! The claim: of two runs that record the same transition, the one whose audit comment
//! came first wins and the other deletes its own; and the Store's record of each move, by
//! the tracker's clock, which tells a run whose copy is older to read the issue again.

use anyhow::{Context as _, Result};

use super::super::Engine;
use crate::core::marker::TransitionMarker;
use crate::tracker::{Comment, Issue, ReadBack, Versions};
use chrono::{DateTime, Utc};

pub(super) enum Claim {
    /// This run's audit comment is the first; what was read back.
    Won(ReadBack),
    /// Another run's came first (its run id).
    Lost(String),
}

impl Engine<'_> {
    /// Keeps in the Store when a move of `issue` was made, by the tracker's clock, for
    /// `moved_since`. A hint: a Store that lost it only costs a fresh read.
    pub(super) async fn record_move(&self, issue: &Issue) {
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
    pub(super) async fn claim(&self, number: u64, seq: u64, mine: &Comment) -> Result<Claim> {
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
    pub(super) async fn withdraw(&self, number: u64, mine: &Comment) -> Result<()> {
        self.tracker
            .delete_comment(number, mine.id)
            .await
            .context("deleting this run's audit comment")
    }
}
