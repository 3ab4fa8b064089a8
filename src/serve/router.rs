//! The HTTP surface: `app(shared) -> Router`, testable without a socket. Webhooks at
//! `/hooks/gitlab` and `/hooks/github` (bodies up to 25 MiB, then 413); the dashboard at
//! `/`; the report and one migration's status as JSON under `/api/migrations`;
//! Prometheus at `/metrics`; `/healthz` (alive) and `/readyz` (the first resync done, the
//! last one fine, the Store answering). Pages and JSON come from the last refresh: a
//! request costs the tracker nothing.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::dashboard::Page;
use super::{dashboard, hooks, pages, Shared, BODY_LIMIT};

/// Every endpoint of the service.
pub fn app(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/hooks/gitlab", post(hooks::gitlab))
        .route("/hooks/github", post(hooks::github))
        .route("/", get(page))
        .route("/m/{*path}", get(migration_page))
        .route("/api/migrations", get(migrations))
        .route("/api/migrations/{*path}", get(migration))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared)
}

async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    if !shared.ready() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the first resync has not succeeded yet, or the last one failed\n",
        )
            .into_response();
    }
    match shared.store.cursor("store-id").await {
        Ok(_) => (StatusCode::OK, "ready\n").into_response(),
        Err(e) => {
            tracing::warn!("readiness: {e}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: the state store does not answer\n",
            )
                .into_response()
        }
    }
}

async fn page(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let tracker = match query.get("tracker") {
        Some(t) => match find_tracker(&shared.trackers, t) {
            Some(t) => t,
            None => return not_found(&format!("no tracker `{t}` is served here")),
        },
        None => match shared.trackers.first() {
            Some(t) => t,
            None => return not_found("no tracker is served here"),
        },
    };
    let filters = match pages::Filters::of(&query) {
        Ok(f) => f,
        Err(why) => return (StatusCode::BAD_REQUEST, why).into_response(),
    };
    let html = match (shared.page(tracker), filters) {
        (Some(page), None) => page.html,
        (
            Some(Page {
                report: Some(report),
                ..
            }),
            Some(filters),
        ) => dashboard::live_html(
            &pages::filtered(&report, &filters, tracker),
            shared.page_refresh_seconds,
            &shared.trackers,
            tracker,
        ),
        _ => dashboard::waiting_html(shared.page_refresh_seconds.min(5)),
    };
    Html(html).into_response()
}

/// `/m/{tracker}/{ref}`: one migration's page (the tracker and ref as in
/// `/api/migrations/{tracker}/{ref}`).
async fn migration_page(State(shared): State<Arc<Shared>>, Path(path): Path<String>) -> Response {
    match status_at(&shared, &path) {
        Ok((tracker, status)) => {
            let links = pages::pages_of(tracker);
            Html(pages::migration(&status, tracker, &links)).into_response()
        }
        Err(response) => *response,
    }
}

/// The tracker and the status of the migration `path` names (`{tracker}/{ref}`), from the
/// page last published; else the answer to give.
fn status_at<'s>(shared: &'s Shared, path: &str) -> Result<(&'s String, Value), Box<Response>> {
    let (tracker, number) =
        tracker_and_ref(shared, path).map_err(|why| Box::new(not_found(&why)))?;
    let page = shared.page(tracker).ok_or_else(|| Box::new(not_ready()))?;
    match page.status(number) {
        Some(status) => Ok((tracker, status)),
        None => Err(Box::new(not_found(&format!(
            "#{number} is no open migration on {tracker}"
        )))),
    }
}

async fn migrations(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let pick: Vec<&String> = match query.get("tracker") {
        Some(t) => match find_tracker(&shared.trackers, t) {
            Some(t) => vec![t],
            None => return not_found(&format!("no tracker `{t}` is served here")),
        },
        None => shared.trackers.iter().collect(),
    };
    let mut reports: Vec<Value> = Vec::new();
    for tracker in pick {
        match shared.page(tracker) {
            Some(page) => reports.push(page.json),
            None => return not_ready(),
        }
    }
    match reports.len() {
        1 => Json(reports.remove(0)).into_response(),
        _ => Json(json!({ "reports": reports })).into_response(),
    }
}

/// `/api/migrations/{tracker}/{ref}`: the tracker as it describes itself
/// (`gitlab:group/project`, slashes and all), its kind (`gitlab`) or its project
/// (`group/project`); the ref as `12` or `#12` (`%2312`).
async fn migration(State(shared): State<Arc<Shared>>, Path(path): Path<String>) -> Response {
    match status_at(&shared, &path) {
        Ok((tracker, mut status)) => {
            if let Some(map) = status.as_object_mut() {
                map.insert("tracker".into(), tracker.clone().into());
            }
            Json(status).into_response()
        }
        Err(response) => *response,
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let store = shared.store.as_ref();
    match store.queue_depth().await {
        Ok((depth, age)) => {
            shared
                .metrics
                .queue_depth
                .set(i64::try_from(depth).unwrap_or(i64::MAX));
            shared
                .metrics
                .queue_age
                .set(age.map(|a| a.as_secs_f64()).unwrap_or(0.0));
        }
        Err(e) => {
            shared.metrics.error("store");
            tracing::warn!("metrics: {e}");
        }
    }
    match store.failures().await {
        Ok(f) => {
            shared
                .metrics
                .failing
                .set(i64::try_from(f.len()).unwrap_or(i64::MAX));
        }
        Err(e) => {
            shared.metrics.error("store");
            tracing::warn!("metrics: {e}");
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        shared.metrics.render(),
    )
        .into_response()
}

/// `TRACKER/REF` of a path: a served tracker and an issue number, or why not.
fn tracker_and_ref<'s>(shared: &'s Shared, path: &str) -> Result<(&'s String, u64), String> {
    let Some((tracker, reference)) = path.rsplit_once('/') else {
        return Err("write TRACKER/REF after the path, e.g. /api/migrations/gitlab/12".into());
    };
    let Some(number) = reference
        .trim_start_matches('#')
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
    else {
        return Err(format!("`{reference}` is no issue reference"));
    };
    let Some(tracker) = find_tracker(&shared.trackers, tracker) else {
        return Err(format!("no tracker `{tracker}` is served here"));
    };
    Ok((tracker, number))
}

/// A served tracker by its description, its kind when only one of that kind is served,
/// or its project.
fn find_tracker<'t>(trackers: &'t [String], name: &str) -> Option<&'t String> {
    if let Some(t) = trackers.iter().find(|t| t.as_str() == name) {
        return Some(t);
    }
    let by = |f: &dyn Fn(&str) -> bool| {
        let mut found = trackers.iter().filter(|t| f(t));
        let first = found.next()?;
        found.next().is_none().then_some(first)
    };
    by(&|t| t.split_once(':').is_some_and(|(kind, _)| kind == name)).or_else(|| {
        by(&|t| {
            t.split_once(':')
                .is_some_and(|(_, project)| project == name)
        })
    })
}

fn not_found(why: &str) -> Response {
    (StatusCode::NOT_FOUND, Json(json!({ "error": why }))).into_response()
}

fn not_ready() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({ "error": "the first resync has not finished yet" })),
    )
        .into_response()
}
