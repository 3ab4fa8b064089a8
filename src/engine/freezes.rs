//! Change freezes for the plans (DESIGN §13): the periods of `shepherd.toml` (`Settings`)
//! and the tracker's own (the local file's, a GitLab project's deploy freeze periods),
//! read once per run — kept a minute, so the service reads them again now and then, never
//! once per migration — and evaluated at the engine's `now`, the rehearsal clock on the
//! local tracker. Only a workflow with a `freeze: wait` stage asks. The answer is the same
//! for every moment of one minute (crons fire on whole minutes), so it is worked out once
//! a minute, not once per snapshot.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use chrono::{DateTime, Timelike, Utc};

use super::Engine;
use crate::core::freeze::{frozen_until, Freeze};
use crate::core::workflow::Workflow;
use crate::fresh::Fresh;
use crate::tracker::Tracker;

/// How long the tracker's periods stay good: the service reads them again after this.
const FRESH: Duration = Duration::from_secs(60);

/// The tracker's freeze periods with `shepherd.toml`'s, checked, or why they cannot be
/// had.
pub(crate) struct TrackerFreezes {
    periods: Fresh<(), Result<Arc<Periods>, String>>,
}

impl Default for TrackerFreezes {
    fn default() -> TrackerFreezes {
        TrackerFreezes {
            periods: Fresh::new(FRESH),
        }
    }
}

/// Every period in force, and the last answer.
pub(crate) struct Periods {
    all: Vec<Freeze>,
    last: Mutex<Option<Answer>>,
}

/// Until when it is frozen (`None`: it is not), for every moment of `minute`.
#[derive(Clone, Copy)]
struct Answer {
    minute: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
}

impl Periods {
    /// Until when the freeze in effect at `now` lasts.
    fn until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let minute = now
            .with_second(0)
            .and_then(|t| t.with_nanosecond(0))
            .unwrap_or(now);
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        match *last {
            Some(answer) if answer.minute == minute => answer.until,
            _ => {
                let until = frozen_until(&self.all, minute);
                *last = Some(Answer { minute, until });
                until
            }
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
        let periods = self
            .tracker_freezes
            .periods
            .get(&(), || read(self.tracker, &self.freezes))
            .await
            .map_err(anyhow::Error::msg)?;
        Ok(periods.until(now))
    }
}

/// The tracker's periods, each checked, after `configured`; one that cannot be read names
/// where it came from.
async fn read(tracker: &dyn Tracker, configured: &[Freeze]) -> Result<Arc<Periods>, String> {
    let periods = tracker.freeze_periods().await.map_err(|e| {
        format!(
            "cannot read the change freezes of {}: {e}",
            tracker.describe()
        )
    })?;
    let mut all = configured.to_vec();
    for p in &periods {
        let checked = Freeze::new(&p.start, &p.end, Some(&p.timezone))
            .map_err(|e| format!("freeze period {} of {}: {e}", p.id, tracker.describe()))?;
        all.push(checked);
    }
    Ok(Arc::new(Periods {
        all,
        last: Mutex::new(None),
    }))
}
