//! Prometheus's HTTP API (`/api/v1/query`, `/api/v1/query_range`) on a reqwest client of
//! shepherd's own: a question at this instant is an instant query, one over a window a range
//! query from `now - window` to `now` (wall clock) with a step that gives at most about 250
//! points. The answer is data, never an error: no series, several, a refused query and a
//! server that does not answer each have their `MetricAnswer`, with a message that names
//! the server and says what happened.
//!
//! A connection that fails, a 5xx and a 429 are tried again a couple of times with a short
//! backoff (backon, with jitter); a request that runs out of its timeout is not, since
//! another try would only wait as long again. The tracker's `Retrier` is not used: it is
//! built for rate limits, long announced waits and tracker errors, none of which a
//! Prometheus query has. The bearer token (`PROMETHEUS_TOKEN`) goes only into the
//! `Authorization` header and is taken out of every message.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::MetricSource;
use crate::core::facts::{MetricAnswer, MetricQuestion, MetricSeries};
use crate::core::promql;
use crate::http::retry::Policy;
use crate::http::retry::{chain, redact, seconds};
use crate::http::service;

/// A range query asks for at most about this many points.
pub const MAX_POINTS: i64 = 250;

/// `Many` lists at most this many label sets, then how many more there were.
pub const MANY_SHOWN: usize = 10;

/// A Prometheus server's HTTP API.
pub struct Prometheus {
    client: reqwest::Client,
    /// The URL as configured, without a trailing `/` (it may hold user info, which reqwest
    /// sends as basic authentication).
    base: String,
    /// The URL for people: without user info. Messages and graph links use it.
    shown: String,
    token: Option<http::HeaderValue>,
    /// The token's text, taken out of every message.
    secret: String,
    timeout: Duration,
    retries: Policy,
}

impl Prometheus {
    /// A client for the Prometheus at `url` (`http(s)://HOST[:PORT][/PATH]`, the address
    /// its web UI has), sending `token`, if any, as a bearer token. `connect_timeout` bounds
    /// setting up a connection, `timeout` each whole request.
    pub fn new(
        url: &str,
        token: Option<String>,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<Prometheus, String> {
        let address = service::address(url, "Prometheus")?;
        let secret = token.unwrap_or_default();
        let token = service::authorization(&secret, |t| format!("Bearer {t}"), "PROMETHEUS_TOKEN")?;
        let client = service::client(connect_timeout, timeout)?;
        Ok(Prometheus {
            client,
            base: address.url.as_str().trim_end_matches('/').to_string(),
            shown: address.shown,
            token,
            secret,
            timeout,
            retries: Policy::for_services(),
        })
    }

    /// The same client with other retries (tests use short ones).
    pub fn with_retries(mut self, retries: Policy) -> Prometheus {
        self.retries = retries.at_least_once();
        self
    }

    /// The URL as people may see it (no user info, no token).
    pub fn url(&self) -> &str {
        &self.shown
    }

    /// The request for `question` at wall-clock `now`: the API path and its parameters.
    fn request(&self, question: &MetricQuestion, now: DateTime<Utc>) -> Result<url::Url, String> {
        let range = question.window.and_then(|w| range(w, now));
        let path = if range.is_some() {
            "query_range"
        } else {
            "query"
        };
        let mut url = url::Url::parse(&format!("{}/api/v1/{path}", self.base))
            .map_err(|e| format!("cannot make the API address: {e}"))?;
        {
            let mut pairs = url.query_pairs_mut();
            pairs.append_pair("query", &question.query);
            if let Some(r) = range {
                pairs
                    .append_pair("start", &r.start)
                    .append_pair("end", &r.end)
                    .append_pair("step", &r.step.to_string());
            }
        }
        Ok(url)
    }

    /// One GET, and what came of it.
    async fn get_once(&self, url: &url::Url) -> Result<Vec<u8>, Trouble> {
        let mut request = self.client.get(url.clone());
        if let Some(token) = &self.token {
            request = request.header(http::header::AUTHORIZATION, token.clone());
        }
        let response = request.send().await.map_err(|e| self.transport(e))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| self.transport(e))?;
        if status.is_success() {
            return Ok(body.to_vec());
        }
        let said = error_text(&body);
        let code = status.as_u16();
        Err(match code {
            400 | 422 => match api_error(&body) {
                Some(error) => Trouble::Rejected(error),
                None => Trouble::Other(format!("answered {status}: {said}")),
            },
            429 | 500..=599 => Trouble::Down {
                message: format!("{status}: {said}"),
                retry: true,
            },
            401 | 403 => Trouble::Other(format!(
                "refused shepherd ({status}: {said}); check PROMETHEUS_TOKEN"
            )),
            _ => Trouble::Other(format!("answered {status}: {said}")),
        })
    }

