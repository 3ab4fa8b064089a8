//! The GitLab tracker against the stateful test server: the whole gitaly-migration through
//! the real binary and the real `gitlab` crate client, requests pinned one by one, no N+1,
//! faults and retries, crash recovery, quick actions, and GitLab's documented payloads.
//! `requests` calls the tracker API directly, request by request.

mod requests;

use std::process::Command;

use serde_json::Value;

use crate::gitlab_server::{Fault, GitLabServer, Logged, PROJECT};
use crate::remote::Remote;
use crate::support::{moved, moves, stderr, stdout};

const BOT: &str = "glpat-bot-0123456789";
const JACOB: &str = "glpat-jacob-0123456789";
const MALLORY: &str = "glpat-mallory-0123456789";

type Lab = Remote<GitLabServer>;

fn lab() -> Lab {
    let server = GitLabServer::start(&[
        (BOT, "shepherd-bot"),
        (JACOB, "jacobvosmaer-gitlab"),
        (MALLORY, "mallory"),
    ]);
    Remote::new(
        server,
        &format!("gitlab:{PROJECT}"),
        "--gitlab-url",
        "GITLAB_TOKEN",
        BOT,
    )
}

#[test]
fn a_gitaly_migration_runs_on_gitlab() {
    let lab = lab();
    let (n, v) = lab.started_into_acceptance_testing();
    let labels: Vec<String> = lab
        .server
        .labels()
        .iter()
        .map(|l| l["name"].as_str().unwrap().to_string())
        .collect();
    for l in [
        "Selection",
        "Migration:Mandatory",
        "Migration:Done",
        "Opt-In Approved",
        "existing-rpc",
        "shelve",
    ] {
        assert!(
            labels.contains(&l.to_string()),
            "label {l} created: {labels:?}"
        );
    }
    let child = v["created"][0].as_u64().unwrap();
    assert_eq!(
        lab.server.links(),
        [(n, child)],
        "the child is linked to its tracking issue"
    );
    let child_issue = lab.server.issue(child);
    let body = child_issue["description"].as_str().unwrap();
    assert!(
        !body.contains("/label ~\"Acceptance Testing\""),
        "the template's own quick action ran"
    );
    assert!(lab
        .labels(child)
        .contains(&"acceptance::preparation".to_string()));
    // Every stage move of the tracking issue was one PUT with add_labels and remove_labels.
    let log = lab.server.log();
    let moves_put: Vec<&Logged> = log
        .iter()
        .filter(|l| l.method == "PUT" && l.path.ends_with(&format!("/issues/{n}")))
        .collect();
    assert_eq!(moves_put.len(), 6);
    assert_eq!(
        moves_put[0].form,
        [
            ("add_labels".to_string(), "Migration Analysis".to_string()),
            ("remove_labels".to_string(), "Selection".to_string())
        ]
    );

    // The child: ticks and soak times, with the server's clock moved instead of --now.
    lab.child_to_complete(child);
    // GitLab's project flags (the default backend on GitLab) cannot hold the seed's
    // `GITALY_FIND_COMMIT`: each step says so and what to run, and no flag is made.
    let not_set: Vec<String> = lab
        .server
        .notes(child)
        .iter()
        .filter_map(|n| n["body"].as_str())
        .filter(|b| b.contains("🚩 `GITALY_FIND_COMMIT` was **not** set"))
        .map(|b| b.lines().next().unwrap().to_string())
        .collect();
    assert_eq!(not_set.len(), 4, "1, 5, 50 and 100 %: {not_set:#?}");
    assert!(
        not_set[0].contains("cannot hold that name")
            && not_set[0].contains("`/chatops run feature set GITALY_FIND_COMMIT 1`"),
        "{not_set:#?}"
    );
    assert!(lab.server.project_flag("GITALY_FIND_COMMIT").is_none());

    // Approval: mallory's label does not count, the maintainer's does.
    lab.acceptance_testing_to_done(n, MALLORY, JACOB);
    let history = lab.json(&["history", &n.to_string()]);
    assert_eq!(history["transitions"][7]["by"], "shepherd-bot");

    lab.reconcile_twice_writes_nothing();
}

