//! A real Prometheus for tests: `PromHarness::start()` serves a small exporter on 127.0.0.1
//! whose series the test sets and removes at any time, and runs Debian's `prometheus`
//! (`.ci/run` installs it) scraping it every second, with its storage in a temporary
//! directory, on a free port of 127.0.0.1; dropping the harness kills it. Without the
//! `prometheus` binary the test is skipped with one line saying so, unless `CI` is set
//! (`support::tool`). `adapter.rs` holds the tests of shepherd's Prometheus adapter.
//!
//! ```ignore
//! let Some(prom) = PromHarness::start() else { return };
//! prom.set("shepherd_test_error_rate", &[("flag", "x")], 0.002);
//! prom.wait_until(r#"shepherd_test_error_rate{flag="x"}"#, |s| s.len() == 1);
//! // point shepherd at prom.url() (`[prometheus] url`)
//! ```

#![allow(dead_code)]

mod adapter;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;

use crate::support;
pub use crate::support::block_on_apart as block_on;

/// How long `start` waits for Prometheus to be ready and to have scraped once.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long `wait_until` waits by default.
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(20);

/// A Prometheus scraping an exporter the test controls, both on 127.0.0.1.
pub struct PromHarness {
    child: Child,
    url: String,
    exporter: Exporter,
    exporter_url: String,
    dir: tempfile::TempDir,
}

