//! The local tracker's merge requests and releases: what `shepherd mr` and `shepherd
//! release` write as a person would on GitLab, and what the `merge_request` and `release`
//! gates read. Merge requests are numbered per project and reference one or more issues;
//! opening, merging or closing one changes the `updated_at` of those issues, so that
//! incremental lists (and `serve`'s resync) notice. A release's tag is unique in its
//! project. The tracker's own project is `local`; any well-formed `group/project` is known
//! (a rehearsal stands in for every project). Times come from the tracker's clock.

use rusqlite::{params, Connection, OptionalExtension};

use super::issues::{exists, key, time};
use super::{parse_time, sql, LocalTracker};
use crate::core::facts::{MergeRequest, MrState, Release};
use crate::tracker::{check_project, TrackerError};

/// The local tracker's own project.
pub const OWN_PROJECT: &str = "local";

/// A merge request with the issues it references.
#[derive(Clone, Debug, PartialEq)]
pub struct MergeRequestRecord {
    pub merge_request: MergeRequest,
    pub issues: Vec<u64>,
}

/// What merging or closing did.
#[derive(Clone, Debug, PartialEq)]
pub struct MergeRequestChange {
    pub record: MergeRequestRecord,
    /// False when the merge request was in that state already (nothing was written).
    pub changed: bool,
}

impl LocalTracker {
    /// Opens a merge request in `project` (`None`: `local`) that references `issues`,
    /// each of which must exist; its title defaults to GitLab's ("Resolve \"TITLE\"").
    pub fn open_merge_request(
        &self,
        project: Option<&str>,
        title: Option<&str>,
        issues: &[u64],
    ) -> Result<MergeRequestRecord, TrackerError> {
        let project = project_name(project)?;
        if issues.is_empty() {
            return Err(TrackerError::Other(
                "a merge request references at least one issue".into(),
            ));
        }
        // No `persist`: the issues must exist, so a tracker still in memory has none.
        let at = time(self.now_at());
        let id = self.write(|tx| {
            let mut first_title = String::new();
            for (i, issue) in issues.iter().enumerate() {
                exists(tx, *issue)?;
                if i == 0 {
                    first_title = tx
                        .prepare_cached("SELECT title FROM issues WHERE number = ?1")
                        .map_err(sql)?
                        .query_row([key(*issue)], |r| r.get(0))
                        .map_err(sql)?;
                }
            }
            let title = match title {
                Some(t) => t.to_string(),
                None if issues.len() == 1 => format!("Resolve \"{first_title}\""),
                None => {
                    let refs: Vec<String> = issues.iter().map(|n| format!("#{n}")).collect();
                    format!("Resolve {}", refs.join(", "))
                }
            };
            let number: i64 = tx
                .prepare_cached(
                    "SELECT coalesce(max(number), 0) + 1 FROM merge_requests WHERE project = ?1",
                )
                .map_err(sql)?
                .query_row([&project], |r| r.get(0))
                .map_err(sql)?;
            tx.prepare_cached(
                "INSERT INTO merge_requests (project, number, title, state, author, created_at) \
                 VALUES (?1, ?2, ?3, 'open', ?4, ?5)",
            )
            .map_err(sql)?
            .execute(params![project, number, title, self.actor, at])
            .map_err(sql)?;
            let id = tx.last_insert_rowid();
            for issue in issues {
                tx.prepare_cached(
                    "INSERT OR IGNORE INTO merge_request_issues (merge_request, issue) VALUES (?1, ?2)",
                )
                .map_err(sql)?
                .execute(params![id, key(*issue)])
                .map_err(sql)?;
            }
            touch_issues(tx, id, &at)?;
            Ok(id)
        })?;
        self.read(|conn| self.record(conn, id))
    }

    /// Merges merge request `number` of `project` (`None`: the one project that has a
    /// merge request so numbered). Merging a merged one changes nothing; merging a closed
    /// one is an error.
    pub fn merge_merge_request(
        &self,
        project: Option<&str>,
        number: u64,
    ) -> Result<MergeRequestChange, TrackerError> {
        self.change(project, number, MrState::Merged)
    }

    /// Closes merge request `number` of `project` (`None`: the one project that has a
    /// merge request so numbered) without merging it. Closing a closed one changes
    /// nothing; closing a merged one is an error.
    pub fn close_merge_request(
        &self,
        project: Option<&str>,
        number: u64,
    ) -> Result<MergeRequestChange, TrackerError> {
        self.change(project, number, MrState::Closed)
    }

