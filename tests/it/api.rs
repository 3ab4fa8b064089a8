//! What the tests and benchmarks need from either test server, so that one harness
//! (`remote.rs`) and one benchmark serve GitLab and GitHub alike.

#![allow(dead_code)] // the benchmark uses what the tests do not

use std::time::Duration;

use crate::github_server::GitHubServer;
use crate::gitlab_server::GitLabServer;

pub trait Api {
    fn url(&self) -> &str;
    /// The issue's body as the server stores it.
    fn body(&self, n: u64) -> String;
    fn label_names(&self, n: u64) -> Vec<String>;
    /// Creates an issue as a person would, without a request; returns its number.
    fn seed_issue(&self, title: &str, body: &str, labels: &[&str]) -> u64;
    fn requests(&self) -> usize;
    fn forget_requests(&self);
    fn latency(&self, d: Duration);
    /// Every issue's number.
    fn issue_numbers(&self) -> Vec<u64>;
    /// The bodies of issue `n`'s comments, oldest first.
    fn comment_bodies(&self, n: u64) -> Vec<String>;
    /// How many times `label` was added to issue `n`.
    fn label_added_count(&self, n: u64, label: &str) -> usize;
}

impl Api for GitLabServer {
    fn url(&self) -> &str {
        &self.url
    }
    fn body(&self, n: u64) -> String {
        self.issue(n)["description"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
    fn label_names(&self, n: u64) -> Vec<String> {
        self.issue(n)["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_string())
            .collect()
    }
    fn seed_issue(&self, title: &str, body: &str, labels: &[&str]) -> u64 {
        self.seed(title, body, labels, "shepherd-bot")
    }
    fn requests(&self) -> usize {
        self.log().len()
    }
    fn forget_requests(&self) {
        self.clear_log()
    }
    fn latency(&self, d: Duration) {
        self.set_latency(d)
    }
    fn issue_numbers(&self) -> Vec<u64> {
        self.issues()
            .iter()
            .filter_map(|i| i["iid"].as_u64())
            .collect()
    }
    fn comment_bodies(&self, n: u64) -> Vec<String> {
        self.notes(n)
            .iter()
            .map(|c| c["body"].as_str().unwrap_or_default().to_string())
            .collect()
    }
    fn label_added_count(&self, n: u64, label: &str) -> usize {
        self.events(n)
            .iter()
            .filter(|e| e["action"] == "add" && e["label"]["name"] == label)
            .count()
    }
}

impl Api for GitHubServer {
    fn url(&self) -> &str {
        &self.url
    }
    fn body(&self, n: u64) -> String {
        self.issue(n)["body"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
    fn label_names(&self, n: u64) -> Vec<String> {
        self.issue(n)["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["name"].as_str().unwrap().to_string())
            .collect()
    }
    fn seed_issue(&self, title: &str, body: &str, labels: &[&str]) -> u64 {
        self.seed(title, body, labels, "shepherd-bot", false)
    }
    fn requests(&self) -> usize {
        self.log().len()
    }
    fn forget_requests(&self) {
        self.clear_log()
    }
    fn latency(&self, d: Duration) {
        self.set_latency(d)
    }
    fn issue_numbers(&self) -> Vec<u64> {
        self.issues()
            .iter()
            .filter_map(|i| i["number"].as_u64())
            .collect()
    }
    fn comment_bodies(&self, n: u64) -> Vec<String> {
        self.comments(n)
            .iter()
            .map(|c| c["body"].as_str().unwrap_or_default().to_string())
            .collect()
    }
    fn label_added_count(&self, n: u64, label: &str) -> usize {
        self.timeline(n)
            .iter()
            .filter(|e| e["event"] == "labeled" && e["label"]["name"] == label)
            .count()
    }
}
