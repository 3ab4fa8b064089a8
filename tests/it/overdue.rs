//! A stage's `target` (DESIGN §13): a stay longer than it is overdue in `status`, the
//! report (first), the dashboard (`state=overdue`) and `/metrics`; the `overdue`
//! notification reaches a sink once; the tracking issue gets one nudge per overdue stay,
//! mentioning the stage's owners — on the local tracker, and on the GitLab test server
//! from two reconciles at once that share no Store, with no request for it in an idle
//! poll.

use std::process::Stdio;
use std::time::Duration;

use axum::http::StatusCode;
use shepherd::core::overdue::NudgeMarker;

use crate::api::Api;
use crate::gitlab_server::GitLabServer;
use crate::notify::{slack_id, SinkServer, TOKEN};
use crate::remote::Remote;
use crate::support::{
    schema_change_workflow, stderr, stdout, Shepherd, SCHEMA_CHANGE_TEMPLATE, T0,
};

/// draft (checklist *Plan*) → review (target 2d, owned by @dba-team) → verify → done.
fn workflow() -> String {
    schema_change_workflow("    owners: [\"@dba-team\"]\n", "")
}

fn write_workflow(dir: &std::path::Path) {
    crate::support::write_workflow(
        dir,
        "schema-change",
        &workflow(),
        &[("schema-change", SCHEMA_CHANGE_TEMPLATE)],
    );
}

/// The nudges on issue `n`: the stays they name.
fn nudges(bodies: impl Iterator<Item = String>) -> Vec<(u64, String)> {
    bodies
        .filter_map(|b| Some((NudgeMarker::find(&b)?.seq, b)))
        .collect()
}

/// Runs shepherd on `s` with `env` (the sink's URL).
fn run(s: &Shepherd, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = crate::notify::command(s, args, env).output().unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{args:?}: {text}{}", stderr(&out));
    assert!(!text.contains(TOKEN) && !stderr(&out).contains(TOKEN));
    text
}

#[test]
fn an_overdue_stay_is_nudged_once_said_everywhere_and_a_new_stay_is_nudged_again() {
    let (sink, url) = SinkServer::start(Duration::ZERO);
    let path = format!("/slack/{TOKEN}");
    let s = Shepherd::new();
    write_workflow(s.dir.path());
    std::fs::write(
        s.path("shepherd.toml"),
        "[[notify]]\nurl = \"env:SINK\"\nformat = \"slack\"\nevents = [\"overdue\"]\n",
    )
    .unwrap();
    let sink_url = format!("{url}{path}");
    let env = [("SINK", sink_url.as_str())];
    let json = |args: &[&str]| -> serde_json::Value {
        let mut args = args.to_vec();
        args.extend(["--format", "json"]);
        serde_json::from_str(&run(&s, &args, &env)).unwrap()
    };
    s.ok(&["clock", "set", T0]);
    run(&s, &["start", "schema-change"], &env);
    run(&s, &["start", "schema-change"], &env);
    s.ok(&["tick", "2", "Write it"]);
    run(&s, &["advance", "2"], &env);
    run(&s, &["reconcile"], &env);
    assert!(nudges(s.comments(2).into_iter().map(|c| c.body)).is_empty());
    assert_eq!(json(&["status", "2"])["overdue"], false);

    s.ok(&["clock", "advance", "3d"]);
    run(&s, &["reconcile"], &env);
    run(&s, &["reconcile"], &env);
    let first = nudges(s.comments(2).into_iter().map(|c| c.body));
    assert_eq!(first.len(), 1, "one nudge: {first:?}");
    assert!(first[0].1.contains("@dba-team"), "{}", first[0].1);
    assert!(
        first[0].1.contains("3d in review, target 2d"),
        "{}",
        first[0].1
    );
    assert!(nudges(s.comments(1).into_iter().map(|c| c.body)).is_empty());

    let text = run(&s, &["status", "2"], &env);
    assert!(text.contains("overdue: 3d in review, target 2d"), "{text}");
    assert_eq!(json(&["status", "2"])["overdue"], true);
    assert_eq!(json(&["status", "1"])["overdue"], false);
    // The report: overdue first, before the workflows and the other migrations.
    let report = run(&s, &["report"], &env);
    let overdue_at = report.find("Overdue:\n  #2 ").expect(&report);
    assert!(
        overdue_at < report.find("schema-change:").unwrap(),
        "{report}"
    );
    assert!(report.contains("⏰ overdue"), "{report}");
    let md = run(&s, &["report", "--format", "markdown"], &env);
    assert!(md.contains("## Overdue\n\n- [#2 Schema change]("), "{md}");
    let html = run(&s, &["report", "--format", "html"], &env);
    let needs = html.find("<h2>Needs a person</h2>").expect(&html);
    let row = html.find("overdue: 3d in review, target 2d").expect(&html);
    assert!(needs < row && row < html.find("<h2>Stages</h2>").unwrap());
    let rows = json(&["report"]);
    let overdue: Vec<(u64, bool)> = rows["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["ref"].as_u64().unwrap(), m["overdue"].as_bool().unwrap()))
        .collect();
    assert_eq!(overdue, [(1, false), (2, true)]);

    // The notification: once, with the stay's id.
    let heard: Vec<String> = sink.received(&path).iter().map(slack_id).collect();
    let id = format!("local:{}/2/overdue/{}", s.db().display(), first[0].0);
    assert_eq!(heard, [id], "the overdue event once");

    // On to verify, then a rollback into review: a new stay, nudged again once overdue,
    // and only then (the Store's record of the old stay is stale after the move).
    s.ok(&["tick", "2", "Review it"]);
    run(&s, &["advance", "2"], &env);
    run(&s, &["reconcile"], &env);
    let back = ["rollback", "2", "--to", "review", "--reason", "redo"];
    run(&s, &back, &env);
    run(&s, &["resume", "2"], &env);
    assert_eq!(json(&["status", "2"])["overdue"], false);
    run(&s, &["reconcile"], &env);
    assert_eq!(nudges(s.comments(2).into_iter().map(|c| c.body)).len(), 1);
    s.ok(&["clock", "advance", "3d"]);
    run(&s, &["reconcile"], &env);
    run(&s, &["reconcile"], &env);
    let all = nudges(s.comments(2).into_iter().map(|c| c.body));
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(all[1].0 > all[0].0, "the new stay's own: {all:?}");
    assert_eq!(sink.received(&path).len(), 2);

    dashboard_and_metrics(&s);
}

/// The service's dashboard and `/metrics` over `s`, where #2 is overdue in review.
fn dashboard_and_metrics(s: &Shepherd) {
    let (get, looks) = crate::serve::local_pages(s);
    // The service's look queues a migration whose stay may be overdue, unknown to its Store
    // (a fresh one), so that an advance nudges it; the other is left alone.
    let may_move: Vec<(u64, bool)> = looks.iter().map(|l| (l.number, l.may_move)).collect();
    assert!(
        may_move.contains(&(2, true)) && may_move.contains(&(1, false)),
        "{looks:?}"
    );
    let (status, page) = get("/?tracker=local&state=overdue");
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("Showing 1 migration(s) with state overdue"),
        "{page}"
    );
    let (_, page) = get("/?tracker=local");
    let needs = page.find("<h2>Needs a person</h2>").expect(&page);
    assert!(needs < page.find("overdue: 3d in review").expect(&page));

    let (status, text) = get("/metrics");
    assert_eq!(status, StatusCode::OK);
    let scrape = crate::serve::metrics::parse(&text);
    assert!(
        text.contains("# TYPE shepherd_overdue_migrations gauge\n"),
        "{text}"
    );
    let labels = [("workflow", "schema-change"), ("stage", "review")];
    let value = crate::serve::metrics::value(&scrape, "shepherd_overdue_migrations", &labels);
    assert_eq!(value, Some(1.0), "{text}");
    let draft = [("workflow", "schema-change"), ("stage", "draft")];
    assert_eq!(
        crate::serve::metrics::value(&scrape, "shepherd_overdue_migrations", &draft),
        None
    );
}