    /// A request that got no whole answer. A timeout is not tried again: the next try
    /// would wait as long.
    fn transport(&self, e: reqwest::Error) -> Trouble {
        if e.is_timeout() {
            return Trouble::Down {
                message: format!("no answer within {}", seconds(self.timeout)),
                retry: false,
            };
        }
        let what = if e.is_connect() {
            "cannot connect"
        } else {
            "the request failed"
        };
        // The URL holds the query, already known; the message needs only the cause.
        let e = e.without_url();
        Trouble::Down {
            message: format!("{what}: {}", chain(&e)),
            retry: true,
        }
    }

    /// GETs `url`, trying again a couple of times after a failure worth it.
    async fn get(&self, url: &url::Url) -> Result<Vec<u8>, Trouble> {
        let mut delays = self.retries.delays();
        let mut tries = 0;
        loop {
            tries += 1;
            let trouble = match self.get_once(url).await {
                Ok(body) => return Ok(body),
                Err(trouble) => trouble,
            };
            let next = match &trouble {
                Trouble::Down { retry: true, .. } => delays.next(),
                _ => None,
            };
            let Some(delay) = next else {
                return Err(match trouble {
                    Trouble::Down { message, retry } if retry && tries > 1 => Trouble::Down {
                        message: format!("{message} ({tries} tries)"),
                        retry,
                    },
                    other => other,
                });
            };
            if let Trouble::Down { message, .. } = &trouble {
                tracing::warn!(
                    "{}",
                    self.redact(&format!(
                        "Prometheus at {}: {message}; trying again in {delay:?}",
                        self.shown
                    ))
                );
            }
            tokio::time::sleep(delay).await;
        }
    }

    fn redact(&self, text: &str) -> String {
        redact(text, &self.secret)
    }

    /// What a failure tells a person, naming the server.
    fn unavailable(&self, trouble: Trouble) -> MetricAnswer {
        let text = match trouble {
            Trouble::Down { message, .. } => {
                format!("Prometheus at {} does not answer: {message}", self.shown)
            }
            Trouble::Rejected(error) => {
                format!("Prometheus at {} rejected the query: {error}", self.shown)
            }
            Trouble::Other(message) => format!("Prometheus at {} {message}", self.shown),
        };
        MetricAnswer::Unavailable(self.redact(&text))
    }
}

#[async_trait]
impl MetricSource for Prometheus {
    fn describe(&self) -> String {
        format!("Prometheus at {}", self.shown)
    }

    async fn ask(&self, question: &MetricQuestion) -> MetricAnswer {
        let now = Utc::now();
        let url = match self.request(question, now) {
            Ok(url) => url,
            Err(e) => return self.unavailable(Trouble::Other(e)),
        };
        tracing::debug!(
            "Prometheus at {}: {} {:?} over {:?}",
            self.shown,
            url.path(),
            question.query,
            question.window
        );
        let body = match self.get(&url).await {
            Ok(body) => body,
            Err(trouble) => return self.unavailable(trouble),
        };
        let graph = graph_url(&self.shown, &question.query, question.window, now);
        match answer(&body, now, graph) {
            Ok(answer) => answer,
            Err(trouble) => self.unavailable(trouble),
        }
    }
}

