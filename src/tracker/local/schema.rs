//! The local tracker's file format and how a file is brought to it. The file records its
//! format in `shepherd_meta` (`schema = shepherd-local-N`); opening a file from an older
//! shepherd applies the missing steps in one transaction, and a file from a newer one is
//! refused. The check on every open is cheap: the version and the table names, never a
//! scan of the file.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::super::TrackerError;
use crate::core::marker::IssueMarker;

const PREFIX: &str = "shepherd-local-";

/// The format this shepherd writes.
pub const VERSION: u32 = 5;

/// The first format (`shepherd-local-1`): every file starts from it, and each step below
/// brings it one version forward, so a new file and an upgraded one are the same.
const BASE: &str = "
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

/// Version 2: issue links (children without a scan), lists filtered by label and by
/// `updated_at` through indexes.
const TO_2: &str = "
CREATE TABLE issue_links (
    parent INTEGER NOT NULL REFERENCES issues(number),
    child INTEGER NOT NULL REFERENCES issues(number),
    PRIMARY KEY (parent, child)
) WITHOUT ROWID;
CREATE INDEX issue_labels_label ON issue_labels(label, issue);
CREATE INDEX issues_updated ON issues(updated_at);
";

/// Version 3: merge requests (numbered per project) with the issues each references, and
/// releases (a tag once per project), which `mr` and `release` write and gates read.
const TO_3: &str = "
CREATE TABLE merge_requests (
    id INTEGER PRIMARY KEY,
    project TEXT NOT NULL,
    number INTEGER NOT NULL,
    title TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('open', 'merged', 'closed')),
    author TEXT NOT NULL,
    created_at TEXT NOT NULL,
    merged_at TEXT,
    closed_at TEXT,
    UNIQUE (project, number)
);
CREATE TABLE merge_request_issues (
    merge_request INTEGER NOT NULL REFERENCES merge_requests(id),
    issue INTEGER NOT NULL REFERENCES issues(number),
    PRIMARY KEY (issue, merge_request)
) WITHOUT ROWID;
CREATE TABLE releases (
    id INTEGER PRIMARY KEY,
    project TEXT NOT NULL,
    tag TEXT NOT NULL,
    author TEXT NOT NULL,
    released_at TEXT NOT NULL,
    UNIQUE (project, tag)
);
";

/// Version 4: feature flags (the `local` flags backend), per environment (`*`: every
/// environment), with who set them last and when.
const TO_4: &str = "
CREATE TABLE flags (
    name TEXT NOT NULL,
    environment TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    percentage REAL,
    updated_by TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (name, environment)
) WITHOUT ROWID;
";

/// Version 5: change freeze periods (`shepherd freeze add`, DESIGN §13), named as GitLab's
/// deploy freeze periods are: two five-field crons and their time zone.
const TO_5: &str = "
CREATE TABLE freeze_periods (
    id INTEGER PRIMARY KEY,
    freeze_start TEXT NOT NULL,
    freeze_end TEXT NOT NULL,
    cron_timezone TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL
);
";
/// The tables a file of the current version has.
const TABLES: &[&str] = &[
    "shepherd_meta",
    "issues",
    "labels",
    "issue_labels",
    "label_events",
    "comments",
    "issue_links",
    "merge_requests",
    "merge_request_issues",
    "releases",
    "flags",
    "freeze_periods",
];

