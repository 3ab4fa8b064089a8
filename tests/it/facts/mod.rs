//! Facts from the trackers, which the `merge_request` and `release` gates read: merge
//! requests (pull requests) that reference an issue, and a project's releases, on the
//! GitLab and GitHub test servers through the tracker API, request by request (`gitlab`,
//! `github`), and on the local tracker, written by `shepherd mr` and `shepherd release`
//! end to end (`local`).

mod github;
mod gitlab;
mod local;

use chrono::{DateTime, Utc};
use shepherd::core::facts::MergeRequest;

/// 2026-03-0`day` at noon.
fn day(day: u32) -> DateTime<Utc> {
    chrono::NaiveDate::from_ymd_opt(2026, 3, day)
        .and_then(|d| d.and_hms_opt(12, 0, 0))
        .expect("a date")
        .and_utc()
}

/// Each merge request in a line: project, reference, state and the day it was merged.
fn shown(mrs: &[MergeRequest]) -> Vec<String> {
    mrs.iter()
        .map(|m| {
            let merged = m
                .merged_at
                .map(|t| format!(" {}", t.format("%d")))
                .unwrap_or_default();
            format!("{} {} {:?}{merged}", m.project, m.reference, m.state)
        })
        .collect()
}
