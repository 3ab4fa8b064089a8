//! A throw-away PostgreSQL database for a test: `TestDb::create()` makes one with a random
//! name on the server that `SHEPHERD_TEST_POSTGRES` names (default
//! `postgres://postgres@127.0.0.1:5432/postgres`), and dropping the `TestDb` drops it.
//! When the server cannot be reached, the test goes on without PostgreSQL and one line
//! says why — unless `CI` is set, where PostgreSQL is required and its absence fails.

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use shepherd::http::redact::url as redact_url;

use crate::support::block_on_apart as block_on;

const DEFAULT: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database that exists for as long as this value.
pub struct TestDb {
    base: String,
    name: String,
    url: String,
}

impl TestDb {
    /// Creates a database with a fresh name, or returns None (after saying why, once per
    /// run) when no PostgreSQL server answers and `CI` is not set.
    pub fn create() -> Option<TestDb> {
        let base = std::env::var("SHEPHERD_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT.into());
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "shepherd_test_{}_{}_{}",
            std::process::id(),
            nanos,
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let created = url_with_database(&base, &name).and_then(|url| {
            let (base, sql) = (base.clone(), format!("CREATE DATABASE {name}"));
            block_on(async move { admin(&base, sql).await })?;
            Ok(url)
        });
        match created {
            Ok(url) => Some(TestDb { base, name, url }),
            Err(reason) => {
                let base = redact_url(&base);
                if std::env::var_os("CI").is_some() {
                    panic!("PostgreSQL is required when CI is set: {base}: {reason}");
                }
                static SAID: AtomicBool = AtomicBool::new(false);
                if !SAID.swap(true, Ordering::Relaxed) {
                    println!(
                        "skipped the PostgreSQL store tests: cannot create a database on \
                         {base} ({reason}); set SHEPHERD_TEST_POSTGRES to a server's URL"
                    );
                }
                None
            }
        }
    }

    /// The database's URL (`postgres://…/shepherd_test_…`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name (`shepherd_test_…`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL of the server's own database, from which this one was made (and is
    /// dropped).
    pub fn admin_url(&self) -> &str {
        &self.base
    }

    /// Runs `sql` in this database (for tests that reach past the store).
    pub fn execute(&self, sql: &str) -> Result<(), String> {
        let (url, sql) = (self.url.clone(), sql.to_string());
        block_on(async move { admin(&url, sql).await })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let base = self.base.clone();
        if let Err(e) = block_on(async move { admin(&base, sql).await }) {
            eprintln!("could not drop the test database {}: {e}", self.name);
        }
    }
}

/// `base` with its database replaced by `name`.
fn url_with_database(base: &str, name: &str) -> Result<String, String> {
    let mut url = url::Url::parse(base).map_err(|e| format!("bad URL: {e}"))?;
    url.set_path(&format!("/{name}"));
    Ok(url.to_string())
}

/// Runs `sql` on a connection of its own to `url`, giving up after a few seconds.
async fn admin(url: &str, sql: String) -> Result<(), String> {
    let mut config = tokio_postgres::Config::from_str(url).map_err(|e| e.to_string())?;
    config.connect_timeout(Duration::from_secs(3));
    let work = async {
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| error_text(&e))?;
        tokio::spawn(connection);
        client.batch_execute(&sql).await.map_err(|e| error_text(&e))
    };
    tokio::time::timeout(Duration::from_secs(10), work)
        .await
        .map_err(|_| "no answer within 10 s".to_string())?
}

fn error_text(e: &tokio_postgres::Error) -> String {
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}