/// Makes the file at `conn` a current shepherd tracker: creates the schema in an empty
/// file, brings an older one forward, and refuses anything else. `path` names the file in
/// errors.
pub fn prepare(conn: &mut Connection, path: &str) -> Result<(), TrackerError> {
    let classify = |e: rusqlite::Error| classify(path, e);
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .map_err(classify)?;
    if tables == 0 {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(classify)?;
        // Another process may have created it while this one waited for the lock.
        let tables: i64 = tx
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(classify)?;
        if tables == 0 {
            tx.execute_batch(BASE).map_err(classify)?;
            upgrade(&tx, 1)?;
            tx.execute(
                "INSERT INTO shepherd_meta (key, value) VALUES ('schema', ?1)",
                [name(VERSION)],
            )
            .map_err(classify)?;
        }
        tx.commit().map_err(classify)?;
    }
    match version(conn, path)? {
        VERSION => {}
        old if old < VERSION => {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(classify)?;
            let old = version(&tx, path)?;
            if old < VERSION {
                upgrade(&tx, old).map_err(|e| TrackerError::Local(format!(
                    "cannot bring {path} from {} to {}: {e}",
                    name(old),
                    name(VERSION)
                )))?;
                tx.execute(
                    "UPDATE shepherd_meta SET value = ?1 WHERE key = 'schema'",
                    [name(VERSION)],
                )
                .map_err(classify)?;
            }
            tx.commit().map_err(classify)?;
        }
        newer => {
            return Err(TrackerError::Local(format!(
                "{path} was written by a newer shepherd (schema {}; this one reads up to {}): upgrade shepherd to use it",
                name(newer),
                name(VERSION)
            )))
        }
    }
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .map_err(classify)?;
    let present = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(classify)?
        .collect::<Result<Vec<String>, _>>()
        .map_err(classify)?;
    if let Some(missing) = TABLES.iter().find(|t| !present.iter().any(|p| p == *t)) {
        return Err(TrackerError::Corrupt {
            path: path.to_string(),
            reason: format!("its table `{missing}` is missing"),
        });
    }
    Ok(())
}

/// `shepherd-local-N`.
pub fn name(version: u32) -> String {
    format!("{PREFIX}{version}")
}

/// The version recorded in the file, or why there is none.
fn version(conn: &Connection, path: &str) -> Result<u32, TrackerError> {
    let not_shepherd = |reason: String| TrackerError::NotShepherd {
        path: path.to_string(),
        reason,
    };
    let text: Option<String> = conn
        .query_row(
            "SELECT value FROM shepherd_meta WHERE key = 'schema'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| match classify(path, e) {
            TrackerError::NotShepherd { reason, .. } => {
                not_shepherd(format!("it has no shepherd_meta table ({reason})"))
            }
            other => other,
        })?;
    let text = text.ok_or_else(|| not_shepherd("it has no schema version".into()))?;
    text.strip_prefix(PREFIX)
        .and_then(|n| n.parse::<u32>().ok())
        .filter(|n| *n >= 1)
        .ok_or_else(|| not_shepherd(format!("unknown schema `{text}`")))
}

/// Applies every step after version `from`.
fn upgrade(conn: &Connection, from: u32) -> Result<(), TrackerError> {
    let sql = |e: rusqlite::Error| TrackerError::Local(e.to_string());
    if from < 2 {
        conn.execute_batch(TO_2).map_err(sql)?;
        link_by_markers(conn)?;
    }
    if from < 3 {
        conn.execute_batch(TO_3).map_err(sql)?;
    }
    if from < 4 {
        conn.execute_batch(TO_4).map_err(sql)?;
    }
    if from < 5 {
        conn.execute_batch(TO_5).map_err(sql)?;
    }
    Ok(())
}

/// Records a link for every issue whose marker names a parent that exists: what files of
/// version 1 knew of children only through their bodies.
fn link_by_markers(conn: &Connection) -> Result<(), TrackerError> {
    let sql = |e: rusqlite::Error| TrackerError::Local(e.to_string());
    let mut stmt = conn
        .prepare("SELECT number, body FROM issues WHERE body LIKE '%\"parent\":%'")
        .map_err(sql)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
        .map_err(sql)?;
    let mut insert = conn
        .prepare(
            "INSERT OR IGNORE INTO issue_links (parent, child) \
             SELECT number, ?2 FROM issues WHERE number = ?1 AND number != ?2",
        )
        .map_err(sql)?;
    for row in rows {
        let (child, body) = row.map_err(sql)?;
        if let Some(parent) = IssueMarker::find(&body).and_then(|m| m.parent) {
            if let Ok(parent) = i64::try_from(parent) {
                insert.execute([parent, child]).map_err(sql)?;
            }
        }
    }
    Ok(())
}

/// An error from SQLite while opening `path`: corruption, or a file that is not ours.
pub fn classify(path: &str, e: rusqlite::Error) -> TrackerError {
    let reason = e.to_string();
    let corrupt = matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt)
    ) || reason.contains("malformed");
    if corrupt {
        TrackerError::Corrupt {
            path: path.to_string(),
            reason,
        }
    } else if matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    ) {
        TrackerError::Local(format!("{path} stayed locked by another process: {reason}"))
    } else {
        TrackerError::NotShepherd {
            path: path.to_string(),
            reason,
        }
    }
}
