//! A GitLab project's deploy freeze periods (`GET /projects/:id/freeze_periods`, DESIGN
//! §13), read where `[tracker] freezes = "gitlab"` says so. The `gitlab` crate has no
//! endpoint for them: `FreezePeriods` is one, a plain path with no parameters; `Http::all`
//! pages it like any list.

use std::borrow::Cow;

use gitlab::api::common::NameOrId;
use gitlab::api::endpoint_prelude::{Endpoint, Method};
use serde::Deserialize;

use super::GitLabTracker;
use crate::tracker::{FreezePeriod, TrackerError};

/// A deploy freeze period as GitLab lists it, as much as shepherd reads.
#[derive(Debug, Deserialize)]
pub struct GlFreezePeriod {
    pub id: u64,
    pub freeze_start: String,
    pub freeze_end: String,
    /// GitLab: "defaults to UTC if not provided".
    #[serde(default)]
    pub cron_timezone: Option<String>,
}

impl From<GlFreezePeriod> for FreezePeriod {
    fn from(p: GlFreezePeriod) -> FreezePeriod {
        FreezePeriod {
            id: p.id,
            start: p.freeze_start,
            end: p.freeze_end,
            timezone: p.cron_timezone.unwrap_or_else(|| "UTC".to_string()),
        }
    }
}

/// `GET /projects/:id/freeze_periods`.
struct FreezePeriods<'a> {
    project: &'a str,
}

impl Endpoint for FreezePeriods<'_> {
    fn method(&self) -> Method {
        Method::GET
    }

    fn endpoint(&self) -> Cow<'static, str> {
        format!("projects/{}/freeze_periods", NameOrId::from(self.project)).into()
    }
}

impl GitLabTracker {
    /// The project's deploy freeze periods, 100 a page; none unless configured.
    pub(super) async fn deploy_freezes(&self) -> Result<Vec<FreezePeriod>, TrackerError> {
        if !self.config.freeze_periods {
            return Ok(Vec::new());
        }
        let endpoint = FreezePeriods {
            project: self.project(),
        };
        let periods: Vec<GlFreezePeriod> = match self.http.all(&endpoint).await {
            Ok(periods) => periods,
            Err(f) if f.status == Some(404) => return Err(self.unknown_project(self.project())),
            Err(f) => return Err(f.into()),
        };
        Ok(periods.into_iter().map(FreezePeriod::from).collect())
    }
}