/// Why a question got no answer.
#[derive(Debug, PartialEq)]
enum Trouble {
    /// No answer, a 5xx or a 429: `retry` when another try may do better.
    Down { message: String, retry: bool },
    /// Prometheus answered `status: error` to the query: its error.
    Rejected(String),
    /// Anything else (a refused token, a wrong address, an answer that is not the API's):
    /// the rest of a sentence that starts with the server.
    Other(String),
}

/// The parameters of a range query.
#[derive(Debug, PartialEq)]
struct Range {
    start: String,
    end: String,
    /// Seconds.
    step: i64,
}

/// The range query for `window` up to `now`: a step of whole seconds, at least 1, that
/// gives at most about `MAX_POINTS` points. `None` for an empty or negative window, which
/// is a question about this instant.
fn range(window: chrono::Duration, now: DateTime<Utc>) -> Option<Range> {
    let millis = window.num_milliseconds();
    if millis <= 0 {
        return None;
    }
    let secs = (millis + 999) / 1000;
    let step = ((secs + MAX_POINTS - 1) / MAX_POINTS).max(1);
    let end = now.timestamp_millis();
    Some(Range {
        start: unix(end.saturating_sub(secs.saturating_mul(1000))),
        end: unix(end),
        step,
    })
}

/// Milliseconds since the epoch as Prometheus's API takes a time: seconds with a fraction.
fn unix(millis: i64) -> String {
    format!("{}.{:03}", millis.div_euclid(1000), millis.rem_euclid(1000))
}

/// A link to `query` in the graph page of the Prometheus at `base`: over `window` up to
/// `asked_at` (without a window, the page's own range up to `asked_at`), so that the link
/// shows what the gate saw, whenever it is opened.
pub fn graph_url(
    base: &str,
    query: &str,
    window: Option<chrono::Duration>,
    asked_at: DateTime<Utc>,
) -> String {
    let mut url = format!(
        "{}/graph?g0.expr={}&g0.tab=0",
        base.trim_end_matches('/'),
        crate::render::urlencode(query)
    );
    if let Some(w) = window.filter(|w| w.num_milliseconds() > 0) {
        url.push_str("&g0.range_input=");
        url.push_str(&prometheus_duration(w));
    }
    url.push_str("&g0.end_input=");
    url.push_str(&crate::render::urlencode(
        &asked_at.format("%Y-%m-%d %H:%M:%S").to_string(),
    ));
    url
}

/// A duration as Prometheus writes one: `2h`, `1h30m`, `1w`, `45s`; whole seconds, at least
/// one.
pub fn prometheus_duration(d: chrono::Duration) -> String {
    let mut left = ((d.num_milliseconds() + 999) / 1000).max(1);
    let mut out = String::new();
    for (unit, secs) in [
        ("w", 604_800),
        ("d", 86_400),
        ("h", 3_600),
        ("m", 60),
        ("s", 1),
    ] {
        if left >= secs {
            out.push_str(&format!("{}{unit}", left / secs));
            left %= secs;
        }
    }
    out
}

