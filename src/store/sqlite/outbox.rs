//! The notification outbox in SQLite (`Store::outbox_*`): one row per event, one row per
//! sink that took it. Every write is one `BEGIN IMMEDIATE` transaction.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{backoff, ms, now_ms, time, SqliteStore};
use crate::store::outbox::KEEP_DONE;
use crate::store::{Outbox, OutboxEntry, StoreError};

#[async_trait]
impl Outbox for SqliteStore {
    async fn outbox_put(&self, id: &str, body: &str) -> Result<bool, StoreError> {
        let (id, body) = (id.to_string(), body.to_string());
        self.write(move |tx| {
            let now = now_ms();
            let added = tx
                .prepare_cached(
                    "INSERT INTO outbox (id, body, created_at, due) VALUES (?1, ?2, ?3, ?3)
                     ON CONFLICT (id) DO NOTHING",
                )?
                .execute(params![id, body, now])?;
            Ok(added == 1)
        })
        .await
    }

    async fn outbox_due(&self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.call(move |conn| {
            let mut entries: Vec<OutboxEntry> = conn
                .prepare_cached(
                    "SELECT id, body, attempts FROM outbox
                     WHERE done_at IS NULL AND due <= ?1
                     ORDER BY due, created_at, id LIMIT ?2",
                )?
                .query_map(params![now_ms(), limit], |row| {
                    Ok(OutboxEntry {
                        id: row.get(0)?,
                        body: row.get(1)?,
                        attempts: row.get(2)?,
                        sent: Vec::new(),
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            let mut sinks = conn.prepare_cached("SELECT sink FROM outbox_sent WHERE id = ?1")?;
            for entry in &mut entries {
                entry.sent = sinks
                    .query_map([&entry.id], |row| row.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
            }
            Ok(entries)
        })
        .await
    }

    async fn outbox_sent(&self, id: &str, sink: &str) -> Result<(), StoreError> {
        let (id, sink) = (id.to_string(), sink.to_string());
        self.write(move |tx| {
            tx.prepare_cached(
                "INSERT INTO outbox_sent (id, sink, sent_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (id, sink) DO NOTHING",
            )?
            .execute(params![id, sink, now_ms()])?;
            Ok(())
        })
        .await
    }

    async fn outbox_done(&self, id: &str) -> Result<(), StoreError> {
        let id = id.to_string();
        self.write(move |tx| {
            let now = now_ms();
            tx.prepare_cached("UPDATE outbox SET done_at = ?2 WHERE id = ?1")?
                .execute(params![id, now])?;
            let old = now.saturating_sub(ms(KEEP_DONE));
            tx.prepare_cached(
                "DELETE FROM outbox_sent WHERE id IN
                   (SELECT id FROM outbox WHERE done_at IS NOT NULL AND done_at < ?1)",
            )?
            .execute([old])?;
            tx.prepare_cached("DELETE FROM outbox WHERE done_at IS NOT NULL AND done_at < ?1")?
                .execute([old])?;
            Ok(())
        })
        .await
    }

    async fn outbox_retry(
        &self,
        id: &str,
        error: &str,
        min: Duration,
        max: Duration,
    ) -> Result<DateTime<Utc>, StoreError> {
        let (id, error) = (id.to_string(), error.to_string());
        self.write(move |tx| {
            let attempts: u32 = tx
                .prepare_cached(
                    "UPDATE outbox SET attempts = MIN(attempts, 1000000) + 1, error = ?2
                     WHERE id = ?1 RETURNING attempts",
                )?
                .query_row(params![id, error], |row| row.get(0))?;
            let due = now_ms().saturating_add(ms(backoff(min, max, attempts)));
            tx.prepare_cached("UPDATE outbox SET due = ?2 WHERE id = ?1")?
                .execute(params![id, due])?;
            time(due)
        })
        .await
    }
}
