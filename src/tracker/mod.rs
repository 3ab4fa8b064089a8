//! The `Tracker` trait: the only door to the outside world. Adapters (local SQLite here;
//! GitLab and GitHub later) convert their own types to these at the border.

pub mod cached;
pub mod github;
pub mod gitlab;
pub mod local;

use std::fmt;
use std::path::PathBuf;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::core::facts::{MergeRequest, Release};
use crate::core::snapshot::LabelEvent;

/// An issue as a tracker returns it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Issue {
    pub number: u64,
    pub title: String,
    pub body: String,
    pub labels: Vec<String>,
    pub open: bool,
    pub created_at: DateTime<Utc>,
    /// When anything on the issue last changed (body, labels, state, a comment): what an
    /// incremental list (`updated_after`, `since`) and the Store's cache compare.
    pub updated_at: DateTime<Utc>,
    pub url: String,
    pub author: String,
    /// How many comments the issue has, where the tracker says so with the issue (GitLab
    /// `user_notes_count`, GitHub `comments`). Zero spares reading them; a count that is a
    /// moment old can only make a move lose its claim, never make one twice.
    #[serde(default)]
    pub comment_count: Option<u64>,
    /// Who the issue is assigned to (usernames), where the tracker says so with the issue:
    /// an overdue stay of a stage without `owners` nudges them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assignees: Vec<String>,
}

/// A comment on an issue.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Comment {
    pub id: u64,
    pub body: String,
    pub author: String,
    /// The author's numeric id, where the tracker has one (GitLab's members API asks by it).
    #[serde(default)]
    pub author_id: Option<u64>,
    pub created_at: DateTime<Utc>,
    /// Edited after it was made: a command edited later is no command.
    #[serde(default)]
    pub edited: bool,
}

impl<'c> From<&'c Comment> for crate::core::command::Said<'c> {
    fn from(c: &'c Comment) -> Self {
        crate::core::command::Said {
            id: c.id,
            body: &c.body,
            author: &c.author,
            author_id: c.author_id,
            at: c.created_at,
            edited: c.edited,
        }
    }
}

/// An issue to create.
#[derive(Clone, Debug)]
pub struct NewIssue {
    pub title: String,
    pub body: String,
    pub labels: Vec<String>,
}

/// A change of labels and state, written in one request where the tracker allows it.
#[derive(Clone, Debug, Default)]
pub struct IssueEdit {
    /// The issue's labels as the caller last read them (GitHub replaces the whole set).
    pub current: Vec<String>,
    pub add: Vec<String>,
    pub remove: Vec<String>,
    /// `Some(false)` closes the issue, `Some(true)` reopens it.
    pub open: Option<bool>,
}

/// A label a workflow uses, to create when missing.
#[derive(Clone, Debug)]
pub struct LabelSpec {
    pub name: String,
    pub color: String,
    pub description: String,
}

/// Which issues a list asks for.
#[derive(Clone, Copy, Debug)]
pub struct IssueQuery<'a> {
    pub state: StateFilter,
    /// Every one of these labels.
    pub labels: &'a [String],
    /// Only those changed after this moment: the incremental poll.
    pub since: Option<DateTime<Utc>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateFilter {
    Open,
    All,
}

#[derive(Debug, thiserror::Error)]
pub enum TrackerError {
    #[error("issue #{0} does not exist")]
    NotFound(u64),
    #[error("{path} is not a shepherd tracker database: {reason}")]
    NotShepherd { path: String, reason: String },
    #[error("{path} is corrupt: {reason}")]
    Corrupt { path: String, reason: String },
    #[error("the local tracker failed: {0}")]
    Local(String),
    #[error("{0}")]
    Other(String),
}

/// What a person may do on the project, where the tracker keeps access levels (comment
/// commands that change a migration need write access).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    /// Developer or more on GitLab; write, maintain or admin on GitHub.
    Write,
    /// Less: what the person has, as the tracker names it ("Guest access").
    Less(String),
}

/// How a tracker's label write meets a label someone set since the caller read the issue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabelWrites {
    /// Labels move relative to what the issue carries at that moment (GitLab's
    /// `add_labels`/`remove_labels`): a copy of the issue read a little earlier serves.
    Relative,
    /// The write replaces the whole set, and the claim's read-back shows the label events
    /// since the copy was read (GitHub's timeline): the move starts from the copy, and is
    /// left to the next run when the read-back shows a label changed meanwhile.
    ReadBack,
    /// The write replaces the whole set: the issue is read again before a move.
    Reread,
}

