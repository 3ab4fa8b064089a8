//! The embedded tracker: a real, small issue tracker in one SQLite file. Issues, labels,
//! comments and label events (with actor and time), open/closed; every write in one
//! transaction. Its clock can be set (`--now`) so that a whole rollout can be rehearsed.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::{Comment, Issue, LabelSpec, NewIssue, StateFilter, Tracker, TrackerError};
use crate::core::snapshot::LabelEvent;

const SCHEMA_VERSION: &str = "shepherd-local-1";

const SCHEMA: &str = "
CREATE TABLE shepherd_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE issues (
    number INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    open INTEGER NOT NULL,
    author TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE labels (name TEXT PRIMARY KEY, color TEXT NOT NULL, description TEXT NOT NULL);
CREATE TABLE issue_labels (issue INTEGER NOT NULL REFERENCES issues(number), label TEXT NOT NULL, PRIMARY KEY (issue, label));
CREATE TABLE label_events (
    id INTEGER PRIMARY KEY,
    issue INTEGER NOT NULL REFERENCES issues(number),
    label TEXT NOT NULL,
    added INTEGER NOT NULL,
    actor TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX label_events_issue ON label_events(issue);
CREATE TABLE comments (
    id INTEGER PRIMARY KEY,
    issue INTEGER NOT NULL REFERENCES issues(number),
    body TEXT NOT NULL,
    author TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX comments_issue ON comments(issue);
";

/// The local tracker.
pub struct LocalTracker {
    conn: Mutex<Connection>,
    path: PathBuf,
    now: Option<DateTime<Utc>>,
    actor: String,
}

impl LocalTracker {
    /// Opens the tracker at `path`, creating it when `create` is set. A missing file opened
    /// without `create` gives an empty tracker in memory, and nothing is written to disk.
    pub fn open(
        path: &Path,
        create: bool,
        now: Option<DateTime<Utc>>,
        actor: &str,
    ) -> Result<LocalTracker, TrackerError> {
        let display = path.display().to_string();
        let exists = path.exists();
        let conn = if exists || create {
            if !exists {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        TrackerError::Local(format!("cannot create {}: {e}", dir.display()))
                    })?;
                }
            }
            Connection::open(path).map_err(|e| TrackerError::NotShepherd {
                path: display.clone(),
                reason: e.to_string(),
            })?
        } else {
            Connection::open_in_memory().map_err(|e| TrackerError::Local(e.to_string()))?
        };
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| TrackerError::Local(e.to_string()))?;
        let tracker = LocalTracker {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
            now,
            actor: actor.to_string(),
        };
        tracker.check_schema(exists)?;
        Ok(tracker)
    }

    fn check_schema(&self, existed: bool) -> Result<(), TrackerError> {
        let path = self.path.display().to_string();
        let mut conn = self.conn.lock().expect("lock");
        let classify = |e: rusqlite::Error| {
            let reason = e.to_string();
            if reason.contains("malformed") || reason.contains("corrupt") {
                TrackerError::Corrupt {
                    path: path.clone(),
                    reason,
                }
            } else {
                TrackerError::NotShepherd {
                    path: path.clone(),
                    reason,
                }
            }
        };
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(classify)?;
        if tables == 0 {
            let tx = conn.transaction().map_err(classify)?;
            tx.execute_batch(SCHEMA).map_err(classify)?;
            tx.execute(
                "INSERT INTO shepherd_meta (key, value) VALUES ('schema', ?1)",
                [SCHEMA_VERSION],
            )
            .map_err(classify)?;
            tx.commit().map_err(classify)?;
            return Ok(());
        }
        let version: Option<String> = conn
            .query_row(
                "SELECT value FROM shepherd_meta WHERE key = 'schema'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| TrackerError::NotShepherd {
                path: path.clone(),
                reason: format!("it has no shepherd_meta table ({e})"),
            })?;
        match version.as_deref() {
            Some(SCHEMA_VERSION) => {}
            Some(other) => {
                return Err(TrackerError::NotShepherd {
                    path,
                    reason: format!("unknown schema `{other}`"),
                })
            }
            None => {
                return Err(TrackerError::NotShepherd {
                    path,
                    reason: "it has no schema version".into(),
                })
            }
        }
        if existed {
            let check: String = conn
                .query_row("PRAGMA quick_check", [], |r| r.get(0))
                .map_err(classify)?;
            if check != "ok" {
                return Err(TrackerError::Corrupt {
                    path,
                    reason: check,
                });
            }
        }
        Ok(())
    }

    fn clock(&self) -> DateTime<Utc> {
        self.now.unwrap_or_else(Utc::now)
    }

    fn url(&self, number: u64) -> String {
        format!("local:{}#{number}", self.path.display())
    }

    fn write<T>(
        &self,
        f: impl FnOnce(&Transaction) -> Result<T, TrackerError>,
    ) -> Result<T, TrackerError> {
        let mut conn = self.conn.lock().expect("lock");
        let tx = conn.transaction().map_err(sql)?;
        let out = f(&tx)?;
        tx.commit().map_err(sql)?;
        Ok(out)
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, TrackerError>,
    ) -> Result<T, TrackerError> {
        let conn = self.conn.lock().expect("lock");
        f(&conn)
    }

    fn load_issue(&self, conn: &Connection, number: u64) -> Result<Issue, TrackerError> {
        let row = conn
            .query_row(
                "SELECT number, title, body, open, author, created_at, updated_at FROM issues WHERE number = ?1",
                [number as i64],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, bool>(3)?, r.get::<_, String>(4)?, r.get::<_, String>(5)?, r.get::<_, String>(6)?)),
            )
            .optional()
            .map_err(sql)?
            .ok_or(TrackerError::NotFound(number))?;
        let labels = labels_of(conn, number)?;
        Ok(Issue {
            number: row.0 as u64,
            title: row.1,
            body: row.2,
            open: row.3,
            author: row.4,
            created_at: parse_time(&row.5)?,
            updated_at: parse_time(&row.6)?,
            url: self.url(number),
            labels,
        })
    }
}

