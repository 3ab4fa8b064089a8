//! Request budgets (DESIGN §9) as counts on the test servers, never timings: a second idle
//! poll costs at most one request per tracking-label set and none per migration; `report`
//! costs at most one request per migration cold (plus a few lists) and none per migration
//! once the Store's cache is current. The migrations are spread over the stages of the
//! shipped gitaly-migration as the rollout benchmark seeds them.

use std::collections::BTreeMap;

use chrono::Utc;

use crate::api::{gitaly_body, gitaly_vars, Api};
use crate::github_server::{GitHubServer, OWNER, REPO};
use crate::gitlab_server::{GitLabServer, PROJECT};
use crate::remote::Remote;
use crate::seeds::SPREAD;
use crate::support::{block_on, moved, stderr};
use crate::test_server::ReleaseKind;
use shepherd::core::marker::TransitionMarker;
use shepherd::tracker::{github, gitlab, Tracker};

const BOT_GL: &str = "glpat-budget-bot-0123456789";
const BOT_GH: &str = "ghp_budgetbot0123456789";
const N: usize = 300;

fn gitlab() -> Remote<GitLabServer> {
    let server = GitLabServer::start(&[(BOT_GL, "shepherd-bot")]);
    Remote::new(
        server,
        &format!("gitlab:{PROJECT}"),
        "--gitlab-url",
        "GITLAB_TOKEN",
        BOT_GL,
    )
    .cached()
}

fn github() -> Remote<GitHubServer> {
    let server = GitHubServer::start(&[(BOT_GH, "shepherd-bot")]);
    Remote::new(
        server,
        &format!("github:{OWNER}/{REPO}"),
        "--github-url",
        "GITHUB_TOKEN",
        BOT_GH,
    )
    .cached()
}

/// `n` gitaly migrations, opened two minutes apart, spread over `SPREAD`, half of the Opt-In and Opt-Out ones with
/// their section ticked (waiting for the next minor release), the release project with a
/// minor release long ago.
fn seed<S: Projects>(server: &S, n: usize, apart: i64) {
    let catalog = shepherd::catalog::Sources::builtin()
        .load()
        .expect("the built-in catalogue");
    let workflow = &catalog.workflows["gitaly-migration"];
    server.publish_release(
        "gitlab-org/gitlab",
        "v17.2.0-ee",
        Utc::now() - chrono::Duration::days(40),
        ReleaseKind::Published,
    );
    for project in [
        "gitlab-org/gitaly-proto",
        "gitlab-org/gitaly",
        "gitlab-org/gitlab",
    ] {
        server.make_project(project);
    }
    for i in 0..n {
        let mut given = gitaly_vars();
        given.insert("feature_flag".into(), format!("GITALY_FEATURE_{i}"));
        let vars = shepherd::engine::resolve_vars(workflow, &given).unwrap();
        let stage = workflow.stage(SPREAD[i % 8]).unwrap();
        let mut body = gitaly_body(&catalog, i as u64 + 1, vars);
        if i % 8 >= 6 && (i / 8) % 2 == 0 {
            body = body.replace("- [ ] ", "- [x] ");
        }
        let labels = ["Migration", "Conversation", stage.label.as_str()];
        let number = server.seed_issue(&format!("m{i}"), &body, &labels);
        assert_eq!(number, i as u64 + 1);
        // Opened one every `apart` seconds, the newest just now.
        server.backdate(number, chrono::Duration::seconds(apart * (n - i) as i64));
    }
}

/// The projects the merge request gates look in exist.
trait Projects: Api {
    fn make_project(&self, project: &str);
    /// A client of the tracker API, as the bot.
    fn client(&self) -> Box<dyn Tracker>;
}

impl Projects for GitLabServer {
    fn make_project(&self, project: &str) {
        self.add_project(project)
    }
    fn client(&self) -> Box<dyn Tracker> {
        let config = gitlab::Config::new(&self.url, PROJECT);
        Box::new(block_on(gitlab::GitLabTracker::connect(config, BOT_GL)).unwrap())
    }
}

