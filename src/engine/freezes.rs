//! Change freezes for the plans (DESIGN §13): the periods of `shepherd.toml` (`Settings`)
//! and the tracker's own (the local file's, a GitLab project's deploy freeze periods),
//! read once per run — kept a minute, so the service reads them again now and then, never
//! once per migration — and evaluated at the engine's `now`, the rehearsal clock on the
//! local tracker. Only a workflow with a `freeze: wait` stage asks.

use std::time::Duration;

use anyhow::Result;
use chrono::{DateTime, Utc};

use super::Engine;
use crate::core::freeze::{frozen_until, Freeze};
use crate::core::workflow::Workflow;
use crate::fresh::Fresh;
use crate::tracker::Tracker;

/// How long the tracker's periods stay good: the service reads them again after this.
const FRESH: Duration = Duration::from_secs(60);

/// The tracker's freeze periods, checked, or why they cannot be had.
pub(crate) struct TrackerFreezes {
    periods: Fresh<(), Result<Vec<Freeze>, String>>,
}

impl Default for TrackerFreezes {
    fn default() -> TrackerFreezes {
        TrackerFreezes {
            periods: Fresh::new(FRESH),
        }
    }
}

impl Engine<'_> {
    /// Until when the change freeze in effect at `now` lasts, for a plan of `workflow`;
    /// `None` when none is, or when no stage of the workflow waits one out (nothing asked).
    pub(crate) async fn frozen_until(
        &self,
        workflow: &Workflow,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>> {
        if !workflow.stages.iter().any(|s| s.pacing.freeze_wait) {
            return Ok(None);
        }
        let tracker = self
            .tracker_freezes
            .periods
            .get(&(), || read(self.tracker))
            .await
            .map_err(anyhow::Error::msg)?;
        let all: Vec<Freeze> = self.freezes.iter().chain(&tracker).cloned().collect();
        Ok(frozen_until(&all, now))
    }
}

/// The tracker's periods, each checked; one that cannot be read names where it came from.
async fn read(tracker: &dyn Tracker) -> Result<Vec<Freeze>, String> {
    let periods = tracker.freeze_periods().await.map_err(|e| {
        format!(
            "cannot read the change freezes of {}: {e}",
            tracker.describe()
        )
    })?;
    periods
        .iter()
        .map(|p| {
            Freeze::new(&p.start, &p.end, Some(&p.timezone))
                .map_err(|e| format!("freeze period {} of {}: {e}", p.id, tracker.describe()))
        })
        .collect()
}
