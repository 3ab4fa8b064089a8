//! `SqliteStore`: the Store in one SQLite file (`sqlite:PATH`, the default). WAL mode, so
//! readers never wait for the writer; a busy timeout, so concurrent processes wait for
//! each other rather than fail with "database is locked"; every read-modify-write in a
//! `BEGIN IMMEDIATE` transaction, so two processes cannot both take one lease or one
//! queue entry. Times are the process's wall clock, stored as milliseconds since the
//! epoch. Calls run on tokio's blocking pool (`spawn_blocking`), one at a time per
//! handle behind a `std::sync::Mutex` that is never held across an `.await`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

mod connection;
mod outbox;

pub(crate) use connection::newer_schema;
pub use connection::SCHEMA_VERSION;

use super::{backoff, capped, Cached, Failure, QueueEntry, Store, StoreError};

/// The queue's entries with the time each is due: the later of the time queued and its
/// key's retry time, unless a delivery waived that (`waiver` 1: `Store::waive_backoff`).
/// `$filter` narrows the rows read first (an entry is never due before the time it was
/// queued for, so `q.due` may be filtered on its index).
macro_rules! due_entries {
    ($filter:literal) => {
        concat!(
            "(SELECT q.key, q.reason, q.queued_at, q.owner, q.taken_until,
                 MAX(q.due, COALESCE((SELECT f.retry_at FROM failures f
                                      WHERE f.key = q.key AND f.waiver <> 1), q.due)) AS due
              FROM queue q ",
            $filter,
            ")"
        )
    };
}

/// The Store in a SQLite file (or in memory, for a dry run).
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    describe: String,
}

impl SqliteStore {}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn ms(d: Duration) -> i64 {
    i64::try_from(capped(d).as_millis()).unwrap_or(i64::MAX)
}

fn time(ms: i64) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms).ok_or(rusqlite::Error::IntegralValueOutOfRange(0, ms))
}

fn failure(row: &rusqlite::Row) -> rusqlite::Result<Failure> {
    Ok(Failure {
        key: row.get(0)?,
        error: row.get(1)?,
        attempts: row.get(2)?,
        failed_at: time(row.get(3)?)?,
        retry_at: time(row.get(4)?)?,
    })
}

#[async_trait]
impl Store for SqliteStore {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn shared(&self) -> bool {
        false
    }

