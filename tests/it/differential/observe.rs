//! What a world's tracker shows after a step, read from the tracker itself (the local
//! tracker's file, the test server's state; never through shepherd): each migration's
//! stage history from its audit comments, its labels, boxes and children. `Seen::summary`
//! is what both worlds must agree on, with no issue number in it (numbers are each
//! world's own); `Seen::problems` are what no world may ever show: a duplicate audit or
//! action comment, a child opened twice for one entry or without its own number, a stage
//! label added more often than the stage was entered, a migration with no single stage.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use shepherd::core::checklist::{self, ItemRef};
use shepherd::core::marker::{IssueMarker, TransitionMarker};
use shepherd::tracker::{StateFilter, Tracker};

use super::world::{Server, World};
use crate::support::block_on;

/// One issue as the tracker holds it.
#[derive(Clone, Debug)]
pub struct Issue {
    pub number: u64,
    pub title: String,
    pub body: String,
    pub labels: Vec<String>,
    pub open: bool,
    pub comments: Vec<String>,
    /// How many times each label was added.
    pub label_adds: BTreeMap<String, usize>,
}

/// Everything a world's tracker shows.
pub struct Seen {
    pub issues: BTreeMap<u64, Issue>,
}

const STAGES: [&str; 6] = ["plan", "review", "build", "soak", "rollout", "done"];

fn stage_label(stage: &str) -> String {
    format!("df::{stage}")
}

impl Seen {
    pub fn read(world: &World) -> Seen {
        let issues = match &world.server {
            Server::Local => local(world),
            Server::Lab(s) => s
                .issues()
                .iter()
                .map(|i| {
                    let n = i["iid"].as_u64().unwrap();
                    let mut adds = BTreeMap::new();
                    for e in s.events(n).iter().filter(|e| e["action"] == "add") {
                        let name = e["label"]["name"].as_str().unwrap_or_default();
                        *adds.entry(name.to_string()).or_insert(0) += 1;
                    }
                    Issue {
                        number: n,
                        title: i["title"].as_str().unwrap_or_default().to_string(),
                        body: i["description"].as_str().unwrap_or_default().to_string(),
                        labels: crate::api::Api::label_names(s, n),
                        open: i["state"] == "opened",
                        comments: crate::api::Api::comment_bodies(s, n),
                        label_adds: adds,
                    }
                })
                .collect(),
            Server::Hub(s) => s
                .issues()
                .iter()
                .filter(|i| i.get("pull_request").is_none_or(|p| p.is_null()))
                .map(|i| {
                    let n = i["number"].as_u64().unwrap();
                    let mut adds = BTreeMap::new();
                    for e in s.timeline(n).iter().filter(|e| e["event"] == "labeled") {
                        let name = e["label"]["name"].as_str().unwrap_or_default();
                        *adds.entry(name.to_string()).or_insert(0) += 1;
                    }
                    Issue {
                        number: n,
                        title: i["title"].as_str().unwrap_or_default().to_string(),
                        body: i["body"].as_str().unwrap_or_default().to_string(),
                        labels: crate::api::Api::label_names(s, n),
                        open: i["state"] == "open",
                        comments: crate::api::Api::comment_bodies(s, n),
                        label_adds: adds,
                    }
                })
                .collect(),
        };
        Seen {
            issues: issues.into_iter().map(|i| (i.number, i)).collect(),
        }
    }

    /// The transitions recorded on issue `n`, in order of their sequence numbers.
    pub fn transitions(&self, n: u64) -> Vec<TransitionMarker> {
        let mut all: Vec<TransitionMarker> = self.issues[&n]
            .comments
            .iter()
            .filter_map(|c| TransitionMarker::find(c))
            .collect();
        all.sort_by_key(|t| t.seq);
        all
    }

    /// The children of issue `n`, oldest first, with their markers.
    pub fn children(&self, n: u64) -> Vec<(&Issue, IssueMarker)> {
        self.issues
            .values()
            .filter_map(|i| IssueMarker::find(&i.body).map(|m| (i, m)))
            .filter(|(_, m)| m.parent == Some(n))
            .collect()
    }

    /// The newest child of issue `n`.
    pub fn newest_child(&self, n: u64) -> Option<u64> {
        self.children(n).iter().map(|(i, _)| i.number).max()
    }