impl Projects for GitHubServer {
    fn make_project(&self, project: &str) {
        self.add_repo(project)
    }
    fn client(&self) -> Box<dyn Tracker> {
        let config = github::Config::new(&self.url, &format!("{OWNER}/{REPO}"));
        Box::new(github::GitHubTracker::connect(config, BOT_GH).unwrap())
    }
}

/// Gives every migration the audit comment of entering its stage, as `start` and the moves
/// that brought it there leave one.
fn record_entries<S: Projects>(server: &S, n: usize) {
    let client = server.client();
    block_on(async {
        for i in 0..n {
            let marker = TransitionMarker {
                seq: 1,
                from: None,
                to: SPREAD[i % 8].to_string(),
                by: "shepherd-bot".into(),
                reason: None,
                rollback: false,
                run: Some("seed".into()),
                store: None,
                untick: Vec::new(),
                command: None,
            };
            let body = format!("Entered {}.\n\n{}", SPREAD[i % 8], marker.render());
            client.add_comment(i as u64 + 1, &body).await.unwrap();
        }
    });
}

/// Requests since the log was cleared, by the path's last part, for the message.
fn kinds<S: Api>(server: &S) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for p in server.paths() {
        let tail = p
            .rsplit('/')
            .next()
            .map(|t| if t.parse::<u64>().is_ok() { "N" } else { t })
            .unwrap_or_default()
            .to_string();
        *out.entry(tail).or_default() += 1;
    }
    out
}

/// A poll where nothing can move, then another: the second costs at most `budget`
/// requests, none of them about one migration.
fn idle_twice<S: Api>(remote: &Remote<S>, budget: usize) {
    let bot = remote.bot();
    let r = remote.reconcile_cached(bot);
    assert!(moved(&r).is_empty(), "{r}");
    remote.server.forget_requests();
    let r = remote.reconcile_cached(bot);
    assert!(moved(&r).is_empty(), "{r}");
    let paths = remote.server.paths();
    eprintln!("second idle poll, {N} migrations: {} requests", paths.len());
    let per_issue: Vec<&String> = paths.iter().filter(|p| p.contains("/issues/")).collect();
    assert!(
        paths.len() <= budget && per_issue.is_empty(),
        "a second idle poll of {N} migrations: {} requests (budget {budget}), {:?}",
        paths.len(),
        paths
    );
}

