//! The rehearsal clock, kept in the tracker's file (`shepherd_meta` key `clock`) so that
//! every command of a rehearsal sees the same time: `shepherd clock set` and
//! `shepherd clock advance` move it, `--now` overrides it for one command. Setting it
//! before the latest event in the file is allowed (a rehearsal may restart) but reported,
//! so the CLI can warn that histories will run backwards.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension};

use super::{parse_time, sql, LocalTracker};
use crate::tracker::TrackerError;

/// What setting the clock did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClockSet {
    /// The clock's new time.
    pub clock: DateTime<Utc>,
    /// The latest event in the file (issue, comment or label event), when the new time is
    /// before it.
    pub latest_event: Option<DateTime<Utc>>,
}

impl LocalTracker {
    /// The clock stored in the file, if one was set.
    pub fn clock(&self) -> Result<Option<DateTime<Utc>>, TrackerError> {
        self.read(stored)
    }

    /// Stores `t` as the clock, creating the file if the tracker was opened on a missing
    /// one. Says when `t` is before the latest event in the file.
    pub fn set_clock(&self, t: DateTime<Utc>) -> Result<ClockSet, TrackerError> {
        self.persist()?;
        let latest = self.write(|tx| {
            tx.execute(
                "INSERT INTO shepherd_meta (key, value) VALUES ('clock', ?1) \
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)],
            )
            .map_err(sql)?;
            latest_event(tx)
        })?;
        *self.stored_clock.lock().unwrap_or_else(|e| e.into_inner()) = Some(t);
        Ok(ClockSet {
            clock: t,
            latest_event: latest.filter(|latest| t < *latest),
        })
    }

    /// Moves the clock by `d` (back when negative) from the tracker's time now: the
    /// stored clock, or the system clock when none is stored (`--now` counts when given).
    pub fn advance_clock(&self, d: chrono::Duration) -> Result<ClockSet, TrackerError> {
        let base = self.now_at();
        let t = base.checked_add_signed(d).ok_or_else(|| {
            TrackerError::Other(format!(
                "cannot move the clock from {base} by {d}: out of range"
            ))
        })?;
        self.set_clock(t)
    }
}

/// The clock stored in the file.
pub(super) fn stored(conn: &Connection) -> Result<Option<DateTime<Utc>>, TrackerError> {
    let text: Option<String> = conn
        .prepare_cached("SELECT value FROM shepherd_meta WHERE key = 'clock'")
        .map_err(sql)?
        .query_row([], |r| r.get(0))
        .optional()
        .map_err(sql)?;
    text.map(|t| parse_time(&t)).transpose()
}

/// The time of the latest issue, comment or label event.
fn latest_event(conn: &Connection) -> Result<Option<DateTime<Utc>>, TrackerError> {
    let text: Option<String> = conn
        .prepare_cached(
            "SELECT max(t) FROM ( \
             SELECT max(updated_at) AS t FROM issues \
             UNION ALL SELECT max(created_at) FROM issues \
             UNION ALL SELECT max(created_at) FROM comments \
             UNION ALL SELECT max(at) FROM label_events)",
        )
        .map_err(sql)?
        .query_row([], |r| r.get(0))
        .map_err(sql)?;
    text.map(|t| parse_time(&t)).transpose()
}
