//! `SqliteStore`: the Store in one SQLite file (`sqlite:PATH`, the default). WAL mode, so
//! readers never wait for the writer; a busy timeout, so concurrent processes wait for
//! each other rather than fail with "database is locked"; every read-modify-write in a
//! `BEGIN IMMEDIATE` transaction, so two processes cannot both take one lease or one
//! queue entry. Times are the process's wall clock, stored as milliseconds since the
//! epoch. Calls run on tokio's blocking pool (`spawn_blocking`), one at a time per
//! handle behind a `std::sync::Mutex` that is never held across an `.await`.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use super::{backoff, capped, Cached, Failure, QueueEntry, Store, StoreError};

/// How long a call waits for another process's write to finish before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The schema, one migration per entry; migration N (from 1) brings the file to version N.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE leases (
        key TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        expires INTEGER NOT NULL
    );
    CREATE INDEX leases_owner ON leases (owner);
    CREATE TABLE cursors (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE queue (
        key TEXT PRIMARY KEY,
        due INTEGER NOT NULL,
        reason TEXT NOT NULL,
        queued_at INTEGER NOT NULL,
        owner TEXT,
        taken_until INTEGER,
        again_due INTEGER,
        again_reason TEXT,
        again_queued_at INTEGER
    );
    CREATE INDEX queue_due ON queue (due);
    CREATE TABLE failures (
        key TEXT PRIMARY KEY,
        error TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        failed_at INTEGER NOT NULL,
        retry_at INTEGER NOT NULL
    );
    CREATE TABLE deliveries (id TEXT PRIMARY KEY, seen_at INTEGER NOT NULL);
    CREATE INDEX deliveries_seen ON deliveries (seen_at);
    CREATE TABLE cache (key TEXT PRIMARY KEY, value TEXT NOT NULL, version TEXT NOT NULL);",
    // 2: a delivery may waive a failure's backoff once (`Store::waive_backoff`).
    "ALTER TABLE failures ADD COLUMN waiver INTEGER NOT NULL DEFAULT 0;",
];

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

/// The schema version this binary writes and understands.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The Store in a SQLite file (or in memory, for a dry run).
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    describe: String,
}

impl SqliteStore {
    /// Opens (creating the parent directory and the file when missing) and migrates the
    /// store at `path`. With `dry_run`, nothing is written anywhere: a missing or empty
    /// file gives an empty in-memory store, an existing one is copied into memory.
    pub fn open(path: &Path, dry_run: bool) -> Result<SqliteStore, StoreError> {
        let describe = format!("sqlite:{}", path.display());
        let failed = |reason: String| StoreError::Open {
            store: describe.clone(),
            reason,
        };
        let conn = if dry_run {
            let mut conn = Connection::open_in_memory().map_err(|e| failed(e.to_string()))?;
            if path.exists() {
                copy_into(path, &mut conn).map_err(|e| failed(e.to_string()))?;
            }
            conn
        } else {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| failed(format!("cannot create {}: {e}", dir.display())))?;
            }
            let conn = Connection::open(path).map_err(|e| failed(e.to_string()))?;
            conn.busy_timeout(BUSY_TIMEOUT)
                .map_err(|e| failed(e.to_string()))?;
            // Read back: a file that is not a database fails here, and WAL cannot be
            // set on some file systems (then SQLite keeps its rollback journal).
            // Switching a new file to WAL takes an exclusive lock that SQLite's busy
            // handler does not wait for: several processes opening the store at once
            // retry for a while instead of failing with "database is locked".
            let mut tries = 0;
            let _mode: String = loop {
                match conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0)) {
                    Ok(mode) => break mode,
                    Err(e) if tries < 200 && e.to_string().contains("locked") => {
                        tries += 1;
                        std::thread::sleep(std::time::Duration::from_millis(25));
                    }
                    Err(e) => return Err(failed(e.to_string())),
                }
            };
            conn.pragma_update(None, "synchronous", "NORMAL")
                .map_err(|e| failed(e.to_string()))?;
            conn
        };
        Self::ready(conn, describe)
    }

    /// An empty store in memory, shown as `describe` (a dry run's stand-in).
    pub fn in_memory(describe: String) -> Result<SqliteStore, StoreError> {
        let conn = Connection::open_in_memory().map_err(|e| StoreError::Open {
            store: describe.clone(),
            reason: e.to_string(),
        })?;
        Self::ready(conn, describe)
    }

    fn ready(mut conn: Connection, describe: String) -> Result<SqliteStore, StoreError> {
        conn.set_prepared_statement_cache_capacity(64);
        migrate(&mut conn).map_err(|reason| StoreError::Open {
            store: describe.clone(),
            reason,
        })?;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            describe,
        })
    }

    /// Runs `f` on the connection on the blocking pool.
    async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        let failed = |reason: String| StoreError::Query {
            store: self.describe.clone(),
            reason,
        };
        let result = tokio::task::spawn_blocking(move || {
            let mut conn = conn
                .lock()
                .map_err(|_| "an earlier call panicked".to_string())?;
            f(&mut conn).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| failed(e.to_string()))?;
        result.map_err(failed)
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction: the write lock is taken first, so
    /// what `f` reads cannot change before it writes.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction) -> rusqlite::Result<T> + Send + 'static,
    {
        self.call(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let value = f(&tx)?;
            tx.commit()?;
            Ok(value)
        })
        .await
    }
}

/// Copies the database at `path` into `conn` without writing to `path`.
fn copy_into(path: &Path, conn: &mut Connection) -> rusqlite::Result<()> {
    let src = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    src.busy_timeout(BUSY_TIMEOUT)?;
    let backup = rusqlite::backup::Backup::new(&src, conn)?;
    backup.run_to_completion(256, Duration::from_millis(10), None)
}

/// Brings the schema to [`SCHEMA_VERSION`] in one transaction; an up-to-date file is only
/// read. A file written by a newer shepherd is an error.
fn migrate(conn: &mut Connection) -> Result<(), String> {
    if schema_version(conn).map_err(|e| e.to_string())? == SCHEMA_VERSION {
        return Ok(());
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| e.to_string())?;
    tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        .map_err(|e| e.to_string())?;
    let found = schema_version(&tx).map_err(|e| e.to_string())?;
    if found > SCHEMA_VERSION {
        return Err(newer_schema(found, SCHEMA_VERSION));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.execute_batch(sql)
            .map_err(|e| format!("schema migration {} failed: {e}", i + 1))?;
    }
    tx.execute("DELETE FROM schema_version", [])
        .map_err(|e| e.to_string())?;
    tx.execute(
        "INSERT INTO schema_version (version) VALUES (?1)",
        [SCHEMA_VERSION],
    )
    .map_err(|e| e.to_string())?;
    tx.commit().map_err(|e| e.to_string())
}

/// The file's schema version, 0 for a file without one (new or empty).
fn schema_version(conn: &Connection) -> rusqlite::Result<i64> {
    let exists: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version')",
        [],
        |row| row.get(0),
    )?;
    if !exists {
        return Ok(0);
    }
    let version: Option<i64> =
        conn.query_row("SELECT MAX(version) FROM schema_version", [], |row| {
            row.get(0)
        })?;
    Ok(version.unwrap_or(0))
}

/// The error for a store written by a newer shepherd (shared with PostgreSQL).
pub(crate) fn newer_schema(found: i64, known: i64) -> String {
    format!(
        "its schema is version {found}, newer than this shepherd knows ({known}): \
         upgrade shepherd or use another store"
    )
}

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

    async fn first_delivery(&self, id: &str, keep: Duration) -> Result<bool, StoreError> {
        let id = id.to_string();
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