/// One sample of an instant vector, as the API returned it.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Every label, `__name__` included, and the `job`/`instance` that Prometheus adds
    /// (`job="exporter"`).
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl PromHarness {
    /// Starts the exporter and Prometheus, and waits until Prometheus is ready and has
    /// scraped the exporter once. `None` (after one line saying so) when `prometheus` is not
    /// installed and `CI` is not set; with `CI` set, a missing binary fails the test.
    pub fn start() -> Option<PromHarness> {
        let current = std::thread::current();
        let test = current.name().unwrap_or("a Prometheus test");
        let binary = support::tool(
            test,
            "prometheus",
            "the metric tests run a real Prometheus: apt-get install --no-install-recommends prometheus",
        )?;
        let exporter = Exporter::default();
        let exporter_url = crate::test_server::serve(exporter.router());
        // A free port may be taken between finding it and Prometheus binding it: try again.
        let mut last = String::new();
        for _ in 0..3 {
            match PromHarness::launch(&binary, &exporter, &exporter_url) {
                Ok(harness) => return Some(harness),
                Err(why) => last = why,
            }
        }
        panic!("Prometheus did not start: {last}");
    }

    fn launch(
        binary: &Path,
        exporter: &Exporter,
        exporter_url: &str,
    ) -> Result<PromHarness, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let target = exporter_url.trim_start_matches("http://");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: exporter\n    static_configs:\n      \
             - targets: ['{target}']\n"
        );
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).map_err(|e| e.to_string())?;
        let port = free_port();
        let log =
            std::fs::File::create(dir.path().join("prometheus.log")).map_err(|e| e.to_string())?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
        let mut harness = PromHarness {
            child,
            url: format!("http://127.0.0.1:{port}"),
            exporter: exporter.clone(),
            exporter_url: exporter_url.to_string(),
            dir,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = harness.child.try_wait() {
                return Err(format!("it exited ({status}):\n{}", harness.log()));
            }
            if matches!(http_get(&format!("{}/-/ready", harness.url)), Ok((200, _))) {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "not ready within {START_TIMEOUT:?}:\n{}",
                    harness.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        harness.wait_until_within(
            r#"up{job="exporter"} == 1"#,
            |s| s.len() == 1,
            START_TIMEOUT,
        );
        Ok(harness)
    }

    /// Prometheus's address, as `[prometheus] url` takes it: `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The exporter's address (`/metrics` is its one page).
    pub fn exporter_url(&self) -> String {
        self.exporter_url.clone()
    }

    /// Sets the series `name{labels}` to `value` (NaN and infinities too), from the next
    /// scrape on. Prometheus adds `job="exporter"` and `instance` to its labels.
    pub fn set(&self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.exporter.set(name, labels, value);
    }

    /// Removes the series: from the next scrape on, Prometheus marks it stale and an instant
    /// query no longer returns it.
    pub fn remove(&self, name: &str, labels: &[(&str, &str)]) {
        self.exporter.remove(name, labels);
    }

    /// Waits until Prometheus has taken in what the exporter serves now: two more scrapes
    /// (the first may have begun before the last change; the second begins after the first
    /// was stored).
    pub fn settle(&self) {
        let from = self.exporter.scrapes();
        let deadline = Instant::now() + WAIT_TIMEOUT;
        while self.exporter.scrapes() < from + 2 {
            assert!(
                Instant::now() < deadline,
                "Prometheus did not scrape the exporter twice within {WAIT_TIMEOUT:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Polls the instant query `query` until `done` holds for its answer (every 200 ms, at
    /// most `WAIT_TIMEOUT`); returns that answer. Fails clearly with the last answer.
    pub fn wait_until(&self, query: &str, done: impl Fn(&[Sample]) -> bool) -> Vec<Sample> {
        self.wait_until_within(query, done, WAIT_TIMEOUT)
    }

    /// `wait_until` with a timeout of the caller's.
    pub fn wait_until_within(
        &self,
        query: &str,
        done: impl Fn(&[Sample]) -> bool,
        timeout: Duration,
    ) -> Vec<Sample> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = self.query(query);
            if let Ok(samples) = &last {
                if done(samples) {
                    return samples.clone();
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "waited {timeout:?} for `{query}` on Prometheus at {} to answer as \
                     expected; the last answer: {last:?}\nPrometheus's log:\n{}",
                    self.url,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The instant vector `query` returns now (a scalar as one sample without labels), or
    /// what went wrong.
    pub fn query(&self, query: &str) -> Result<Vec<Sample>, String> {
        let url =
            url::Url::parse_with_params(&format!("{}/api/v1/query", self.url), [("query", query)])
                .map_err(|e| e.to_string())?;
        let (status, body) = http_get(url.as_str())?;
        let json: serde_json::Value =
            serde_json::from_str(&body).map_err(|e| format!("{status} {e}: {body}"))?;
        if json["status"] != "success" {
            return Err(format!("{status}: {body}"));
        }
        let number = |point: &serde_json::Value| -> Result<f64, String> {
            point[1]
                .as_str()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("not a sample: {point}"))
        };
        match json["data"]["resultType"].as_str() {
            Some("vector") => json["data"]["result"]
                .as_array()
                .ok_or_else(|| body.clone())?
                .iter()
                .map(|s| {
                    Ok(Sample {
                        labels: serde_json::from_value(s["metric"].clone())
                            .map_err(|e| e.to_string())?,
                        value: number(&s["value"])?,
                    })
                })
                .collect(),
            Some("scalar") => Ok(vec![Sample {
                labels: BTreeMap::new(),
                value: number(&json["data"]["result"])?,
            }]),
            _ => Err(format!("not an instant vector: {body}")),
        }
    }

    /// What Prometheus has logged (warnings and errors).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }
}

impl Drop for PromHarness {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The exporter's state: each series' exposition line (without its value) and value, and
/// how many times `/metrics` was served.
#[derive(Clone, Default)]
struct Exporter {
    series: Arc<Mutex<BTreeMap<String, f64>>>,
    scrapes: Arc<AtomicU64>,
}

impl Exporter {
    fn router(&self) -> Router {
        let me = self.clone();
        Router::new().route(
            "/metrics",
            get(move || {
                let me = me.clone();
                async move {
                    let text = me.exposition();
                    me.scrapes.fetch_add(1, Ordering::SeqCst);
                    (
                        [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
                        text,
                    )
                }
            }),
        )
    }

    fn set(&self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.lock().insert(series_key(name, labels), value);
    }

    fn remove(&self, name: &str, labels: &[(&str, &str)]) {
        self.lock().remove(&series_key(name, labels));
    }

    fn scrapes(&self) -> u64 {
        self.scrapes.load(Ordering::SeqCst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, f64>> {
        self.series.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The text exposition format: `name{label="value",…} 0.002`, one line a series.
    fn exposition(&self) -> String {
        self.lock()
            .iter()
            .map(|(key, value)| format!("{key} {}\n", number(*value)))
            .collect()
    }
}

/// `name{a="1",b="2"}`, label values escaped as the exposition format wants.
fn series_key(name: &str, labels: &[(&str, &str)]) -> String {
    let mut labels = labels.to_vec();
    labels.sort();
    let labels: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            let v = v
                .replace('\\', r"\\")
                .replace('"', r#"\""#)
                .replace('\n', r"\n");
            format!("{k}=\"{v}\"")
        })
        .collect();
    format!("{name}{{{}}}", labels.join(","))
}

/// A value as the exposition format writes it.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        v.to_string()
    }
}

/// A port of 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

/// A GET with a 5 s timeout: its status and body.
fn http_get(url: &str) -> Result<(u16, String), String> {
    let url = url.to_string();
    block_on(async move {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| e.to_string())?;
        let response = client.get(&url).send().await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(|e| e.to_string())?;
        Ok((status, body))
    })
}
