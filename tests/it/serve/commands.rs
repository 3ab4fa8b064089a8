//! Comment commands through the service (DESIGN §12): GitLab's Note Hook names the issue;
//! the service acts on the command and answers it once, even when the same delivery comes
//! twice and when two replicas, each with its own Store, get it at once (the claim on the
//! tracker keeps the first answer); a Guest's command is refused with a reply that says
//! why.

use std::time::Duration;

use serde_json::Value;

use super::{gitlab_lab, read_fixture, serve_on_gitlab, SECRET};
use crate::api::Api;
use crate::gitlab_server::PROJECT;

/// GitLab's Note Hook example: note `id` with `text` on issue `iid`, whose body is `body`.
fn note_hook(iid: u64, body: &str, id: u64, text: &str) -> Vec<u8> {
    let mut v: Value = read_fixture("gitlab/webhooks/note_issue.json");
    v["object_attributes"]["id"] = id.into();
    v["object_attributes"]["note"] = text.into();
    v["issue"]["iid"] = iid.into();
    v["issue"]["description"] = body.into();
    v["project"]["path_with_namespace"] = PROJECT.into();
    serde_json::to_vec(&v).unwrap()
}

fn note_headers(uuid: &str) -> Vec<(&str, &str)> {
    vec![
        ("x-gitlab-token", SECRET),
        ("x-gitlab-event", "Note Hook"),
        ("x-gitlab-event-uuid", uuid),
        ("content-type", "application/json"),
    ]
}

