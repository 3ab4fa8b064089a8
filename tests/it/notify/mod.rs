//! Notifications (DESIGN §12) on the local tracker: a test sink on 127.0.0.1 that records
//! every request and checks Slack/Mattermost payloads strictly, CloudEvents parsed by the
//! CloudEvents Python SDK, events exactly once per sink with ids stable across a retry,
//! `notify test`, a sink's URL never printed, and kill -9 at random moments.

mod events;
mod kill;
mod outbox;
mod service;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::Router;
use serde_json::Value;

use crate::support::Shepherd;

/// In every sink's path: it must never reach stdout or stderr.
pub const TOKEN: &str = "T0KEN-s3cr3t-9f8e7d";

/// One request a sink received, and what it answered.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub status: u16,
}

/// A test sink: answers 200, or `fail` (a status) to the first N requests on a path, after
/// an optional delay; records everything.
#[derive(Clone, Default)]
pub struct SinkServer {
    log: Arc<Mutex<Vec<Received>>>,
    fail: Arc<Mutex<HashMap<String, (u16, usize)>>>,
    delay: Duration,
}

impl SinkServer {
    /// Starts one on a free port; returns it and its base URL.
    pub fn start(delay: Duration) -> (SinkServer, String) {
        let sink = SinkServer {
            delay,
            ..SinkServer::default()
        };
        let app = Router::new().fallback(hook).with_state(sink.clone());
        let url = crate::test_server::serve(app);
        (sink, url)
    }

    /// The next `times` requests on `path` are answered `status`.
    pub fn fail(&self, path: &str, status: u16, times: usize) {
        self.fail
            .lock()
            .unwrap()
            .insert(path.to_string(), (status, times));
    }

    /// What `path` received, in order.
    pub fn received(&self, path: &str) -> Vec<Received> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }
}

async fn hook(
    State(sink): State<SinkServer>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    if !sink.delay.is_zero() {
        tokio::time::sleep(sink.delay).await;
    }
    let path = uri.path().to_string();
    let status = {
        let mut fail = sink.fail.lock().unwrap();
        match fail.get_mut(&path) {
            Some((status, times)) if *times > 0 => {
                *times -= 1;
                *status
            }
            _ => 200,
        }
    };
    sink.log.lock().unwrap().push(Received {
        path,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
            .collect(),
        body: body.to_vec(),
        status,
    });
    StatusCode::from_u16(status).unwrap()
}

/// A small workflow of three stages, each left by ticking its section.
const WORKFLOW: &str = r#"
name: note
variables: {n: {default: x}}
tracking: {template: note, labels: [note]}
stages:
  - id: draft
    label: "note::draft"
    gates: [{checklist: {section: Draft}}]
    next: review
  - id: review
    label: "note::review"
    gates: [{checklist: {section: Review}}]
    next: done
  - id: done
    label: "note::done"
    terminal: true
"#;

const TEMPLATE: &str =
    "---\ntitle: \"Note {{n}}\"\n---\n## Draft\n- [ ] Write it\n\n## Review\n- [ ] Read it\n";

/// A project with the `note` workflow and `toml` as its shepherd.toml.
pub fn project(toml: &str) -> Shepherd {
    project_with(toml, false)
}

/// `project`, with every box of a new note ticked (`ticked`): it moves to the end at once.
pub fn project_with(toml: &str, ticked: bool) -> Shepherd {
    let s = Shepherd::new();
    let dir = s.dir.path();
    let template = match ticked {
        true => TEMPLATE.replace("[ ]", "[x]"),
        false => TEMPLATE.to_string(),
    };
    crate::support::write_workflow(dir, "note", WORKFLOW, &[("note", &template)]);
    std::fs::write(dir.join("shepherd.toml"), toml).unwrap();
    s
}

/// shepherd on `s`'s tracker with `env` set, quick retries of failed sends.
pub fn command(s: &Shepherd, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_shepherd"));
    c.current_dir(s.dir.path())
        .env_remove("SHEPHERD_TRACKER")
        .env("USER", "tester")
        .env("SHEPHERD_NOTIFY_RETRY_MS", "0")
        .envs(env.iter().copied())
        .arg("--tracker")
        .arg(format!("local:{}", s.db().display()))
        .args(args);
    c
}

/// Runs, checks that no sink URL was printed, and returns the output.
pub fn run(s: &Shepherd, args: &[&str], env: &[(&str, &str)]) -> Output {
    let out = command(s, args, env).output().expect("shepherd runs");
    assert_no_token(&out);
    out
}

/// Runs and expects success; returns stdout.
pub fn ok(s: &Shepherd, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = run(s, args, env);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "shepherd {args:?} failed:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

pub fn assert_no_token(out: &Output) {
    for (name, stream) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let text = String::from_utf8_lossy(stream);
        assert!(
            !text.contains(TOKEN),
            "the sink's URL is in {name}:\n{text}"
        );
    }
}

