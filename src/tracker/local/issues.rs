//! The local tracker's rows: issues with their labels read in one statement, lists
//! filtered by label and by `updated_at` in SQL (driven by the rarest label's index),
//! label moves with their events, comments and issue links. Every statement is prepared
//! once per connection (`prepare_cached`); every write that changes an issue bumps its
//! `updated_at`.

use chrono::{DateTime, Utc};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};

use super::{parse_time, sql, LocalTracker};
use crate::core::marker::IssueMarker;
use crate::core::snapshot::LabelEvent;
use crate::tracker::{Comment, Issue, IssueEdit, StateFilter, TrackerError};

/// The columns of an issue, its labels (in the order they were added) joined by U+001F.
const COLUMNS: &str = "i.number, i.title, i.body, i.open, i.author, i.created_at, i.updated_at, \
     (SELECT group_concat(label, char(31) ORDER BY rowid) FROM issue_labels WHERE issue = i.number), \
     (SELECT count(*) FROM comments WHERE issue = i.number)";

/// An issue as stored, before its times are parsed.
pub struct IssueRow {
    number: i64,
    title: String,
    body: String,
    open: bool,
    author: String,
    created_at: String,
    updated_at: String,
    labels: Option<String>,
    comments: i64,
}

impl IssueRow {
    fn read(r: &rusqlite::Row) -> rusqlite::Result<IssueRow> {
        Ok(IssueRow {
            number: r.get(0)?,
            title: r.get(1)?,
            body: r.get(2)?,
            open: r.get(3)?,
            author: r.get(4)?,
            created_at: r.get(5)?,
            updated_at: r.get(6)?,
            labels: r.get(7)?,
            comments: r.get(8)?,
        })
    }

    pub fn into_issue(self, tracker: &LocalTracker) -> Result<Issue, TrackerError> {
        let number = self.number as u64;
        Ok(Issue {
            number,
            title: self.title,
            body: self.body,
            labels: self
                .labels
                .map(|s| s.split('\u{1f}').map(String::from).collect())
                .unwrap_or_default(),
            open: self.open,
            created_at: parse_time(&self.created_at)?,
            updated_at: parse_time(&self.updated_at)?,
            url: tracker.url(number),
            author: self.author,
            comment_count: Some(self.comments as u64),
            assignees: Vec::new(),
        })
    }
}

/// An issue number as SQLite stores it (numbers past `i64::MAX` name no issue).
pub fn key(number: u64) -> i64 {
    i64::try_from(number).unwrap_or(-1)
}

/// A time as the file stores it: RFC 3339 in UTC to the second, so that text order is
/// time order.
pub fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub fn one(conn: &Connection, number: u64) -> Result<Option<IssueRow>, TrackerError> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM issues i WHERE i.number = ?1"
    ))
    .map_err(sql)?
    .query_row([key(number)], IssueRow::read)
    .optional()
    .map_err(sql)
}

pub fn exists(conn: &Connection, number: u64) -> Result<(), TrackerError> {
    let found: Option<i64> = conn
        .prepare_cached("SELECT number FROM issues WHERE number = ?1")
        .map_err(sql)?
        .query_row([key(number)], |r| r.get(0))
        .optional()
        .map_err(sql)?;
    found.map(|_| ()).ok_or(TrackerError::NotFound(number))
}

/// Issues with every label of `labels` (changed after `since`, if given), newest first.
/// With labels, the rarest one's index drives the query and the others are probed.
pub fn list(
    conn: &Connection,
    state: StateFilter,
    labels: &[String],
    since: Option<DateTime<Utc>>,
) -> Result<Vec<IssueRow>, TrackerError> {
    let mut args: Vec<Value> = vec![Value::Integer(i64::from(state == StateFilter::Open))];
    let mut query = format!("SELECT {COLUMNS} FROM issues i WHERE ");
    let labels = rarest_first(conn, labels)?;
    match labels.split_first() {
        // The numbers from the label's index, then each issue by its key in that order:
        // no sort of the rows (a join on the label sorts them, at three times the cost).
        Some((first, _)) => {
            args.push(Value::Text(first.to_string()));
            query.push_str("i.number IN (SELECT issue FROM issue_labels WHERE label = ?2)");
        }
        None => query.push('1'),
    }
    query.push_str(" AND (?1 = 0 OR i.open = 1)");
    for label in labels.iter().skip(1) {
        args.push(Value::Text(label.to_string()));
        query.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM issue_labels WHERE issue = i.number AND label = ?{})",
            args.len()
        ));
    }
    if let Some(since) = since {
        args.push(Value::Text(time(since)));
        query.push_str(&format!(" AND i.updated_at > ?{}", args.len()));
    }
    query.push_str(" ORDER BY i.number DESC");
    let mut stmt = conn.prepare_cached(&query).map_err(sql)?;
    let rows = stmt
        .query_map(params_from_iter(args), IssueRow::read)
        .map_err(sql)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql)?;
    Ok(rows)
}