/// `report --format html` after the polls: at most one request per migration plus `extra`.
fn report_costs<S: Api>(remote: &Remote<S>, extra: usize) {
    remote.server.forget_requests();
    let out = remote.run_as(
        remote.bot(),
        &["report", "--format", "html", "--output", "report.html"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let n = remote.server.requests();
    eprintln!(
        "report, {N} migrations: {n} requests {:?}",
        kinds(&remote.server)
    );
    assert!(
        n <= N + extra,
        "report of {N} migrations: {n} requests (budget {}): {:?}",
        N + extra,
        kinds(&remote.server)
    );
}

/// Three lists of migrations (one per set of tracking labels) and one of releases.
#[test]
fn gitlab_a_second_idle_poll_costs_at_most_six_requests() {
    let lab = gitlab();
    seed(&lab.server, N, 120);
    idle_twice(&lab, 6);
}

#[test]
fn gitlab_report_costs_at_most_n_plus_ten_requests() {
    let lab = gitlab();
    seed(&lab.server, N, 120);
    idle_twice(&lab, 6);
    report_costs(&lab, 10);
}

/// On GitHub a new reference does not touch the issue, so the projects the merge request
/// gates look in are watched (one list each): three lists of migrations, one of releases,
/// three of pull requests — and none per migration.
#[test]
fn github_a_second_idle_poll_costs_no_request_per_migration() {
    let hub = github();
    seed(&hub.server, N, 120);
    idle_twice(&hub, 7);
}

/// 300 migrations opened within the last minute (a script that started them): every one
/// is within the incremental list's margin.
#[test]
fn gitlab_budgets_hold_for_migrations_opened_a_moment_ago() {
    let lab = gitlab();
    seed(&lab.server, N, 0);
    let r = lab.reconcile_cached(lab.bot());
    assert!(moved(&r).is_empty(), "{r}");
    report_costs(&lab, 10);
    idle_twice(&lab, 6);
}

/// A report with a Store that has never seen the project: one request per migration.
#[test]
fn gitlab_a_cold_report_costs_at_most_n_plus_ten_requests() {
    let lab = gitlab();
    seed(&lab.server, N, 120);
    report_costs(&lab, 10);
}

/// 300 migrations, each with the audit comment of its stage: after two idle polls, a
/// report reads each one's comments once (the polls needed none), and a second report
/// none.
#[test]
fn gitlab_a_report_after_idle_polls_costs_at_most_n_plus_ten_requests() {
    let lab = gitlab();
    seed(&lab.server, N, 120);
    record_entries(&lab.server, N);
    idle_twice(&lab, 6);
    report_costs(&lab, 10);
    report_costs(&lab, 10);
}

/// A move a webhook brings (DESIGN §9: at most 5 requests): a person ticks a Selection
/// checklist; the advance of that one migration reads the issue afresh and its comments
/// (the transitions so far), posts the audit comment, reads the comments back (the claim)
/// and moves the label. Its children are not read: no gate of Selection looks at one, and
/// no stage its audit comments record opens one.
#[test]
fn gitlab_a_move_of_one_migration_costs_at_most_five_requests() {
    let lab = gitlab();
    seed(&lab.server, 16, 120);
    record_entries(&lab.server, 16);
    let r = lab.reconcile_cached(lab.bot());
    assert!(moved(&r).is_empty(), "{r}");
    // The first move makes the workflow's labels (once, kept in the Store).
    // (#1 and #9 are in Selection.)
    lab.tick_section(9, "Selection");
    assert_eq!(lab.advance(9)["stage"], "migration-analysis");
    lab.tick_section(1, "Selection");
    lab.server.forget_requests();
    let v = lab.advance(1);
    assert_eq!(v["stage"], "migration-analysis", "{v}");
    let log: Vec<String> = lab
        .server
        .log()
        .iter()
        .map(|l| format!("{} {}", l.method, l.path))
        .collect();
    eprintln!("a move: {} requests {log:#?}", log.len());
    assert!(log.len() <= 5, "{log:#?}");
}

/// Every stage of the 300 with a `target` of 1h (DESIGN §13), so most stays are overdue:
/// the first poll nudges each once (reading its comments and label history, posting, and
/// reading back); later polls keep the budget of idle ones — no request per migration.
#[test]
fn gitlab_overdue_stays_once_nudged_cost_idle_polls_nothing() {
    let lab = gitlab();
    let shipped = include_str!("../../workflows/gitaly-migration.yaml");
    let mut paced = String::new();
    for line in shipped.lines() {
        paced.push_str(line);
        paced.push('\n');
        let terminal = line.contains("Migration:Done") || line.contains("Migration:Shelved");
        if line.starts_with("    label: ") && !terminal {
            paced.push_str("    target: 1h\n    owners: [\"@gitaly-maintainers\"]\n");
        }
    }
    std::fs::create_dir_all(lab.dir().join("workflows")).unwrap();
    std::fs::write(lab.dir().join("workflows/gitaly-migration.yaml"), paced).unwrap();
    seed(&lab.server, N, 120);
    lab.server.forget_requests();
    let r = lab.reconcile_cached(lab.bot());
    assert!(moved(&r).is_empty(), "{r}");
    eprintln!(
        "the poll that nudges: {} requests {:?}",
        lab.server.requests(),
        kinds(&lab.server)
    );
    let mut nudged = 0;
    for n in 1..=N as u64 {
        let nudges = lab
            .server
            .comment_bodies(n)
            .iter()
            .filter(|b| shepherd::core::overdue::NudgeMarker::find(b).is_some())
            .count();
        assert!(nudges <= 1, "#{n}: {nudges} nudges");
        nudged += nudges;
    }
    // Opened two minutes apart, the newest just now: all but the last 30 or so are over 1h.
    eprintln!("{nudged} of {N} migrations nudged");
    assert!(nudged >= N - 31, "{nudged} nudged");
    idle_twice(&lab, 6);
}