    /// Migration `n` as both worlds must show it: no issue numbers, no times, no run ids.
    pub fn summary(&self, n: u64) -> String {
        let issue = &self.issues[&n];
        let mut out = String::new();
        let history: Vec<String> = self
            .transitions(n)
            .iter()
            .map(|t| {
                let back = if t.rollback { " (rollback)" } else { "" };
                let untick: Vec<&str> = t.untick.iter().map(|i| i.1.as_str()).collect();
                format!(
                    "{}: {} > {}{back} untick {untick:?}",
                    t.seq,
                    t.from.as_deref().unwrap_or("-"),
                    t.to
                )
            })
            .collect();
        let _ = writeln!(out, "  history: {history:?}");
        let mut labels = issue.labels.clone();
        labels.sort();
        let _ = writeln!(out, "  labels: {labels:?}, open: {}", issue.open);
        let _ = writeln!(out, "  boxes: {}", boxes(&issue.body));
        for (child, marker) in self.children(n) {
            let _ = writeln!(
                out,
                "  child of entry {:?} {:?}, open: {}, boxes: {}",
                marker.entry,
                child.title,
                child.open,
                boxes(&child.body)
            );
        }
        out
    }

    /// What must never be seen on migration `n` (its issue and children). `settled`: the
    /// last run finished (not killed), so whatever a run began is done.
    pub fn problems(&self, n: u64, settled: bool) -> Vec<String> {
        let mut out = Vec::new();
        let mut numbers = vec![n];
        numbers.extend(self.children(n).iter().map(|(i, _)| i.number));
        for number in &numbers {
            let issue = &self.issues[number];
            let mut markers: Vec<&str> = issue
                .comments
                .iter()
                .filter_map(|b| {
                    let (_, m) = b.rsplit_once("<!-- shepherd:")?;
                    let m = m.split(' ').next().unwrap();
                    (m.starts_with("transition=") || m.starts_with("action=")).then_some(m)
                })
                .collect();
            markers.sort();
            let all = markers.len();
            markers.dedup();
            if markers.len() != all {
                out.push(format!("#{number} has a duplicate audit or action comment"));
            }
        }
        let mut entries: BTreeMap<(Option<String>, Option<u64>), Vec<u64>> = BTreeMap::new();
        for (child, marker) in self.children(n) {
            entries
                .entry((marker.template.clone(), marker.entry))
                .or_default()
                .push(child.number);
            let own = format!("This is #{}.", child.number);
            if settled && !child.body.contains(&own) {
                out.push(format!("child #{} lacks its own number", child.number));
            }
        }
        for ((template, entry), kids) in entries {
            if kids.len() > 1 {
                out.push(format!(
                    "{template:?} opened {} times for entry {entry:?}: {kids:?}",
                    kids.len()
                ));
            }
        }
        let issue = &self.issues[&n];
        let history = self.transitions(n);
        for stage in STAGES {
            let label = stage_label(stage);
            let adds = issue.label_adds.get(&label).copied().unwrap_or(0);
            let entered = history.iter().filter(|t| t.to == stage).count();
            if adds > entered {
                out.push(format!("{label} added {adds} times for {entered} entries"));
            }
        }
        let stages: Vec<&String> = issue
            .labels
            .iter()
            .filter(|l| l.starts_with("df::"))
            .collect();
        if settled && stages.len() != 1 {
            out.push(format!("#{n} has stage labels {stages:?}"));
        }
        out
    }

    /// Whether item `text` of issue `n` is ticked (`None`: no such item).
    pub fn ticked(&self, n: u64, text: &str) -> Option<bool> {
        checklist::parse(&self.issues.get(&n)?.body)
            .iter()
            .find(|i| i.text == text)
            .map(|i| i.done())
    }
}

/// The rollback untick lists recorded on a migration, by sequence number.
pub fn unticks(transitions: &[TransitionMarker]) -> Vec<(u64, Vec<ItemRef>)> {
    transitions
        .iter()
        .filter(|t| !t.untick.is_empty())
        .map(|t| (t.seq, t.untick.clone()))
        .collect()
}

fn boxes(body: &str) -> String {
    checklist::parse(body)
        .iter()
        .map(|i| format!("[{}] {}", if i.done() { "x" } else { " " }, i.text))
        .collect::<Vec<_>>()
        .join(", ")
}

fn local(world: &World) -> Vec<Issue> {
    let tracker = shepherd::tracker::local::LocalTracker::open(&world.db(), false, None, "test")
        .expect("the local tracker opens");
    block_on(async {
        let mut out = Vec::new();
        for i in tracker.list_issues(StateFilter::All, &[]).await.unwrap() {
            let comments = tracker.comments(i.number).await.unwrap();
            let mut adds = BTreeMap::new();
            for e in tracker.label_events(i.number).await.unwrap() {
                if e.added {
                    *adds.entry(e.label).or_insert(0) += 1;
                }
            }
            out.push(Issue {
                number: i.number,
                title: i.title,
                body: i.body,
                labels: i.labels,
                open: i.open,
                comments: comments.into_iter().map(|c| c.body).collect(),
                label_adds: adds,
            });
        }
        out
    })
}
