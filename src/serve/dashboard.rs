//! The dashboard's copy of the report: after each resync and after work, the statuses
//! of the open migrations are read (through the Store's cache: unchanged issues cost no
//! request) and kept as a `Page` — the HTML report with a meta refresh, the report JSON,
//! the stage counts — in memory for `/` and `/api`, and in the Store so that a restarted
//! service shows the last page at once.

use std::collections::HashMap;

use anyhow::Result;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Shared;
use crate::core::forecast::Life;
use crate::core::report;
use crate::core::workflow::Workflow;
use crate::engine::{Engine, Migration, Seen};
use crate::report_format;
use crate::store::Store;
use crate::tracker::StateFilter;

/// Migrations longer than this in a stage are marked stale, as `report` does by default.
const STALE_AFTER_DAYS: i64 = 14;

/// One tracker's report as the service shows it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Page {
    /// The HTML report, reloading itself.
    pub html: String,
    /// The report as `report --format json` prints it (with `tracker`).
    pub json: Value,
    /// Open migrations by (workflow, stage).
    pub counts: Vec<((String, String), i64)>,
    /// Open migrations whose feature flags are not what their stages set, by workflow.
    #[serde(default)]
    pub drifting: Vec<(String, i64)>,
    /// Open migrations whose stay is longer than their stage's target, by (workflow,
    /// stage).
    #[serde(default)]
    pub overdue: Vec<((String, String), i64)>,
    /// The report itself, for filtered views (not kept in the Store: a restarted service
    /// filters from its first refresh on).
    #[serde(skip)]
    pub report: Option<std::sync::Arc<report::Report>>,
}

impl Page {
    /// The status of migration `number`, as `status REF --format json` prints it
    /// (with its history).
    pub fn status(&self, number: u64) -> Option<Value> {
        self.json
            .get("migrations")?
            .as_array()?
            .iter()
            .find(|m| m.get("ref").and_then(Value::as_u64) == Some(number))
            .cloned()
    }
}

/// The lives of the tracker's closed migrations, for the forecasts and the burn-down:
/// read once (a list of every migration, and the closed ones' comments through the
/// Store's cache) and kept until a full resync, for they seldom change.
async fn closed_lives(engine: &Engine<'_>, shared: &Shared) -> Result<Vec<Life>> {
    let tracker = engine.tracker.describe();
    if let Some(lives) = shared.closed_lives(&tracker) {
        return Ok(lives);
    }
    let mut closed = engine.index_of(StateFilter::All).await?;
    closed.retain(|m| !m.issue.open);
    let lives = engine.past(&closed, &[]).await?.into_lives();
    shared.set_closed_lives(&tracker, Some(lives.clone()));
    Ok(lives)
}