/// What a claim reads back after posting its audit comment.
#[derive(Clone, Debug, Default)]
pub struct ReadBack {
    /// Every comment, oldest first.
    pub comments: Vec<Comment>,
    /// The label history, oldest first, where the tracker's `label_writes` is `ReadBack`;
    /// empty elsewhere.
    pub label_events: Vec<LabelEvent>,
}

/// What an issue's unchanged `updated_at` proves: how a cache of what was read about the
/// issue (its comments, its label history) knows it is still current.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Versions {
    /// It changes with every write (GitLab's milliseconds; the local tracker): an
    /// `updated_at` equal to the one a read was made at proves nothing changed since.
    EveryWrite,
    /// It has whole seconds (GitHub): a second write within the second of the first leaves
    /// it as it was. A read proves what it shows only for the writes made before it, so it
    /// is final once the tracker answered it after the second following its `updated_at`
    /// (`Dated::answered`); until then it is read again.
    WholeSeconds,
}

/// What a read returned, and when the tracker answered it by its own clock (the
/// response's `Date`, whole seconds), where it said: the read shows every write the
/// tracker made before that moment, less the second the header rounds away.
#[derive(Clone, Debug)]
pub struct Dated<T> {
    pub value: T,
    pub answered: Option<DateTime<Utc>>,
}

impl<T> Dated<T> {
    /// A read whose moment is unknown.
    pub fn undated(value: T) -> Dated<T> {
        Dated {
            value,
            answered: None,
        }
    }
}

/// A change freeze period as a tracker keeps it (DESIGN §13): its crons and time zone as
/// written, checked by `core::freeze::Freeze::new` where they are used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FreezePeriod {
    pub id: u64,
    /// When it starts: a five-field cron (`0 23 * * 5`).
    pub start: String,
    /// When it ends: a five-field cron (`0 7 * * 1`).
    pub end: String,
    /// The IANA time zone of both crons.
    pub timezone: String,
}

/// Where migrations live.
#[async_trait]
pub trait Tracker: Send + Sync {
    /// The tracker as `--tracker` names it.
    fn describe(&self) -> String;

    /// The tracker's clock: the local tracker's `--now`, else the system clock.
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    /// How a move's label write meets a label someone set since the caller read the
    /// issue. `Reread` (the default) reads the issue again before a move.
    fn label_writes(&self) -> LabelWrites {
        LabelWrites::Reread
    }

    /// What an issue's unchanged `updated_at` proves (`EveryWrite`, the default, or
    /// `WholeSeconds`).
    fn versions(&self) -> Versions {
        Versions::EveryWrite
    }

    /// The requests this tracker has sent so far, for `/metrics`; `None` for a tracker
    /// that sends none (the local one).
    fn request_stats(&self) -> Option<crate::http::retry::RequestStats> {
        None
    }

