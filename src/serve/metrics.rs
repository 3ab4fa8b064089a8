//! The service's Prometheus series (`prometheus-client`), exposed at `/metrics` in the
//! text format. Counters move as things happen; the queue and failure gauges are read from
//! the Store at each scrape, so every replica on a shared Store reports the same queue.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

/// Every series the service exposes.
pub struct Metrics {
    registry: Registry,
    /// Stage moves, by tracker, workflow, from and to.
    pub transitions: Family<Labels, Counter>,
    /// Open migrations by tracker, workflow and stage (as of the last dashboard refresh).
    pub migrations: Family<Labels, Gauge>,
    /// Webhook deliveries by source (gitlab, github) and result (queued, ignored,
    /// duplicate, ping, unauthorized, malformed, failed; busy: no reading slot free,
    /// timeout: the body did not come in time, too_large).
    pub deliveries: Family<Labels, Counter>,
    /// Advances by tracker and result (moved, blocked, busy, failed; dropped: the key is
    /// no migration).
    pub advances: Family<Labels, Counter>,
    /// Gate outcomes the advances reported, by tracker, workflow, gate and result: the
    /// gates of each stage a migration left (passed), and those that held one back
    /// (failed).
    pub gate_evaluations: Family<Labels, Counter>,
    /// Errors by kind (advance, resync, refresh, store).
    pub errors: Family<Labels, Counter>,
    /// Resyncs by kind (incremental, full) and result (ok, failed).
    pub resyncs: Family<Labels, Counter>,
    /// Entries in the work queue (taken ones too).
    pub queue_depth: Gauge,
    /// How long the longest-waiting due entry has waited, in seconds.
    pub queue_age: Gauge<f64, AtomicU64>,
    /// Migrations whose last advance failed (retried with backoff).
    pub failing: Gauge,
    /// Requests to each tracker by outcome (`ok`, an HTTP status, `no answer`, `timeout`).
    pub tracker_requests: Family<Labels, Counter>,
    /// The rate limit each tracker has left, as its last response said.
    pub rate_limit_remaining: Family<Labels, Gauge>,
    /// Open migrations whose feature flags differ from what their stages set.
    pub flag_drift: Family<Labels, Gauge>,
    /// Open migrations whose stay is longer than their stage's `target`, by tracker,
    /// workflow and stage (as of the last dashboard refresh).
    pub overdue: Family<Labels, Gauge>,
    /// The request counts already added to `tracker_requests`.
    requests_seen: std::sync::Mutex<std::collections::HashMap<Labels, u64>>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::with_prefix("shepherd");
        let transitions = Family::<Labels, Counter>::default();
        registry.register(
            "transitions",
            "Stage moves made by this service",
            transitions.clone(),
        );
        let migrations = Family::<Labels, Gauge>::default();
        registry.register(
            "migrations",
            "Open migrations by workflow and stage",
            migrations.clone(),
        );
        let deliveries = Family::<Labels, Counter>::default();
        registry.register(
            "webhook_deliveries",
            "Webhook deliveries by source and result",
            deliveries.clone(),
        );
        let advances = Family::<Labels, Counter>::default();
        registry.register(
            "advances",
            "Migrations advanced by the workers, by result",
            advances.clone(),
        );
        let gate_evaluations = Family::<Labels, Counter>::default();
        registry.register(
            "gate_evaluations",
            "Gate outcomes reported by the advances, by gate and result",
            gate_evaluations.clone(),
        );
        let errors = Family::<Labels, Counter>::default();
        registry.register("errors", "Errors by kind", errors.clone());
        let resyncs = Family::<Labels, Counter>::default();
        registry.register("resyncs", "Resyncs by kind and result", resyncs.clone());
        let queue_depth = Gauge::default();
        registry.register(
            "queue_depth",
            "Entries in the work queue",
            queue_depth.clone(),
        );
        let queue_age = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "queue_age_seconds",
            "How long the longest-waiting due entry of the work queue has waited",
            queue_age.clone(),
        );
        let failing = Gauge::default();
        registry.register(
            "failing_migrations",
            "Migrations whose last advance failed and that wait for a retry",
            failing.clone(),
        );
        let tracker_requests = Family::<Labels, Counter>::default();
        registry.register(
            "tracker_requests",
            "Requests sent to each tracker, by outcome (ok, an HTTP status, no answer, timeout)",
            tracker_requests.clone(),
        );
        let rate_limit_remaining = Family::<Labels, Gauge>::default();
        registry.register(
            "rate_limit_remaining",
            "Requests each tracker's rate limit has left, as its last response said",
            rate_limit_remaining.clone(),
        );
        let flag_drift = Family::<Labels, Gauge>::default();
        registry.register(
            "flag_drift_migrations",
            "Open migrations whose feature flags are not what their stages set, by workflow",
            flag_drift.clone(),
        );
        let overdue = Family::<Labels, Gauge>::default();
        registry.register(
            "overdue_migrations",
            "Open migrations whose stay in their stage is longer than its target, by workflow and stage",
            overdue.clone(),
        );
        Metrics {
            overdue,
            flag_drift,
            registry,
            tracker_requests,
            rate_limit_remaining,
            requests_seen: Default::default(),
            transitions,
            migrations,
            deliveries,
            advances,
            gate_evaluations,
            errors,
            resyncs,
            queue_depth,
            queue_age,
            failing,
        }
    }
}

impl Metrics {
    /// The registry in Prometheus' text format (ending with `# EOF`).
    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    pub fn delivery(&self, source: &str, result: &str) {
        self.deliveries
            .get_or_create(&labels(&[("source", source), ("result", result)]))
            .inc();
    }

    /// Brings the tracker's request series up to what it has sent so far.
    pub fn requests(&self, tracker: &str, stats: Option<crate::http::retry::RequestStats>) {
        let Some(stats) = stats else {
            return;
        };
        let mut seen = self.requests_seen.lock().unwrap_or_else(|e| e.into_inner());
        for (outcome, count) in &stats.by_outcome {
            let key = labels(&[("tracker", tracker), ("outcome", outcome)]);
            let before = seen.insert(key.clone(), *count).unwrap_or(0);
            if *count > before {
                self.tracker_requests
                    .get_or_create(&key)
                    .inc_by(count - before);
            }
        }
        if let Some(left) = stats.rate_limit_remaining {
            self.rate_limit_remaining
                .get_or_create(&labels(&[("tracker", tracker)]))
                .set(i64::try_from(left).unwrap_or(i64::MAX));
        }
    }

    pub fn error(&self, kind: &str) {
        self.errors.get_or_create(&labels(&[("kind", kind)])).inc();
    }
}

/// A label set from pairs.
pub fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
