//! `/metrics` read by a real Prometheus text-format parser (`prometheus-parse`): every
//! line is understood, the families DESIGN.md §7 lists are there with their labels.

use prometheus_parse::{LineInfo, Sample, Scrape, Value};

/// Parses an exposition, failing on any line the parser does not understand (it skips
/// those silently otherwise). `# EOF` ends an OpenMetrics exposition.
pub(crate) fn parse(text: &str) -> Scrape {
    assert!(text.ends_with("# EOF\n"), "{text}");
    for line in text.lines().filter(|l| *l != "# EOF") {
        assert!(
            !matches!(LineInfo::parse(line), LineInfo::Ignored),
            "a line the parser does not understand: {line:?}"
        );
    }
    Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("the exposition parses")
}

/// The samples of `metric` whose labels include every pair of `labels`.
pub(crate) fn find<'s>(
    scrape: &'s Scrape,
    metric: &str,
    labels: &[(&str, &str)],
) -> Vec<&'s Sample> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .collect()
}

/// The number a counter, gauge or untyped sample carries.
pub(crate) fn number(sample: &Sample) -> f64 {
    match &sample.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
        other => panic!("{} is not a number: {other:?}", sample.metric),
    }
}

/// The value of the one sample of `metric` with `labels`.
pub(crate) fn value(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let found = find(scrape, metric, labels);
    assert!(found.len() <= 1, "{metric} {labels:?}: {found:?}");
    found.first().map(|s| number(s))
}

#[test]
fn metrics_parse_with_a_prometheus_parser() {
    let rig = super::rig_published();
    let n = rig.number;
    // Something to count: a delivery queued, one refused.
    let body = super::gitlab_issue_hook(n, &rig.body(), crate::gitlab_server::PROJECT);
    let headers = super::gitlab_headers(super::SECRET, "metrics-1");
    assert_eq!(rig.post("/hooks/gitlab", &headers, body.clone()).0, 202);
    let wrong = super::gitlab_headers("wrong", "metrics-2");
    assert_eq!(rig.post("/hooks/gitlab", &wrong, body).0, 401);

    let (status, text) = rig.get("/metrics");
    assert_eq!(status, 200);
    let scrape = parse(&text);
    // Families without samples yet are not written; those written have their type and
    // help.
    for (family, kind, always) in [
        ("shepherd_transitions", "counter", false),
        ("shepherd_migrations", "gauge", true),
        ("shepherd_webhook_deliveries", "counter", true),
        ("shepherd_advances", "counter", false),
        ("shepherd_gate_evaluations", "counter", false),
        ("shepherd_errors", "counter", false),
        ("shepherd_resyncs", "counter", false),
        ("shepherd_queue_depth", "gauge", true),
        ("shepherd_queue_age_seconds", "gauge", true),
        ("shepherd_failing_migrations", "gauge", true),
    ] {
        let written = text.contains(&format!("# TYPE {family} "));
        assert!(written || !always, "{family} is written: {text}");
        if written {
            assert!(
                text.contains(&format!("# TYPE {family} {kind}\n")),
                "{family} is a {kind}: {text}"
            );
            assert!(scrape.docs.contains_key(family), "{family} has help");
        }
    }
    let delivery = |result| {
        value(
            &scrape,
            "shepherd_webhook_deliveries_total",
            &[("source", "gitlab"), ("result", result)],
        )
    };
    assert_eq!(delivery("queued"), Some(1.0));
    assert_eq!(delivery("unauthorized"), Some(1.0));
    assert_eq!(value(&scrape, "shepherd_queue_depth", &[]), Some(1.0));
    assert_eq!(
        value(&scrape, "shepherd_failing_migrations", &[]),
        Some(0.0)
    );
    let staged = find(
        &scrape,
        "shepherd_migrations",
        &[("workflow", "gitaly-migration"), ("stage", "selection")],
    );
    assert_eq!(staged.len(), 1, "{staged:?}");
    assert_eq!(staged[0].labels.get("tracker"), Some(rig.local.as_str()));
    assert_eq!(number(staged[0]), 1.0);
    assert!(matches!(staged[0].value, Value::Gauge(_)));
}