fn sql(e: rusqlite::Error) -> TrackerError {
    TrackerError::Local(e.to_string())
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, TrackerError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| TrackerError::Local(format!("bad time `{text}`: {e}")))
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn labels_of(conn: &Connection, number: u64) -> Result<Vec<String>, TrackerError> {
    let mut stmt = conn
        .prepare_cached("SELECT label FROM issue_labels WHERE issue = ?1 ORDER BY rowid")
        .map_err(sql)?;
    let labels = stmt
        .query_map([number as i64], |r| r.get(0))
        .map_err(sql)?
        .collect::<Result<Vec<String>, _>>()
        .map_err(sql)?;
    Ok(labels)
}

fn exists(tx: &Transaction, number: u64) -> Result<(), TrackerError> {
    let found: Option<i64> = tx
        .query_row(
            "SELECT number FROM issues WHERE number = ?1",
            [number as i64],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql)?;
    found.map(|_| ()).ok_or(TrackerError::NotFound(number))
}

fn add_label(
    tx: &Transaction,
    number: u64,
    label: &str,
    actor: &str,
    at: &str,
) -> Result<(), TrackerError> {
    tx.execute(
        "INSERT OR IGNORE INTO labels (name, color, description) VALUES (?1, '#428bca', '')",
        [label],
    )
    .map_err(sql)?;
    let added = tx
        .execute(
            "INSERT OR IGNORE INTO issue_labels (issue, label) VALUES (?1, ?2)",
            params![number as i64, label],
        )
        .map_err(sql)?;
    if added > 0 {
        tx.execute(
            "INSERT INTO label_events (issue, label, added, actor, at) VALUES (?1, ?2, 1, ?3, ?4)",
            params![number as i64, label, actor, at],
        )
        .map_err(sql)?;
    }
    Ok(())
}

#[async_trait]
impl Tracker for LocalTracker {
    fn describe(&self) -> String {
        format!("local:{}", self.path.display())
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock()
    }

    async fn create_issue(&self, new: &NewIssue) -> Result<Issue, TrackerError> {
        let at = time(self.clock());
        let number = self.write(|tx| {
            tx.execute(
                "INSERT INTO issues (title, body, open, author, created_at, updated_at) VALUES (?1, ?2, 1, ?3, ?4, ?4)",
                params![new.title, new.body, self.actor, at],
            )
            .map_err(sql)?;
            let number = tx.last_insert_rowid() as u64;
            for label in &new.labels {
                add_label(tx, number, label, &self.actor, &at)?;
            }
            Ok(number)
        })?;
        self.issue(number).await
    }

    async fn issue(&self, number: u64) -> Result<Issue, TrackerError> {
        self.read(|conn| self.load_issue(conn, number))
    }

