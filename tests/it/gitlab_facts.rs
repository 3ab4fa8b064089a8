//! The test GitLab's merge requests and releases (a module of `gitlab_server`): merge
//! requests of any project that mention or close one of its issues, answered by
//! `GET /projects/:id/issues/:iid/related_merge_requests` and `…/closed_by` from GitLab's
//! documented examples of those two lists, and by `GET /projects/:id/merge_requests`
//! (`updated_after`, `order_by=updated_at`; the same example serves, GitLab lists merge
//! requests alike); a new reference touches the issue, as GitLab's "mentioned in" system
//! note does. Releases of any project it knows, answered by
//! `GET /projects/:id/releases` (newest first, paged) from the documented "List releases"
//! example, with `upcoming_release` set as GitLab sets it. A project it does not know
//! answers 404.

use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::{error, fixture, paginate, param, time, Data, GitLabServer, PROJECT};
use crate::test_server::{knows, Change, MergedAt, MrState, Published, ReleaseKind};

/// Which of the two lists a merge request is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lists {
    /// Mentions the issue: `related_merge_requests` only.
    Related,
    /// Closes it on merge (`closed_by`); GitLab lists it as related too.
    Closing,
    /// In `closed_by` only (a reference GitLab did not record as a mention).
    ClosingOnly,
}

/// A merge request (its times at GitLab's millisecond precision), and the lists it is in.
pub struct MergeRequest {
    change: Change,
    lists: Lists,
}

impl std::ops::Deref for MergeRequest {
    type Target = Change;
    fn deref(&self) -> &Change {
        &self.change
    }
}

pub struct Facts {
    merge_requests: Vec<MergeRequest>,
    related: Value,
    closing: Value,
    release: Value,
}

impl Default for Facts {
    fn default() -> Facts {
        Facts {
            merge_requests: Vec::new(),
            related: fixture("related_merge_requests.json")[0].clone(),
            closing: fixture("closed_by.json")[0].clone(),
            release: fixture("list_releases.json")[1].clone(),
        }
    }
}

impl Facts {
    /// Whether `project` is known.
    fn knows(&self, data: &Data, project: &str) -> bool {
        let mrs: Vec<&Change> = self.merge_requests.iter().map(|m| &m.change).collect();
        knows(data, PROJECT, project, &mrs)
    }

    /// Moves every recorded time `d` into the past.
    pub fn travel(&mut self, d: chrono::Duration) {
        let mrs = self.merge_requests.iter_mut();
        mrs.for_each(|m| m.change.travel(d));
    }
}

impl GitLabServer {
    /// Records a merge request of `project` that mentions issue `issue` and closes it on
    /// merge (in both lists); returns its iid in `project`.
    pub fn add_merge_request(
        &self,
        issue: u64,
        project: &str,
        state: MrState,
        at: MergedAt,
    ) -> u64 {
        self.add_merge_request_in(issue, project, state, at, Lists::Closing)
    }

    /// The same, in the lists `lists` says.
    pub fn add_merge_request_in(
        &self,
        issue: u64,
        project: &str,
        state: MrState,
        at: MergedAt,
        lists: Lists,
    ) -> u64 {
        let mut data = self.shared.data.lock().unwrap();
        let now = millis(Utc::now());
        let facts = &mut data.facts;
        let title = format!("Resolve #{issue}");
        let mrs = facts.merge_requests.iter().map(|m| &m.change);
        let mut change = Change::next(mrs, project, issue, title, now);
        change.set(state, at);
        let iid = change.number;
        facts.merge_requests.push(MergeRequest { change, lists });
        // The reference adds a "mentioned in merge request" system note to the issue, and
        // a note touches what it is on (GitLab's `Note#touch_noteable`).
        if let Some(i) = data.issues.get_mut(&issue) {
            i["updated_at"] = time(now);
        }
        iid
    }

    /// Changes the state of merge request `iid` of `project`.
    pub fn set_merge_request(&self, project: &str, iid: u64, state: MrState, at: MergedAt) {
        let mut data = self.shared.data.lock().unwrap();
        let mrs = data.facts.merge_requests.iter_mut();
        let mr = mrs.map(|m| &mut m.change).find(|m| m.is(project, iid));
        let mr = mr.expect("a merge request the test added");
        mr.set(state, at);
        mr.updated_at = millis(Utc::now()).max(mr.updated_at + chrono::Duration::milliseconds(1));
    }
}