/// Every write of `start` and of one move, with its form fields.
#[test]
fn each_write_is_pinned() {
    let lab = lab().cached();
    let n = lab.start();
    let log = lab.server.log();
    let label_posts: Vec<&Logged> = log
        .iter()
        .filter(|l| l.method == "POST" && l.path.ends_with("/labels"))
        .collect();
    assert_eq!(
        label_posts.len(),
        lab.server.labels().len(),
        "one POST per missing label"
    );
    let selection = label_posts
        .iter()
        .find(|l| l.form("name") == Some("Selection"))
        .unwrap();
    assert!(selection.form("color").unwrap().starts_with('#'));
    assert_eq!(
        selection.form("description"),
        Some("shepherd: gitaly-migration stage selection")
    );
    let rest: Vec<&Logged> = log
        .iter()
        .filter(|l| l.method != "GET" && !l.path.ends_with("/labels"))
        .collect();
    let shape: Vec<String> = rest
        .iter()
        .map(|l| format!("{} {}", l.method, l.path.rsplit("project/").next().unwrap()))
        .collect();
    assert_eq!(
        shape,
        ["POST issues", "POST issues/1/notes", "PUT issues/1"]
    );
    assert_eq!(rest[0].form("labels"), Some("Migration,Conversation"));
    assert!(rest[0]
        .form("title")
        .unwrap()
        .starts_with("Gitaly migration: CommitService::FindCommit"));
    assert!(rest[0]
        .form("description")
        .unwrap()
        .contains("<!-- shepherd:{\"workflow\":\"gitaly-migration\""));
    assert!(rest[1]
        .form("body")
        .unwrap()
        .contains("<!-- shepherd:transition=1 "));
    assert_eq!(
        rest[2].form,
        [("add_labels".to_string(), "Selection".to_string())]
    );

    lab.tick_section(n, "Selection");
    lab.server.clear_log();
    lab.advance(n);
    let log = lab.server.log();
    let shape: Vec<String> = log
        .iter()
        .map(|l| format!("{} {}", l.method, l.path.rsplit("project/").next().unwrap()))
        .collect();
    assert_eq!(
        shape,
        [
            "GET issues/1",
            // No children: Selection looks at none and no stage entered so far opens one.
            "GET issues/1/notes",
            // The workflow's labels were made sure of by `start` (kept in the Store).
            "POST issues/1/notes",
            // The claim: the audit comments read back (another run's may have come first).
            "GET issues/1/notes",
            // The move, whose response is the issue: nothing is read again.
            "PUT issues/1",
        ]
    );
    let put = log.iter().find(|l| l.method == "PUT").unwrap();
    assert_eq!(
        put.form,
        [
            ("add_labels".to_string(), "Migration Analysis".to_string()),
            ("remove_labels".to_string(), "Selection".to_string())
        ]
    );
    assert_eq!(
        log.iter()
            .find(|l| l.path.ends_with("/notes") && l.method == "GET")
            .unwrap()
            .query("per_page"),
        Some("100")
    );
}

#[test]
fn skip_shelve_and_rollback_on_gitlab() {
    let lab = lab();
    let a = lab.start();
    lab.tick_section(a, "Selection");
    lab.tick_section(a, "Migration Analysis");
    lab.ok_as(BOT, &["label", &a.to_string(), "--add", "existing-rpc"]);
    assert_eq!(
        moves(&lab.advance(a)),
        [
            "selection>migration-analysis",
            "migration-analysis>client-implementation"
        ]
    );
    let v = lab.json(&[
        "rollback",
        &a.to_string(),
        "--to",
        "selection",
        "--reason",
        "wrong route",
    ]);
    assert_eq!(moves(&v), ["client-implementation>selection"]);
    // A rollback pauses the migration and unticks what it went back over; let it move
    // on, on new ticks.
    lab.ok_as(BOT, &["resume", &a.to_string()]);
    assert_eq!(
        lab.json(&["history", &a.to_string()])["transitions"][3]["reason"],
        "wrong route"
    );
    assert!(crate::api::Api::body(&lab.server, a).contains("- [ ] "));
    lab.tick_section(a, "Selection");
    lab.ok_as(
        BOT,
        &[
            "label",
            &a.to_string(),
            "--remove",
            "existing-rpc",
            "--add",
            "shelve",
        ],
    );
    assert_eq!(
        moves(&lab.advance(a)),
        ["selection>migration-analysis", "migration-analysis>shelved"]
    );
    assert_eq!(lab.server.issue(a)["state"], "closed");
    assert!(!lab.labels(a).contains(&"shelve".to_string()));
}