/// Prometheus's answer: `{"status": "success", "data": {"resultType": …, "result": …}}` or
/// `{"status": "error", "errorType": …, "error": …}`.
#[derive(Deserialize)]
struct Envelope {
    status: String,
    data: Option<Data>,
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum Data {
    Vector(Vec<Series>),
    Matrix(Vec<Series>),
    Scalar(Point),
    String(serde::de::IgnoredAny),
}

/// One series of a vector (`value`) or a matrix (`values`). Native histograms come as
/// `histogram`/`histograms`, which a threshold cannot compare.
#[derive(Deserialize)]
struct Series {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    value: Option<Point>,
    #[serde(default)]
    values: Vec<Point>,
    histogram: Option<serde_json::Value>,
    #[serde(default)]
    histograms: Vec<serde_json::Value>,
}

/// `[unix seconds, "value"]`.
type Point = (f64, String);

/// Reads the API's answer (`body`) into a `MetricAnswer`.
fn answer(
    body: &[u8],
    asked_at: DateTime<Utc>,
    graph_url: String,
) -> Result<MetricAnswer, Trouble> {
    let envelope: Envelope = serde_json::from_slice(body).map_err(|e| {
        Trouble::Other(format!(
            "answered something that is not its API's JSON ({e}): {}",
            error_text(body)
        ))
    })?;
    if envelope.status != "success" {
        return Err(Trouble::Rejected(
            envelope
                .error
                .unwrap_or_else(|| format!("status {}", envelope.status)),
        ));
    }
    let data = envelope
        .data
        .ok_or_else(|| Trouble::Other("answered `success` without `data`".to_string()))?;
    let mut series = match data {
        Data::Vector(s) | Data::Matrix(s) => s,
        Data::Scalar(point) => vec![Series {
            metric: BTreeMap::new(),
            value: Some(point),
            values: Vec::new(),
            histogram: None,
            histograms: Vec::new(),
        }],
        Data::String(_) => {
            return Err(Trouble::Other(
                "answered a string, not a number: the query must return one series".into(),
            ))
        }
    };
    match series.len() {
        0 => Ok(MetricAnswer::NoData),
        1 => {
            let one = series.remove(0);
            let points: Vec<Point> = one.value.into_iter().chain(one.values).collect();
            if points.is_empty() && (one.histogram.is_some() || !one.histograms.is_empty()) {
                return Err(Trouble::Other(format!(
                    "answered native histogram samples for {}, which no threshold compares: \
                     make the query return numbers (e.g. with histogram_quantile)",
                    label_set(&one.metric)
                )));
            }
            let mut samples = points
                .iter()
                .map(|(t, v)| sample(*t, v))
                .collect::<Result<Vec<_>, _>>()?;
            samples.sort_by_key(|(t, _)| *t);
            Ok(MetricAnswer::Series(MetricSeries {
                samples,
                asked_at,
                graph_url,
            }))
        }
        n => {
            let mut sets: Vec<String> = series
                .iter()
                .take(MANY_SHOWN)
                .map(|s| label_set(&s.metric))
                .collect();
            if n > MANY_SHOWN {
                sets.push(format!("… {} more", n - MANY_SHOWN));
            }
            Ok(MetricAnswer::Many(sets))
        }
    }
}

/// One sample: seconds since the epoch (with a fraction) and the value as Prometheus
/// writes it (`"0.002"`, `"NaN"`, `"+Inf"`, `"-Inf"`).
fn sample(time: f64, value: &str) -> Result<(DateTime<Utc>, f64), Trouble> {
    let bad = || {
        Trouble::Other(format!(
            "answered a sample that cannot be read: [{time}, {value:?}]"
        ))
    };
    let value: f64 = value.parse().map_err(|_| bad())?;
    if !time.is_finite() {
        return Err(bad());
    }
    let at = DateTime::from_timestamp_millis((time * 1000.0).round() as i64).ok_or_else(bad)?;
    Ok((at, value))
}

/// A series' labels as PromQL writes a selector, shortened: `name{a="1", b="2"}`.
fn label_set(metric: &BTreeMap<String, String>) -> String {
    let name = metric.get("__name__").map_or("", String::as_str);
    let labels: Vec<String> = metric
        .iter()
        .filter(|(k, _)| *k != "__name__")
        .map(|(k, v)| format!("{k}=\"{}\"", promql::escape(v)))
        .collect();
    shorten(&format!("{name}{{{}}}", labels.join(", ")), 120)
}

/// `text` cut to `max` characters, with `…` when it was longer.
fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// The `error` of an API error answer.
fn api_error(body: &[u8]) -> Option<String> {
    let envelope: Envelope = serde_json::from_slice(body).ok()?;
    (envelope.status == "error").then_some(envelope.error?)
}

/// What an error answer says: the API's `error`, else the start of the body, on one line.
fn error_text(body: &[u8]) -> String {
    if let Some(error) = api_error(body) {
        return error;
    }
    let text = String::from_utf8_lossy(body);
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.is_empty() {
        "(no body)".to_string()
    } else {
        shorten(&line, 200)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64, millis: u32) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, millis * 1_000_000).unwrap()
    }

    fn read(body: &str) -> Result<MetricAnswer, Trouble> {
        answer(body.as_bytes(), at(1_435_781_500, 0), "graph".into())
    }

    fn series(samples: &[(DateTime<Utc>, f64)]) -> MetricAnswer {
        MetricAnswer::Series(MetricSeries {
            samples: samples.to_vec(),
            asked_at: at(1_435_781_500, 0),
            graph_url: "graph".into(),
        })
    }

    /// The instant-query example of Prometheus's HTTP API documentation.
    const DOCUMENTED_VECTOR: &str = r#"{
       "status" : "success",
       "data" : {
          "resultType" : "vector",
          "result" : [
             {
                "metric" : { "__name__" : "up", "job" : "prometheus", "instance" : "localhost:9090" },
                "value": [ 1435781451.781, "1" ]
             },
             {
                "metric" : { "__name__" : "up", "job" : "node", "instance" : "localhost:9100" },
                "value" : [ 1435781451.781, "0" ]
             }
          ]
       }
    }"#;

    /// The range-query example of the same documentation, with one series.
    const DOCUMENTED_MATRIX: &str = r#"{
       "status" : "success",
       "data" : {
          "resultType" : "matrix",
          "result" : [
             {
                "metric" : { "__name__" : "up", "job" : "prometheus", "instance" : "localhost:9090" },
                "values" : [ [ 1435781430.781, "1" ], [ 1435781445.781, "1" ], [ 1435781460.781, "1" ] ]
             }
          ]
       }
    }"#;

    #[test]
    fn documented_answers_are_read() {
        assert_eq!(
            read(DOCUMENTED_VECTOR),
            Ok(MetricAnswer::Many(vec![
                r#"up{instance="localhost:9090", job="prometheus"}"#.into(),
                r#"up{instance="localhost:9100", job="node"}"#.into(),
            ]))
        );
        // Its first series alone.
        let mut one: serde_json::Value = serde_json::from_str(DOCUMENTED_VECTOR).unwrap();
        one["data"]["result"].as_array_mut().unwrap().truncate(1);
        assert_eq!(
            read(&one.to_string()),
            Ok(series(&[(at(1_435_781_451, 781), 1.0)]))
        );
        assert_eq!(
            read(DOCUMENTED_MATRIX),
            Ok(series(&[
                (at(1_435_781_430, 781), 1.0),
                (at(1_435_781_445, 781), 1.0),
                (at(1_435_781_460, 781), 1.0),
            ]))
        );
    }

    #[test]
    fn answers_of_every_shape() {
        let ok = |kind: &str, result: &str| {
            format!(r#"{{"status":"success","data":{{"resultType":"{kind}","result":{result}}}}}"#)
        };
        let cases: Vec<(String, Result<MetricAnswer, Trouble>)> = vec![
            (ok("vector", "[]"), Ok(MetricAnswer::NoData)),
            (ok("matrix", "[]"), Ok(MetricAnswer::NoData)),
            (
                ok("matrix", r#"[{"metric":{},"values":[[20,"3"],[10,"NaN"],[30,"+Inf"],[40,"-Inf"]]}]"#),
                Ok(series(&[
                    (at(10, 0), f64::NAN),
                    (at(20, 0), 3.0),
                    (at(30, 0), f64::INFINITY),
                    (at(40, 0), f64::NEG_INFINITY),
                ])),
            ),
            (
                ok("vector", r#"[{"metric":{"a":"x"},"value":[1.5,"2e-3"]}]"#),
                Ok(series(&[(at(1, 500), 0.002)])),
            ),
            (ok("scalar", r#"[7,"0.5"]"#), Ok(series(&[(at(7, 0), 0.5)]))),
            (
                ok("string", r#"[7,"text"]"#),
                Err(Trouble::Other(
                    "answered a string, not a number: the query must return one series".into(),
                )),
            ),
            (
                ok("vector", r#"[{"metric":{"a":"x"},"value":[1,"many"]}]"#),
                Err(Trouble::Other(
                    r#"answered a sample that cannot be read: [1, "many"]"#.into(),
                )),
            ),
            (
                ok("vector", r#"[{"metric":{"__name__":"h"},"histogram":[1,{"count":"2"}]}]"#),
                Err(Trouble::Other(
                    "answered native histogram samples for h{}, which no threshold compares: \
                     make the query return numbers (e.g. with histogram_quantile)"
                        .into(),
                )),
            ),
            (
                r#"{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected"}"#.into(),
                Err(Trouble::Rejected("1:5: parse error: unexpected".into())),
            ),
            (
                "<html>a proxy's\n page</html>".into(),
                Err(Trouble::Other(
                    "answered something that is not its API's JSON (expected value at line 1 \
                     column 1): <html>a proxy's page</html>"
                        .into(),
                )),
            ),
        ];
        for (body, expected) in cases {
            let got = read(&body);
            // NaN is not equal to itself: compare the samples' text.
            assert_eq!(format!("{got:?}"), format!("{expected:?}"), "{body}");
        }
    }

    #[test]
    fn many_series_are_listed_shortly() {
        let result: Vec<String> = (0..15)
            .map(|i| format!(r#"{{"metric":{{"i":"{i:02}","q":"a\"b\nc"}},"value":[1,"1"]}}"#))
            .collect();
        let body = format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
            result.join(",")
        );
        let Ok(MetricAnswer::Many(sets)) = read(&body) else {
            panic!("{body}")
        };
        assert_eq!(sets.len(), MANY_SHOWN + 1);
        assert_eq!(sets[0], r#"{i="00", q="a\"b\nc"}"#);
        assert_eq!(sets[MANY_SHOWN], "… 5 more");
        let long: BTreeMap<String, String> = [("a".to_string(), "x".repeat(200))].into();
        assert_eq!(label_set(&long).chars().count(), 121);
        assert!(label_set(&long).ends_with("xx…"));
    }

    #[test]
    fn a_window_makes_a_range_of_at_most_about_250_points() {
        let now = at(1_700_000_000, 250);
        let cases = [
            (chrono::Duration::zero(), None),
            (chrono::Duration::seconds(-5), None),
            (chrono::Duration::milliseconds(300), Some((1, 1))),
            (chrono::Duration::seconds(5), Some((5, 1))),
            (chrono::Duration::seconds(250), Some((250, 1))),
            (chrono::Duration::seconds(251), Some((251, 2))),
            (chrono::Duration::minutes(15), Some((900, 4))),
            (chrono::Duration::hours(2), Some((7200, 29))),
            (chrono::Duration::weeks(1), Some((604_800, 2420))),
        ];
        for (window, expected) in cases {
            let got = range(window, now);
            match expected {
                None => assert_eq!(got, None, "{window}"),
                Some((secs, step)) => {
                    let r = got.unwrap();
                    assert_eq!(r.end, "1700000000.250");
                    assert_eq!(r.start, unix(now.timestamp_millis() - secs * 1000));
                    assert_eq!(r.step, step, "{window}");
                    assert!(secs / step < MAX_POINTS + 1, "{window}");
                }
            }
        }
        assert_eq!(unix(-1), "-1.999");
    }

    #[test]
    fn graph_links_show_the_window_the_gate_saw() {
        let asked = at(1_767_261_600, 0);
        assert_eq!(
            graph_url(
                "http://prom:9090/",
                r#"rate(e{flag="a b"}[5m]) > 0.01"#,
                Some(chrono::Duration::hours(2)),
                asked
            ),
            "http://prom:9090/graph?g0.expr=rate%28e%7Bflag%3D%22a%20b%22%7D%5B5m%5D%29%20%3E%200.01\
             &g0.tab=0&g0.range_input=2h&g0.end_input=2026-01-01%2010%3A00%3A00"
        );
        assert_eq!(
            graph_url("https://h/prometheus", "up", None, asked),
            "https://h/prometheus/graph?g0.expr=up&g0.tab=0&g0.end_input=2026-01-01%2010%3A00%3A00"
        );
        for (secs, text) in [
            (0, "1s"),
            (1, "1s"),
            (45, "45s"),
            (900, "15m"),
            (5400, "1h30m"),
            (7200, "2h"),
            (86_400, "1d"),
            (604_800, "1w"),
            (694_861, "1w1d1h1m1s"),
        ] {
            assert_eq!(prometheus_duration(chrono::Duration::seconds(secs)), text);
        }
    }

    #[test]
    fn addresses_are_checked_and_shown_without_secrets() {
        let new = |url: &str, token: Option<&str>| {
            Prometheus::new(
                url,
                token.map(String::from),
                Duration::from_secs(1),
                Duration::from_secs(1),
            )
        };
        for (url, error) in [
            ("", "bad Prometheus URL ``: relative URL without a base"),
            (
                "prom:9090",
                "bad Prometheus URL `prom:9090`: write http(s)://HOST[:PORT][/PATH]",
            ),
            (
                "ftp://prom",
                "bad Prometheus URL `ftp://prom`: write http(s)://HOST[:PORT][/PATH]",
            ),
            (
                "http://prom:9090/?x=1",
                "bad Prometheus URL `http://prom:9090/?x=1`: no `?` or `#` part: write the \
                 address of Prometheus's web UI",
            ),
            (
                "http://u:pw@prom:99999",
                "bad Prometheus URL `http://prom:99999`: invalid port number",
            ),
        ] {
            assert_eq!(new(url, None).err().as_deref(), Some(error), "{url}");
        }
        let p = new("https://user:pw@prom.example/prometheus/", Some("s3cr3t")).unwrap();
        assert_eq!(p.url(), "https://prom.example/prometheus");
        assert_eq!(
            p.describe(),
            "Prometheus at https://prom.example/prometheus"
        );
        assert_eq!(p.base, "https://user:pw@prom.example/prometheus");
        assert_eq!(
            format!("{:?}", p.token),
            "Some(Sensitive)",
            "the header hides itself"
        );
        assert_eq!(p.redact("said s3cr3t"), "said [token]");
        assert_eq!(
            new("http://prom", Some("bad\ntoken")).err().as_deref(),
            Some("PROMETHEUS_TOKEN holds characters a header cannot carry")
        );
        assert!(new("http://prom", Some("")).unwrap().token.is_none());
    }

    #[test]
    fn questions_become_api_requests() {
        let p = Prometheus::new(
            "http://prom:9090/base/",
            None,
            Duration::from_secs(1),
            Duration::from_secs(1),
        )
        .unwrap();
        let now = at(1_700_000_000, 0);
        let q = |window| MetricQuestion {
            query: r#"up{a="b c"}"#.into(),
            window,
        };
        assert_eq!(
            p.request(&q(None), now).unwrap().as_str(),
            "http://prom:9090/base/api/v1/query?query=up%7Ba%3D%22b+c%22%7D"
        );
        assert_eq!(
            p.request(&q(Some(chrono::Duration::minutes(15))), now)
                .unwrap()
                .as_str(),
            "http://prom:9090/base/api/v1/query_range?query=up%7Ba%3D%22b+c%22%7D\
             &start=1699999100.000&end=1700000000.000&step=4"
        );
    }
}
