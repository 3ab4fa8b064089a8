//! The webhook handlers. Each checks the sender first: what the headers alone show
//! before the body is read (a GitLab token missing or wrong, a signature header missing:
//! 401 "unauthorized", the body never read), then reads the body in one of the few
//! reading slots (`body`), checks a signature on the raw bytes (401, nothing parsed),
//! then reads the event (400 when it is not JSON or lacks
//! what its kind must carry), maps it to the migrations it concerns, drops a delivery id
//! seen before, queues the rest in the Store and answers at once (202). The work happens
//! in the workers. A migration that is failing waits for its backoff whoever queues it,
//! except that a delivery about it may bring its next try forward, once per backoff
//! (`Store::waive_backoff`).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use super::events::{self, Mentions};
use super::{body, queue_key, Shared, DELIVERIES_KEPT, DELIVERY_MEMORY};

pub(super) async fn gitlab(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(why) = shared
        .secrets
        .gitlab_headers(&headers, Utc::now().timestamp())
    {
        tracing::debug!(?why, "refused a GitLab delivery before reading its body");
        return unauthorized(&shared, "gitlab");
    }
    let read = match body::read(&shared, "gitlab", body).await {
        Ok(read) => read,
        Err(answer) => return answer,
    };
    let body = &read.bytes;
    if let Err(why) = shared
        .secrets
        .gitlab(&headers, body, Utc::now().timestamp())
    {
        tracing::debug!(?why, "refused a GitLab delivery");
        return unauthorized(&shared, "gitlab");
    }
    let kind = header(&headers, "x-gitlab-event");
    let mentions = match events::gitlab(kind, body) {
        Ok(m) => m,
        Err(events::Malformed(why)) => return malformed(&shared, "gitlab", why),
    };
    // GitLab keeps `Idempotency-Key` across retries of one event; the Standard Webhooks id
    // and the event UUID name the event too.
    let id = header(&headers, "idempotency-key")
        .or_else(|| header(&headers, "webhook-id"))
        .or_else(|| header(&headers, "x-gitlab-event-uuid"));
    let reason = format!("GitLab {}", kind.unwrap_or("event"));
    accept(&shared, "gitlab", id, &reason, mentions).await
}

pub(super) async fn github(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(why) = shared.secrets.github_headers(&headers) {
        tracing::debug!(?why, "refused a GitHub delivery before reading its body");
        return unauthorized(&shared, "github");
    }
    let read = match body::read(&shared, "github", body).await {
        Ok(read) => read,
        Err(answer) => return answer,
    };
    let body = &read.bytes;
    if let Err(why) = shared.secrets.github(&headers, body) {
        tracing::debug!(?why, "refused a GitHub delivery");
        return unauthorized(&shared, "github");
    }
    let Some(kind) = header(&headers, "x-github-event") else {
        return malformed(
            &shared,
            "github",
            "missing the X-GitHub-Event header".into(),
        );
    };
    if kind == "ping" {
        shared.metrics.delivery("github", "ping");
        return (StatusCode::OK, "pong\n").into_response();
    }
    let mentions = match events::github(kind, body) {
        Ok(m) => m,
        Err(events::Malformed(why)) => return malformed(&shared, "github", why),
    };
    let id = header(&headers, "x-github-delivery");
    let reason = format!("GitHub {kind}");
    accept(&shared, "github", id, &reason, mentions).await
}