    async fn create_issue(&self, issue: &NewIssue) -> Result<Issue, TrackerError>;
    async fn issue(&self, number: u64) -> Result<Issue, TrackerError>;
    /// The issues `query` asks for, newest first. With `since`, those changed exactly at
    /// `since` are left out (GitLab's `updated_after` and GitHub's `since` keep them).
    async fn find_issues(&self, query: IssueQuery<'_>) -> Result<Vec<Issue>, TrackerError>;
    /// Issues with every label of `labels`, newest first.
    async fn list_issues(
        &self,
        state: StateFilter,
        labels: &[String],
    ) -> Result<Vec<Issue>, TrackerError> {
        let since = None;
        self.find_issues(IssueQuery {
            state,
            labels,
            since,
        })
        .await
    }
    /// The lists of several label sets (the index's tracking labels), in order: one
    /// `list_issues` each, where a cache may do better (`cached::lists`).
    async fn list_sets(
        &self,
        state: StateFilter,
        sets: &[Vec<String>],
    ) -> Result<Vec<Vec<Issue>>, TrackerError> {
        futures::future::try_join_all(sets.iter().map(|labels| self.list_issues(state, labels)))
            .await
    }
    async fn update_body(&self, number: u64, body: &str) -> Result<(), TrackerError>;
    /// Adds and removes labels in one request. `current` is the issue's label set as the
    /// caller last read it: trackers without add/remove semantics (GitHub) replace the
    /// whole set with `current - remove + add`.
    async fn edit_labels(
        &self,
        number: u64,
        current: &[String],
        add: &[String],
        remove: &[String],
    ) -> Result<(), TrackerError> {
        let (current, add, remove) = (current.to_vec(), add.to_vec(), remove.to_vec());
        let edit = IssueEdit {
            current,
            add,
            remove,
            open: None,
        };
        self.edit_issue(number, &edit).await.map(drop)
    }
    async fn set_open(&self, number: u64, open: bool) -> Result<(), TrackerError> {
        let edit = IssueEdit {
            open: Some(open),
            ..IssueEdit::default()
        };
        self.edit_issue(number, &edit).await.map(drop)
    }
    /// Moves labels and, when `edit.open` says so, opens or closes the issue: one request
    /// where the tracker allows it (GitLab `PUT` with `add_labels`/`remove_labels` and
    /// `state_event`; GitHub one `PATCH` of labels and state). Returns the issue as the
    /// write's response shows it, so the caller need not read it again.
    async fn edit_issue(&self, number: u64, edit: &IssueEdit) -> Result<Issue, TrackerError>;
    /// Issues with every label of `labels` changed after `since` (GitLab `updated_after`,
    /// GitHub `since`): the incremental poll. Closed ones too when `state` says so.
    async fn list_issues_since(
        &self,
        state: StateFilter,
        labels: &[String],
        since: DateTime<Utc>,
    ) -> Result<Vec<Issue>, TrackerError> {
        let since = Some(since);
        self.find_issues(IssueQuery {
            state,
            labels,
            since,
        })
        .await
    }
    /// Deletes one comment (the loser of a claim removes its audit comment).
    async fn delete_comment(&self, number: u64, comment: u64) -> Result<(), TrackerError> {
        let _ = (number, comment);
        Err(TrackerError::Other(format!(
            "{} cannot delete comments",
            self.describe()
        )))
    }
    async fn comments(&self, number: u64) -> Result<Vec<Comment>, TrackerError>;
    /// `comments`, with when the tracker answered where it says so (for a cache of them,
    /// where `versions` is `WholeSeconds`).
    async fn comments_dated(&self, number: u64) -> Result<Dated<Vec<Comment>>, TrackerError> {
        Ok(Dated::undated(self.comments(number).await?))
    }
    /// What a claim reads back right after posting its audit comment: the comments, and
    /// where `label_writes` is `ReadBack` the label history too, from the same request.
    /// Always read afresh.
    async fn read_back(&self, number: u64) -> Result<ReadBack, TrackerError> {
        Ok(ReadBack {
            comments: self.comments(number).await?,
            label_events: Vec::new(),
        })
    }
    /// The comments of many issues at once, where one read costs less than one per issue
    /// (the local tracker's file); `None` where it does not (remote trackers).
    async fn comments_of(
        &self,
        _numbers: &[u64],
    ) -> Result<Option<std::collections::HashMap<u64, Vec<Comment>>>, TrackerError> {
        Ok(None)
    }
    async fn add_comment(&self, number: u64, body: &str) -> Result<Comment, TrackerError>;
    /// Label history, oldest first.
    async fn label_events(&self, number: u64) -> Result<Vec<LabelEvent>, TrackerError>;
    /// `label_events`, with when the tracker answered where it says so (as
    /// `comments_dated`).
    async fn label_events_dated(
        &self,
        number: u64,
    ) -> Result<Dated<Vec<LabelEvent>>, TrackerError> {
        Ok(Dated::undated(self.label_events(number).await?))
    }
    /// Creates the labels that do not exist yet.
    async fn ensure_labels(&self, labels: &[LabelSpec]) -> Result<(), TrackerError>;

    /// The child issues of `parent`, open and closed: the issues whose marker names it.
    /// Trackers with issue links answer from the links instead of listing every issue.
    async fn children(&self, parent: u64) -> Result<Vec<Issue>, TrackerError> {
        let needle = format!("\"parent\":{parent},");
        Ok(self
            .list_issues(StateFilter::All, &[])
            .await?
            .into_iter()
            .filter(|i| i.body.contains(&needle))
            .collect())
    }

    /// Links a child issue to its parent, where the tracker has issue links.
    async fn link(&self, _parent: u64, _child: u64) -> Result<(), TrackerError> {
        Ok(())
    }

    /// The merge requests (GitHub: pull requests) that reference issue `number`, in any
    /// project, open, merged or closed (GitLab: `related_merge_requests` and `closed_by`;
    /// GitHub: the timeline's `cross-referenced` events from pull requests; local: `mr open
    /// --issue`). One request per issue where the tracker allows it.
    async fn merge_requests(&self, number: u64) -> Result<Vec<MergeRequest>, TrackerError>;

    /// Issue `number`'s merge requests when the gates asking look in `projects` only
    /// (empty: any project): a cache then knows where a new reference can come from.
    async fn merge_requests_in(
        &self,
        number: u64,
        projects: &[String],
    ) -> Result<Vec<MergeRequest>, TrackerError> {
        let _ = projects;
        self.merge_requests(number).await
    }

    /// Whether `merge_requests_changed` answers: then an issue's merge requests can be
    /// cached, checked against what changed in the projects they can come from.
    fn lists_merge_request_changes(&self) -> bool {
        false
    }

    /// Whether a merge request that starts referencing an issue changes that issue's
    /// `updated_at` (GitLab: the "mentioned in" system note touches it): then a cached list
    /// of an issue's merge requests need not watch for new ones.
    fn mentions_touch_issues(&self) -> bool {
        false
    }

    /// The merge requests of `project` changed since `since` (number and `updated_at`),
    /// in one list for the whole project (GitLab, GitHub).
    async fn merge_requests_changed(
        &self,
        project: &str,
        _since: DateTime<Utc>,
    ) -> Result<Vec<(u64, DateTime<Utc>)>, TrackerError> {
        Err(TrackerError::Other(format!(
            "{} cannot list the merge requests of {project} changed since a moment",
            self.describe()
        )))
    }

    /// Forgets what a cache knows of merge requests: a webhook may be about one.
    fn forget_merge_requests(&self) {}

    /// The published releases of `project` (`None`: the tracker's own project), newest
    /// first; drafts, pre-releases and upcoming releases left out. An unknown project is
    /// an error that names it.
    async fn releases(&self, project: Option<&str>) -> Result<Vec<Release>, TrackerError>;

    /// What the author of a comment (`user`, with its numeric id where the tracker gives
    /// one) may do on the project; `None` where the tracker keeps no access levels (the
    /// local tracker: `[people] operators` decides).
    async fn access(&self, _user: &str, _id: Option<u64>) -> Result<Option<Access>, TrackerError> {
        Ok(None)
    }

    /// What `access` must say for a command that changes a migration, as people here call
    /// it.
    fn write_access(&self) -> &'static str {
        "write access"
    }