/// `labels` without repeats, the one on fewest issues first.
fn rarest_first<'l>(conn: &Connection, labels: &'l [String]) -> Result<Vec<&'l str>, TrackerError> {
    let mut unique: Vec<&str> = Vec::new();
    for l in labels {
        if !unique.contains(&l.as_str()) {
            unique.push(l);
        }
    }
    if unique.len() < 2 {
        return Ok(unique);
    }
    let mut stmt = conn
        .prepare_cached("SELECT count(*) FROM issue_labels WHERE label = ?1")
        .map_err(sql)?;
    let mut counted = Vec::new();
    for l in unique {
        let n: i64 = stmt.query_row([l], |r| r.get(0)).map_err(sql)?;
        counted.push((n, l));
    }
    counted.sort_by_key(|(n, _)| *n);
    Ok(counted.into_iter().map(|(_, l)| l).collect())
}

/// The issues linked to `parent` as its children, newest first.
pub fn children(conn: &Connection, parent: u64) -> Result<Vec<IssueRow>, TrackerError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM issue_links l JOIN issues i ON i.number = l.child \
             WHERE l.parent = ?1 ORDER BY i.number DESC"
        ))
        .map_err(sql)?;
    let rows = stmt
        .query_map([key(parent)], IssueRow::read)
        .map_err(sql)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql)?;
    Ok(rows)
}

/// Records `child` as a child of `parent` (once).
pub fn link(conn: &Connection, parent: u64, child: u64) -> Result<(), TrackerError> {
    exists(conn, parent)?;
    exists(conn, child)?;
    if parent == child {
        return Err(TrackerError::Other(format!(
            "#{parent} cannot be linked as its own child"
        )));
    }
    conn.prepare_cached("INSERT OR IGNORE INTO issue_links (parent, child) VALUES (?1, ?2)")
        .map_err(sql)?
        .execute([key(parent), key(child)])
        .map_err(sql)?;
    Ok(())
}

/// Links an issue to the parent its marker names, when that parent exists: a child is
/// found through the links even when whoever created it did not link it.
pub fn link_by_marker(conn: &Connection, number: u64, body: &str) -> Result<(), TrackerError> {
    let Some(parent) = IssueMarker::find(body).and_then(|m| m.parent) else {
        return Ok(());
    };
    if parent == number {
        return Ok(());
    }
    conn.prepare_cached(
        "INSERT OR IGNORE INTO issue_links (parent, child) \
         SELECT number, ?2 FROM issues WHERE number = ?1",
    )
    .map_err(sql)?
    .execute([key(parent), key(number)])
    .map_err(sql)?;
    Ok(())
}

/// Sets `updated_at`.
pub fn touch(conn: &Connection, number: u64, at: &str) -> Result<(), TrackerError> {
    conn.prepare_cached("UPDATE issues SET updated_at = ?1 WHERE number = ?2")
        .map_err(sql)?
        .execute(params![at, key(number)])
        .map_err(sql)?;
    Ok(())
}

/// Removes, then adds labels (recording an event for each real change), then opens or
/// closes; bumps `updated_at` if anything changed.
pub fn edit(
    conn: &Connection,
    number: u64,
    edit: &IssueEdit,
    actor: &str,
    at: &str,
) -> Result<(), TrackerError> {
    exists(conn, number)?;
    let mut changed = false;
    for label in &edit.remove {
        let removed = conn
            .prepare_cached("DELETE FROM issue_labels WHERE issue = ?1 AND label = ?2")
            .map_err(sql)?
            .execute(params![key(number), label])
            .map_err(sql)?;
        if removed > 0 {
            event(conn, number, label, false, actor, at)?;
            changed = true;
        }
    }
    for label in &edit.add {
        changed |= add_label(conn, number, label, actor, at)?;
    }
    if let Some(open) = edit.open {
        changed |= conn
            .prepare_cached("UPDATE issues SET open = ?1 WHERE number = ?2 AND open != ?1")
            .map_err(sql)?
            .execute(params![open, key(number)])
            .map_err(sql)?
            > 0;
    }
    if changed {
        touch(conn, number, at)?;
    }
    Ok(())
}

