//! The test GitHub's pull requests and releases (a module of `github_server`): pull
//! requests of any repository that reference one of its issues, seen in that issue's
//! timeline as `cross-referenced` events (built from the schema of that event, with the
//! `issue` example as its source) and answered by `GET /repos/{o}/{r}/pulls/{n}` from the
//! `pull-request` example, listed by `GET /repos/{o}/{r}/pulls` most recently updated
//! first (a mention or a new state updates the pull request, never the issue); releases of any repository it knows, answered by
//! `GET /repos/{o}/{r}/releases` (newest first, paged, with an `ETag`) from the
//! `release-items` example. A repository it does not know answers 404. The pull request
//! in a cross-reference carries `merged_at`, unless `without_merged_at_in_timeline` asks
//! for a server that leaves it out (the adapter then reads the pull request).

use axum::http::{StatusCode, Uri};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::{create, error, example, ok, page, stamp, user_json, Data, GitHubServer, Shared};
use super::{OWNER, REPO};
use crate::test_server::{knows, Change, MergedAt, MrState, Published, ReleaseKind};

/// A pull request of any repository (its `project`).
pub type Pull = Change;

/// A pull request's mention of an issue: a `cross-referenced` event in its timeline.
pub struct Mention {
    issue: u64,
    repo: String,
    number: u64,
    at: DateTime<Utc>,
}

#[derive(Default)]
pub struct Facts {
    pulls: Vec<Pull>,
    mentions: Vec<Mention>,
    /// Leave `merged_at` out of the pull requests in timelines.
    no_merged_at: bool,
}

fn own() -> String {
    format!("{OWNER}/{REPO}")
}

impl Facts {
    /// Moves every recorded time `d` into the past.
    pub fn travel(&mut self, d: chrono::Duration) {
        self.pulls.iter_mut().for_each(|p| p.travel(d));
        for m in &mut self.mentions {
            m.at -= d;
        }
    }
}

impl GitHubServer {
    /// Records a pull request of `repo` (`owner/repo`) that references issue `issue`;
    /// returns its number. One of this repository shares the issues' numbers, as on GitHub.
    pub fn add_pull_request(&self, issue: u64, repo: &str, state: MrState, at: MergedAt) -> u64 {
        let mut data = self.shared.data.lock().unwrap();
        let title = format!("Fix #{issue}");
        let now = Utc::now();
        let mut pull = Change::next(data.facts.pulls.iter(), repo, issue, title, now);
        if repo == own() {
            pull.number = create(
                &self.shared,
                &mut data,
                &pull.title,
                "",
                &[],
                "octocat",
                now,
            );
        }
        pull.set(state, at);
        let number = pull.number;
        data.facts.pulls.push(pull);
        sync_issue(&mut data, repo, number);
        data.facts.mentions.push(Mention {
            issue,
            repo: repo.to_string(),
            number,
            at: now,
        });
        number
    }

    /// Pull request `number` of `repo` mentions issue `issue` (again): one more
    /// `cross-referenced` event. The pull request changes (its body or a comment says it);
    /// the issue does not, as on GitHub.
    pub fn mention(&self, issue: u64, repo: &str, number: u64) {
        let mut data = self.shared.data.lock().unwrap();
        if let Some(p) = data.facts.pulls.iter_mut().find(|p| p.is(repo, number)) {
            p.updated_at = Utc::now();
        }
        data.facts.mentions.push(Mention {
            issue,
            repo: repo.to_string(),
            number,
            at: Utc::now(),
        });
    }

    /// Changes the state of pull request `number` of `repo`.
    pub fn set_pull_request(&self, repo: &str, number: u64, state: MrState, at: MergedAt) {
        let mut data = self.shared.data.lock().unwrap();
        let mut pulls = data.facts.pulls.iter_mut();
        let pull = pulls.find(|p| p.is(repo, number));
        let pull = pull.expect("a pull request the test added");
        pull.set(state, at);
        pull.updated_at = Utc::now();
        sync_issue(&mut data, repo, number);
    }

    /// Makes `repo` known (its release and pull-request lists answer, empty).
    pub fn add_repo(&self, repo: &str) {
        self.add_project(repo)
    }

    /// From now on, cross-references carry no `merged_at` (as older servers answer).
    pub fn without_merged_at_in_timeline(&self) {
        self.shared.data.lock().unwrap().facts.no_merged_at = true;
    }
}

/// Keeps a pull request of this repository, which is also one of its issues, in step.
fn sync_issue(data: &mut Data, repo: &str, number: u64) {
    if repo != own() {
        return;
    }
    let Some(pull) = data.facts.pulls.iter().find(|p| p.is(repo, number)) else {
        return;
    };
    let (state, merged_at) = (pull.state, pull.merged_at);
    let issue = data
        .issues
        .get_mut(&number)
        .expect("the pull request's issue");
    issue["state"] = json!(if state == MrState::Open {
        "open"
    } else {
        "closed"
    });
    issue["pull_request"] = json!({
        "url": format!("https://api.github.com/repos/{repo}/pulls/{number}"),
        "html_url": format!("https://github.com/{repo}/pull/{number}"),
        "diff_url": format!("https://github.com/{repo}/pull/{number}.diff"),
        "patch_url": format!("https://github.com/{repo}/pull/{number}.patch"),
        "merged_at": merged_at.map(stamp),
    });
}