    /// The change freeze periods this tracker keeps (DESIGN §13): the local tracker's own
    /// (`shepherd freeze add`), a GitLab project's deploy freeze periods where `[tracker]
    /// freezes = "gitlab"`; none by default. The engine reads them once per run.
    async fn freeze_periods(&self) -> Result<Vec<FreezePeriod>, TrackerError> {
        Ok(Vec::new())
    }
}

/// A tracker as `--tracker` spells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrackerSpec {
    Local(PathBuf),
    GitLab(String),
    GitHub(String),
}

impl TrackerSpec {
    pub const DEFAULT_LOCAL: &'static str = ".shepherd/tracker.db";

    pub fn parse(text: &str) -> Result<TrackerSpec, String> {
        let (kind, rest) = text.split_once(':').unwrap_or((text, ""));
        match kind {
            "local" if rest.is_empty() => Ok(TrackerSpec::Local(PathBuf::from(Self::DEFAULT_LOCAL))),
            "local" => Ok(TrackerSpec::Local(PathBuf::from(rest))),
            "gitlab" | "github" => {
                let parts: Vec<&str> = rest.split('/').collect();
                if parts.len() < 2 || parts.iter().any(|p| p.is_empty()) || (kind == "github" && parts.len() != 2) {
                    let shape = if kind == "github" { "github:OWNER/REPO" } else { "gitlab:GROUP/PROJECT" };
                    return Err(format!("bad tracker `{text}`: write {shape}"));
                }
                Ok(if kind == "gitlab" { TrackerSpec::GitLab(rest.into()) } else { TrackerSpec::GitHub(rest.into()) })
            }
            _ => Err(format!("bad tracker `{text}`: write local[:PATH], gitlab:GROUP/PROJECT or github:OWNER/REPO")),
        }
    }

