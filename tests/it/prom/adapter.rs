//! shepherd's Prometheus adapter (`shepherd::metric_source::prometheus`) against a real
//! Prometheus (`PromHarness`), and, for what Prometheus itself does not do (check a bearer
//! token, fail with a 5xx, hang), against small servers on 127.0.0.1.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::Router;
use chrono::Utc;
use shepherd::core::facts::{MetricAnswer, MetricQuestion, MetricSeries};
use shepherd::core::promql;
use shepherd::metric_source::prometheus::Prometheus;
use shepherd::metric_source::MetricSource;

use super::{block_on, free_port, PromHarness};

/// The adapter for `url`: connect timeout 1 s, request timeout 2 s, retries 10 ms apart.
fn adapter(url: &str, token: Option<&str>) -> Arc<Prometheus> {
    let p = Prometheus::new(
        url,
        token.map(String::from),
        Duration::from_secs(1),
        Duration::from_secs(2),
    )
    .expect("a good URL")
    .with_retries(shepherd::http::retry::Policy {
        attempts: 3,
        min_delay: Duration::from_millis(10),
        ..shepherd::http::retry::Policy::for_services()
    });
    Arc::new(p)
}

fn ask(p: &Arc<Prometheus>, query: &str, window: Option<chrono::Duration>) -> MetricAnswer {
    let (p, question) = (
        p.clone(),
        MetricQuestion {
            query: query.to_string(),
            window,
        },
    );
    block_on(async move { p.ask(&question).await })
}

/// The one series of an answer, or a failure that shows the answer.
fn series(answer: MetricAnswer) -> MetricSeries {
    match answer {
        MetricAnswer::Series(s) => s,
        other => panic!("expected one series, got {other:?}"),
    }
}

fn values(s: &MetricSeries) -> Vec<f64> {
    s.samples.iter().map(|(_, v)| *v).collect()
}

