//! GitHub's JSON beyond octocrab's models, and the conversions to the tracker's types:
//! timeline items read one by one (an event type octocrab does not know cannot break a
//! page), pull requests told apart from issues, `Link` headers, label filters.

use chrono::{DateTime, Utc};
use octocrab::models::issues::{Comment as GhComment, Issue as GhIssue};
use octocrab::models::IssueState;
use serde::Deserialize;

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
}

#[derive(Debug, Deserialize)]
pub struct GhLogin {
    pub login: String,
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
    }
}

pub fn comment(c: GhComment) -> Comment {
    Comment {
        id: c.id.into_inner(),
        body: c.body.unwrap_or_default(),
        author: c.user.login,
        created_at: c.created_at,
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
