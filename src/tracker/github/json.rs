//! GitHub's JSON beyond octocrab's models, and the conversions to the tracker's types:
//! timeline items read one by one (an event type octocrab does not know cannot break a
//! page), pull requests told apart from issues, cross-references from pull requests,
//! releases, `Link` headers, label filters.

use chrono::{DateTime, Utc};
use octocrab::models::issues::{Comment as GhComment, Issue as GhIssue};
use octocrab::models::IssueState;
use serde::Deserialize;

use crate::core::facts::{MergeRequest, MrState, Release};
use crate::core::snapshot::LabelEvent;
use crate::tracker::{Comment, Issue};

/// One item of an issue timeline, as much as shepherd reads. Every event type parses.
#[derive(Debug, Deserialize)]
pub struct GhTimelineItem {
    #[serde(default)]
    pub event: Option<String>,
    #[serde(default)]
    pub actor: Option<GhLogin>,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub label: Option<GhLabelName>,
    /// A `commented` item's comment: its id (the issue comment's), author and text.
    #[serde(default)]
    pub id: Option<u64>,
    #[serde(default)]
    pub user: Option<GhLogin>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize)]
pub struct GhLogin {
    pub login: String,
    #[serde(default)]
    pub id: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub struct GhLabelName {
    pub name: String,
}

impl GhTimelineItem {
    /// A label event as core sees it; other events give `None`.
    pub fn into_event(self) -> Option<LabelEvent> {
        let added = match self.event.as_deref()? {
            "labeled" => true,
            "unlabeled" => false,
            _ => return None,
        };
        Some(LabelEvent {
            label: self.label?.name,
            added,
            actor: self.actor.map(|a| a.login).unwrap_or_default(),
            at: self.created_at?,
        })
    }

    /// A `commented` item as the comment it is.
    fn into_comment(self) -> Option<Comment> {
        let created_at = self.created_at?;
        let user = self.user.or(self.actor);
        Some(Comment {
            id: self.id?,
            body: self.body.unwrap_or_default(),
            author_id: user.as_ref().and_then(|u| u.id),
            author: user.map(|u| u.login).unwrap_or_default(),
            created_at,
            edited: self.updated_at.is_some_and(|u| u > created_at),
        })
    }
}

/// The comments and label events of a timeline, each oldest first.
pub fn comments_and_events(items: &[serde_json::Value]) -> (Vec<Comment>, Vec<LabelEvent>) {
    let mut comments = Vec::new();
    let mut events = Vec::new();
    for item in items
        .iter()
        .filter_map(|v| GhTimelineItem::deserialize(v).ok())
    {
        if item.event.as_deref() == Some("commented") {
            comments.extend(item.into_comment());
        } else {
            events.extend(item.into_event());
        }
    }
    comments.sort_by_key(|c| (c.created_at, c.id));
    events.sort_by_key(|e| e.at);
    (comments, events)
}

/// An issue as shepherd sees it; `None` for a pull request, which GitHub's issue lists
/// return among issues and which is never a migration.
pub fn convert(issue: GhIssue) -> Option<Issue> {
    if issue.pull_request.is_some() {
        return None;
    }
    Some(convert_any(issue))
}

/// An issue or pull request as shepherd sees it.
pub fn convert_any(issue: GhIssue) -> Issue {
    Issue {
        number: issue.number,
        title: issue.title,
        body: issue.body.unwrap_or_default(),
        labels: issue.labels.into_iter().map(|l| l.name).collect(),
        open: issue.state != IssueState::Closed,
        created_at: issue.created_at,
        updated_at: issue.updated_at,
        url: issue.html_url.to_string(),
        author: issue.user.login,
        comment_count: Some(issue.comments.into()),
        assignees: issue.assignees.into_iter().map(|a| a.login).collect(),
    }
}

pub fn comment(c: GhComment) -> Comment {
    Comment {
        id: c.id.into_inner(),
        body: c.body.unwrap_or_default(),
        author: c.user.login,
        author_id: Some(c.user.id.into_inner()),
        created_at: c.created_at,
        edited: c.updated_at.is_some_and(|u| u > c.created_at),
    }
}

/// The `page` of the link with relation `rel` in a `Link` header.
pub fn link_page(link: &str, rel: &str) -> Option<u64> {
    link.split(',')
        .find(|part| part.contains(&format!("rel=\"{rel}\"")))
        .and_then(|part| {
            let url = part
                .split(';')
                .next()?
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>');
            let query = url.split_once('?')?.1;
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix("page="))
                .and_then(|p| p.parse().ok())
        })
}

/// The label list GitHub filters by: comma-separated, each name percent-encoded.
pub fn label_query(labels: &[String]) -> String {
    labels
        .iter()
        .map(|l| crate::render::urlencode(l))
        .collect::<Vec<_>>()
        .join(",")
}