    /// Publishes release `tag` of `project` (`None`: `local`) now; a tag the project has
    /// released already is an error. Returns the project and the release.
    pub fn publish_release(
        &self,
        project: Option<&str>,
        tag: &str,
    ) -> Result<(String, Release), TrackerError> {
        let project = project_name(project)?;
        if tag.trim().is_empty() || tag.chars().any(char::is_control) {
            return Err(TrackerError::Other(format!(
                "`{}` is no tag: a tag is a non-empty name without control characters",
                tag.escape_debug()
            )));
        }
        let at = time(self.now_at());
        self.persist()?;
        self.write(|tx| {
            let before: Option<String> = tx
                .prepare_cached("SELECT released_at FROM releases WHERE project = ?1 AND tag = ?2")
                .map_err(sql)?
                .query_row([&project, tag], |r| r.get(0))
                .optional()
                .map_err(sql)?;
            if let Some(before) = before {
                return Err(TrackerError::Other(format!(
                    "`{project}` has released {tag} already (at {before})"
                )));
            }
            tx.prepare_cached(
                "INSERT INTO releases (project, tag, author, released_at) VALUES (?1, ?2, ?3, ?4)",
            )
            .map_err(sql)?
            .execute(params![project, tag, self.actor, at])
            .map_err(sql)?;
            Ok(())
        })?;
        let release = Release {
            tag: tag.to_string(),
            released_at: parse_time(&at)?,
            url: self.release_url(&project, tag),
        };
        Ok((project, release))
    }

    /// The merge requests that reference issue `number`, by project and number.
    pub(super) fn issue_merge_requests(
        &self,
        number: u64,
    ) -> Result<Vec<MergeRequest>, TrackerError> {
        self.read(|conn| {
            exists(conn, number)?;
            let ids: Vec<i64> = conn
                .prepare_cached(
                    "SELECT m.id FROM merge_request_issues j JOIN merge_requests m ON m.id = j.merge_request \
                     WHERE j.issue = ?1 ORDER BY m.project, m.number",
                )
                .map_err(sql)?
                .query_map([key(number)], |r| r.get(0))
                .map_err(sql)?
                .collect::<Result<_, _>>()
                .map_err(sql)?;
            ids.into_iter()
                .map(|id| self.record(conn, id).map(|r| r.merge_request))
                .collect()
        })
    }