/// The tracker's name in event ids and CloudEvents `source`.
pub fn tracker(s: &Shepherd) -> String {
    format!("local:{}", s.db().display())
}

/// The ids of the transitions recorded on the tracker for migration `number` (its audit
/// comments), as the events about them are named.
pub fn recorded(s: &Shepherd, number: u64) -> Vec<String> {
    s.comments(number)
        .iter()
        .filter_map(|c| shepherd::core::marker::TransitionMarker::find(&c.body))
        .map(|m| {
            let kind = if m.rollback { "rollback" } else { "transition" };
            format!("{}/{number}/{kind}/{}", tracker(s), m.seq)
        })
        .collect()
}

/// Checks a Slack (or Mattermost) incoming-webhook request strictly and returns its event
/// id: JSON, `text` ending with the id, `blocks` a `section` of mrkdwn text and a last
/// `context` block whose last mrkdwn element ends with the id, and nothing else.
pub fn slack_id(r: &Received) -> String {
    let content_type = header(r, "content-type");
    assert_eq!(content_type.as_deref(), Some("application/json"), "{r:?}");
    let v: Value = serde_json::from_slice(&r.body).expect("a JSON body");
    let keys: Vec<&String> = v.as_object().expect("an object").keys().collect();
    assert_eq!(keys, ["text", "blocks"], "{v}");
    let text = v["text"].as_str().expect("text");
    let blocks = v["blocks"].as_array().expect("blocks");
    assert!(!blocks.is_empty() && blocks.len() <= 50, "{v}");
    let section = &blocks[0];
    assert_eq!(section["type"], "section", "{v}");
    assert_eq!(section.as_object().unwrap().len(), 2, "{v}");
    assert_eq!(section["text"]["type"], "mrkdwn");
    let said = section["text"]["text"].as_str().expect("section text");
    assert!(!said.is_empty() && said.chars().count() <= 3000, "{v}");
    let context = blocks.last().unwrap();
    assert_eq!(context["type"], "context", "{v}");
    assert_eq!(context.as_object().unwrap().len(), 2, "{v}");
    let elements = context["elements"].as_array().expect("elements");
    assert!(!elements.is_empty() && elements.len() <= 10, "{v}");
    for e in elements {
        assert_eq!(e["type"], "mrkdwn", "{v}");
        assert_eq!(e.as_object().unwrap().len(), 2, "{v}");
    }
    let last = elements.last().unwrap()["text"]
        .as_str()
        .expect("context text");
    let id = last
        .rsplit_once("event ")
        .map(|(_, id)| id.to_string())
        .expect("the context ends with `event ID`");
    assert!(text.ends_with(&id), "the text ends with the id: {text}");
    id
}

pub fn header(r: &Received, name: &str) -> Option<String> {
    r.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
}

/// The Python that has the CloudEvents SDK: `.ci/venv` (what CI installs), else a
/// `python3` that can import it. Missing: the test is skipped, or fails when `CI` is set.
pub fn cloudevents_python(test: &str) -> Option<PathBuf> {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".ci/venv/bin/python");
    if venv.is_file() {
        return Some(venv);
    }
    let has = Command::new("python3")
        .args(["-c", "import cloudevents.http"])
        .output()
        .is_ok_and(|o| o.status.success());
    if has {
        return Some(PathBuf::from("python3"));
    }
    let message = format!(
        "skipped {test}: the CloudEvents Python SDK is not installed (.ci/run puts it in .ci/venv)"
    );
    assert!(
        std::env::var_os("CI").is_none(),
        "{message}, and CI is set, so it is required"
    );
    println!("{message}");
    None
}

/// Each request parsed by the CloudEvents SDK (`cloudevents.http.from_http`, which reads
/// structured mode from the headers and body): its attributes and data, as JSON.
pub fn parse_cloudevents(python: &PathBuf, requests: &[Received]) -> Vec<Value> {
    const SCRIPT: &str = r#"
import json, sys
from cloudevents.http import from_http
out = []
for r in json.load(sys.stdin):
    e = from_http(r["headers"], r["body"].encode())
    attrs = dict(e.get_attributes())
    out.append({"attributes": {k: str(v) for k, v in attrs.items()}, "data": e.data})
print(json.dumps(out))
"#;
    let input: Vec<Value> = requests
        .iter()
        .map(|r| {
            let headers: serde_json::Map<String, Value> = r
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            serde_json::json!({"headers": headers, "body": String::from_utf8_lossy(&r.body)})
        })
        .collect();
    let mut child = Command::new(python)
        .args(["-c", SCRIPT])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python runs");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(Value::Array(input).to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the CloudEvents SDK refused a request:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the script's JSON")
}