    async fn acquire(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool, StoreError> {
        let (key, owner) = (key.to_string(), owner.to_string());
        self.write(move |tx| {
            let now = now_ms();
            let changed = tx
                .prepare_cached(
                    "INSERT INTO leases (key, owner, expires) VALUES (?1, ?2, ?3)
                     ON CONFLICT (key) DO UPDATE SET owner = excluded.owner,
                         expires = excluded.expires
                     WHERE leases.owner = excluded.owner OR leases.expires <= ?4",
                )?
                .execute(params![key, owner, now.saturating_add(ms(ttl)), now])?;
            Ok(changed == 1)
        })
        .await
    }

    async fn renew(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool, StoreError> {
        let (key, owner) = (key.to_string(), owner.to_string());
        self.write(move |tx| {
            let expires = now_ms().saturating_add(ms(ttl));
            let changed = tx
                .prepare_cached("UPDATE leases SET expires = ?3 WHERE key = ?1 AND owner = ?2")?
                .execute(params![key, owner, expires])?;
            Ok(changed == 1)
        })
        .await
    }

    async fn release(&self, key: &str, owner: &str) -> Result<(), StoreError> {
        let (key, owner) = (key.to_string(), owner.to_string());
        self.write(move |tx| {
            tx.prepare_cached("DELETE FROM leases WHERE key = ?1 AND owner = ?2")?
                .execute(params![key, owner])?;
            Ok(())
        })
        .await
    }

    async fn release_all(&self, owner: &str) -> Result<(), StoreError> {
        let owner = owner.to_string();
        self.write(move |tx| {
            tx.prepare_cached("DELETE FROM leases WHERE owner = ?1")?
                .execute(params![owner])?;
            Ok(())
        })
        .await
    }

    async fn holder(&self, key: &str) -> Result<Option<(String, DateTime<Utc>)>, StoreError> {
        let key = key.to_string();
        self.call(move |conn| {
            let found: Option<(String, i64)> = conn
                .prepare_cached(
                    "SELECT owner, expires FROM leases WHERE key = ?1 AND expires > ?2",
                )?
                .query_row(params![key, now_ms()], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()?;
            found.map(|(owner, ms)| Ok((owner, time(ms)?))).transpose()
        })
        .await
    }

    async fn cursor(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = key.to_string();
        self.call(move |conn| {
            conn.prepare_cached("SELECT value FROM cursors WHERE key = ?1")?
                .query_row([key], |row| row.get(0))
                .optional()
        })
        .await
    }

    async fn set_cursor(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let (key, value) = (key.to_string(), value.to_string());
        self.write(move |tx| {
            tx.prepare_cached(
                "INSERT INTO cursors (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![key, value])?;
            Ok(())
        })
        .await
    }

    async fn enqueue(&self, key: &str, due: DateTime<Utc>, reason: &str) -> Result<(), StoreError> {
        let (key, reason) = (key.to_string(), reason.to_string());
        let due = due.timestamp_millis();
        self.write(move |tx| {
            // A free entry keeps the earlier due time; a taken one records the new
            // queuing in `again_*`, which `done` turns into the entry's next due time.
            tx.prepare_cached(
                "INSERT INTO queue (key, due, reason, queued_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (key) DO UPDATE SET
                   due = CASE WHEN owner IS NULL AND excluded.due < due
                         THEN excluded.due ELSE due END,
                   reason = CASE WHEN owner IS NULL AND excluded.due < due
                            THEN excluded.reason ELSE reason END,
                   again_due = CASE WHEN owner IS NOT NULL
                               AND (again_due IS NULL OR excluded.due < again_due)
                               THEN excluded.due ELSE again_due END,
                   again_reason = CASE WHEN owner IS NOT NULL
                                  AND (again_due IS NULL OR excluded.due < again_due)
                                  THEN excluded.reason ELSE again_reason END,
                   again_queued_at = CASE WHEN owner IS NOT NULL
                                     THEN COALESCE(again_queued_at, excluded.queued_at)
                                     ELSE again_queued_at END",
            )?
            .execute(params![key, due, reason, now_ms()])?;
            Ok(())
        })
        .await
    }

    async fn take_due(
        &self,
        owner: &str,
        limit: usize,
        ttl: Duration,
    ) -> Result<Vec<QueueEntry>, StoreError> {
        let owner = owner.to_string();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.write(move |tx| {
            let now = now_ms();
            let rows: Vec<(String, i64, String, i64)> = tx
                .prepare_cached(concat!(
                    "SELECT key, due, reason, queued_at FROM ",
                    due_entries!("WHERE q.due <= ?1"),
                    " WHERE due <= ?1 AND (owner IS NULL OR taken_until <= ?1)
                     ORDER BY due, key LIMIT ?2",
                ))?
                .query_map(params![now, limit], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
                })?
                .collect::<rusqlite::Result<_>>()?;
            let until = now.saturating_add(ms(ttl));
            let mut take =
                tx.prepare_cached("UPDATE queue SET owner = ?2, taken_until = ?3 WHERE key = ?1")?;
            let mut taken = Vec::with_capacity(rows.len());
            for (key, due, reason, queued_at) in rows {
                take.execute(params![key, owner, until])?;
                taken.push(QueueEntry {
                    key,
                    due: time(due)?,
                    reason,
                    queued_at: time(queued_at)?,
                });
            }
            Ok(taken)
        })
        .await
    }

    async fn done(&self, key: &str, owner: &str) -> Result<(), StoreError> {
        let (key, owner) = (key.to_string(), owner.to_string());
        self.write(move |tx| {
            tx.prepare_cached(
                "UPDATE queue SET due = again_due, reason = again_reason,
                     queued_at = again_queued_at, owner = NULL, taken_until = NULL,
                     again_due = NULL, again_reason = NULL, again_queued_at = NULL
                 WHERE key = ?1 AND owner = ?2 AND again_due IS NOT NULL",
            )?
            .execute(params![key, owner])?;
            tx.prepare_cached("DELETE FROM queue WHERE key = ?1 AND owner = ?2")?
                .execute(params![key, owner])?;
            Ok(())
        })
        .await
    }

    async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.call(|conn| {
            let next: Option<i64> = conn
                .prepare_cached(concat!(
                    "SELECT MIN(CASE WHEN owner IS NULL OR taken_until <= ?1 THEN due
                                ELSE MAX(due, taken_until) END) FROM ",
                    due_entries!(""),
                ))?
                .query_row([now_ms()], |row| row.get(0))?;
            next.map(time).transpose()
        })
        .await
    }

    async fn queue_depth(&self) -> Result<(u64, Option<Duration>), StoreError> {
        self.call(|conn| {
            let now = now_ms();
            let (count, oldest): (i64, Option<i64>) = conn
                .prepare_cached(concat!(
                    "SELECT COUNT(*), MIN(CASE WHEN due <= ?1
                         AND (owner IS NULL OR taken_until <= ?1)
                         THEN MAX(due, queued_at) END) FROM ",
                    due_entries!(""),
                ))?
                .query_row([now], |row| Ok((row.get(0)?, row.get(1)?)))?;
            let age = oldest.map(|t| Duration::from_millis(now.saturating_sub(t).max(0) as u64));
            Ok((count.max(0) as u64, age))
        })
        .await
    }