    /// The releases of `project` (`None`: `local`), newest first.
    pub(super) fn project_releases(
        &self,
        project: Option<&str>,
    ) -> Result<Vec<Release>, TrackerError> {
        let project = project_name(project)?;
        self.read(|conn| {
            let rows: Vec<(String, String)> = conn
                .prepare_cached(
                    "SELECT tag, released_at FROM releases WHERE project = ?1 \
                     ORDER BY released_at DESC, id DESC",
                )
                .map_err(sql)?
                .query_map([&project], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(sql)?
                .collect::<Result<_, _>>()
                .map_err(sql)?;
            rows.into_iter()
                .map(|(tag, at)| {
                    Ok(Release {
                        url: self.release_url(&project, &tag),
                        released_at: parse_time(&at)?,
                        tag,
                    })
                })
                .collect()
        })
    }

    fn change(
        &self,
        project: Option<&str>,
        number: u64,
        to: MrState,
    ) -> Result<MergeRequestChange, TrackerError> {
        let project = project.map(|p| project_name(Some(p))).transpose()?;
        let at = time(self.now_at());
        let (id, changed) = self.write(|tx| {
            let project = match project {
                Some(p) => p,
                None => numbered(tx, number)?,
            };
            let found: Option<(i64, String)> = tx
                .prepare_cached(
                    "SELECT id, state FROM merge_requests WHERE project = ?1 AND number = ?2",
                )
                .map_err(sql)?
                .query_row(params![project, key(number)], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .map_err(sql)?;
            let reference = reference(&project, number);
            let Some((id, state)) = found else {
                return Err(TrackerError::Other(format!(
                    "merge request {reference} does not exist (open one with `shepherd mr open --issue REF`)"
                )));
            };
            let (state, column) = match (state.as_str(), to) {
                ("merged", MrState::Merged) | ("closed", MrState::Closed) => return Ok((id, false)),
                ("closed", MrState::Merged) => {
                    return Err(TrackerError::Other(format!(
                        "{reference} is closed: a closed merge request cannot be merged"
                    )))
                }
                ("merged", MrState::Closed) => {
                    return Err(TrackerError::Other(format!(
                        "{reference} is merged: a merged merge request cannot be closed"
                    )))
                }
                (_, MrState::Merged) => ("merged", "merged_at"),
                (_, _) => ("closed", "closed_at"),
            };
            tx.prepare_cached(&format!(
                "UPDATE merge_requests SET state = ?1, {column} = ?2 WHERE id = ?3"
            ))
            .map_err(sql)?
            .execute(params![state, at, id])
            .map_err(sql)?;
            touch_issues(tx, id, &at)?;
            Ok((id, true))
        })?;
        let record = self.read(|conn| self.record(conn, id))?;
        Ok(MergeRequestChange { record, changed })
    }

    fn record(&self, conn: &Connection, id: i64) -> Result<MergeRequestRecord, TrackerError> {
        let (project, number, title, state, merged_at): (
            String,
            i64,
            String,
            String,
            Option<String>,
        ) = conn
            .prepare_cached(
                "SELECT project, number, title, state, merged_at FROM merge_requests WHERE id = ?1",
            )
            .map_err(sql)?
            .query_row([id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .map_err(sql)?;
        let issues: Vec<i64> = conn
            .prepare_cached(
                "SELECT issue FROM merge_request_issues WHERE merge_request = ?1 ORDER BY issue",
            )
            .map_err(sql)?
            .query_map([id], |r| r.get(0))
            .map_err(sql)?
            .collect::<Result<_, _>>()
            .map_err(sql)?;
        let state = match state.as_str() {
            "merged" => MrState::Merged,
            "closed" => MrState::Closed,
            _ => MrState::Open,
        };
        let number = number as u64;
        Ok(MergeRequestRecord {
            merge_request: MergeRequest {
                url: format!("local:{}#{project}!{number}", self.path.display()),
                reference: reference(&project, number),
                project,
                number,
                title,
                state,
                merged_at: merged_at.map(|t| parse_time(&t)).transpose()?,
                updated_at: None,
            },
            issues: issues.into_iter().map(|n| n as u64).collect(),
        })
    }

    fn release_url(&self, project: &str, tag: &str) -> String {
        format!("local:{}#{project}@{tag}", self.path.display())
    }
}

/// `project`, or the tracker's own when `None`; a name that is not `group/project` is an
/// error that names it.
fn project_name(project: Option<&str>) -> Result<String, TrackerError> {
    match project {
        None | Some(OWN_PROJECT) => Ok(OWN_PROJECT.to_string()),
        Some(p) => check_project(p)
            .map(|()| p.to_string())
            .map_err(TrackerError::Other),
    }
}

/// The project of merge request `number`, when `--project` does not say: the one project
/// that has a merge request so numbered (numbers are per project).
fn numbered(conn: &Connection, number: u64) -> Result<String, TrackerError> {
    let projects: Vec<String> = conn
        .prepare_cached("SELECT project FROM merge_requests WHERE number = ?1 ORDER BY project")
        .map_err(sql)?
        .query_map([key(number)], |r| r.get(0))
        .map_err(sql)?
        .collect::<Result<_, _>>()
        .map_err(sql)?;
    match projects.as_slice() {
        [] => Err(TrackerError::Other(format!(
            "no merge request is numbered {number} (open one with `shepherd mr open --issue REF`)"
        ))),
        [one] => Ok(one.clone()),
        several => {
            let refs: Vec<String> = several.iter().map(|p| reference(p, number)).collect();
            Err(TrackerError::Other(format!(
                "{} are all numbered {number}: say which with --project",
                refs.join(", ")
            )))
        }
    }
}

/// `!42` in the tracker's own project, `group/other!42` in another.
fn reference(project: &str, number: u64) -> String {
    if project == OWN_PROJECT {
        format!("!{number}")
    } else {
        format!("{project}!{number}")
    }
}

/// Marks the issues merge request `id` references as changed at `at`.
fn touch_issues(conn: &Connection, id: i64, at: &str) -> Result<(), TrackerError> {
    conn.prepare_cached(
        "UPDATE issues SET updated_at = ?1 \
         WHERE number IN (SELECT issue FROM merge_request_issues WHERE merge_request = ?2)",
    )
    .map_err(sql)?
    .execute(params![at, id])
    .map_err(sql)?;
    Ok(())
}