/// The answer to a request about merge requests or releases; `None` for other requests.
pub(super) fn route(
    data: &mut Data,
    method: &str,
    segs: &[&str],
    query: &[(String, String)],
) -> Option<Response> {
    let now = Utc::now();
    match (method, segs) {
        (
            "GET",
            ["projects", p, "issues", iid, list @ ("related_merge_requests" | "closed_by")],
        ) if *p == PROJECT => {
            let iid: u64 = iid.parse().unwrap_or(0);
            if !data.issues.contains_key(&iid) {
                return Some(error(StatusCode::NOT_FOUND, "404 Not found"));
            }
            let closing = *list == "closed_by";
            let facts = &data.facts;
            let list: Vec<Value> = facts
                .merge_requests
                .iter()
                .filter(|m| m.issue == iid)
                // As GitLab's `ReferencedMergeRequestsService` does, the related list
                // holds the closing merge requests too.
                .filter(|m| match m.lists {
                    Lists::Related => !closing,
                    Lists::Closing | Lists::ClosingOnly => true,
                })
                .map(|m| merge_request_json(facts, m, closing))
                .collect();
            Some(paginate(&list, query))
        }
        // "List project merge requests", most recently updated first with
        // `order_by=updated_at`; `updated_after` as GitLab reads it (on or after).
        ("GET", ["projects", p, "merge_requests"]) => {
            let facts = &data.facts;
            if !facts.knows(data, p) {
                return Some(error(StatusCode::NOT_FOUND, "404 Project Not Found"));
            }
            let after = param(query, "updated_after").map(|t| {
                DateTime::parse_from_rfc3339(t)
                    .expect("updated_after in ISO 8601")
                    .with_timezone(&Utc)
            });
            let mut mrs: Vec<&MergeRequest> = facts
                .merge_requests
                .iter()
                .filter(|m| m.project == *p && after.is_none_or(|t| m.updated_at >= t))
                .collect();
            if param(query, "order_by") == Some("updated_at") {
                mrs.sort_by_key(|m| std::cmp::Reverse(m.updated_at));
            } else {
                mrs.sort_by_key(|m| std::cmp::Reverse(m.created_at));
            }
            let list: Vec<Value> = mrs
                .into_iter()
                .map(|m| merge_request_json(facts, m, false))
                .collect();
            Some(paginate(&list, query))
        }
        ("GET", ["projects", p, "releases"]) => {
            let facts = &data.facts;
            if !facts.knows(data, p) {
                return Some(error(StatusCode::NOT_FOUND, "404 Project Not Found"));
            }
            let mut releases: Vec<&Published> =
                data.releases.iter().filter(|r| r.project == *p).collect();
            // GitLab's default order: `released_at`, newest first.
            releases.sort_by_key(|r| std::cmp::Reverse(r.at));
            let list: Vec<Value> = releases
                .into_iter()
                .map(|r| release_json(facts, r, now))
                .collect();
            Some(paginate(&list, query))
        }
        _ => None,
    }
}

/// A merge request as GitLab lists it, from the documented example of that list.
fn merge_request_json(facts: &Facts, m: &MergeRequest, closing: bool) -> Value {
    let mut v = if closing {
        facts.closing.clone()
    } else {
        facts.related.clone()
    };
    let (state, closed_at) = match m.state {
        MrState::Open => ("opened", Value::Null),
        MrState::Merged => ("merged", Value::Null),
        MrState::Closed => ("closed", time(m.created_at)),
    };
    let own = m.project == PROJECT;
    v["id"] = json!(10_000 + m.number);
    v["iid"] = json!(m.number);
    v["project_id"] = json!(if own { 1 } else { 2 });
    v["title"] = json!(m.title);
    v["description"] = json!(format!("Closes {PROJECT}#{}", m.issue));
    v["state"] = json!(state);
    v["created_at"] = time(m.created_at);
    v["updated_at"] = time(m.updated_at);
    // GitLab's merge request API has `merged_at`; the examples of these lists leave it out.
    v["merged_at"] = m.merged_at.map_or(Value::Null, time);
    v["closed_at"] = closed_at;
    v["web_url"] = json!(format!(
        "http://gitlab.test/{}/-/merge_requests/{}",
        m.project, m.number
    ));
    v["reference"] = json!(format!("!{}", m.number));
    v["references"] = json!({
        "short": format!("!{}", m.number),
        "relative": if own { format!("!{}", m.number) } else { format!("{}!{}", m.project, m.number) },
        "full": format!("{}!{}", m.project, m.number),
    });
    v
}

/// A release as GitLab lists it, from the documented example.
fn release_json(facts: &Facts, r: &Published, now: DateTime<Utc>) -> Value {
    let mut v = facts.release.clone();
    let page = format!("http://gitlab.test/{}/-/releases/{}", r.project, r.tag);
    v["tag_name"] = json!(r.tag);
    v["name"] = json!(r.tag);
    v["created_at"] = time(r.at);
    v["released_at"] = time(r.at);
    let upcoming = r.kind == ReleaseKind::Upcoming;
    v["upcoming_release"] = json!(upcoming || r.at > now);
    v["_links"]["self"] = json!(page);
    v["_links"]["edit_url"] = json!(format!("{page}/edit"));
    v
}

/// `t` at GitLab's precision (milliseconds), so a stored time and its JSON agree.
fn millis(t: DateTime<Utc>) -> DateTime<Utc> {
    chrono::DurationRound::duration_trunc(t, chrono::Duration::milliseconds(1)).unwrap_or(t)
}
