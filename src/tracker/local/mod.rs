//! The embedded tracker: a real, small issue tracker in one SQLite file. Issues, labels,
//! comments, label events (with actor and time), open/closed, issue links, and the merge
//! requests and releases a rehearsal stands in for (`facts.rs`) and its change freeze
//! periods (`freezes.rs`); every write in one transaction that takes the write lock up
//! front, so concurrent processes wait for each other (WAL, a long busy timeout) rather
//! than fail. Lists are filtered by label and
//! by `updated_at` in SQL through indexes, children are read from the links, and opening a
//! file checks its format, not its every page, so a command costs the same on a file of
//! ten migrations and of ten thousand. Its clock (`clock.rs`) can be stored in the file or
//! overridden (`--now`), so that a whole rollout can be rehearsed offline.

mod clock;
mod flags;
mod freezes;
mod issues;
mod merge_requests;
mod schema;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, TransactionBehavior};

pub use clock::ClockSet;
pub use flags::check_name as check_flag_name;
pub use merge_requests::{MergeRequestChange, MergeRequestRecord, OWN_PROJECT};

use super::{Comment, Issue, IssueEdit, IssueQuery, LabelSpec, NewIssue, Tracker, TrackerError};
use crate::core::facts::{MergeRequest, Release};
use crate::core::snapshot::LabelEvent;
use issues::{key, time, IssueRow};

/// How long a process waits for another one's write before giving up: far longer than any
/// one transaction of shepherd's takes, so concurrent commands queue instead of failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// The local tracker.
pub struct LocalTracker {
    conn: Mutex<Connection>,
    path: PathBuf,
    /// `--now`: overrides the stored clock for this tracker's lifetime.
    now: Option<DateTime<Utc>>,
    /// The clock stored in the file, read when opened and kept up to date by `set_clock`.
    stored_clock: Mutex<Option<DateTime<Utc>>>,
    /// Opened on a missing file without `create`: nothing is written to disk, except by
    /// `set_clock`, which creates the file.
    in_memory: Mutex<bool>,
    actor: String,
}

impl LocalTracker {
    /// Opens the tracker at `path`, creating it when `create` is set. A missing (or empty)
    /// file opened without `create` gives an empty tracker in memory, and nothing is written
    /// to disk. A file of an older format is brought forward; one of a newer format is
    /// refused. `now` overrides the clock stored in the file.
    pub fn open(
        path: &Path,
        create: bool,
        now: Option<DateTime<Utc>>,
        actor: &str,
    ) -> Result<LocalTracker, TrackerError> {
        Self::open_with(path, create, now, actor, false)
    }

    /// Opens the tracker at `path` (creating it) to set its clock: a stored clock that
    /// cannot be read is no obstacle, since `set_clock` replaces it. Every other command
    /// refuses such a file, naming it (`open`).
    pub fn open_to_set_clock(path: &Path, actor: &str) -> Result<LocalTracker, TrackerError> {
        Self::open_with(path, true, None, actor, true)
    }

    fn open_with(
        path: &Path,
        create: bool,
        now: Option<DateTime<Utc>>,
        actor: &str,
        replacing_clock: bool,
    ) -> Result<LocalTracker, TrackerError> {
        let empty = std::fs::metadata(path)
            .map(|m| m.len() == 0)
            .unwrap_or(true);
        let in_memory = empty && !create;
        let conn = if in_memory { memory()? } else { connect(path)? };
        let stored = match clock::stored(&conn) {
            Ok(stored) => stored,
            Err(clock::StoredClock::Unreadable(_)) if replacing_clock => None,
            Err(e) => return Err(e.at(path)),
        };
        Ok(LocalTracker {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
            now,
            stored_clock: Mutex::new(stored),
            in_memory: Mutex::new(in_memory),
            actor: actor.to_string(),
        })
    }

    /// The tracker's time: `--now`, else the stored clock, else the system clock.
    fn now_at(&self) -> DateTime<Utc> {
        self.now
            .or(*lock(&self.stored_clock))
            .unwrap_or_else(Utc::now)
    }

    fn url(&self, number: u64) -> String {
        format!("local:{}#{number}", self.path.display())
    }

    /// Moves a tracker held in memory to its file, creating it.
    fn persist(&self) -> Result<(), TrackerError> {
        let mut in_memory = lock(&self.in_memory);
        if *in_memory {
            let conn = connect(&self.path)?;
            *lock(&self.stored_clock) = clock::stored(&conn).map_err(|e| e.at(&self.path))?;
            *lock(&self.conn) = conn;
            *in_memory = false;
        }
        Ok(())
    }

