//! The local tracker's change freeze periods (DESIGN §13): what `shepherd freeze add`,
//! `list` and `remove` keep, so a rehearsal meets a freeze on its own clock. They are
//! stored as written (crons and time zone) and checked by `core::freeze` before they are
//! added and where they are used.

use rusqlite::params;

use super::issues::time;
use super::{sql, LocalTracker};
use crate::tracker::{FreezePeriod, TrackerError};

impl LocalTracker {
    /// Adds a freeze period; it is given the next id.
    pub fn add_freeze(
        &self,
        start: &str,
        end: &str,
        timezone: &str,
    ) -> Result<FreezePeriod, TrackerError> {
        let at = time(self.now_at());
        self.persist()?;
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO freeze_periods (freeze_start, freeze_end, cron_timezone, created_by, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .map_err(sql)?
            .execute(params![start, end, timezone, self.actor, at])
            .map_err(sql)?;
            let id = u64::try_from(tx.last_insert_rowid()).unwrap_or_default();
            Ok(FreezePeriod {
                id,
                start: start.to_string(),
                end: end.to_string(),
                timezone: timezone.to_string(),
            })
        })
    }

    /// Removes freeze period `id`; `false` when there is none.
    pub fn remove_freeze(&self, id: u64) -> Result<bool, TrackerError> {
        let Ok(key) = i64::try_from(id) else {
            return Ok(false);
        };
        self.write(|tx| {
            let removed = tx
                .prepare_cached("DELETE FROM freeze_periods WHERE id = ?1")
                .map_err(sql)?
                .execute([key])
                .map_err(sql)?;
            Ok(removed > 0)
        })
    }

    /// Every freeze period, oldest first.
    pub fn freezes(&self) -> Result<Vec<FreezePeriod>, TrackerError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id, freeze_start, freeze_end, cron_timezone FROM freeze_periods ORDER BY id",
                )
                .map_err(sql)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(FreezePeriod {
                        id: u64::try_from(r.get::<_, i64>(0)?).unwrap_or_default(),
                        start: r.get(1)?,
                        end: r.get(2)?,
                        timezone: r.get(3)?,
                    })
                })
                .map_err(sql)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(sql)
        })
    }
}
