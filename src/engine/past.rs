//! The portfolio's past for the forecast and the burn-down (DESIGN §13): every
//! migration's moves, open and closed, from its audit comments.

use std::collections::HashMap;

use anyhow::Result;

use super::{Engine, Migration};
use crate::core::forecast::{Forecast, Life, Past};
use crate::core::report::{self, Status};
use crate::tracker::StateFilter;

impl Engine<'_> {
    /// The lives of `index`'s migrations: from the histories of `known` where it has them
    /// (statuses read just before), else from their audit comments — one request each on
    /// a remote tracker, through the Store's cache (a closed issue seldom changes).
    pub async fn past(&self, index: &[Migration], known: &[Status]) -> Result<Past> {
        use futures::stream::{self, StreamExt, TryStreamExt};
        let known: HashMap<u64, &Status> = known
            .iter()
            .filter(|s| s.history.is_some())
            .map(|s| (s.number, s))
            .collect();
        let ours = |m: &&Migration| {
            m.marker
                .workflow
                .as_deref()
                .is_some_and(|w| self.catalog.workflows.contains_key(w))
        };
        let mut lives: Vec<Life> = Vec::new();
        let mut unread: Vec<&Migration> = Vec::new();
        for m in index.iter().filter(ours) {
            let closed = (!m.issue.open).then_some(m.issue.updated_at);
            match known.get(&m.issue.number) {
                Some(status) => lives.push(status.life(m.issue.created_at, closed)),
                None => unread.push(m),
            }
        }
        let numbers: Vec<u64> = unread.iter().map(|m| m.issue.number).collect();
        let all = std::sync::Mutex::new(self.tracker.comments_of(&numbers).await?);
        let all = &all;
        let read: Vec<Life> = stream::iter(unread)
            .map(|m| async move {
                let bulk = all
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_mut()
                    .map(|all| all.remove(&m.issue.number).unwrap_or_default());
                let comments = match bulk {
                    Some(comments) => comments,
                    None if m.issue.comment_count == Some(0) => Vec::new(),
                    None => self.tracker.comments(m.issue.number).await?,
                };
                Ok::<_, anyhow::Error>(Life {
                    workflow: m.marker.workflow.clone().unwrap_or_default(),
                    number: m.issue.number,
                    child: m.marker.parent.is_some(),
                    created: m.issue.created_at,
                    moves: super::read::transitions_of(&comments)
                        .into_iter()
                        .map(|t| (t.to, t.at))
                        .collect(),
                    closed: (!m.issue.open).then_some(m.issue.updated_at),
                })
            })
            .buffer_unordered(self.in_flight())
            .try_collect()
            .await?;
        lives.extend(read);
        lives.sort_by_key(|l| l.number);
        Ok(Past::new(lives))
    }

    /// The forecast of one migration's `status`, from the past of its workflow's
    /// migrations (one list of them, open and closed, and their histories).
    pub async fn forecast(&self, status: &Status) -> Result<Option<Forecast>> {
        let Some(workflow) = self.catalog.workflows.get(&status.workflow) else {
            return Ok(None);
        };
        if status.state != "open" || status.stage.is_none() {
            return Ok(None);
        }
        let index: Vec<Migration> = self
            .tracker
            .list_issues(StateFilter::All, &workflow.tracking.labels)
            .await?
            .into_iter()
            .filter_map(|issue| {
                let marker = crate::core::marker::IssueMarker::find(&issue.body)?;
                (marker.workflow.as_deref() == Some(workflow.name.as_str()))
                    .then(|| Migration::new(issue, marker))
            })
            .collect();
        let past = self.past(&index, &[]).await?;
        Ok(report::forecast_of(workflow, status, self.now(), &past))
    }
}
