//! What one migration's plan needs to know of the portfolio it belongs to (DESIGN §13):
//! whether a change freeze is in effect and which slots of a limited stage are taken. The
//! engine finds these out (the freeze periods once per run, the stage's occupants from the
//! list it reads anyway, a slot under the stage's lease); core only decides with them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::gates::GateReport;
use super::workflow::Stage;

/// The portfolio as one migration's plan sees it. The default knows of no freeze and no
/// taken slot: the cheapest look, an upper bound like unread facts — a plan that moves
/// into a limited stage is made again once the slots are known.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Portfolio {
    /// Until when the change freeze in effect now lasts; `None`: none is.
    pub frozen_until: Option<DateTime<Utc>>,
    /// By stage id: the slots of a stage with a `limit`, where the engine looked.
    pub slots: BTreeMap<String, Slots>,
}

/// A limited stage's slots as the engine found them for one migration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Slots {
    /// The open migrations of the workflow standing in the stage, by number.
    pub taken_by: Vec<u64>,
    /// Whether this migration may have a slot: one is free and no migration ahead of it
    /// in the queue (priority first, then the longest wait) waits for it.
    pub granted: bool,
    /// The migrations ahead of this one in the queue, by number.
    pub ahead: Vec<u64>,
}

/// One reason a migration whose gates hold does not move on yet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Waiting {
    pub kind: WaitKind,
    pub detail: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WaitKind {
    /// The next stage's `limit` is taken.
    Slot,
    /// An `after` gate: other migrations have not got far enough.
    After,
    /// The next stage waits out a change freeze.
    Freeze,
}

impl WaitKind {
    /// The `gate` name of the report that says so.
    pub fn gate(self) -> &'static str {
        match self {
            WaitKind::Slot => "slot",
            WaitKind::After => "after",
            WaitKind::Freeze => "freeze",
        }
    }

    pub fn of_gate(gate: &str) -> Option<WaitKind> {
        [WaitKind::Slot, WaitKind::After, WaitKind::Freeze]
            .into_iter()
            .find(|k| k.gate() == gate)
    }
}

impl Portfolio {
    /// Why `stage` may not be entered now, if it may not: a freeze it waits out, then a
    /// slot it has not been granted.
    pub fn holds_back(&self, stage: &Stage) -> Option<GateReport> {
        if stage.pacing.freeze_wait {
            if let Some(until) = self.frozen_until {
                return Some(GateReport {
                    gate: WaitKind::Freeze.gate().into(),
                    description: format!("`{}` is not entered during a change freeze", stage.id),
                    passed: false,
                    detail: format!("frozen until {}", until.format("%Y-%m-%d %H:%M UTC")),
                    waits_for: None,
                });
            }
        }
        let limit = stage.pacing.limit?;
        let slots = self.slots.get(&stage.id)?;
        if slots.granted {
            return None;
        }
        let refs = |ns: &[u64]| {
            ns.iter()
                .map(|n| format!("#{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut detail = format!(
            "waits for a slot in {}: {} of {limit} taken",
            stage.id,
            slots.taken_by.len()
        );
        if !slots.taken_by.is_empty() {
            detail.push_str(&format!(" by {}", refs(&slots.taken_by)));
        }
        if !slots.ahead.is_empty() {
            detail.push_str(&format!("; {} ahead in line", refs(&slots.ahead)));
        }
        Some(GateReport {
            gate: WaitKind::Slot.gate().into(),
            description: format!("a slot free in `{}` (limit {limit})", stage.id),
            passed: false,
            detail,
            waits_for: None,
        })
    }
}

/// The waits among a plan's reasons for stopping.
pub fn waiting(blocked_by: &[GateReport]) -> Vec<Waiting> {
    blocked_by
        .iter()
        .filter_map(|r| {
            Some(Waiting {
                kind: WaitKind::of_gate(&r.gate)?,
                detail: r.detail.clone(),
            })
        })
        .collect()
}