#[test]
fn a_command_delivered_twice_to_two_replicas_is_acted_on_and_answered_once() {
    let lab = gitlab_lab();
    lab.server.set_member("dev", 30);
    lab.server.set_member("guest", 10);
    let n = lab.start();
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = serve_on_gitlab(&lab, one.path(), &[]);
    let b = serve_on_gitlab(&lab, two.path(), &[]);
    let answers = |id: u64| {
        lab.server
            .comment_bodies(n)
            .iter()
            .filter(|c| shepherd::core::command::answer_of(c) == Some(id))
            .count()
    };

    let text = "/shepherd pause waiting for the DBA";
    let id = lab.server.comment_as(n, "dev", text);
    let body = note_hook(n, &lab.server.body(n), id, text);
    let headers = note_headers("5f0c8a52-note-1");
    assert_eq!(a.post("/hooks/gitlab", &headers, &body).0, 202);
    assert_eq!(b.post("/hooks/gitlab", &headers, &body).0, 202);
    // The same delivery again, to one replica: acknowledged, not queued.
    assert_eq!(a.post("/hooks/gitlab", &headers, &body).0, 200);
    a.wait_for("the pause", || {
        lab.labels(n).iter().any(|l| l == "shepherd::paused") && answers(id) == 1
    });
    // Both replicas are done with it: one answer stays, one label event.
    for s in [&a, &b] {
        s.wait_for("the queue to empty", || {
            let (_, m) = s.get("/metrics");
            super::sample(&m, "shepherd_queue_depth") == Some(0.0)
        });
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(answers(id), 1, "{:?}", lab.server.comment_bodies(n));
    assert_eq!(lab.server.label_added_count(n, "shepherd::paused"), 1);

    // A Guest may not resume: one reply that says why, and the migration stays paused.
    let text = "/shepherd resume";
    let id = lab.server.comment_as(n, "guest", text);
    let body = note_hook(n, &lab.server.body(n), id, text);
    assert_eq!(
        b.post("/hooks/gitlab", &note_headers("5f0c8a52-note-2"), &body)
            .0,
        202
    );
    b.wait_for("the refusal", || answers(id) == 1);
    let refusal = lab
        .server
        .comment_bodies(n)
        .into_iter()
        .find(|c| shepherd::core::command::answer_of(c) == Some(id))
        .unwrap();
    assert!(
        refusal.starts_with("@guest may not resume: needs Developer access (has Guest access)"),
        "{refusal}"
    );
    assert!(lab.labels(n).iter().any(|l| l == "shepherd::paused"));
}

/// GitHub's `issue_comment` (created) example: comment `id` with `text` on issue `n`.
fn issue_comment(n: u64, body: &str, id: u64, text: &str) -> Vec<u8> {
    use crate::github_server::{OWNER, REPO};
    let mut v: Value = read_fixture("github/webhooks/issue_comment.created.0.json");
    v["issue"]["number"] = n.into();
    v["issue"]["body"] = body.into();
    v["issue"]["pull_request"] = Value::Null;
    if let Some(issue) = v["issue"].as_object_mut() {
        issue.remove("pull_request");
    }
    v["comment"]["id"] = id.into();
    v["comment"]["body"] = text.into();
    v["repository"]["full_name"] = format!("{OWNER}/{REPO}").into();
    v["repository"]["name"] = REPO.into();
    serde_json::to_vec(&v).unwrap()
}

#[test]
fn a_github_issue_comment_command_is_acted_on_at_once_and_answered_once() {
    let (hub, tracker) = super::github::github_lab();
    hub.server.set_permission("octo-dev", "write");
    let n = hub.start();
    let dir = tempfile::tempdir().unwrap();
    let service = super::github::serve_github(dir.path(), &hub, &tracker);
    let text = "/shepherd pause the proto needs a review";
    let id = hub.server.comment_as(n, "octo-dev", text);
    let body = issue_comment(n, &hub.server.body(n), id, text);
    let deliver = || {
        let delivery = "d7e5a1c0-cc78-11e3-81ab-4c9367dc0958";
        super::github::deliver(&service, "issue_comment", delivery, &body).0
    };
    assert_eq!(deliver(), 202);
    service.wait_for("the pause", || {
        hub.labels(n).iter().any(|l| l == "shepherd::paused")
    });
    assert_eq!(deliver(), 200);
    let answers = hub
        .server
        .comment_bodies(n)
        .iter()
        .filter(|c| shepherd::core::command::answer_of(c) == Some(id))
        .count();
    assert_eq!(answers, 1);
}

/// A workflow whose stage opens a plain child issue (no workflow of its own).
fn write_plain_workflow(dir: &std::path::Path) {
    crate::support::write_workflow(
        dir,
        "plain",
        "name: plain\ntracking: {template: plain}\nstages:\n  - id: work\n    label: \"plain::work\"\n    on_enter:\n      - create_issue: {template: task}\n    gates: [{label: done}]\n    next: finished\n  - id: finished\n    label: \"plain::finished\"\n    terminal: true\n",
        &[("plain", "---\ntitle: \"A plain migration\"\n---\nThe work.\n"), ("task", "---\ntitle: \"A task of {{parent.title}}\"\n---\n- [ ] Do it\n")],
    );
}

/// A command on a plain child issue (one with no workflow of its own) is for its
/// migration: the service acts on it through the parent's advance and answers it once,
/// on the child.
#[test]
fn a_command_on_a_plain_child_issue_is_acted_on_by_the_service() {
    let lab = gitlab_lab();
    lab.server.set_member("dev", 30);
    write_plain_workflow(lab.dir());
    let n = lab.json(&["start", "plain"])["ref"].as_u64().unwrap();
    let child = lab
        .server
        .issues()
        .iter()
        .filter_map(|i| i["iid"].as_u64())
        .find(|i| *i != n)
        .expect("the child issue");
    let dir = tempfile::tempdir().unwrap();
    write_plain_workflow(dir.path());
    let s = serve_on_gitlab(&lab, dir.path(), &[]);
    let answers = |id: u64| {
        lab.server
            .comment_bodies(child)
            .iter()
            .filter(|c| shepherd::core::command::answer_of(c) == Some(id))
            .count()
    };
    let text = "/shepherd pause the task needs a second look";
    let id = lab.server.comment_as(child, "dev", text);
    let body = note_hook(child, &lab.server.body(child), id, text);
    assert_eq!(
        s.post("/hooks/gitlab", &note_headers("7a1c-child-note"), &body)
            .0,
        202
    );
    s.wait_for("the pause of the migration", || {
        lab.labels(n).iter().any(|l| l == "shepherd::paused") && answers(id) == 1
    });
    s.wait_for("the queue to empty", || {
        let (_, m) = s.get("/metrics");
        super::sample(&m, "shepherd_queue_depth") == Some(0.0)
    });
    assert_eq!(answers(id), 1, "{:?}", lab.server.comment_bodies(child));
    assert!(!lab.labels(child).iter().any(|l| l == "shepherd::paused"));
}
