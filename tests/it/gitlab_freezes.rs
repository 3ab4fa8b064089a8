//! The test GitLab's deploy freeze periods (a module of `gitlab_server`):
//! `GET /projects/:id/freeze_periods`, paged and oldest first as GitLab lists them, each
//! built from the documented "List Freeze Periods" example
//! (`tests/fixtures/gitlab/api/list_freeze_periods.json`) with its crons and zone replaced.
//! A project it does not know answers 404.

use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use serde_json::{json, Value};

use super::{error, fixture, paginate, time, Data, GitLabServer, PROJECT};

#[derive(Default)]
pub struct Freezes {
    periods: Vec<Value>,
}

impl GitLabServer {
    /// Adds a deploy freeze period to the project; returns its id.
    pub fn add_freeze_period(&self, start: &str, end: &str, timezone: &str) -> u64 {
        let example = fixture("list_freeze_periods.json");
        let mut period = example[0].clone();
        let mut data = self.shared.data.lock().unwrap();
        let id = data.freezes.periods.len() as u64 + 1;
        let now = time(Utc::now());
        period["id"] = json!(id);
        period["freeze_start"] = json!(start);
        period["freeze_end"] = json!(end);
        period["cron_timezone"] = json!(timezone);
        period["created_at"] = now.clone();
        period["updated_at"] = now;
        data.freezes.periods.push(period);
        id
    }
}

pub(super) fn route(
    data: &Data,
    method: &str,
    segs: &[&str],
    query: &[(String, String)],
) -> Option<Response> {
    match (method, segs) {
        ("GET", ["projects", p, "freeze_periods"]) if *p == PROJECT => {
            Some(paginate(&data.freezes.periods, query))
        }
        ("GET", ["projects", _, "freeze_periods"]) => {
            Some(error(StatusCode::NOT_FOUND, "404 Project Not Found"))
        }
        _ => None,
    }
}
