//! `PostgresStore`: the Store in a PostgreSQL database (`postgres://…`), shared by several
//! processes or machines. `tokio-postgres` behind a `deadpool-postgres` pool, statements
//! prepared once per connection. Times come from the database (`now()`), so machines
//! with different clocks agree on when a lease expires. Queue entries are taken with
//! `FOR UPDATE SKIP LOCKED` and stamped with their taker and `taken_until`, as
//! apalis-postgres does. Nothing waits forever: connecting gives up after 10 s, the
//! server cancels a statement after 30 s, and every call has a deadline of its own, so a
//! database that goes away mid-run is a `StoreError` naming the store, never a hang.
//! Tables are prefixed `shepherd_`, so the store may share a database with others.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Pool};

mod connection;
mod outbox;

use connection::{chain, secs};

use super::sqlite::newer_schema;
use super::{backoff, Cached, Failure, QueueEntry, Store, StoreError};

/// The schema, one migration per entry; migration N (from 1) brings the database to
/// version N.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE shepherd_leases (
        key TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        expires TIMESTAMPTZ NOT NULL
    );
    CREATE INDEX shepherd_leases_owner ON shepherd_leases (owner);
    CREATE TABLE shepherd_cursors (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE shepherd_queue (
        key TEXT PRIMARY KEY,
        due TIMESTAMPTZ NOT NULL,
        reason TEXT NOT NULL,
        queued_at TIMESTAMPTZ NOT NULL,
        owner TEXT,
        taken_until TIMESTAMPTZ,
        again_due TIMESTAMPTZ,
        again_reason TEXT,
        again_queued_at TIMESTAMPTZ
    );
    CREATE INDEX shepherd_queue_due ON shepherd_queue (due);
    CREATE TABLE shepherd_failures (
        key TEXT PRIMARY KEY,
        error TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        failed_at TIMESTAMPTZ NOT NULL,
        retry_at TIMESTAMPTZ NOT NULL
    );
    CREATE TABLE shepherd_deliveries (id TEXT PRIMARY KEY, seen_at TIMESTAMPTZ NOT NULL);
    CREATE INDEX shepherd_deliveries_seen ON shepherd_deliveries (seen_at);
    CREATE TABLE shepherd_cache (key TEXT PRIMARY KEY, value TEXT NOT NULL, version TEXT NOT NULL);",
    // 2: a delivery may waive a failure's backoff once (`Store::waive_backoff`).
    "ALTER TABLE shepherd_failures ADD COLUMN waiver INTEGER NOT NULL DEFAULT 0;",
    // 3: deliveries in the order they came, so that only the newest are kept.
    "ALTER TABLE shepherd_deliveries ADD COLUMN seq BIGSERIAL;
    CREATE INDEX shepherd_deliveries_seq ON shepherd_deliveries (seq);",
    // 4: the notification outbox and, per event, the sinks that took it.
    "CREATE TABLE shepherd_outbox (
        id TEXT PRIMARY KEY,
        body TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        due TIMESTAMPTZ NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        error TEXT,
        done_at TIMESTAMPTZ
    );
    CREATE INDEX shepherd_outbox_waiting ON shepherd_outbox (done_at, due);
    CREATE TABLE shepherd_outbox_sent (
        id TEXT NOT NULL,
        sink TEXT NOT NULL,
        sent_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (id, sink)
    );",
];

/// The time queue entry `q` is due: the later of the time queued and its key's retry
/// time, unless a delivery waived that (`waiver` 1: `Store::waive_backoff`).
macro_rules! due {
    () => {
        "GREATEST(q.due, (SELECT f.retry_at FROM shepherd_failures f
                          WHERE f.key = q.key AND f.waiver <> 1))"
    };
}

/// The schema version this binary writes and understands.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// The advisory lock held while migrating, so that concurrent first opens take turns.
const MIGRATION_LOCK: i64 = 0x5348_4550_4845_5244; // "SHEPHERD"

/// How long the store waits for the database.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// Connecting (and waiting for a free pooled connection).
    pub connect: Duration,
    /// One statement, enforced by the server (`statement_timeout`) and, in case the
    /// server stops answering altogether, by the client too.
    pub query: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(10),
            query: Duration::from_secs(30),
        }
    }
}

/// The Store in a PostgreSQL database.
pub struct PostgresStore {
    pool: Pool,
    describe: String,
    timeouts: Timeouts,
}