#[test]
fn lists_are_filtered_and_paged_and_reconcile_makes_no_request_per_issue() {
    let lab = lab().cached();
    for _ in 0..3 {
        lab.start();
    }
    // 230 more migrations in Selection, created through the API as shepherd would.
    let first = lab.server.issue(1);
    let mut args = vec!["start", "gitaly-migration"];
    for var in ["feature_flag=F", "grpc_service=S", "grpc_method=M"] {
        args.extend(["--var", var]);
    }
    for _ in 0..230 {
        assert!(lab.run_as(BOT, &args).status.success());
    }
    let _ = first;
    lab.server.clear_log();
    let r = lab.json(&["reconcile"]);
    assert_eq!(r["migrations"].as_array().unwrap().len(), 233);
    let log = lab.server.log();
    let lists: Vec<&Logged> = log.iter().filter(|l| l.path.ends_with("/issues")).collect();
    // Two workflow label sets (Migration+Conversation, Acceptance Testing, feature flag): 3 pages + 1 + 1.
    assert!(
        lists
            .iter()
            .all(|l| l.query("per_page") == Some("100") && l.query("state") == Some("opened")),
        "{lists:?}"
    );
    let mut pages: Vec<&str> = lists
        .iter()
        .filter(|l| l.query("labels") == Some("Conversation,Migration"))
        .map(|l| l.query("page").unwrap())
        .collect();
    pages.sort();
    assert_eq!(
        pages,
        ["1", "2", "3"],
        "pages after the first are fetched side by side"
    );
    let other: Vec<&Logged> = log
        .iter()
        .filter(|l| !l.path.ends_with("/issues"))
        .collect();
    assert!(
        other.is_empty(),
        "no request per issue when nothing can move: {:?}",
        other.iter().map(|l| &l.path).collect::<Vec<_>>()
    );
    assert_eq!(
        log.len(),
        5,
        "list pages only (the first of them checks the token)"
    );
}

