//! GitLab's JSON, as much as shepherd reads of it, and its conversion to the tracker's
//! types. The shapes follow GitLab's documented responses (tests parse those documents).

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::core::facts::{MergeRequest, MrState, Release};
use crate::core::snapshot::LabelEvent;
use crate::tracker::{Comment, Issue};

/// GitLab's issue JSON, as much as shepherd reads.
#[derive(Debug, Deserialize)]
pub struct GlIssue {
    pub iid: u64,
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub labels: Vec<String>,
    pub state: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub web_url: String,
    pub author: GlUser,
    #[serde(default)]
    pub user_notes_count: Option<u64>,
    /// Absent or null where the server does not say.
    #[serde(default)]
    pub assignees: Option<Vec<GlUser>>,
}

#[derive(Debug, Deserialize)]
pub struct GlUser {
    pub username: String,
    #[serde(default)]
    pub id: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub struct GlNote {
    pub id: u64,
    pub body: String,
    pub author: GlUser,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub system: bool,
}

#[derive(Debug, Deserialize)]
pub struct GlLabelEvent {
    pub user: Option<GlUser>,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    pub label: Option<GlLabelRef>,
    pub action: String,
}

#[derive(Debug, Deserialize)]
pub struct GlLabelRef {
    pub name: String,
}

#[derive(Debug, Deserialize)]
pub struct GlLabel {
    pub name: String,
}

impl From<GlIssue> for Issue {
    fn from(i: GlIssue) -> Issue {
        Issue {
            number: i.iid,
            title: i.title,
            body: i.description.unwrap_or_default(),
            labels: i.labels,
            open: i.state != "closed",
            created_at: i.created_at,
            updated_at: i.updated_at,
            url: i.web_url,
            author: i.author.username,
            comment_count: i.user_notes_count,
            assignees: i
                .assignees
                .unwrap_or_default()
                .into_iter()
                .map(|a| a.username)
                .collect(),
        }
    }
}

impl From<GlNote> for Comment {
    fn from(n: GlNote) -> Comment {
        Comment {
            id: n.id,
            body: n.body,
            author: n.author.username,
            author_id: n.author.id,
            created_at: n.created_at,
            edited: n.updated_at.is_some_and(|u| u > n.created_at),
        }
    }
}

impl GlLabelEvent {
    /// A label event as core sees it; events of deleted labels, or without a time, are
    /// dropped.
    pub fn into_event(self) -> Option<LabelEvent> {
        Some(LabelEvent {
            label: self.label?.name,
            added: self.action == "add",
            actor: self.user.map(|u| u.username).unwrap_or_default(),
            at: self.created_at?,
        })
    }
}

/// A merge request as `related_merge_requests` and `closed_by` list it.
#[derive(Debug, Deserialize)]
pub struct GlMergeRequest {
    pub iid: u64,
    pub title: String,
    pub state: String,
    #[serde(default)]
    pub merged_at: Option<DateTime<Utc>>,
    pub web_url: String,
    #[serde(default)]
    pub references: Option<GlReferences>,
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize)]
pub struct GlReferences {
    /// `group/project!42`.
    pub full: String,
}

/// A release as `GET /projects/:id/releases` lists it.
#[derive(Debug, Deserialize)]
pub struct GlRelease {
    pub tag_name: String,
    #[serde(default)]
    pub released_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    /// Set (true) on a release whose `released_at` is still to come.
    #[serde(default)]
    pub upcoming_release: bool,
    #[serde(default, rename = "_links")]
    pub links: Option<GlReleaseLinks>,
}

#[derive(Debug, Deserialize)]
pub struct GlReleaseLinks {
    #[serde(default, rename = "self")]
    pub this: Option<String>,
}

impl GlMergeRequest {
    /// The project's full path: from `references.full`, else from `web_url`
    /// (`…/group/project/-/merge_requests/42`).
    pub fn project(&self) -> Option<String> {
        if let Some(r) = &self.references {
            if let Some((project, _)) = r.full.rsplit_once('!') {
                return Some(project.to_string());
            }
        }
        let path = url::Url::parse(&self.web_url).ok()?.path().to_string();
        let (project, _) = path.split_once("/merge_requests/")?;
        let project = project.trim_end_matches("/-").trim_matches('/');
        (!project.is_empty()).then(|| project.to_string())
    }

    /// As core sees it. `own` is the tracker's project: its merge requests are `!42`, the
    /// others `group/other!42`.
    pub fn into_fact(self, own: &str) -> MergeRequest {
        let project = self.project().unwrap_or_else(|| own.to_string());
        let reference = if project.eq_ignore_ascii_case(own) {
            format!("!{}", self.iid)
        } else {
            format!("{project}!{}", self.iid)
        };
        let state = match self.state.as_str() {
            "merged" => MrState::Merged,
            "closed" => MrState::Closed,
            // `opened`, `locked` (open, but its discussion closed), and any state GitLab
            // may add: not merged.
            _ => MrState::Open,
        };
        MergeRequest {
            project,
            number: self.iid,
            reference,
            title: self.title,
            state,
            merged_at: self.merged_at.filter(|_| state == MrState::Merged),
            url: self.web_url,
            updated_at: self.updated_at,
        }
    }
}

impl GlRelease {
    /// As core sees it; `None` for an upcoming release or one without a time. `web` is the
    /// project's page, for releases that do not link to themselves.
    pub fn into_fact(self, web: &str) -> Option<Release> {
        if self.upcoming_release {
            return None;
        }
        let released_at = self.released_at.or(self.created_at)?;
        let url = self.links.and_then(|l| l.this).unwrap_or_else(|| {
            format!(
                "{web}/-/releases/{}",
                crate::render::urlencode(&self.tag_name)
            )
        });
        Some(Release {
            tag: self.tag_name,
            released_at,
            url,
        })
    }
}
