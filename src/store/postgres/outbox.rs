//! The notification outbox in PostgreSQL (`Store::outbox_*`): one row per event, one row
//! per sink that took it; times from the server's `now()`.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

use super::connection::{chain, secs};
use super::{backoff, PostgresStore};
use crate::store::outbox::KEEP_DONE;
use crate::store::{Outbox, OutboxEntry, StoreError};

#[async_trait]
impl Outbox for PostgresStore {
    async fn outbox_put(&self, id: &str, body: &str) -> Result<bool, StoreError> {
        let added = self
            .execute(
                "INSERT INTO shepherd_outbox (id, body, created_at, due)
                 VALUES ($1, $2, now(), now())
                 ON CONFLICT (id) DO NOTHING",
                &[&id, &body],
            )
            .await?;
        Ok(added == 1)
    }

    async fn outbox_due(&self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .query(
                "SELECT o.id, o.body, o.attempts,
                        COALESCE((SELECT array_agg(s.sink) FROM shepherd_outbox_sent s
                                  WHERE s.id = o.id), ARRAY[]::TEXT[])
                 FROM shepherd_outbox o
                 WHERE o.done_at IS NULL AND o.due <= now()
                 ORDER BY o.due, o.created_at, o.id LIMIT $1",
                &[&limit],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|row| OutboxEntry {
                id: row.get(0),
                body: row.get(1),
                attempts: u32::try_from(row.get::<_, i32>(2)).unwrap_or(0),
                sent: row.get(3),
            })
            .collect())
    }

    async fn outbox_sent(&self, id: &str, sink: &str) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO shepherd_outbox_sent (id, sink, sent_at) VALUES ($1, $2, now())
             ON CONFLICT (id, sink) DO NOTHING",
            &[&id, &sink],
        )
        .await
        .map(drop)
    }

    async fn outbox_done(&self, id: &str) -> Result<(), StoreError> {
        self.execute(
            "UPDATE shepherd_outbox SET done_at = now() WHERE id = $1",
            &[&id],
        )
        .await?;
        let keep = secs(KEEP_DONE);
        self.execute(
            "DELETE FROM shepherd_outbox_sent WHERE id IN
               (SELECT id FROM shepherd_outbox
                WHERE done_at < now() - $1::float8 * interval '1 second')",
            &[&keep],
        )
        .await?;
        self.execute(
            "DELETE FROM shepherd_outbox WHERE done_at < now() - $1::float8 * interval '1 second'",
            &[&keep],
        )
        .await
        .map(drop)
    }

    async fn outbox_retry(
        &self,
        id: &str,
        error: &str,
        min: Duration,
        max: Duration,
    ) -> Result<DateTime<Utc>, StoreError> {
        self.run(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(|e| chain(&e))?;
            let count = tx
                .prepare_cached(
                    "UPDATE shepherd_outbox SET attempts = LEAST(attempts, 1000000) + 1,
                         error = $2
                     WHERE id = $1 RETURNING attempts",
                )
                .await
                .map_err(|e| chain(&e))?;
            let attempts: i32 = tx
                .query_one(&count, &[&id, &error])
                .await
                .map_err(|e| chain(&e))?
                .get(0);
            let delay = backoff(min, max, u32::try_from(attempts).unwrap_or(1));
            let schedule = tx
                .prepare_cached(
                    "UPDATE shepherd_outbox SET due = now() + $2::float8 * interval '1 second'
                     WHERE id = $1 RETURNING due",
                )
                .await
                .map_err(|e| chain(&e))?;
            let due: DateTime<Utc> = tx
                .query_one(&schedule, &[&id, &secs(delay)])
                .await
                .map_err(|e| chain(&e))?
                .get(0);
            tx.commit().await.map_err(|e| chain(&e))?;
            Ok(due)
        })
        .await
    }
}