/// Reads the statuses of `index`'s open migrations and keeps them as `engine`'s page.
/// Migrations that this service's advances moved are shown as those advances saw them
/// while they stay so (`Shared::note_seen`): their comments are not read again.
pub async fn publish(engine: &Engine<'_>, shared: &Shared, index: &[Migration]) -> Result<()> {
    let tracker = engine.tracker.describe();
    let (seen, seen_changed) = shared.seen(&tracker, index);
    if seen_changed {
        keep_seen(shared.store.as_ref(), &tracker, &seen).await;
    }
    let statuses = engine
        .statuses_shown(index, false, &report::Filter::default(), &seen)
        .await?;
    let workflows: Vec<&Workflow> = engine.catalog.workflows.values().collect();
    let mut counts: std::collections::BTreeMap<(String, String), i64> = Default::default();
    let mut drifting: std::collections::BTreeMap<String, i64> = Default::default();
    let mut overdue: std::collections::BTreeMap<(String, String), i64> = Default::default();
    for s in &statuses {
        let stage = s.stage.clone().unwrap_or_else(|| "-".into());
        *counts.entry((s.workflow.clone(), stage)).or_default() += 1;
        if !s.flag_drift.is_empty() {
            *drifting.entry(s.workflow.clone()).or_default() += 1;
        }
        if s.overdue {
            let stage = s.stage.clone().unwrap_or_else(|| "-".into());
            *overdue.entry((s.workflow.clone(), stage)).or_default() += 1;
        }
    }
    let mut lives = engine.past(index, &statuses).await?.into_lives();
    lives.extend(closed_lives(engine, shared).await?);
    let past = crate::core::forecast::Past::new(lives);
    let report = report::build(
        engine.now(),
        &workflows,
        statuses,
        chrono::Duration::days(STALE_AFTER_DAYS),
        &past,
    );
    let mut json = serde_json::to_value(&report)?;
    if let Some(map) = json.as_object_mut() {
        map.insert("tracker".into(), tracker.clone().into());
    }
    let generated = report.generated_at;
    let pages = super::pages::pages_of(&tracker);
    let links = report_format::Links {
        pages: Some(&pages),
    };
    let html = live_html(
        &report_format::html_with(&report, &links),
        shared.page_refresh_seconds,
        &shared.trackers,
        &tracker,
    );
    let page = Page {
        html,
        json,
        counts: counts.into_iter().collect(),
        drifting: drifting.into_iter().collect(),
        overdue: overdue.into_iter().collect(),
        report: Some(std::sync::Arc::new(report)),
    };
    if let Ok(text) = serde_json::to_string(&page) {
        let version = generated.to_rfc3339();
        if let Err(e) = shared
            .store
            .cache_put(&cache_key(&tracker), &text, &version)
            .await
        {
            tracing::warn!("keeping the dashboard in the Store: {e}");
        }
    }
    shared.set_page(&tracker, page);
    Ok(())
}

/// The page the last run kept in the Store for `tracker`.
pub async fn load(store: &dyn Store, tracker: &str) -> Option<Page> {
    let cached = store.cache_get(&cache_key(tracker)).await.ok()??;
    serde_json::from_str(&cached.value).ok()
}

/// Keeps `seen` in the Store, for a restarted service's first page (display only, like
/// the page itself: the engine never reads it).
async fn keep_seen(store: &dyn Store, tracker: &str, seen: &HashMap<u64, Seen>) {
    let Ok(text) = serde_json::to_string(seen) else {
        return;
    };
    let version = chrono::Utc::now().to_rfc3339();
    if let Err(e) = store.cache_put(&seen_key(tracker), &text, &version).await {
        tracing::warn!("keeping what the moves saw in the Store: {e}");
    }
}

/// What the last run kept of `seen` for `tracker`.
pub async fn load_seen(store: &dyn Store, tracker: &str) -> Option<HashMap<u64, Seen>> {
    let cached = store.cache_get(&seen_key(tracker)).await.ok()??;
    serde_json::from_str(&cached.value).ok()
}

fn seen_key(tracker: &str) -> String {
    format!("serve|seen|{tracker}")
}

fn cache_key(tracker: &str) -> String {
    format!("serve|page|{tracker}")
}

/// The report page with a meta refresh every `seconds`, and, when several trackers are
/// served, links between their pages.
pub fn live_html(report: &str, seconds: u64, trackers: &[String], current: &str) -> String {
    let mut head = format!("<head>\n<meta http-equiv=\"refresh\" content=\"{seconds}\">\n");
    let mut out = report.replacen("<head>\n", &head, 1);
    if trackers.len() > 1 {
        let links: Vec<String> = trackers
            .iter()
            .map(|t| {
                let name = report_format::esc(t);
                if t == current {
                    format!("<strong>{name}</strong>")
                } else {
                    format!(
                        "<a href=\"/?tracker={}\">{name}</a>",
                        report_format::esc(&crate::render::urlencode(t))
                    )
                }
            })
            .collect();
        head = format!("<body>\n<nav>{}</nav>\n", links.join(" · "));
        out = out.replacen("<body>\n", &head, 1);
    }
    out
}

/// The page shown before the first resync has finished.
pub fn waiting_html(seconds: u64) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta http-equiv=\"refresh\" content=\"{seconds}\">\n<title>Migration report</title>\n</head>\n<body>\n<h1>Migration report</h1>\n<p>shepherd is reading the migrations; this page reloads itself.</p>\n</body>\n</html>\n"
    )
}