    /// Runs `f` in one transaction that holds the write lock from its start, so that it
    /// waits for other writers instead of failing when it meets one halfway.
    fn write<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, TrackerError>,
    ) -> Result<T, TrackerError> {
        let mut conn = lock(&self.conn);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.fail(sql(e)))?;
        let out = f(&tx).map_err(|e| self.fail(e))?;
        tx.commit().map_err(|e| self.fail(sql(e)))?;
        Ok(out)
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, TrackerError>,
    ) -> Result<T, TrackerError> {
        let conn = lock(&self.conn);
        f(&conn).map_err(|e| self.fail(e))
    }

    /// Names the file when SQLite finds it damaged, or a time in it cannot be read.
    fn fail(&self, e: TrackerError) -> TrackerError {
        match e {
            TrackerError::Local(reason)
                if reason.contains("malformed") || reason.starts_with(BAD_TIME) =>
            {
                TrackerError::Corrupt {
                    path: self.path.display().to_string(),
                    reason,
                }
            }
            other => other,
        }
    }

    fn load(&self, conn: &Connection, number: u64) -> Result<Issue, TrackerError> {
        issues::one(conn, number)?
            .ok_or(TrackerError::NotFound(number))?
            .into_issue(self)
            .map_err(|e| self.fail(e))
    }

    fn collect(&self, rows: Vec<IssueRow>) -> Result<Vec<Issue>, TrackerError> {
        rows.into_iter()
            .map(|r| r.into_issue(self).map_err(|e| self.fail(e)))
            .collect()
    }
}