/// Adds a label (creating it if new); true when the issue did not have it.
pub fn add_label(
    conn: &Connection,
    number: u64,
    label: &str,
    actor: &str,
    at: &str,
) -> Result<bool, TrackerError> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO labels (name, color, description) VALUES (?1, '#428bca', '')",
    )
    .map_err(sql)?
    .execute([label])
    .map_err(sql)?;
    let added = conn
        .prepare_cached("INSERT OR IGNORE INTO issue_labels (issue, label) VALUES (?1, ?2)")
        .map_err(sql)?
        .execute(params![key(number), label])
        .map_err(sql)?;
    if added > 0 {
        event(conn, number, label, true, actor, at)?;
    }
    Ok(added > 0)
}

fn event(
    conn: &Connection,
    number: u64,
    label: &str,
    added: bool,
    actor: &str,
    at: &str,
) -> Result<(), TrackerError> {
    conn.prepare_cached(
        "INSERT INTO label_events (issue, label, added, actor, at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .map_err(sql)?
    .execute(params![key(number), label, added, actor, at])
    .map_err(sql)?;
    Ok(())
}

/// The comments of `numbers`, by issue, in one pass over the table.
pub fn comments_of(
    conn: &Connection,
    numbers: &[u64],
) -> Result<std::collections::HashMap<u64, Vec<Comment>>, TrackerError> {
    let wanted: std::collections::HashSet<i64> = numbers.iter().map(|n| key(*n)).collect();
    let mut out: std::collections::HashMap<u64, Vec<Comment>> =
        numbers.iter().map(|n| (*n, Vec::new())).collect();
    let mut stmt = conn
        .prepare_cached("SELECT issue, id, body, author, created_at FROM comments ORDER BY id")
        .map_err(sql)?;
    let mut rows = stmt.query([]).map_err(sql)?;
    while let Some(r) = rows.next().map_err(sql)? {
        let issue: i64 = r.get(0).map_err(sql)?;
        if !wanted.contains(&issue) {
            continue;
        }
        let created_at: String = r.get(4).map_err(sql)?;
        out.entry(issue as u64).or_default().push(Comment {
            id: r.get::<_, i64>(1).map_err(sql)? as u64,
            body: r.get(2).map_err(sql)?,
            author: r.get(3).map_err(sql)?,
            author_id: None,
            created_at: parse_time(&created_at)?,
            edited: false,
        });
    }
    Ok(out)
}

pub fn comments(conn: &Connection, number: u64) -> Result<Vec<Comment>, TrackerError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, body, author, created_at FROM comments WHERE issue = ?1 ORDER BY id",
        )
        .map_err(sql)?;
    let rows = stmt
        .query_map([key(number)], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })
        .map_err(sql)?;
    let mut out = Vec::new();
    for row in rows {
        let (id, body, author, created_at) = row.map_err(sql)?;
        out.push(Comment {
            id: id as u64,
            body,
            author,
            author_id: None,
            created_at: parse_time(&created_at)?,
            edited: false,
        });
    }
    Ok(out)
}

/// Deletes comment `comment` of issue `number`; a comment of another issue is refused.
pub fn delete_comment(
    conn: &Connection,
    number: u64,
    comment: u64,
    at: &str,
) -> Result<(), TrackerError> {
    exists(conn, number)?;
    let owner: Option<i64> = conn
        .prepare_cached("SELECT issue FROM comments WHERE id = ?1")
        .map_err(sql)?
        .query_row([key(comment)], |r| r.get(0))
        .optional()
        .map_err(sql)?;
    match owner {
        None => Err(TrackerError::Other(format!(
            "#{number} has no comment {comment}"
        ))),
        Some(owner) if owner != key(number) => Err(TrackerError::Other(format!(
            "comment {comment} belongs to #{owner}, not to #{number}"
        ))),
        Some(_) => {
            conn.prepare_cached("DELETE FROM comments WHERE id = ?1")
                .map_err(sql)?
                .execute([key(comment)])
                .map_err(sql)?;
            touch(conn, number, at)
        }
    }
}

/// Label history, oldest first.
pub fn label_events(conn: &Connection, number: u64) -> Result<Vec<LabelEvent>, TrackerError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT label, added, actor, at FROM label_events WHERE issue = ?1 ORDER BY id",
        )
        .map_err(sql)?;
    let rows = stmt
        .query_map([key(number)], |r| {
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
}
