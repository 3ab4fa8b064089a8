//! The connection side of `SqliteStore`: opening the file (WAL, a busy timeout, a dry
//! run on an in-memory copy), the schema brought up to date (older files brought forward,
//! newer ones refused), and calls on the blocking pool, writes in `BEGIN IMMEDIATE`.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::SqliteStore;
use crate::store::StoreError;

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
    // 3: the notification outbox and, per event, the sinks that took it.
    "CREATE TABLE outbox (
        id TEXT PRIMARY KEY,
        body TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        due INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        error TEXT,
        done_at INTEGER
    );
    CREATE INDEX outbox_waiting ON outbox (done_at, due);
    CREATE TABLE outbox_sent (
        id TEXT NOT NULL,
        sink TEXT NOT NULL,
        sent_at INTEGER NOT NULL,
        PRIMARY KEY (id, sink)
    );",
];

/// The schema version this binary writes and understands.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

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

    pub(super) fn ready(mut conn: Connection, describe: String) -> Result<SqliteStore, StoreError> {
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
    pub(super) async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
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
    pub(super) async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
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