/// Queues the migrations a delivery concerns, unless its id was seen before.
async fn accept(
    shared: &Shared,
    source: &str,
    id: Option<&str>,
    reason: &str,
    mentions: Mentions,
) -> Response {
    let Some(tracker) = tracker_for(&shared.trackers, source, mentions.project.as_deref()) else {
        shared.metrics.delivery(source, "ignored");
        return (
            StatusCode::ACCEPTED,
            "no tracker here serves that project\n",
        )
            .into_response();
    };
    let targets = targets(&shared.known(tracker), &mentions);
    if targets.is_empty() {
        shared.metrics.delivery(source, "ignored");
        return (StatusCode::ACCEPTED, "concerns no migration\n").into_response();
    }
    if let Some(id) = id {
        match shared
            .store
            .first_delivery(&format!("{source}:{id}"), DELIVERY_MEMORY, DELIVERIES_KEPT)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                shared.metrics.delivery(source, "duplicate");
                return (StatusCode::OK, "delivery seen before\n").into_response();
            }
            Err(e) => return store_failed(shared, source, e),
        }
    }
    let now = Utc::now();
    for number in &targets {
        let key = queue_key(tracker, *number);
        // A failing migration waits for its backoff, but a person just acted on it: the
        // fix may be in, so its next try may come now — once per backoff period.
        let queued = async {
            if shared.store.waive_backoff(&key).await? {
                tracing::info!(%key, "a delivery brings a failing migration's retry forward");
            }
            shared.store.enqueue(&key, now, reason).await
        };
        if let Err(e) = queued.await {
            return store_failed(shared, source, e);
        }
    }
    shared.wake.notify_one();
    shared.metrics.delivery(source, "queued");
    let list: Vec<String> = targets.iter().map(|n| format!("#{n}")).collect();
    (StatusCode::ACCEPTED, format!("queued {}\n", list.join(" "))).into_response()
}

/// The served tracker a delivery from `source` about `project` is for: the one with
/// that project, or, when the delivery names none, the only one of that kind.
pub(super) fn tracker_for<'t>(
    trackers: &'t [String],
    source: &str,
    project: Option<&str>,
) -> Option<&'t String> {
    let prefix = format!("{source}:");
    let mut of_kind = trackers.iter().filter(|t| t.starts_with(&prefix));
    match project {
        Some(p) => of_kind.find(|t| t[prefix.len()..].eq_ignore_ascii_case(p)),
        None => {
            let first = of_kind.next()?;
            of_kind.next().is_none().then_some(first)
        }
    }
}

/// The migrations a delivery concerns, given the open migrations `known` (with their
/// parents): an issue whose body carries a marker is a migration when the marker names a
/// workflow, and its parent's when it names one; an issue without a body is looked up;
/// references count when they are known migrations; `all` means every known one.
pub(super) fn targets(known: &HashMap<u64, Option<u64>>, m: &Mentions) -> BTreeSet<u64> {
    let mut out = BTreeSet::new();
    let with_parent = |n: u64, out: &mut BTreeSet<u64>| {
        if let Some(parent) = known.get(&n) {
            out.insert(n);
            if let Some(p) = parent {
                out.insert(*p);
            }
        }
    };
    for issue in &m.issues {
        match &issue.marker {
            Some(marker) => {
                // A child with no workflow of its own is queued too: a comment on it may be
                // a command for its migration (the worker advances the parent for it).
                if marker.workflow.is_some() || marker.parent.is_some() {
                    out.insert(issue.number);
                }
                if let Some(p) = marker.parent {
                    out.insert(p);
                }
            }
            None => with_parent(issue.number, &mut out),
        }
    }
    for n in &m.references {
        with_parent(*n, &mut out);
    }
    if m.all {
        out.extend(known.keys().copied());
    }
    out
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn unauthorized(shared: &Shared, source: &str) -> Response {
    shared.metrics.delivery(source, "unauthorized");
    (StatusCode::UNAUTHORIZED, "unauthorized\n").into_response()
}

fn malformed(shared: &Shared, source: &str, why: String) -> Response {
    shared.metrics.delivery(source, "malformed");
    (StatusCode::BAD_REQUEST, format!("{why}\n")).into_response()
}

/// The Store did not answer: 503, so that the sender delivers again later.
fn store_failed(shared: &Shared, source: &str, e: crate::store::StoreError) -> Response {
    tracing::warn!("queueing a {source} delivery: {e}");
    shared.metrics.delivery(source, "failed");
    shared.metrics.error("store");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "the state store is unavailable; deliver again later\n",
    )
        .into_response()
}