    async fn record_failure(
        &self,
        key: &str,
        error: &str,
        min: Duration,
        max: Duration,
    ) -> Result<Failure, StoreError> {
        let (key, error) = (key.to_string(), error.to_string());
        self.write(move |tx| {
            let before: Option<u32> = tx
                .prepare_cached("SELECT attempts FROM failures WHERE key = ?1")?
                .query_row([&key], |row| row.get(0))
                .optional()?;
            let attempts = before.unwrap_or(0).saturating_add(1);
            let now = now_ms();
            let retry = now.saturating_add(ms(backoff(min, max, attempts)));
            // A try a delivery let come early that failed spends the waiver until this
            // failure's retry time (`Store::waive_backoff`).
            tx.prepare_cached(
                "INSERT INTO failures (key, error, attempts, failed_at, retry_at, waiver)
                 VALUES (?1, ?2, ?3, ?4, ?5, 0)
                 ON CONFLICT (key) DO UPDATE SET error = excluded.error,
                     attempts = excluded.attempts, failed_at = excluded.failed_at,
                     retry_at = excluded.retry_at,
                     waiver = CASE WHEN waiver = 1 THEN 2 ELSE 0 END",
            )?
            .execute(params![key, error, attempts, now, retry])?;
            Ok(Failure {
                key,
                error,
                attempts,
                failed_at: time(now)?,
                retry_at: time(retry)?,
            })
        })
        .await
    }

    async fn clear_failure(&self, key: &str) -> Result<(), StoreError> {
        let key = key.to_string();
        self.write(move |tx| {
            tx.prepare_cached("DELETE FROM failures WHERE key = ?1")?
                .execute([key])?;
            Ok(())
        })
        .await
    }

    async fn waive_backoff(&self, key: &str) -> Result<bool, StoreError> {
        let key = key.to_string();
        self.write(move |tx| {
            let changed = tx
                .prepare_cached(
                    "UPDATE failures SET waiver = 1
                     WHERE key = ?1 AND waiver = 0 AND retry_at > ?2",
                )?
                .execute(params![key, now_ms()])?;
            Ok(changed == 1)
        })
        .await
    }

    async fn failures(&self) -> Result<Vec<Failure>, StoreError> {
        self.call(|conn| {
            conn.prepare_cached(
                "SELECT key, error, attempts, failed_at, retry_at FROM failures ORDER BY key",
            )?
            .query_map([], failure)?
            .collect()
        })
        .await
    }

    async fn first_delivery(
        &self,
        id: &str,
        keep: Duration,
        most: u64,
    ) -> Result<bool, StoreError> {
        let id = id.to_string();
        let most = i64::try_from(most).unwrap_or(i64::MAX);
        self.write(move |tx| {
            let now = now_ms();
            tx.prepare_cached("DELETE FROM deliveries WHERE seen_at < ?1")?
                .execute([now.saturating_sub(ms(keep))])?;
            let added = tx
                .prepare_cached(
                    "INSERT INTO deliveries (id, seen_at) VALUES (?1, ?2)
                     ON CONFLICT (id) DO NOTHING",
                )?
                .execute(params![id, now])?;
            if added == 1 {
                // Rowids grow with each id added (a refused insert takes none), so the
                // `most` newest are the last `most` rowids.
                let newest = tx.last_insert_rowid();
                tx.prepare_cached("DELETE FROM deliveries WHERE rowid <= ?1")?
                    .execute([newest.saturating_sub(most)])?;
            }
            Ok(added == 1)
        })
        .await
    }

    async fn cache_get(&self, key: &str) -> Result<Option<Cached>, StoreError> {
        let key = key.to_string();
        self.call(move |conn| {
            conn.prepare_cached("SELECT value, version FROM cache WHERE key = ?1")?
                .query_row([key], |row| {
                    Ok(Cached {
                        value: row.get(0)?,
                        version: row.get(1)?,
                    })
                })
                .optional()
        })
        .await
    }

    async fn cache_put(&self, key: &str, value: &str, version: &str) -> Result<(), StoreError> {
        let (key, value, version) = (key.to_string(), value.to_string(), version.to_string());
        self.write(move |tx| {
            tx.prepare_cached(
                "INSERT INTO cache (key, value, version) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value,
                     version = excluded.version",
            )?
            .execute(params![key, value, version])?;
            Ok(())
        })
        .await
    }

    async fn cache_clear(&self, prefix: &str) -> Result<(), StoreError> {
        let prefix = prefix.to_string();
        self.write(move |tx| {
            tx.prepare_cached("DELETE FROM cache WHERE substr(key, 1, length(?1)) = ?1")?
                .execute([prefix])?;
            Ok(())
        })
        .await
    }
}