/// A time as GitHub's `since` takes it, to the second (rounded down, so that nothing
/// changed within that second is missed).
pub fn since_query(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers() {
        let link = "<https://api.github.com/repositories/1/issues?per_page=3&page=2>; rel=\"next\", <https://api.github.com/repositories/1/issues?per_page=3&page=5>; rel=\"last\"";
        assert_eq!(link_page(link, "next"), Some(2));
        assert_eq!(link_page(link, "last"), Some(5));
        assert_eq!(link_page(link, "prev"), None);
        assert_eq!(link_page("", "next"), None);
    }

    #[test]
    fn label_filters_are_encoded() {
        assert_eq!(
            label_query(&["feature flag".into(), "a,b".into()]),
            "feature%20flag,a%2Cb"
        );
    }

    #[test]
    fn since_is_to_the_second() {
        let t = DateTime::parse_from_rfc3339("2026-03-01T10:20:30.900Z").unwrap();
        assert_eq!(since_query(t.with_timezone(&Utc)), "2026-03-01T10:20:30Z");
    }
}

/// A timeline item that may be a cross-reference from a pull request, as much as shepherd
/// reads.
#[derive(Debug, Deserialize)]
pub struct GhCrossReference {
    pub event: String,
    #[serde(default)]
    pub source: Option<GhSource>,
}

#[derive(Debug, Deserialize)]
pub struct GhSource {
    #[serde(default)]
    pub issue: Option<GhSourceIssue>,
}

/// The issue (here: pull request) a cross-reference comes from.
#[derive(Debug, Deserialize)]
pub struct GhSourceIssue {
    pub number: u64,
    pub title: String,
    pub state: String,
    pub html_url: String,
    #[serde(default)]
    pub repository_url: Option<String>,
    #[serde(default)]
    pub repository: Option<GhRepository>,
    /// Present only when the issue is a pull request.
    #[serde(default)]
    pub pull_request: Option<GhPullRef>,
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize)]
pub struct GhRepository {
    pub full_name: String,
}

/// An issue's `pull_request` object.
#[derive(Debug, Deserialize)]
pub struct GhPullRef {
    /// `None` when the field is missing (older servers): the pull request must be read to
    /// know; `Some(None)` when it is there and null: not merged.
    #[serde(default, deserialize_with = "present")]
    pub merged_at: Option<Option<DateTime<Utc>>>,
    #[serde(default)]
    pub html_url: Option<String>,
}

/// A pull request as `GET /repos/{o}/{r}/pulls/{n}` answers, as much as shepherd reads.
#[derive(Debug, Deserialize)]
pub struct GhPull {
    pub number: u64,
    pub title: String,
    pub state: String,
    #[serde(default)]
    pub merged_at: Option<DateTime<Utc>>,
    pub html_url: String,
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
}

/// A release as `GET /repos/{o}/{r}/releases` lists it.
#[derive(Debug, Deserialize)]
pub struct GhRelease {
    pub tag_name: String,
    #[serde(default)]
    pub draft: bool,
    #[serde(default)]
    pub prerelease: bool,
    #[serde(default)]
    pub published_at: Option<DateTime<Utc>>,
    pub html_url: String,
}

/// A field that is there, even as null, is `Some`.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

impl GhSourceIssue {
    /// `owner/repo`, from `repository`, else from `repository_url`.
    pub fn project(&self) -> Option<String> {
        if let Some(r) = &self.repository {
            return Some(r.full_name.clone());
        }
        let url = self.repository_url.as_deref()?;
        let (_, rest) = url.rsplit_once("/repos/")?;
        let project = rest.trim_end_matches('/');
        (project.split('/').count() == 2).then(|| project.to_string())
    }
}

/// A pull request as core sees it; `own` is the tracker's repository, whose pull requests
/// are `#42` (the others `owner/other#42`).
pub fn pull_request(
    own: &str,
    project: String,
    number: u64,
    title: String,
    open: bool,
    merged_at: Option<DateTime<Utc>>,
    url: String,
) -> MergeRequest {
    let reference = if project.eq_ignore_ascii_case(own) {
        format!("#{number}")
    } else {
        format!("{project}#{number}")
    };
    let state = match (merged_at, open) {
        (Some(_), _) => MrState::Merged,
        (None, true) => MrState::Open,
        (None, false) => MrState::Closed,
    };
    MergeRequest {
        project,
        number,
        reference,
        title,
        state,
        merged_at,
        url,
        updated_at: None,
    }
}

impl GhRelease {
    /// As core sees it; `None` for a draft, a pre-release, or one not published.
    pub fn into_fact(self) -> Option<Release> {
        if self.draft || self.prerelease {
            return None;
        }
        Some(Release {
            tag: self.tag_name,
            released_at: self.published_at?,
            url: self.html_url,
        })
    }
}
