//! GitLab's JSON, as much as shepherd reads of it, and its conversion to the tracker's
//! types. The shapes follow GitLab's documented responses (tests parse those documents).

use chrono::{DateTime, Utc};
use serde::Deserialize;

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
}

#[derive(Debug, Deserialize)]
pub struct GlUser {
    pub username: String,
}

#[derive(Debug, Deserialize)]
pub struct GlNote {
    pub id: u64,
    pub body: String,
    pub author: GlUser,
    pub created_at: DateTime<Utc>,
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
        }
    }
}

impl From<GlNote> for Comment {
    fn from(n: GlNote) -> Comment {
        Comment {
            id: n.id,
            body: n.body,
            author: n.author.username,
            created_at: n.created_at,
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