/// The answer to a request about pull requests or releases of `repo`; `None` for other
/// requests (of this repository).
pub(super) fn route(
    data: &Data,
    method: &str,
    repo: &str,
    segs: &[&str],
    query: &[(String, String)],
    uri: &Uri,
) -> Option<Response> {
    let facts = &data.facts;
    let known = knows(data, &own(), repo, &facts.pulls.iter().collect::<Vec<_>>());
    match (method, segs) {
        ("GET", ["pulls", number]) if known => {
            let number: u64 = number.parse().unwrap_or(0);
            let pull = facts.pulls.iter().find(|p| p.is(repo, number));
            Some(match pull {
                Some(p) => ok(pull_json(p)),
                None => error(StatusCode::NOT_FOUND, "Not Found"),
            })
        }
        // Sorted by `updated_at`, newest first, as `sort=updated&direction=desc` asks.
        ("GET", ["pulls"]) if known => {
            let mut pulls: Vec<&Pull> = facts.pulls.iter().filter(|p| p.project == repo).collect();
            pulls.sort_by_key(|p| std::cmp::Reverse((p.updated_at, p.number)));
            let list: Vec<Value> = pulls.into_iter().map(pull_json).collect();
            Some(page(list.iter().collect(), query, uri))
        }
        ("GET", ["releases"]) if known => {
            let mut releases: Vec<&Published> =
                data.releases.iter().filter(|r| r.project == repo).collect();
            releases.sort_by_key(|r| std::cmp::Reverse(r.at));
            let list: Vec<Value> = releases.into_iter().map(release_json).collect();
            Some(page(list.iter().collect(), query, uri))
        }
        _ if repo != own() => Some(error(StatusCode::NOT_FOUND, "Not Found")),
        _ => None,
    }
}

/// The `cross-referenced` events of issue `issue`'s timeline, one per mention by a pull
/// request, its source as it is now (as GitHub renders it).
pub(super) fn cross_references(shared: &Shared, data: &Data, issue: u64) -> Vec<Value> {
    let facts = &data.facts;
    facts
        .mentions
        .iter()
        .filter(|m| m.issue == issue)
        .filter_map(|m| {
            let p = facts.pulls.iter().find(|p| p.is(&m.repo, m.number))?;
            let mut source = shared.examples.issue.clone();
            let repo = &p.project;
            let (owner, name) = repo.split_once('/').unwrap_or((repo, repo));
            let mut repository = example("minimal-repository");
            repository["name"] = json!(name);
            repository["full_name"] = json!(repo);
            repository["owner"]["login"] = json!(owner);
            repository["html_url"] = json!(format!("https://github.com/{repo}"));
            repository["url"] = json!(format!("https://api.github.com/repos/{repo}"));
            let mut pull_request = json!({
                "url": format!("https://api.github.com/repos/{repo}/pulls/{}", p.number),
                "html_url": format!("https://github.com/{repo}/pull/{}", p.number),
                "diff_url": format!("https://github.com/{repo}/pull/{}.diff", p.number),
                "patch_url": format!("https://github.com/{repo}/pull/{}.patch", p.number),
            });
            if !facts.no_merged_at {
                pull_request["merged_at"] = json!(p.merged_at.map(stamp));
            }
            source["id"] = json!(90_000 + p.number);
            source["number"] = json!(p.number);
            source["title"] = json!(p.title);
            source["state"] = json!(if p.state == MrState::Open {
                "open"
            } else {
                "closed"
            });
            source["html_url"] = json!(format!("https://github.com/{repo}/pull/{}", p.number));
            source["url"] = json!(format!(
                "https://api.github.com/repos/{repo}/issues/{}",
                p.number
            ));
            source["repository_url"] = json!(format!("https://api.github.com/repos/{repo}"));
            source["repository"] = repository;
            source["pull_request"] = pull_request;
            source["labels"] = json!([]);
            source["created_at"] = json!(stamp(p.created_at));
            source["updated_at"] = json!(stamp(p.updated_at));
            Some(json!({
                "event": "cross-referenced",
                "actor": user_json(shared, "octocat"),
                "created_at": stamp(m.at),
                "updated_at": stamp(m.at),
                "source": {"type": "issue", "issue": source},
            }))
        })
        .collect()
}

fn pull_json(p: &Pull) -> Value {
    let mut v = example("pull-request");
    let repo = &p.project;
    let merged = p.merged_at.is_some();
    v["id"] = json!(80_000 + p.number);
    v["number"] = json!(p.number);
    v["title"] = json!(p.title);
    v["state"] = json!(if p.state == MrState::Open {
        "open"
    } else {
        "closed"
    });
    v["merged"] = json!(merged);
    v["merged_at"] = json!(p.merged_at.map(stamp));
    v["closed_at"] = if p.state == MrState::Open {
        Value::Null
    } else {
        json!(stamp(p.merged_at.unwrap_or(p.created_at)))
    };
    v["created_at"] = json!(stamp(p.created_at));
    v["updated_at"] = json!(stamp(p.updated_at));
    v["html_url"] = json!(format!("https://github.com/{repo}/pull/{}", p.number));
    v["url"] = json!(format!(
        "https://api.github.com/repos/{repo}/pulls/{}",
        p.number
    ));
    v["issue_url"] = json!(format!(
        "https://api.github.com/repos/{repo}/issues/{}",
        p.number
    ));
    v
}

fn release_json(r: &Published) -> Value {
    let mut v = example("release-items")[0].clone();
    let repo = &r.project;
    v["tag_name"] = json!(r.tag);
    v["name"] = json!(r.tag);
    v["draft"] = json!(r.kind == ReleaseKind::Draft);
    v["prerelease"] = json!(r.kind == ReleaseKind::Prerelease);
    v["created_at"] = json!(stamp(r.at));
    v["published_at"] = if r.kind == ReleaseKind::Draft {
        Value::Null
    } else {
        json!(stamp(r.at))
    };
    v["html_url"] = json!(format!("https://github.com/{repo}/releases/tag/{}", r.tag));
    v["url"] = json!(format!(
        "https://api.github.com/repos/{repo}/releases/{}",
        r.tag
    ));
    v
}