impl PostgresStore {
    /// Connects to `url` with the default [`Timeouts`] and applies the schema migrations
    /// this binary knows.
    pub async fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        PostgresStore::connect_with(url, Timeouts::default()).await
    }

    /// [`PostgresStore::connect`] with chosen timeouts.
    pub async fn connect_with(url: &str, timeouts: Timeouts) -> Result<PostgresStore, StoreError> {
        let store = PostgresStore::pool(url, timeouts)?;
        store.migrate().await.map_err(|e| store.open_error(e))?;
        Ok(store)
    }

    /// Checks that `url` can be reached and holds no schema newer than this binary's,
    /// without writing anything (a dry run's check).
    pub async fn check(url: &str) -> Result<(), StoreError> {
        let store = PostgresStore::pool(url, Timeouts::default())?;
        let found = store
            .deadline(async {
                let client = store.client().await?;
                store.version(&client).await
            })
            .await
            .map_err(|e| store.open_error(e))?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::Open {
                store: store.describe,
                reason: newer_schema(found.into(), SCHEMA_VERSION.into()),
            });
        }
        Ok(())
    }
}

fn failure(row: &tokio_postgres::Row) -> Failure {
    Failure {
        key: row.get(0),
        error: row.get(1),
        attempts: u32::try_from(row.get::<_, i32>(2)).unwrap_or(0),
        failed_at: row.get(3),
        retry_at: row.get(4),
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn shared(&self) -> bool {
        true
    }

    async fn acquire(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool, StoreError> {
        let changed = self
            .execute(
                "INSERT INTO shepherd_leases AS l (key, owner, expires)
                 VALUES ($1, $2, now() + $3::float8 * interval '1 second')
                 ON CONFLICT (key) DO UPDATE SET owner = EXCLUDED.owner,
                     expires = EXCLUDED.expires
                 WHERE l.owner = EXCLUDED.owner OR l.expires <= now()",
                &[&key, &owner, &secs(ttl)],
            )
            .await?;
        Ok(changed == 1)
    }

    async fn renew(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool, StoreError> {
        let changed = self
            .execute(
                "UPDATE shepherd_leases SET expires = now() + $3::float8 * interval '1 second'
                 WHERE key = $1 AND owner = $2",
                &[&key, &owner, &secs(ttl)],
            )
            .await?;
        Ok(changed == 1)
    }

    async fn release(&self, key: &str, owner: &str) -> Result<(), StoreError> {
        self.execute(
            "DELETE FROM shepherd_leases WHERE key = $1 AND owner = $2",
            &[&key, &owner],
        )
        .await
        .map(drop)
    }

    async fn release_all(&self, owner: &str) -> Result<(), StoreError> {
        self.execute("DELETE FROM shepherd_leases WHERE owner = $1", &[&owner])
            .await
            .map(drop)
    }

    async fn holder(&self, key: &str) -> Result<Option<(String, DateTime<Utc>)>, StoreError> {
        let rows = self
            .query(
                "SELECT owner, expires FROM shepherd_leases WHERE key = $1 AND expires > now()",
                &[&key],
            )
            .await?;
        Ok(rows.first().map(|row| (row.get(0), row.get(1))))
    }

    async fn cursor(&self, key: &str) -> Result<Option<String>, StoreError> {
        let rows = self
            .query("SELECT value FROM shepherd_cursors WHERE key = $1", &[&key])
            .await?;
        Ok(rows.first().map(|row| row.get(0)))
    }

    async fn set_cursor(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO shepherd_cursors (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            &[&key, &value],
        )
        .await
        .map(drop)
    }

    async fn enqueue(&self, key: &str, due: DateTime<Utc>, reason: &str) -> Result<(), StoreError> {
        // A free entry keeps the earlier due time; a taken one records the new queuing in
        // `again_*`, which `done` turns into the entry's next due time.
        self.execute(
            "INSERT INTO shepherd_queue AS q (key, due, reason, queued_at)
             VALUES ($1, $2, $3, now())
             ON CONFLICT (key) DO UPDATE SET
               due = CASE WHEN q.owner IS NULL AND EXCLUDED.due < q.due
                     THEN EXCLUDED.due ELSE q.due END,
               reason = CASE WHEN q.owner IS NULL AND EXCLUDED.due < q.due
                        THEN EXCLUDED.reason ELSE q.reason END,
               again_due = CASE WHEN q.owner IS NOT NULL
                           AND (q.again_due IS NULL OR EXCLUDED.due < q.again_due)
                           THEN EXCLUDED.due ELSE q.again_due END,
               again_reason = CASE WHEN q.owner IS NOT NULL
                              AND (q.again_due IS NULL OR EXCLUDED.due < q.again_due)
                              THEN EXCLUDED.reason ELSE q.again_reason END,
               again_queued_at = CASE WHEN q.owner IS NOT NULL
                                 THEN COALESCE(q.again_queued_at, EXCLUDED.queued_at)
                                 ELSE q.again_queued_at END",
            &[&key, &due, &reason],
        )
        .await
        .map(drop)
    }

    async fn take_due(
        &self,
        owner: &str,
        limit: usize,
        ttl: Duration,
    ) -> Result<Vec<QueueEntry>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .query(
                concat!(
                    "WITH picked AS (
                     SELECT q.key, ",
                    due!(),
                    " AS due FROM shepherd_queue q
                     WHERE q.due <= now() AND ",
                    due!(),
                    " <= now() AND (q.owner IS NULL OR q.taken_until <= now())
                     ORDER BY 2, q.key LIMIT $2
                     FOR UPDATE OF q SKIP LOCKED)
                 UPDATE shepherd_queue q
                 SET owner = $1, taken_until = now() + $3::float8 * interval '1 second'
                 FROM picked WHERE q.key = picked.key
                 RETURNING q.key, picked.due, q.reason, q.queued_at"
                ),
                &[&owner, &limit, &secs(ttl)],
            )
            .await?;
        let mut taken: Vec<QueueEntry> = rows
            .iter()
            .map(|row| QueueEntry {
                key: row.get(0),
                due: row.get(1),
                reason: row.get(2),
                queued_at: row.get(3),
            })
            .collect();
        taken.sort_by(|a, b| (a.due, &a.key).cmp(&(b.due, &b.key)));
        Ok(taken)
    }

    async fn done(&self, key: &str, owner: &str) -> Result<(), StoreError> {
        self.run(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(|e| chain(&e))?;
            // The row lock makes a concurrent `enqueue` wait for the decision below.
            let again = tx
                .prepare_cached(
                    "SELECT again_due IS NOT NULL FROM shepherd_queue
                     WHERE key = $1 AND owner = $2 FOR UPDATE",
                )
                .await
                .map_err(|e| chain(&e))?;
            let rows = tx
                .query(&again, &[&key, &owner])
                .await
                .map_err(|e| chain(&e))?;
            let sql = match rows.first().map(|row| row.get::<_, bool>(0)) {
                None => return Ok(()),
                Some(true) => {
                    "UPDATE shepherd_queue SET due = again_due, reason = again_reason,
                         queued_at = again_queued_at, owner = NULL, taken_until = NULL,
                         again_due = NULL, again_reason = NULL, again_queued_at = NULL
                     WHERE key = $1 AND owner = $2"
                }
                Some(false) => "DELETE FROM shepherd_queue WHERE key = $1 AND owner = $2",
            };
            let statement = tx.prepare_cached(sql).await.map_err(|e| chain(&e))?;
            tx.execute(&statement, &[&key, &owner])
                .await
                .map_err(|e| chain(&e))?;
            tx.commit().await.map_err(|e| chain(&e))
        })
        .await
    }

    async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let rows = self
            .query(
                concat!(
                    "SELECT MIN(CASE WHEN owner IS NULL OR taken_until <= now() THEN due
                            ELSE GREATEST(due, taken_until) END)
                     FROM (SELECT q.owner, q.taken_until, ",
                    due!(),
                    " AS due FROM shepherd_queue q) e"
                ),
                &[],
            )
            .await?;
        Ok(rows.first().and_then(|row| row.get(0)))
    }

    async fn queue_depth(&self) -> Result<(u64, Option<Duration>), StoreError> {
        let rows = self
            .query(
                concat!(
                    "SELECT COUNT(*), EXTRACT(EPOCH FROM now() - MIN(CASE WHEN due <= now()
                     AND (owner IS NULL OR taken_until <= now())
                     THEN GREATEST(due, queued_at) END))::float8
                     FROM (SELECT q.owner, q.taken_until, q.queued_at, ",
                    due!(),
                    " AS due FROM shepherd_queue q) e"
                ),
                &[],
            )
            .await?;
        let Some(row) = rows.first() else {
            return Ok((0, None));
        };
        let count: i64 = row.get(0);
        let age: Option<f64> = row.get(1);
        Ok((
            count.max(0) as u64,
            age.map(|s| Duration::try_from_secs_f64(s.max(0.0)).unwrap_or(Duration::MAX)),
        ))
    }

    async fn record_failure(
        &self,
        key: &str,
        error: &str,
        min: Duration,
        max: Duration,
    ) -> Result<Failure, StoreError> {
        self.run(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(|e| chain(&e))?;
            // One upsert counts the failure (atomically, however many record at once);
            // the delay then follows from the count, under the row lock it took.
            let count = tx
                .prepare_cached(
                    // A try a delivery let come early that failed spends the waiver until
                    // this failure's retry time (`Store::waive_backoff`).
                    "INSERT INTO shepherd_failures AS f
                         (key, error, attempts, failed_at, retry_at, waiver)
                     VALUES ($1, $2, 1, now(), now(), 0)
                     ON CONFLICT (key) DO UPDATE SET error = EXCLUDED.error,
                         attempts = LEAST(f.attempts, 2147483646) + 1, failed_at = now(),
                         waiver = CASE WHEN f.waiver = 1 THEN 2 ELSE 0 END
                     RETURNING attempts",
                )
                .await
                .map_err(|e| chain(&e))?;
            let attempts: i32 = tx
                .query_one(&count, &[&key, &error])
                .await
                .map_err(|e| chain(&e))?
                .get(0);
            let delay = backoff(min, max, u32::try_from(attempts).unwrap_or(1));
            let schedule = tx
                .prepare_cached(
                    "UPDATE shepherd_failures
                     SET retry_at = failed_at + $2::float8 * interval '1 second'
                     WHERE key = $1
                     RETURNING key, error, attempts, failed_at, retry_at",
                )
                .await
                .map_err(|e| chain(&e))?;
            let row = tx
                .query_one(&schedule, &[&key, &secs(delay)])
                .await
                .map_err(|e| chain(&e))?;
            tx.commit().await.map_err(|e| chain(&e))?;
            Ok(failure(&row))
        })
        .await
    }

    async fn clear_failure(&self, key: &str) -> Result<(), StoreError> {
        self.execute("DELETE FROM shepherd_failures WHERE key = $1", &[&key])
            .await
            .map(drop)
    }

    async fn waive_backoff(&self, key: &str) -> Result<bool, StoreError> {
        let changed = self
            .execute(
                "UPDATE shepherd_failures SET waiver = 1
                 WHERE key = $1 AND waiver = 0 AND retry_at > now()",
                &[&key],
            )
            .await?;
        Ok(changed == 1)
    }

    async fn failures(&self) -> Result<Vec<Failure>, StoreError> {
        let rows = self
            .query(
                "SELECT key, error, attempts, failed_at, retry_at FROM shepherd_failures
                 ORDER BY key",
                &[],
            )
            .await?;
        Ok(rows.iter().map(failure).collect())
    }

    async fn first_delivery(
        &self,
        id: &str,
        keep: Duration,
        most: u64,
    ) -> Result<bool, StoreError> {
        self.execute(
            "DELETE FROM shepherd_deliveries
             WHERE seen_at < now() - $1::float8 * interval '1 second'",
            &[&secs(keep)],
        )
        .await?;
        let most = i64::try_from(most).unwrap_or(i64::MAX);
        // `seq` grows with each id added (a redelivery takes no number unless it races
        // another): the `most` newest are within `most` of the new one.
        let rows = self
            .query(
                "WITH added AS (
                     INSERT INTO shepherd_deliveries (id, seen_at)
                     SELECT $1, now()
                     WHERE NOT EXISTS (SELECT 1 FROM shepherd_deliveries WHERE id = $1)
                     ON CONFLICT (id) DO NOTHING
                     RETURNING seq
                 ), forgotten AS (
                     DELETE FROM shepherd_deliveries
                     WHERE seq <= (SELECT seq FROM added) - $2
                 )
                 SELECT count(*) FROM added",
                &[&id, &most],
            )
            .await?;
        Ok(rows.first().is_some_and(|row| row.get::<_, i64>(0) == 1))
    }

    async fn cache_get(&self, key: &str) -> Result<Option<Cached>, StoreError> {
        let rows = self
            .query(
                "SELECT value, version FROM shepherd_cache WHERE key = $1",
                &[&key],
            )
            .await?;
        Ok(rows.first().map(|row| Cached {
            value: row.get(0),
            version: row.get(1),
        }))
    }

    async fn cache_put(&self, key: &str, value: &str, version: &str) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO shepherd_cache (key, value, version) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, version = EXCLUDED.version",
            &[&key, &value, &version],
        )
        .await
        .map(drop)
    }

    async fn cache_clear(&self, prefix: &str) -> Result<(), StoreError> {
        self.execute(
            "DELETE FROM shepherd_cache WHERE starts_with(key, $1)",
            &[&prefix],
        )
        .await
        .map(drop)
    }
}