#[test]
fn instant_queries_answer_one_series_no_data_or_many() {
    let Some(prom) = PromHarness::start() else {
        return;
    };
    let weird = "a\"b\\c\n}";
    prom.set("shepherd_test_error_rate", &[("flag", "x")], 0.002);
    prom.set("shepherd_test_error_rate", &[("flag", "y")], 0.5);
    prom.set("shepherd_test_error_rate", &[("flag", weird)], 0.25);
    prom.set("shepherd_test_nan", &[], f64::NAN);
    prom.wait_until(
        "count(shepherd_test_error_rate) + count(shepherd_test_nan)",
        |s| s.first().is_some_and(|s| s.value == 4.0),
    );
    let p = adapter(&prom.url(), None);

    let before = Utc::now();
    let one = series(ask(&p, r#"shepherd_test_error_rate{flag="x"}"#, None));
    assert_eq!(values(&one), [0.002]);
    assert!(one.asked_at >= before && one.asked_at <= Utc::now());
    // An instant query's sample is stamped with Prometheus's moment of evaluation.
    let gap = (one.samples[0].0 - one.asked_at).abs();
    assert!(gap < chrono::Duration::seconds(2), "{gap}");
    assert!(
        one.graph_url.starts_with(&format!(
            "{}/graph?g0.expr=shepherd_test_error_rate%7Bflag%3D%22x%22%7D&g0.tab=0&g0.end_input=",
            prom.url()
        )),
        "{}",
        one.graph_url
    );

    assert_eq!(
        ask(&p, r#"shepherd_test_error_rate{flag="none"}"#, None),
        MetricAnswer::NoData
    );
    let MetricAnswer::Many(sets) = ask(&p, "shepherd_test_error_rate", None) else {
        panic!("three series")
    };
    assert_eq!(sets.len(), 3, "{sets:?}");
    let port = prom.exporter_url().rsplit(':').next().unwrap().to_string();
    assert!(
        sets.contains(&format!(
            r#"shepherd_test_error_rate{{flag="x", instance="127.0.0.1:{port}", job="exporter"}}"#
        )),
        "{sets:?}"
    );
    assert!(
        sets.iter().any(|s| s.contains(r#"flag="a\"b\\c\n}""#)),
        "label values escaped, on one line: {sets:?}"
    );

    let nan = series(ask(&p, "shepherd_test_nan", None));
    assert_eq!(nan.samples.len(), 1);
    assert!(nan.samples[0].1.is_nan(), "NaN is kept: {nan:?}");

    // A value of the migration, rendered into the query, matches exactly that label value;
    // one that tries to end the string matches nothing.
    let template = r#"shepherd_test_error_rate{flag="{{flag}}"}"#;
    let render = |v: &str| promql::render(template, &[("flag".into(), v.into())].into()).unwrap();
    assert_eq!(values(&series(ask(&p, &render(weird), None))), [0.25]);
    assert_eq!(
        ask(&p, &render(r#"x"} or vector(1) #"#), None),
        MetricAnswer::NoData
    );

    let MetricAnswer::Unavailable(why) = ask(&p, "rate(shepherd_test_nan[5m]", None) else {
        panic!("a bad query is refused")
    };
    assert!(
        why.starts_with(&format!(
            "Prometheus at {} rejected the query: invalid parameter \"query\": ",
            prom.url()
        )) && why.contains("parse error"),
        "{why}"
    );

    // A removed series goes stale: the query that matched two now matches one.
    prom.remove("shepherd_test_error_rate", &[("flag", "y")]);
    prom.remove("shepherd_test_error_rate", &[("flag", weird)]);
    prom.wait_until("count(shepherd_test_error_rate)", |s| {
        s.first().is_some_and(|s| s.value == 1.0)
    });
    assert_eq!(
        values(&series(ask(&p, "shepherd_test_error_rate", None))),
        [0.002]
    );
}

#[test]
fn range_queries_return_every_sample_oldest_first() {
    let Some(prom) = PromHarness::start() else {
        return;
    };
    let query = r#"shepherd_test_error_rate{flag="x"}"#;
    prom.set("shepherd_test_error_rate", &[("flag", "x")], 1.0);
    prom.wait_until(query, |s| s.len() == 1);
    std::thread::sleep(Duration::from_millis(2000));
    prom.set("shepherd_test_error_rate", &[("flag", "x")], 2.0);
    prom.wait_until(query, |s| s.first().is_some_and(|s| s.value == 2.0));
    std::thread::sleep(Duration::from_millis(1000));

    let p = adapter(&prom.url(), None);
    let window = chrono::Duration::seconds(3);
    let s = series(ask(&p, query, Some(window)));
    // From now - 3 s to now, one point a second.
    assert_eq!(s.samples.len(), 4, "{s:?}");
    for pair in s.samples.windows(2) {
        assert_eq!(pair[1].0 - pair[0].0, chrono::Duration::seconds(1), "{s:?}");
    }
    let v = values(&s);
    assert_eq!((v[0], v[3]), (1.0, 2.0), "{v:?}");
    assert!(v.windows(2).all(|w| w[0] <= w[1]), "{v:?}");
    assert!(s.asked_at - s.samples[3].0 < chrono::Duration::milliseconds(100));
    assert!(
        s.graph_url.contains("&g0.range_input=3s&"),
        "{}",
        s.graph_url
    );

    // A window longer than the series' life has the points there are: one step is 8 s
    // over 30 min, so here one or two.
    let long = series(ask(&p, query, Some(chrono::Duration::minutes(30))));
    assert!((1..=2).contains(&long.samples.len()), "{long:?}");
    assert_eq!(long.samples.last().map(|s| s.1), Some(2.0));
    assert_eq!(
        ask(&p, r#"absent_series{a="b"}"#, Some(window)),
        MetricAnswer::NoData
    );
}

#[test]
fn a_closed_port_is_unavailable_at_once() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let p = adapter(&url, None);
    let started = Instant::now();
    let MetricAnswer::Unavailable(why) = ask(&p, "up", None) else {
        panic!("nothing listens there")
    };
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(
        why.starts_with(&format!(
            "Prometheus at {url} does not answer: cannot connect: "
        )) && why.ends_with(" (3 tries)"),
        "{why}"
    );
    assert!(
        !why.contains("query="),
        "the URL with its query is left out: {why}"
    );
}

#[test]
fn a_server_that_never_answers_is_unavailable_after_the_timeout() {
    let url = crate::test_server::serve(
        Router::new().route("/api/v1/query", get(crate::test_server::never)),
    );
    let p = adapter(&url, None);
    let started = Instant::now();
    assert_eq!(
        ask(&p, "up", None),
        MetricAnswer::Unavailable(format!(
            "Prometheus at {url} does not answer: no answer within 2 s"
        ))
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(4),
        "{took:?}"
    );
}

/// A stand-in for a Prometheus behind a proxy that checks a bearer token: the headers it
/// was sent, and how many answers are still to fail with 503.
#[derive(Clone, Default)]
struct Canned {
    seen: Arc<Mutex<Vec<Option<String>>>>,
    failures: Arc<Mutex<usize>>,
}

const TOKEN: &str = "s3cr3t-prometheus-token";

/// The documented example of an instant query's answer, one series.
const ONE_SERIES: &str = r#"{"status":"success","data":{"resultType":"vector","result":[
    {"metric":{"__name__":"up","job":"prometheus","instance":"localhost:9090"},
     "value":[1435781451.781,"1"]}]}}"#;

impl Canned {
    fn serve(&self) -> String {
        let me = self.clone();
        let answer = move |headers: HeaderMap| {
            let me = me.clone();
            async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .map(String::from);
                me.seen.lock().unwrap().push(auth.clone());
                {
                    let mut failures = me.failures.lock().unwrap();
                    if *failures > 0 {
                        *failures -= 1;
                        return (
                            StatusCode::SERVICE_UNAVAILABLE,
                            r#"{"status":"error","errorType":"unavailable","error":"too busy"}"#
                                .to_string(),
                        );
                    }
                }
                if auth.as_deref() == Some(&format!("Bearer {TOKEN}")) {
                    (StatusCode::OK, ONE_SERIES.to_string())
                } else {
                    // A careless proxy that repeats what it was sent.
                    (
                        StatusCode::UNAUTHORIZED,
                        format!("bad credentials: {}", auth.unwrap_or_default()),
                    )
                }
            }
        };
        crate::test_server::serve(
            Router::new()
                .route("/api/v1/query", get(answer.clone()))
                .route("/api/v1/query_range", get(answer)),
        )
    }

    fn seen(&self) -> Vec<Option<String>> {
        self.seen.lock().unwrap().clone()
    }
}

#[test]
fn the_bearer_token_is_sent_and_never_shown() {
    let canned = Canned::default();
    let url = canned.serve();

    let p = adapter(&url, Some(TOKEN));
    assert!(!p.describe().contains(TOKEN));
    let answers = [
        ask(&p, "up", None),
        ask(&p, "up", Some(chrono::Duration::minutes(5))),
    ];
    for answer in &answers {
        let s = series(answer.clone());
        assert_eq!(values(&s), [1.0]);
        assert!(!format!("{answer:?}").contains(TOKEN));
    }
    assert_eq!(
        canned.seen(),
        vec![Some(format!("Bearer {TOKEN}")); 2],
        "sent as a bearer token on every request"
    );

    // A token the server refuses: the answer says so, without the token it repeated.
    let wrong = format!("{TOKEN}-old");
    let p = adapter(&url, Some(&wrong));
    let MetricAnswer::Unavailable(why) = ask(&p, "up", None) else {
        panic!("refused")
    };
    assert_eq!(
        why,
        format!(
            "Prometheus at {url} refused shepherd (401 Unauthorized: bad credentials: Bearer \
             [token]); check PROMETHEUS_TOKEN"
        )
    );
    assert!(!why.contains(TOKEN), "{why}");

    // No token, no header.
    let p = adapter(&url, None);
    assert!(matches!(ask(&p, "up", None), MetricAnswer::Unavailable(_)));
    assert_eq!(canned.seen().last(), Some(&None));
}

#[test]
fn server_errors_are_tried_again_a_few_times() {
    let canned = Canned::default();
    let url = canned.serve();
    let p = adapter(&url, Some(TOKEN));

    *canned.failures.lock().unwrap() = 2;
    assert_eq!(values(&series(ask(&p, "up", None))), [1.0]);
    assert_eq!(canned.seen().len(), 3, "two 503s, then the answer");

    *canned.failures.lock().unwrap() = 5;
    assert_eq!(
        ask(&p, "up", None),
        MetricAnswer::Unavailable(format!(
            "Prometheus at {url} does not answer: 503 Service Unavailable: too busy (3 tries)"
        ))
    );
    assert_eq!(canned.seen().len(), 6);
}