    pub fn is_local(&self) -> bool {
        matches!(self, TrackerSpec::Local(_))
    }
}

impl fmt::Display for TrackerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrackerSpec::Local(p) => write!(f, "local:{}", p.display()),
            TrackerSpec::GitLab(p) => write!(f, "gitlab:{p}"),
            TrackerSpec::GitHub(p) => write!(f, "github:{p}"),
        }
    }
}

/// Checks that `project` is a project path, `group/project` (subgroups allowed): segments
/// of letters, digits, `-`, `_` and `.`, none empty, `.` or `..`. The error names it.
pub fn check_project(project: &str) -> Result<(), String> {
    let segment = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    let parts: Vec<&str> = project.split('/').collect();
    if parts.len() >= 2 && parts.iter().all(|p| segment(p)) {
        Ok(())
    } else {
        Err(format!(
            "`{}` is no project: write GROUP/PROJECT (letters, digits, `-`, `_`, `.`)",
            project.escape_debug()
        ))
    }
}

/// The labels a remote tracker has, listed once per run; `ensure` creates the missing ones.
/// The lock is held while creating, so concurrent calls never create a label twice.
#[derive(Default)]
pub struct LabelCache(tokio::sync::Mutex<Option<Vec<String>>>);

impl LabelCache {
    pub async fn ensure<L, C, F>(
        &self,
        wanted: &[LabelSpec],
        list: L,
        create: C,
    ) -> Result<(), TrackerError>
    where
        L: std::future::Future<Output = Result<Vec<String>, TrackerError>>,
        C: Fn(LabelSpec) -> F,
        F: std::future::Future<Output = Result<(), TrackerError>>,
    {
        let mut known = self.0.lock().await;
        if known.is_none() {
            *known = Some(list.await?);
        }
        let known = known.as_mut().expect("listed");
        let missing: Vec<&LabelSpec> = wanted
            .iter()
            .filter(|spec| !known.contains(&spec.name))
            .collect();
        // Side by side: the moves waiting for them wait one round, not one per label.
        let made =
            futures::future::join_all(missing.iter().map(|spec| create((*spec).clone()))).await;
        let mut first_error = None;
        for (spec, made) in missing.into_iter().zip(made) {
            match made {
                Ok(()) => known.push(spec.name.clone()),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// A colour and description for a label, stable per name.
pub fn label_spec(name: &str, description: &str) -> LabelSpec {
    // Colours dark enough for white text; picked by a hash of the name.
    const COLORS: &[&str] = &[
        "#1f78d1", "#8e44ad", "#2da160", "#d9534f", "#5843ad", "#004e00", "#a8d695", "#cc338b",
        "#dc143c", "#34495e",
    ];
    let hash = name
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
    LabelSpec {
        name: name.to_string(),
        color: COLORS[hash as usize % COLORS.len()].to_string(),
        description: description.to_string(),
    }
}

/// A request that failed for good is the tracker's error, with its message.
impl From<crate::http::retry::Failed> for TrackerError {
    fn from(f: crate::http::retry::Failed) -> TrackerError {
        TrackerError::Other(f.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        assert_eq!(
            TrackerSpec::parse("local").unwrap(),
            TrackerSpec::Local(".shepherd/tracker.db".into())
        );
        assert_eq!(
            TrackerSpec::parse("local:/tmp/x.db").unwrap(),
            TrackerSpec::Local("/tmp/x.db".into())
        );
        assert_eq!(
            TrackerSpec::parse("gitlab:a/b/c").unwrap(),
            TrackerSpec::GitLab("a/b/c".into())
        );
        assert_eq!(
            TrackerSpec::parse("github:o/r").unwrap(),
            TrackerSpec::GitHub("o/r".into())
        );
        for good in ["group/project", "gitlab-org/gitlab", "a/b/c.d", "o_1/r-2"] {
            assert!(check_project(good).is_ok(), "{good}");
        }
        for bad in [
            "local", "group/", "/project", "a//b", "a/../b", "a b/c", "a/b\n", "",
        ] {
            assert!(check_project(bad).is_err(), "{bad:?}");
        }
        for bad in [
            "github:o",
            "github:o/r/x",
            "gitlab:x",
            "jira:x",
            "gitlab:a//b",
        ] {
            assert!(TrackerSpec::parse(bad).is_err(), "{bad}");
        }
    }
}