/// Opens (creating it and its directory if need be) and prepares the file at `path`.
fn connect(path: &Path) -> Result<Connection, TrackerError> {
    let display = path.display().to_string();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(|e| {
                TrackerError::Local(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
    }
    let mut conn = Connection::open(path).map_err(|e| TrackerError::NotShepherd {
        path: display.clone(),
        reason: e.to_string(),
    })?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(sql)?;
    schema::prepare(&mut conn, &display)?;
    // Only once the file is known to be ours: WAL lets readers and one writer work at
    // once; NORMAL syncs at checkpoints, not at every commit (safe in WAL).
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .map_err(|e| schema::classify(&display, e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
            .map_err(|e| schema::classify(&display, e))?;
    }
    // Sorts and groupings stay in memory (not temporary files); reads go through a map
    // of the file and a cache big enough for tens of thousands of issues.
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL; PRAGMA temp_store = MEMORY; \
         PRAGMA cache_size = -65536; PRAGMA mmap_size = 268435456",
    )
    .map_err(|e| schema::classify(&display, e))?;
    Ok(conn)
}

/// An empty tracker in memory.
fn memory() -> Result<Connection, TrackerError> {
    let mut conn = Connection::open_in_memory().map_err(sql)?;
    schema::prepare(&mut conn, ":memory:")?;
    Ok(conn)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn sql(e: rusqlite::Error) -> TrackerError {
    TrackerError::Local(e.to_string())
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, TrackerError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            TrackerError::Local(format!(
                "{BAD_TIME} `{text}` (shepherd reads RFC 3339 times up to {}): {e}",
                crate::core::time::LATEST
            ))
        })
}

/// How `parse_time` starts its error, so that `fail` can name the file.
const BAD_TIME: &str = "a stored time is unreadable:";

#[async_trait]
impl Tracker for LocalTracker {
    fn describe(&self) -> String {
        format!("local:{}", self.path.display())
    }

    fn now(&self) -> DateTime<Utc> {
        self.now_at()
    }

    async fn create_issue(&self, new: &NewIssue) -> Result<Issue, TrackerError> {
        let at = time(self.now_at());
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO issues (title, body, open, author, created_at, updated_at) VALUES (?1, ?2, 1, ?3, ?4, ?4)",
            )
            .map_err(sql)?
            .execute(params![new.title, new.body, self.actor, at])
            .map_err(sql)?;
            let number = tx.last_insert_rowid() as u64;
            for label in &new.labels {
                issues::add_label(tx, number, label, &self.actor, &at)?;
            }
            issues::link_by_marker(tx, number, &new.body)?;
            self.load(tx, number)
        })
    }

    async fn issue(&self, number: u64) -> Result<Issue, TrackerError> {
        self.read(|conn| self.load(conn, number))
    }

    async fn find_issues(&self, query: IssueQuery<'_>) -> Result<Vec<Issue>, TrackerError> {
        let rows = self.read(|conn| issues::list(conn, query.state, query.labels, query.since))?;
        self.collect(rows)
    }

    async fn update_body(&self, number: u64, body: &str) -> Result<(), TrackerError> {
        let at = time(self.now_at());
        self.write(|tx| {
            issues::exists(tx, number)?;
            tx.prepare_cached(
                "UPDATE issues SET body = ?1, updated_at = ?2 WHERE number = ?3 AND body != ?1",
            )
            .map_err(sql)?
            .execute(params![body, at, key(number)])
            .map_err(sql)?;
            issues::link_by_marker(tx, number, body)
        })
    }

    async fn edit_issue(&self, number: u64, edit: &IssueEdit) -> Result<Issue, TrackerError> {
        let at = time(self.now_at());
        self.write(|tx| {
            issues::edit(tx, number, edit, &self.actor, &at)?;
            self.load(tx, number)
        })
    }

    async fn delete_comment(&self, number: u64, comment: u64) -> Result<(), TrackerError> {
        let at = time(self.now_at());
        self.write(|tx| issues::delete_comment(tx, number, comment, &at))
    }

    async fn comments(&self, number: u64) -> Result<Vec<Comment>, TrackerError> {
        self.read(|conn| issues::comments(conn, number))
    }

    async fn comments_of(
        &self,
        numbers: &[u64],
    ) -> Result<Option<std::collections::HashMap<u64, Vec<Comment>>>, TrackerError> {
        self.read(|conn| issues::comments_of(conn, numbers))
            .map(Some)
    }

    async fn add_comment(&self, number: u64, body: &str) -> Result<Comment, TrackerError> {
        let now = self.now_at();
        let at = time(now);
        let id = self.write(|tx| {
            issues::exists(tx, number)?;
            tx.prepare_cached(
                "INSERT INTO comments (issue, body, author, created_at) VALUES (?1, ?2, ?3, ?4)",
            )
            .map_err(sql)?
            .execute(params![key(number), body, self.actor, at])
            .map_err(sql)?;
            let id = tx.last_insert_rowid() as u64;
            issues::touch(tx, number, &at)?;
            Ok(id)
        })?;
        Ok(Comment {
            id,
            body: body.to_string(),
            author: self.actor.clone(),
            author_id: None,
            created_at: parse_time(&at)?,
            edited: false,
        })
    }

    async fn label_events(&self, number: u64) -> Result<Vec<LabelEvent>, TrackerError> {
        self.read(|conn| issues::label_events(conn, number))
    }

    async fn ensure_labels(&self, labels: &[LabelSpec]) -> Result<(), TrackerError> {
        // Most runs find every label there already: look before taking the write lock.
        let missing = self.read(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT description FROM labels WHERE name = ?1")
                .map_err(sql)?;
            let mut missing = Vec::new();
            for l in labels {
                let description: Option<String> = stmt
                    .query_row([&l.name], |r| r.get(0))
                    .map(Some)
                    .or_else(|e| match e {
                        rusqlite::Error::QueryReturnedNoRows => Ok(None),
                        e => Err(sql(e)),
                    })?;
                if description.is_none_or(|d| d.is_empty()) {
                    missing.push(l);
                }
            }
            Ok(missing)
        })?;
        if missing.is_empty() {
            return Ok(());
        }
        self.write(|tx| {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO labels (name, color, description) VALUES (?1, ?2, ?3) \
                     ON CONFLICT(name) DO UPDATE SET color = excluded.color, description = excluded.description \
                     WHERE labels.description = ''",
                )
                .map_err(sql)?;
            for l in missing {
                stmt.execute(params![l.name, l.color, l.description])
                    .map_err(sql)?;
            }
            Ok(())
        })
    }

    async fn children(&self, parent: u64) -> Result<Vec<Issue>, TrackerError> {
        let rows = self.read(|conn| issues::children(conn, parent))?;
        self.collect(rows)
    }

    async fn link(&self, parent: u64, child: u64) -> Result<(), TrackerError> {
        self.write(|tx| issues::link(tx, parent, child))
    }

    /// The merge requests `shepherd mr open --issue` made for issue `number`.
    async fn merge_requests(&self, number: u64) -> Result<Vec<MergeRequest>, TrackerError> {
        self.issue_merge_requests(number)
    }

    /// The releases `shepherd release publish` made; any `group/project` is known.
    async fn releases(&self, project: Option<&str>) -> Result<Vec<Release>, TrackerError> {
        self.project_releases(project)
    }

    /// The freeze periods `shepherd freeze add` made.
    async fn freeze_periods(&self) -> Result<Vec<super::FreezePeriod>, TrackerError> {
        self.freezes()
    }
}
