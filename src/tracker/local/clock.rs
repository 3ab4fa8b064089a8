//! The rehearsal clock, kept in the tracker's file (`shepherd_meta` key `clock`) so that
//! every command of a rehearsal sees the same time: `shepherd clock set` and
//! `shepherd clock advance` move it, `--now` overrides it for one command. Setting it
//! before the latest event in the file is allowed (a rehearsal may restart) but reported,
//! so the CLI can warn that histories will run backwards. It never moves past
//! 9999-12-31T23:59:59Z (`core::time`): a later time could be stored but not read back. A
//! file that holds one anyway (written by hand, or by an older shepherd) is refused with
//! its path and the command that repairs it, which `clock set` can still run.

use std::path::Path;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension};

use super::{parse_time, sql, LocalTracker};
use crate::core::{duration, time};
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
        self.read(|conn| stored(conn).map_err(|e| e.at(&self.path)))
    }

    /// Stores `t` as the clock, creating the file if the tracker was opened on a missing
    /// one. Says when `t` is before the latest event in the file.
    pub fn set_clock(&self, t: DateTime<Utc>) -> Result<ClockSet, TrackerError> {
        let t = time::check(t)
            .map_err(|e| TrackerError::Other(format!("cannot set the clock: {e}")))?;
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
        let cannot = |why: String| {
            TrackerError::Other(format!(
                "cannot move the clock from {} by {}: {why}",
                time::shown(base),
                duration::human_short(d)
            ))
        };
        let t = base
            .checked_add_signed(d)
            .ok_or_else(|| cannot(format!("that is past {}", time::LATEST)))?;
        let t = time::check(t).map_err(cannot)?;
        self.set_clock(t)
    }
}

/// What is wrong with a clock stored in the file.
pub(super) enum StoredClock {
    /// Not a time shepherd can read: the text as stored.
    Unreadable(String),
    Failed(TrackerError),
}

impl StoredClock {
    /// The error for the tracker at `path`: an unreadable clock names the file and the
    /// command that repairs it.
    pub(super) fn at(self, path: &Path) -> TrackerError {
        match self {
            StoredClock::Unreadable(text) => TrackerError::Other(format!(
                "the rehearsal clock stored in {} is `{text}`, which is no time shepherd can read (RFC 3339, from {} to {}): set it again with `shepherd clock set 2026-01-01T00:00:00Z` (any time in that range)",
                path.display(),
                time::EARLIEST,
                time::LATEST
            )),
            StoredClock::Failed(e) => e,
        }
    }
}

/// The clock stored in the file.
pub(super) fn stored(conn: &Connection) -> Result<Option<DateTime<Utc>>, StoredClock> {
    let text: Option<String> = conn
        .prepare_cached("SELECT value FROM shepherd_meta WHERE key = 'clock'")
        .and_then(|mut q| q.query_row([], |r| r.get(0)).optional())
        .map_err(|e| StoredClock::Failed(sql(e)))?;
    let Some(text) = text else {
        return Ok(None);
    };
    match parse_time(&text).ok().map(time::check) {
        Some(Ok(t)) => Ok(Some(t)),
        _ => Err(StoredClock::Unreadable(text)),
    }
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
