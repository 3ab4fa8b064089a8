//! The connection side of `PostgresStore`: the pool (connecting gives up after 10 s, the
//! server cancels a statement after 30 s), a deadline on every call, the schema brought
//! up to date under an advisory lock, and errors that name the store without its password.

use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{
    GenericClient, Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime,
};
use tokio_postgres::NoTls;

use super::{PostgresStore, Timeouts, MIGRATIONS, MIGRATION_LOCK, SCHEMA_VERSION};
use crate::store::sqlite::newer_schema;
use crate::store::{capped, StoreError};

impl PostgresStore {
    pub(super) fn pool(url: &str, timeouts: Timeouts) -> Result<PostgresStore, StoreError> {
        let describe = crate::http::redact::url(url);
        let mut config = tokio_postgres::Config::from_str(url).map_err(|e| StoreError::BadUrl {
            url: describe.clone(),
            reason: scrub(&chain(&e), url),
        })?;
        let statement = format!(
            "-c statement_timeout={} -c lock_timeout={} -c idle_in_transaction_session_timeout={}",
            timeouts.query.as_millis(),
            timeouts.query.as_millis(),
            (timeouts.query * 2).as_millis()
        );
        let options = match config.get_options() {
            Some(given) if !given.is_empty() => format!("{given} {statement}"),
            _ => statement,
        };
        config
            .options(options)
            .connect_timeout(timeouts.connect)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30));
        if config.get_application_name().is_none() {
            config.application_name("shepherd");
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(16)
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(timeouts.connect))
            .wait_timeout(Some(timeouts.connect + timeouts.query))
            .recycle_timeout(Some(timeouts.connect))
            .build()
            .map_err(|e| StoreError::Open {
                store: describe.clone(),
                reason: e.to_string(),
            })?;
        Ok(PostgresStore {
            pool,
            describe,
            timeouts,
        })
    }

    pub(super) fn open_error(&self, reason: String) -> StoreError {
        StoreError::Open {
            store: self.describe.clone(),
            reason,
        }
    }

    /// Runs `work` within the call's deadline (a connection plus one query's time, and a
    /// little more for the transactions that make a few).
    pub(super) async fn deadline<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, String>>,
    ) -> Result<T, String> {
        let limit = self.timeouts.connect + self.timeouts.query * 2;
        match tokio::time::timeout(limit, work).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer within {} s", limit.as_secs())),
        }
    }

    /// Runs `work` as one store call: within its deadline, errors naming the store.
    pub(super) async fn run<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, String>>,
    ) -> Result<T, StoreError> {
        self.deadline(work)
            .await
            .map_err(|reason| StoreError::Query {
                store: self.describe.clone(),
                reason,
            })
    }

    pub(super) async fn client(&self) -> Result<deadpool_postgres::Object, String> {
        self.pool.get().await.map_err(|e| match e {
            PoolError::Backend(e) => chain(&e),
            PoolError::Timeout(_) => format!(
                "no connection within {} s",
                (self.timeouts.connect + self.timeouts.query).as_secs()
            ),
            other => other.to_string(),
        })
    }

    pub(super) async fn version(&self, client: &impl GenericClient) -> Result<i32, String> {
        let exists: bool = client
            .query_one(
                "SELECT to_regclass('shepherd_schema_version') IS NOT NULL",
                &[],
            )
            .await
            .map_err(|e| chain(&e))?
            .get(0);
        if !exists {
            return Ok(0);
        }
        let found: Option<i32> = client
            .query_one("SELECT MAX(version) FROM shepherd_schema_version", &[])
            .await
            .map_err(|e| chain(&e))?
            .get(0);
        Ok(found.unwrap_or(0))
    }

    /// Brings the schema to [`SCHEMA_VERSION`] in one transaction under an advisory lock,
    /// so that concurrent first opens take turns; an up-to-date database is only read.
    pub(super) async fn migrate(&self) -> Result<(), String> {
        self.deadline(async {
            let mut client = self.client().await?;
            if self.version(&client).await? == SCHEMA_VERSION {
                return Ok(());
            }
            let tx = client.transaction().await.map_err(|e| chain(&e))?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                .await
                .map_err(|e| chain(&e))?;
            tx.batch_execute(
                "CREATE TABLE IF NOT EXISTS shepherd_schema_version (version INTEGER NOT NULL)",
            )
            .await
            .map_err(|e| chain(&e))?;
            let found = self.version(&tx).await?;
            if found > SCHEMA_VERSION {
                return Err(newer_schema(found.into(), SCHEMA_VERSION.into()));
            }
            for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
                tx.batch_execute(sql)
                    .await
                    .map_err(|e| format!("schema migration {} failed: {}", i + 1, chain(&e)))?;
            }
            tx.execute("DELETE FROM shepherd_schema_version", &[])
                .await
                .map_err(|e| chain(&e))?;
            tx.execute(
                "INSERT INTO shepherd_schema_version (version) VALUES ($1)",
                &[&SCHEMA_VERSION],
            )
            .await
            .map_err(|e| chain(&e))?;
            tx.commit().await.map_err(|e| chain(&e))
        })
        .await
    }

    /// Runs one statement (prepared once per connection) and returns its rows.
    pub(super) async fn query(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        self.run(async {
            let client = self.client().await?;
            let statement = client.prepare_cached(sql).await.map_err(|e| chain(&e))?;
            client
                .query(&statement, params)
                .await
                .map_err(|e| chain(&e))
        })
        .await
    }

    /// Runs one statement and returns how many rows it changed.
    pub(super) async fn execute(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        self.run(async {
            let client = self.client().await?;
            let statement = client.prepare_cached(sql).await.map_err(|e| chain(&e))?;
            client
                .execute(&statement, params)
                .await
                .map_err(|e| chain(&e))
        })
        .await
    }
}

/// An error and its causes, one after the other (`db error: ERROR: …`).
pub(super) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `reason` without the password of `url`, should a parser have echoed it.
pub(super) fn scrub(reason: &str, url: &str) -> String {
    let password = url::Url::parse(url)
        .ok()
        .and_then(|u| u.password().map(str::to_string));
    match password {
        Some(p) if !p.is_empty() => reason.replace(&p, "***"),
        _ => reason.to_string(),
    }
}

pub(super) fn secs(d: Duration) -> f64 {
    capped(d).as_secs_f64()
}