    async fn list_issues(
        &self,
        state: StateFilter,
        labels: &[String],
    ) -> Result<Vec<Issue>, TrackerError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT i.number, i.title, i.body, i.open, i.author, i.created_at, \
                     (SELECT group_concat(label, char(31)) FROM (SELECT label FROM issue_labels WHERE issue = i.number ORDER BY rowid)), i.updated_at \
                     FROM issues i WHERE (?1 = 0 OR i.open = 1) ORDER BY i.number DESC",
                )
                .map_err(sql)?;
            let open_only = state == StateFilter::Open;
            let rows = stmt
                .query_map([open_only as i64], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, bool>(3)?, r.get::<_, String>(4)?, r.get::<_, String>(5)?, r.get::<_, Option<String>>(6)?, r.get::<_, String>(7)?))
                })
                .map_err(sql)?;
            let mut out = Vec::new();
            for row in rows {
                let (number, title, body, open, author, created_at, issue_labels, updated_at) = row.map_err(sql)?;
                let issue_labels: Vec<String> = issue_labels.map(|s| s.split('\u{1f}').map(String::from).collect()).unwrap_or_default();
                if !labels.iter().all(|l| issue_labels.contains(l)) {
                    continue;
                }
                let number = number as u64;
                out.push(Issue { number, title, body, open, author, created_at: parse_time(&created_at)?, updated_at: parse_time(&updated_at)?, url: self.url(number), labels: issue_labels });
            }
            Ok(out)
        })
    }

    async fn update_body(&self, number: u64, body: &str) -> Result<(), TrackerError> {
        let at = time(self.clock());
        self.write(|tx| {
            exists(tx, number)?;
            tx.execute(
                "UPDATE issues SET body = ?1, updated_at = ?2 WHERE number = ?3",
                params![body, at, number as i64],
            )
            .map_err(sql)?;
            Ok(())
        })
    }

    async fn edit_labels(
        &self,
        number: u64,
        _current: &[String],
        add: &[String],
        remove: &[String],
    ) -> Result<(), TrackerError> {
        let at = time(self.clock());
        self.write(|tx| {
            exists(tx, number)?;
            for label in remove {
                let removed = tx.execute("DELETE FROM issue_labels WHERE issue = ?1 AND label = ?2", params![number as i64, label]).map_err(sql)?;
                if removed > 0 {
                    tx.execute("INSERT INTO label_events (issue, label, added, actor, at) VALUES (?1, ?2, 0, ?3, ?4)", params![number as i64, label, self.actor, at]).map_err(sql)?;
                }
            }
            for label in add {
                add_label(tx, number, label, &self.actor, &at)?;
            }
            tx.execute("UPDATE issues SET updated_at = ?1 WHERE number = ?2", params![at, number as i64]).map_err(sql)?;
            Ok(())
        })
    }

    async fn set_open(&self, number: u64, open: bool) -> Result<(), TrackerError> {
        let at = time(self.clock());
        self.write(|tx| {
            exists(tx, number)?;
            tx.execute(
                "UPDATE issues SET open = ?1, updated_at = ?2 WHERE number = ?3",
                params![open, at, number as i64],
            )
            .map_err(sql)?;
            Ok(())
        })
    }

    async fn comments(&self, number: u64) -> Result<Vec<Comment>, TrackerError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached("SELECT id, body, author, created_at FROM comments WHERE issue = ?1 ORDER BY id").map_err(sql)?;
            let rows = stmt
                .query_map([number as i64], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?)))
                .map_err(sql)?;
            let mut out = Vec::new();
            for row in rows {
                let (id, body, author, created_at) = row.map_err(sql)?;
                out.push(Comment { id: id as u64, body, author, created_at: parse_time(&created_at)? });
            }
            Ok(out)
        })
    }

    async fn add_comment(&self, number: u64, body: &str) -> Result<Comment, TrackerError> {
        let now = self.clock();
        let id = self.write(|tx| {
            exists(tx, number)?;
            tx.execute(
                "INSERT INTO comments (issue, body, author, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![number as i64, body, self.actor, time(now)],
            )
            .map_err(sql)?;
            let id = tx.last_insert_rowid() as u64;
            tx.execute(
                "UPDATE issues SET updated_at = ?1 WHERE number = ?2",
                params![time(now), number as i64],
            )
            .map_err(sql)?;
            Ok(id)
        })?;
        Ok(Comment {
            id,
            body: body.to_string(),
            author: self.actor.clone(),
            created_at: parse_time(&time(now))?,
        })
    }

    async fn label_events(&self, number: u64) -> Result<Vec<LabelEvent>, TrackerError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT label, added, actor, at FROM label_events WHERE issue = ?1 ORDER BY id",
                )
                .map_err(sql)?;
            let rows = stmt
                .query_map([number as i64], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, bool>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                    ))
                })
                .map_err(sql)?;
            let mut out = Vec::new();
            for row in rows {
                let (label, added, actor, at) = row.map_err(sql)?;
                out.push(LabelEvent {
                    label,
                    added,
                    actor,
                    at: parse_time(&at)?,
                });
            }
            Ok(out)
        })
    }

    async fn ensure_labels(&self, labels: &[LabelSpec]) -> Result<(), TrackerError> {
        self.write(|tx| {
            for l in labels {
                tx.execute(
                    "INSERT INTO labels (name, color, description) VALUES (?1, ?2, ?3) \
                     ON CONFLICT(name) DO UPDATE SET color = excluded.color, description = excluded.description \
                     WHERE labels.description = ''",
                    params![l.name, l.color, l.description],
                )
                .map_err(sql)?;
            }
            Ok(())
        })
    }
}