#[test]
fn two_reconciles_sharing_no_store_nudge_once_and_an_idle_poll_asks_nothing_for_it() {
    let bot = "glpat-bot-0123456789";
    let server = GitLabServer::start(&[(bot, "shepherd-bot")]);
    let tracker = format!("gitlab:{}", crate::gitlab_server::PROJECT);
    race(Remote::new(
        server,
        &tracker,
        "--gitlab-url",
        "GITLAB_TOKEN",
        bot,
    ));
}

#[test]
fn on_github_two_reconciles_sharing_no_store_nudge_once_too() {
    use crate::github_server::{GitHubServer, OWNER, REPO};
    let bot = "ghp_bot0123456789";
    let server = GitHubServer::start(&[(bot, "shepherd-bot")]);
    let tracker = format!("github:{OWNER}/{REPO}");
    race(Remote::new(
        server,
        &tracker,
        "--github-url",
        "GITHUB_TOKEN",
        bot,
    ));
}

/// A migration overdue in review; two reconciles at once with a Store each; then two
/// polls with each Store.
fn race<S: Api>(remote: Remote<S>) {
    let bot = remote.bot();
    write_workflow(remote.dir());
    let n = remote.json(&["start", "schema-change"])["ref"]
        .as_u64()
        .unwrap();
    remote.tick_section(n, "Plan");
    remote.advance(n);
    remote.server.travel(chrono::Duration::days(3));
    remote.server.latency(Duration::from_millis(15));
    remote.server.forget_requests();
    let state = |i: usize| {
        format!(
            "sqlite:{}",
            remote.dir().join(format!("state-{i}.db")).display()
        )
    };
    let cached = ("SHEPHERD_CACHE", "on");
    let runs: Vec<_> = (0..2)
        .map(|i| {
            let state = state(i);
            remote
                .command(
                    bot,
                    &[("SHEPHERD_STATE", state.as_str()), cached],
                    &["reconcile"],
                )
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut said = String::new();
    for run in runs {
        let out = run.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        said.push_str(&stdout(&out));
        said.push_str(&stderr(&out));
    }
    let found = nudges(remote.server.comment_bodies(n).into_iter());
    assert_eq!(found.len(), 1, "one nudge: {found:?}\n{said}");
    assert!(found[0].1.contains("@dba-team"), "{}", found[0].1);
    // Where both runs posted (they read the comments before either nudge was there),
    // the later one was taken back: a delete of a comment.
    let deletes = remote
        .server
        .paths()
        .iter()
        .filter(|p| p.contains("/notes/") || p.contains("/issues/comments/"))
        .count();
    eprintln!("the race posted {} nudge(s)", deletes + 1);

    // Each Store knows the stay is nudged: a poll reads no label history for it and
    // writes nothing; the first may read the comments once, for commands, where the
    // other run's nudge taken back changed their count after this one's look; an idle
    // poll after it asks nothing about the issue at all.
    for i in 0..2 {
        let state = state(i);
        let env = [("SHEPHERD_STATE", state.as_str()), cached];
        for poll in 0..2 {
            remote.server.forget_requests();
            let out = remote.run_with(bot, &env, &["reconcile"]);
            assert!(out.status.success(), "{}", stderr(&out));
            let paths = remote.server.paths();
            let per_issue: Vec<&String> = paths
                .iter()
                .filter(|p| p.contains(&format!("/issues/{n}/")))
                .collect();
            let allowed = if poll == 0 { 1 } else { 0 };
            assert!(
                per_issue.len() <= allowed
                    && per_issue
                        .iter()
                        .all(|p| p.ends_with("/notes") || p.ends_with("/comments")),
                "store {i}, poll {poll}: {paths:?}"
            );
            let now = nudges(remote.server.comment_bodies(n).into_iter());
            assert_eq!(now.len(), 1, "nothing more posted: {now:?}");
        }
    }
}

#[test]
fn without_owners_the_nudge_mentions_the_assignees() {
    let bot = "glpat-bot-0123456789";
    let server = GitLabServer::start(&[(bot, "shepherd-bot")]);
    let tracker = format!("gitlab:{}", crate::gitlab_server::PROJECT);
    let remote = Remote::new(server, &tracker, "--gitlab-url", "GITLAB_TOKEN", bot);
    write_workflow(remote.dir());
    let unowned = schema_change_workflow("", "");
    std::fs::write(remote.dir().join("workflows/schema-change.yaml"), unowned).unwrap();
    let n = remote.json(&["start", "schema-change"])["ref"]
        .as_u64()
        .unwrap();
    // GitLab's documented issue, which the test server answers with, is assigned to lennie.
    assert_eq!(remote.server.issue(n)["assignees"][0]["username"], "lennie");
    remote.tick_section(n, "Plan");
    remote.advance(n);
    remote.server.travel(chrono::Duration::days(3));
    // `travel` moves the server's times, not those the Store of the runs above kept (the
    // move into review, "now"): a Store of its own.
    let state = format!("sqlite:{}", remote.dir().join("fresh.db").display());
    // `advance` (as the service's workers do) nudges as `reconcile` does.
    let number = n.to_string();
    for _ in 0..2 {
        let out = remote.run_with(
            bot,
            &[("SHEPHERD_STATE", state.as_str())],
            &["advance", &number],
        );
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let found = nudges(remote.server.comment_bodies(n).into_iter());
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].1.contains("@lennie: please take a look"),
        "{}",
        found[0].1
    );
    assert!(!found[0].1.contains("@dba-team"));
}

#[test]
fn a_stay_not_yet_overdue_in_an_old_issue_is_read_once_per_store() {
    let bot = "glpat-bot-0123456789";
    let server = GitLabServer::start(&[(bot, "shepherd-bot")]);
    let tracker = format!("gitlab:{}", crate::gitlab_server::PROJECT);
    let remote = Remote::new(server, &tracker, "--gitlab-url", "GITLAB_TOKEN", bot);
    write_workflow(remote.dir());
    let n = remote.json(&["start", "schema-change"])["ref"]
        .as_u64()
        .unwrap();
    // Opened three days ago, in review since now: older than the target, not overdue.
    remote.server.travel(chrono::Duration::days(3));
    remote.tick_section(n, "Plan");
    remote.advance(n);
    let state = format!("sqlite:{}", remote.dir().join("fresh.db").display());
    let env = [("SHEPHERD_STATE", state.as_str()), ("SHEPHERD_CACHE", "on")];
    let mut notes = Vec::new();
    for _ in 0..3 {
        remote.server.forget_requests();
        let out = remote.run_with(bot, &env, &["reconcile"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let paths = remote.server.paths();
        notes.push(
            paths
                .iter()
                .filter(|p| p.contains(&format!("/issues/{n}/")))
                .count(),
        );
    }
    // The first poll of a Store reads the comments (for commands, and so for the stay);
    // the Store then knows the stay began now, and later polls ask nothing of the issue.
    eprintln!("requests about the issue per poll: {notes:?}");
    assert_eq!(notes[1..], [0, 0], "{notes:?}");
    assert!(nudges(remote.server.comment_bodies(n).into_iter()).is_empty());
}
