//! Facts: what gates look at beyond the issues — merge requests that reference an issue,
//! releases of a project, a Prometheus query's values over a window. The engine asks the
//! outside world for them (only those `questions` names); `core` only reads them. Each
//! fact carries what a person needs to check it: references, tags, values, links.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// A merge request (GitHub: pull request) that references an issue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MergeRequest {
    /// The project it belongs to (`group/project`, `owner/repo`).
    pub project: String,
    /// Its number in that project (GitLab `iid`).
    pub number: u64,
    /// How people write it: `!42` (GitLab), `#42` (GitHub), with the project in front when
    /// it lives in another project (`group/other!42`).
    pub reference: String,
    pub title: String,
    pub state: MrState,
    pub merged_at: Option<DateTime<Utc>>,
    pub url: String,
    /// When the tracker last changed it (a cache tells by it whether it is still so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MrState {
    Open,
    Merged,
    Closed,
}

/// A published release of a project. Drafts, pre-releases (GitHub) and upcoming releases
/// (GitLab) are never facts: adapters leave them out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Release {
    pub tag: String,
    pub released_at: DateTime<Utc>,
    pub url: String,
}

/// What Prometheus answered to one question.
#[derive(Clone, Debug, PartialEq)]
pub enum MetricAnswer {
    /// Exactly one series.
    Series(MetricSeries),
    /// The query returned no series.
    NoData,
    /// The query returned several series (their label sets, shortened, for the detail).
    Many(Vec<String>),
    /// Prometheus did not answer, or answered an error: the text says which.
    Unavailable(String),
}

/// The samples of the one series a metric query returned.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricSeries {
    /// Oldest first. NaN values are kept: they make the gate inconclusive.
    pub samples: Vec<(DateTime<Utc>, f64)>,
    /// The wall-clock moment the question was asked (Prometheus has no rehearsal clock).
    pub asked_at: DateTime<Utc>,
    /// A link to the query in Prometheus's graph page, over the window.
    pub graph_url: String,
}

/// A question the engine answers before `plan`: which facts the gates in play need.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Question {
    /// The merge requests that reference issue `issue` (the tracking issue or a child),
    /// looked at in `projects` only (empty: in any project). The answer is the whole list
    /// either way; the projects let a cache know where a new reference could come from.
    MergeRequests { issue: u64, projects: Vec<String> },
    /// The releases of `project` (`None`: the tracker's own project).
    Releases { project: Option<String> },
    /// The values of `query` (variables filled in) over the last `window` of the wall
    /// clock, or at this instant when `None`.
    Metric(MetricQuestion),
    /// The state of feature flag `name` in `environment` (`None`: every environment).
    Flag {
        name: String,
        environment: Option<String>,
    },
    /// The migrations of `workflow`, open and closed, each placed against `stage`.
    Peers { workflow: String, stage: String },
}

/// Another migration as an `after` gate sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    pub number: u64,
    pub vars: BTreeMap<String, String>,
    /// Its stage, by id.
    pub stage: Option<String>,
    pub reach: Reach,
}

/// Where a migration is against the stage an `after` gate names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// In the stage, or one after it on its path, or completed on it.
    Reached,
    /// Open, and not there yet.
    Before,
    /// Ended off the path (rolled back, abandoned), closed by hand, or with no stage: it
    /// counts neither way.
    Elsewhere,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MetricQuestion {
    pub query: String,
    pub window: Option<Duration>,
}

/// The answers the engine has gathered for one migration.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Facts {
    /// The facts were not asked for (the cheapest look): a gate that needs one is taken as
    /// holding, so a plan made so can only move too far, never too little — it is made
    /// again with the answers before anything is written.
    pub unread: bool,
    /// By issue number; an `Err` says why they could not be read.
    pub merge_requests: BTreeMap<u64, Result<Vec<MergeRequest>, String>>,
    /// By project (`None`: the tracker's own); an `Err` says why (e.g. unknown project).
    pub releases: BTreeMap<Option<String>, Result<Vec<Release>, String>>,
    pub metrics: BTreeMap<MetricQuestion, MetricAnswer>,
    /// By flag name and environment; an `Err` says why (no backend, refused, …).
    pub flags: BTreeMap<(String, Option<String>), Result<FlagState, String>>,
    /// By workflow and stage: the other migrations an `after` gate looks at.
    pub peers: BTreeMap<(String, String), Result<Vec<Peer>, String>>,
}

/// A feature flag as its backend holds it, in one environment (or every environment).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlagState {
    pub name: String,
    /// The flag exists on the backend (a missing flag is off).
    pub exists: bool,
    pub enabled: bool,
    /// The share of users (or of time) it is on for, 0–100, when a rollout percentage is
    /// set; `None` when the flag is simply on or off (on means 100 %).
    pub percentage: Option<f64>,
    /// The environment this state is of; `None`: every environment (or the backend has
    /// no environments).
    pub environment: Option<String>,
}

impl FlagState {
    /// Flag `name` as a backend answers when it has no such flag: off.
    pub fn missing(name: &str, environment: Option<String>) -> FlagState {
        FlagState {
            name: name.to_string(),
            exists: false,
            enabled: false,
            percentage: None,
            environment,
        }
    }
}

/// What a `feature_flag` action or `flag set` wants a flag to be.
#[derive(Clone, Debug, PartialEq)]
pub enum FlagWant {
    /// On for this share, 0–100.
    Percentage(f64),
    /// Fully on or off.
    Enabled(bool),
    /// Gone.
    Delete,
}

/// A flag's percentage: 0 to 100 (not NaN); every backend checks it before a request.
pub fn check_percentage(p: f64) -> Result<(), String> {
    if (0.0..=100.0).contains(&p) {
        Ok(())
    } else {
        Err(format!("percentage {p} is outside 0–100"))
    }
}

/// A flag name every backend takes: letters, digits, `_`, `-`, `.`, `:`; at most 200.
pub fn check_flag_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{}` is no flag name: use letters, digits, `_`, `-`, `.` and `:`",
            name.escape_debug()
        ))
    }
}