#[test]
fn label_history_is_fetched_only_where_a_gate_needs_it() {
    let lab = lab().cached();
    let a = lab.start();
    let b = lab.start();
    lab.tick_through_ready_for_testing(a);
    lab.advance(a);
    let events_read = |lab: &Lab| -> Vec<String> {
        lab.server
            .log()
            .iter()
            .filter(|l| l.path.ends_with("/resource_label_events"))
            .map(|l| l.path.clone())
            .collect()
    };
    // a waits for approval but has no approval label yet: who set it cannot matter, so
    // its history is not read; its child waits in Preparation (no gate needs history),
    // b in Selection (neither).
    lab.tick_section(a, "Acceptance Testing");
    lab.server.clear_log();
    lab.json(&["reconcile"]);
    assert_eq!(events_read(&lab), Vec::<String>::new());
    // The label is there now, set by someone who may not approve, but the child has not
    // completed: the approval cannot decide anything yet, so its history is still not
    // read. (`a_gitaly_migration_runs_on_gitlab` reads it once it can: "who may not
    // approve".)
    lab.ok_as(
        MALLORY,
        &["label", &a.to_string(), "--add", "Opt-In Approved"],
    );
    lab.server.clear_log();
    let r = lab.json(&["reconcile"]);
    assert_eq!(events_read(&lab), Vec::<String>::new());
    let entry = r["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["ref"] == a)
        .cloned()
        .unwrap();
    assert_eq!(entry["stage"], "acceptance-testing", "{r}");
    assert!(
        entry["blocked_by"].to_string().contains("completed"),
        "{entry}"
    );
    assert!(!lab.server.log().iter().any(|l| l
        .path
        .ends_with(&format!("/issues/{b}/resource_label_events"))));
}

#[test]
fn rate_limits_and_server_errors_are_retried() {
    let lab = lab().cached();
    let n = lab.start();
    lab.tick_section(n, "Selection");
    let issue = format!("/issues/{n}");
    lab.server
        .fail(Fault::status("PUT", &issue, 429, Some(1), 1));
    lab.server
        .fail(Fault::status("GET", "/notes", 502, None, 2));
    lab.server.clear_log();
    assert_eq!(moves(&lab.advance(n)), ["selection>migration-analysis"]);
    let log = lab.server.log();
    assert_eq!(
        log.iter().filter(|l| l.method == "PUT").count(),
        2,
        "the 429 was retried once"
    );
    assert_eq!(
        log.iter()
            .filter(|l| l.path.ends_with("/notes") && l.method == "GET")
            .count(),
        4,
        "two 502s, the read, and the claim's read-back after the audit comment"
    );
    // After the last retry: a clear error that names the request, never the token.
    lab.server
        .fail(Fault::status("GET", &issue, 503, None, 100));
    let err = lab.status_fails(n);
    assert!(
        err.contains(
            "GitLab request GET projects/group%2Fproject/issues/1 failed after 6 tries: 503"
        ),
        "{err}"
    );
}

#[test]
fn a_bad_token_is_a_clear_error_without_the_token() {
    let lab = lab();
    let out = lab.run_as("glpat-wrong-secret", &["status"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("cannot connect to GitLab"), "{err}");
    assert!(!err.contains("glpat-wrong-secret"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_shepherd"))
        .env_remove("GITLAB_TOKEN")
        .args([
            "--tracker",
            "gitlab:group/project",
            "--gitlab-url",
            &lab.server.url,
            "status",
        ])
        .output()
        .unwrap();
    assert!(stderr(&out).contains("GITLAB_TOKEN is not set"));
}

#[test]
fn a_lost_response_halfway_is_completed_without_duplicates() {
    let lab = lab();
    let n = lab.start();
    lab.tick_through_ready_for_testing(n);
    lab.advance(n);
    // Leave Ready for Testing; the child is created but its creation's response is lost,
    // and every later write fails too: the run stops halfway.
    lab.again_from_ready_for_testing(n, "retry");
    let faults = vec![
        Fault::lost("POST", "/issues", 500, 100),
        Fault::status("POST", &format!("/issues/{n}/notes"), 500, None, 100),
    ];
    lab.lost_halfway_is_completed(n, faults, |server| {
        let children: Vec<Value> = server
            .issues()
            .into_iter()
            .filter(|i| {
                i["description"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("\"parent\":{n},"))
            })
            .collect();
        let entries: std::collections::BTreeSet<String> = children
            .iter()
            .map(|c| {
                c["description"]
                    .as_str()
                    .unwrap()
                    .split("\"entry\":")
                    .nth(1)
                    .unwrap()[..3]
                    .to_string()
            })
            .collect();
        assert_eq!(
            children.len(),
            entries.len(),
            "one child per entry into the stage"
        );
    });
}

#[test]
fn untrusted_values_do_not_run_quick_actions() {
    let lab = lab();
    let n = lab.start_rollout(&[
        "feature_flag=my_flag",
        "feature_description=the thing\n/close\n/label ~hacked",
        // File, group and record separators, which a GitLab may read as line breaks.
        "team=\u{1c}/close\u{1d}/label ~hacked\u{1e}/unassign\u{9b}",
    ]);
    let issue = lab.server.issue(n);
    assert_eq!(issue["state"], "opened");
    assert!(!issue["labels"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l == "hacked"));
    let description = issue["description"].as_str().unwrap();
    assert!(description.contains("the thing /close /label ~hacked"));
    assert!(
        description.contains("- Team: \u{200B}/close/label ~hacked/unassign\n"),
        "{description}"
    );
    assert!(
        !description.chars().any(|c| c.is_control() && c != '\n'),
        "{description:?}"
    );
}

#[test]
fn documented_payloads_parse() {
    use shepherd::tracker::gitlab::{GlIssue, GlLabel, GlLabelEvent, GlNote};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gitlab/api");
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    for name in ["get_issue.json", "create_issue.json", "edit_issue.json"] {
        let issue: GlIssue = serde_json::from_str(&read(name)).unwrap();
        let issue: shepherd::tracker::Issue = issue.into();
        assert!(issue.number > 0 && !issue.url.is_empty(), "{name}");
    }
    let issues: Vec<GlIssue> = serde_json::from_str(&read("list_project_issues.json")).unwrap();
    assert!(!issues.is_empty());
    let notes: Vec<GlNote> = serde_json::from_str(&read("list_issue_notes.json")).unwrap();
    assert_eq!(notes.len(), 2);
    assert!(notes[0].system);
    let events: Vec<GlLabelEvent> =
        serde_json::from_str(&read("list_issue_resource_label_events.json")).unwrap();
    let events: Vec<_> = events
        .into_iter()
        .filter_map(GlLabelEvent::into_event)
        .collect();
    assert_eq!(
        (
            events[0].label.as_str(),
            events[0].added,
            events[0].actor.as_str()
        ),
        ("a1", true, "root")
    );
    let single: GlLabelEvent =
        serde_json::from_str(&read("go-gitlab/get_issue_resource_label_event.json")).unwrap();
    assert!(
        single.into_event().is_none(),
        "an event without a time is dropped, not misdated"
    );
    let labels: Vec<GlLabel> = serde_json::from_str(&read("list_labels.json")).unwrap();
    assert!(!labels.is_empty());
    for name in ["create_label.json", "edit_label.json"] {
        let _: GlLabel = serde_json::from_str(&read(name)).unwrap();
    }
    let periods: Vec<shepherd::tracker::gitlab::GlFreezePeriod> =
        serde_json::from_str(&read("list_freeze_periods.json")).unwrap();
    let period = shepherd::tracker::FreezePeriod::from(periods.into_iter().next().unwrap());
    assert_eq!(
        (
            period.start.as_str(),
            period.end.as_str(),
            period.timezone.as_str()
        ),
        ("0 23 * * 5", "0 8 * * 1", "UTC")
    );
}

/// Runs only with `SHEPHERD_LIVE_GITLAB=group/project` and `GITLAB_TOKEN` set.
#[test]
fn live_gitlab() {
    crate::remote::live("gitlab", "SHEPHERD_LIVE_GITLAB", "GITLAB_TOKEN");
}

#[test]
fn report_and_publish_on_gitlab() {
    let lab = lab();
    let n = lab.start();
    lab.ok_as(BOT, &["report", "--publish"]);
    lab.tick_section(n, "Selection");
    lab.advance(n);
    let html = lab.ok_as(BOT, &["report", "--format", "html"]);
    assert!(html.contains("class=\"bar timeline-bar\""));
    lab.ok_as(BOT, &["report", "--publish"]);
    let summaries: Vec<Value> = lab
        .server
        .issues()
        .into_iter()
        .filter(|i| {
            i["labels"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l == "shepherd report")
        })
        .collect();
    assert_eq!(summaries.len(), 1, "one summary issue, updated in place");
    assert!(summaries[0]["description"]
        .as_str()
        .unwrap()
        .contains("| migration-analysis | 1 |"));
}

#[test]
fn a_rate_limit_running_low_slows_the_run_down() {
    let lab = lab();
    let n = lab.start();
    lab.server.set_rate_limit(3, 1);
    let out = lab.run_with(
        BOT,
        &[("SHEPHERD_LOG", "info")],
        &["status", &n.to_string()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("GitLab rate limit nearly reached; waiting"),
        "{}",
        stderr(&out)
    );
    lab.server.set_rate_limit(4000, 60);
    let out = lab.run_with(
        BOT,
        &[("SHEPHERD_LOG", "info")],
        &["status", &n.to_string()],
    );
    assert!(
        !stderr(&out).contains("rate limit nearly reached"),
        "plenty left: no pause"
    );
}

/// Twenty migrations waiting in Opt-In for the next release: one reconcile reads the
/// release project's list once, not once per migration, and no merge request list at all;
/// after the release, those with their section ticked move.
#[test]
fn a_release_gate_costs_one_release_list_per_project_per_run() {
    use crate::api::{gitaly_body, gitaly_vars};
    use crate::test_server::ReleaseKind;
    let lab = lab();
    let catalog = shepherd::catalog::Sources::builtin()
        .load()
        .expect("the built-in catalogue");
    let mut waiting = Vec::new();
    for i in 1..=20u64 {
        // A fresh server numbers issues from 1.
        let mut body = gitaly_body(&catalog, i, gitaly_vars());
        if i % 2 == 1 {
            body = body.replace("- [ ] ", "- [x] ");
        }
        let labels = ["Migration", "Conversation", "Migration:Opt-In"];
        let n = lab
            .server
            .seed(&format!("m{i}"), &body, &labels, "shepherd-bot");
        assert_eq!(n, i);
        waiting.push(n);
    }
    lab.server.travel(chrono::Duration::days(3));
    lab.server.clear_log();
    let r = lab.json(&["reconcile"]);
    assert!(r["errors"].as_array().unwrap().is_empty(), "{r}");
    let releases = |log: &[Logged]| log.iter().filter(|l| l.path.ends_with("/releases")).count();
    let mrs = |log: &[Logged]| {
        log.iter()
            .filter(|l| {
                l.path.ends_with("/related_merge_requests") || l.path.ends_with("/closed_by")
            })
            .count()
    };
    let log = lab.server.log();
    assert_eq!(releases(&log), 1, "one release list for twenty migrations");
    assert_eq!(mrs(&log), 0, "Opt-In has no merge request gate");
    assert!(moved(&r).is_empty(), "{r}");

    lab.server.publish_release(
        "gitlab-org/gitlab",
        "v17.3.0-ee",
        chrono::Utc::now(),
        ReleaseKind::Published,
    );
    lab.server.clear_log();
    let r = lab.json(&["reconcile"]);
    let ticked: Vec<u64> = waiting.iter().copied().step_by(2).collect();
    assert_eq!(moved(&r), ticked, "{r}");
    assert_eq!(releases(&lab.server.log()), 1);
}

/// Ten migrations in RPC Design, waiting for their checklist or a merged merge request in
/// gitaly-proto: the first poll reads each one's merge requests; a second one where
/// nothing happened reads none, only gitaly-proto's changes since (one list). A merge that
/// happens, and a merge request that starts referencing a migration, are seen at the next
/// poll, which reads only those migrations again.
#[test]
fn a_second_idle_poll_reads_no_migration_s_merge_requests() {
    let lab = lab();
    lab.idle_twice_in_rpc_design("related_merge_requests", "merge_requests");
    // The merge of !3 does not touch #3, but !3 is watched; the new reference touches #7.
    assert_eq!(lab.merged_in_rpc_design("related_merge_requests"), [3, 7]);
}

/// GitLab's `updated_at` has milliseconds, kept end to end (adapter, Store, test server):
/// two label changes within one second each change it, so the history read after them is
/// seen and kept at once (the GitHub twin reads it again until it is final).
#[test]
fn an_approval_in_the_second_of_the_last_read_is_seen() {
    lab().approval_within_one_second(
        MALLORY,
        JACOB,
        "jacobvosmaer-gitlab",
        "resource_label_events",
        false,
    );
}

/// On a GitLab tracker the flags are the project's own feature flags unless another
/// backend is named: `start` of a flag rollout turns the flag on in dev and staging with
/// the tracker's token, and says so on the issue; `--flags none` leaves it to people.
#[test]
fn flags_default_to_the_gitlab_project_s_own() {
    let lab = lab();
    let v = lab.json(&[
        "start",
        "feature-flag-rollout",
        "--var",
        "feature_flag=update_all_mirrors_job_tracker",
    ]);
    let n = v["ref"].as_u64().unwrap();
    let flag = lab
        .server
        .project_flag("update_all_mirrors_job_tracker")
        .expect("the flag is made");
    assert_eq!(flag["active"], true, "{flag}");
    let mut scopes: Vec<String> = flag["strategies"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["scopes"].as_array().unwrap().clone())
        .map(|s| s["environment_scope"].as_str().unwrap().to_string())
        .collect();
    scopes.sort();
    assert_eq!(scopes, ["dev", "staging"], "{flag}");
    let said: Vec<String> = lab
        .server
        .notes(n)
        .iter()
        .filter_map(|n| n["body"].as_str().map(str::to_string))
        .filter(|b| b.contains("🚩"))
        .collect();
    assert!(
        said.iter()
            .any(|b| b.contains("`update_all_mirrors_job_tracker`: missing → on, dev (set by shepherd on gitlab-project")),
        "{said:#?}"
    );

    let out = lab.run_with(
        BOT,
        &[("SHEPHERD_FLAGS", "none")],
        &[
            "start",
            "feature-flag-rollout",
            "--var",
            "feature_flag=other_flag",
            "--format",
            "json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let m: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let m = m["ref"].as_u64().unwrap();
    assert!(lab.server.project_flag("other_flag").is_none());
    assert!(lab
        .server
        .notes(m)
        .iter()
        .any(|n| n["body"].as_str().unwrap().contains(
            "🚩 `other_flag` was **not** set to on, dev: shepherd has no flags backend here"
        )));
}

#[test]
fn comment_commands_act_once_for_developers_and_refuse_guests() {
    lab()
        .cached()
        .comment_commands("dev", "mallory", "jacobvosmaer-gitlab", "notes");
}
