//! Table-driven tests of the gates on facts and of `questions`.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::core::facts::{
    Facts, MergeRequest, MetricAnswer, MetricQuestion, MetricSeries, MrState, Question, Release,
};
use crate::core::gates::{evaluate, Context};
use crate::core::questions::questions;
use crate::core::snapshot::{Child, IssueView, Snapshot};
use crate::core::workflow::{load, Gate, Known, Workflow};

fn t(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::seconds(seconds)
}

fn issue(number: u64, body: &str, labels: &[&str]) -> IssueView {
    IssueView {
        number,
        title: String::new(),
        body: body.into(),
        labels: labels.iter().map(|s| s.to_string()).collect(),
        open: true,
        created_at: t(-1000),
        url: String::new(),
        checklists: Default::default(),
    }
}

fn mr(project: &str, number: u64, state: MrState) -> MergeRequest {
    MergeRequest {
        project: project.into(),
        number,
        reference: if project == "g/p" {
            format!("!{number}")
        } else {
            format!("{project}!{number}")
        },
        title: String::new(),
        state,
        merged_at: (state == MrState::Merged).then(|| t(30)),
        url: String::new(),
        updated_at: None,
    }
}

fn release(tag: &str, at: i64) -> Release {
    Release {
        tag: tag.into(),
        released_at: t(at),
        url: String::new(),
    }
}

fn series(values: &[(i64, f64)], asked_at: i64) -> MetricAnswer {
    MetricAnswer::Series(MetricSeries {
        samples: values.iter().map(|&(s, v)| (t(s), v)).collect(),
        asked_at: t(asked_at),
        graph_url: "http://prom/graph".into(),
    })
}

fn metric(query: &str, window: Option<i64>) -> MetricQuestion {
    MetricQuestion {
        query: query.into(),
        window: window.map(Duration::seconds),
    }
}

const VARS: &str =
    "variables: {proj: {default: g/p}, q: {default: \"\"}, limit: {default: \"0.5\"}, bad: {}}";

fn workflow(stage_yaml: &str) -> Workflow {
    let text = format!(
        "name: w\ntracking: {{template: t}}\n{VARS}\nstages:\n  - id: a\n    label: a\n    on_enter: [{{create_issue: {{template: at}}}}]\n{stage_yaml}\n  - id: b\n    label: b\n    terminal: true\n"
    );
    let mut known = Known::default();
    known.templates.insert("t".into(), Default::default());
    known.templates.insert("at".into(), Default::default());
    load("w.yaml", &text, None, &known).unwrap_or_else(|p| panic!("{stage_yaml}: {p:?}"))
}

fn gate(yaml: &str) -> Gate {
    workflow(&format!("    gates: [{yaml}]\n    next: b")).stages[0].gates[0].clone()
}

fn facts() -> Facts {
    let mut f = Facts::default();
    f.merge_requests.insert(
        1,
        Ok(vec![
            mr("g/p", 1, MrState::Open),
            mr("g/p", 2, MrState::Merged),
            mr("other/x", 3, MrState::Merged),
        ]),
    );
    f.merge_requests
        .insert(5, Ok(vec![mr("g/p", 9, MrState::Closed)]));
    f.merge_requests
        .insert(6, Err("GitLab answered 500".into()));
    f.releases.insert(
        None,
        Ok(vec![
            release("v1.0.0", -10),
            release("v1.1.0", 5),
            release("v1.1.1", 6),
            release("v1.2.0-rc1", 7),
            release("v1.3.0", 500),
        ]),
    );
    f.releases.insert(
        Some("g/gone".into()),
        Err("project `g/gone` not found".into()),
    );
    f.metrics
        .insert(metric("up", None), series(&[(60, 0.2)], 60));
    f.metrics.insert(
        metric("up", Some(60)),
        series(&[(0, 0.1), (30, 0.3), (60, 0.2)], 60),
    );
    f.metrics.insert(
        metric("spiky", Some(60)),
        series(&[(0, 0.1), (30, 0.9), (60, 0.2)], 60),
    );
    f.metrics.insert(
        metric("young", Some(60)),
        series(&[(50, 0.1), (60, 0.2)], 60),
    );
    f.metrics
        .insert(metric("nan", None), series(&[(60, f64::NAN)], 60));
    f.metrics.insert(metric("none", None), MetricAnswer::NoData);
    f.metrics.insert(
        metric("many", None),
        MetricAnswer::Many(vec!["{a=\"1\"}".into(), "{a=\"2\"}".into()]),
    );
    f.metrics.insert(
        metric("down", None),
        MetricAnswer::Unavailable("Prometheus at http://p does not answer".into()),
    );
    f.metrics
        .insert(metric("x{f=\"a\\\"b\"}", None), series(&[(60, 0.0)], 60));
    f
}

fn snapshot(vars: &[(&str, &str)], facts: Facts) -> Snapshot {
    Snapshot {
        issue: issue(1, "## Plan\n- [x] a\n## Open\n- [ ] b\n", &["a"]),
        vars: vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        label_events: Vec::new(),
        history_unread: false,
        portfolio: Default::default(),
        facts,
        transitions: Vec::new(),
        children: vec![
            Child {
                issue: issue(5, "", &[]),
                template: "at".into(),
                entry: Some(1),
                stage: None,
            },
            Child {
                issue: issue(6, "", &[]),
                template: "broken".into(),
                entry: Some(1),
                stage: None,
            },
        ],
    }
}

#[test]
#[allow(clippy::type_complexity)] // the test table's rows
fn fact_gates_table() {
    // (gate, variables, seconds since the stage was entered (entered at 0), exit?, passed, detail contains)
    let cases: Vec<(&str, &[(&str, &str)], i64, bool, bool, &str)> = vec![
        ("{merge_request: {}}", &[], 60, false, true, "!1 open, !2 merged 2026-01-01, other/x!3 merged"),
        ("{merge_request: {project: g/p, count: 2}}", &[], 60, false, false, "(1 of 2 merged)"),
        ("{merge_request: {project: \"{{proj}}\"}}", &[("proj", "other/x")], 60, false, true, "other/x!3 merged"),
        ("{merge_request: {project: nobody/here}}", &[], 60, false, false, "no merge request in nobody/here references #1"),
        ("{merge_request: {child: at}}", &[], 60, false, false, "!9 closed"),
        ("{merge_request: {child: broken}}", &[], 60, false, false, "merge requests of #6: GitLab answered 500"),
        ("{release: {}}", &[], 60, false, true, "3 of 1 releases since 2026-01-01 00:00 UTC: v1.1.0, v1.1.1, v1.2.0-rc1"),
        ("{release: {pattern: '^v\\d+\\.\\d+\\.0$'}}", &[], 60, false, true, "1 of 1 releases since"),
        ("{release: {pattern: '^v\\d+\\.\\d+\\.0$', count: 2}}", &[], 60, false, false, "1 of 2 releases"),
        ("{release: {project: g/gone}}", &[], 60, false, false, "releases of g/gone: project `g/gone` not found"),
        ("{release: {project: \"{{proj}}\"}}", &[], 60, false, false, "releases of g/p not checked yet"),
        ("{metric: {query: up, below: 0.5}}", &[], 60, false, true, "`up` = 0.2 < 0.5 now ([graph](http://prom/graph))"),
        ("{metric: {query: up, above: 0.5}}", &[], 60, false, false, "`up` = 0.2 ≤ 0.5 now"),
        ("{metric: {query: up, below: \"{{limit}}\"}}", &[("limit", "0.1")], 60, false, false, "0.2 ≥ 0.1"),
        ("{metric: {query: up, below: \"{{limit}}\"}}", &[("limit", "lots")], 60, false, false, "variable `limit`: `lots` is not a number"),
        ("{metric: {query: up, below: 0.5, for: 1m}}", &[], 60, false, true, "`up` < 0.5 for 1m of 1m: min 0.1, max 0.3, last 0.2"),
        ("{metric: {query: up, below: 0.5, for: 1m}}", &[], 20, false, false, "for 20s of 1m"),
        ("{metric: {query: spiky, below: 0.5, for: 1m}}", &[], 60, false, false, "`spiky` was 0.9 ≥ 0.5 in the last 1m"),
        ("{metric: {query: young, below: 0.5, for: 1m}}", &[], 600, false, false, "for 10s of 1m"),
        ("{metric: {query: nan, below: 0.5}}", &[], 60, false, false, "returned NaN: inconclusive"),
        ("{metric: {query: none, below: 0.5}}", &[], 60, false, false, "returned no data: inconclusive"),
        ("{metric: {query: many, below: 0.5}}", &[], 60, false, false, "returned 2 series ({a=\"1\"}, {a=\"2\"}): a metric gate needs exactly one; inconclusive"),
        ("{metric: {query: down, above: 0.5}}", &[], 60, true, false, "does not answer: inconclusive"),
        ("{metric: {query: \"{{q}}\", below: 0.5}}", &[("q", "")], 60, false, true, "no metric: the query is empty"),
        ("{metric: {query: \"{{q}}\", above: 0.5}}", &[("q", "")], 60, true, false, "no metric: the query is empty"),
        ("{metric: {query: 'x{f=\"{{q}}\"}', below: 1}}", &[("q", "a\"b")], 60, false, true, "= 0 < 1 now"),
    ];
    for (yaml, vars, since, exit, passed, detail) in cases {
        let g = gate(yaml);
        let snap = snapshot(vars, facts());
        let cx = Context {
            snapshot: &snap,
            labels: &snap.issue.labels,
            entered_at: t(0),
            now: t(since),
            vars: &snap.vars,
            exit,
        };
        let out = evaluate(&g, &cx);
        assert_eq!(out.passed, passed, "{yaml}: {}", out.detail);
        assert!(
            out.detail.contains(detail),
            "{yaml}: {:?} lacks {detail:?}",
            out.detail
        );
    }
}

#[test]
fn unread_facts_are_taken_as_holding_and_unasked_ones_as_not() {
    for yaml in [
        "{merge_request: {}}",
        "{release: {project: a/b}}",
        "{metric: {query: other, below: 1}}",
    ] {
        let g = gate(yaml);
        let mut snap = snapshot(&[], Facts::default());
        for unread in [true, false] {
            snap.facts.unread = unread;
            let cx = Context {
                snapshot: &snap,
                labels: &snap.issue.labels,
                entered_at: t(0),
                now: t(60),
                vars: &snap.vars,
                exit: false,
            };
            let out = evaluate(&g, &cx);
            assert_eq!(out.passed, unread, "{yaml}: {}", out.detail);
            assert!(out.detail.contains("not checked yet"), "{}", out.detail);
        }
    }
}

#[test]
#[allow(clippy::type_complexity)] // the test table's rows
fn questions_ask_only_what_can_change_the_outcome() {
    let mrs = Question::MergeRequests {
        issue: 1,
        projects: vec![],
    };
    let in_projects = |projects: &[&str]| Question::MergeRequests {
        issue: 1,
        projects: projects.iter().map(|p| p.to_string()).collect(),
    };
    let own = Question::Releases { project: None };
    let up = Question::Metric(metric("up", None));
    // (the stage's gates/next/exits, variables, the questions)
    let cases: Vec<(&str, &[(&str, &str)], Vec<Question>)> = vec![
        ("    gates: [{checklist: {section: Plan}}]\n    next: b", &[], vec![]),
        // The ticked checklist settles the `any`: no merge request asked for.
        ("    gates: [{any: [{checklist: {section: Plan}}, {merge_request: {}}]}]\n    next: b", &[], vec![]),
        ("    gates: [{any: [{checklist: {section: Open}}, {merge_request: {}}]}]\n    next: b", &[], vec![mrs.clone()]),
        // The unticked checklist fails the stage whatever the release says.
        ("    gates: [{checklist: {section: Open}}, {release: {}}]\n    next: b", &[], vec![]),
        ("    gates: [{checklist: {section: Plan}}, {release: {}}]\n    next: b", &[], vec![own.clone()]),
        // An exit's metric is asked whatever the gates say.
        ("    gates: [{checklist: {section: Open}}]\n    next: b\n    exits: [{to: b, when: [{metric: {query: up, above: 1}}]}]", &[], vec![up.clone()]),
        // ... unless the rest of its `when` does not hold.
        ("    gates: [{checklist: {section: Open}}]\n    next: b\n    exits: [{to: b, when: [{label: nope}, {metric: {query: up, above: 1}}]}]", &[], vec![]),
        // An empty query asks nothing.
        ("    gates: [{metric: {query: \"{{q}}\", below: 1}}]\n    next: b\n    exits: [{to: b, when: [{metric: {query: \"{{q}}\", above: 1}}]}]", &[("q", "")], vec![]),
        ("    gates: [{metric: {query: \"{{q}}\", below: 1}}]\n    next: b", &[("q", "up")], vec![up.clone()]),
        ("    gates: [{release: {project: \"{{proj}}\"}}]\n    next: [{to: b, when: [{merge_request: {}}]}]", &[("proj", "g/p")], vec![mrs.clone(), Question::Releases { project: Some("g/p".into()) }]),
        // The projects the gates look in, together, once per issue; any project wins.
        ("    gates: [{merge_request: {project: \"{{proj}}\"}}]\n    next: b", &[("proj", "G/P")], vec![in_projects(&["g/p"])]),
        ("    gates: [{merge_request: {project: g/q}}, {merge_request: {project: g/p}}]\n    next: b", &[], vec![in_projects(&["g/p", "g/q"])]),
        ("    gates: [{merge_request: {project: g/q}}, {merge_request: {}}]\n    next: b", &[], vec![mrs.clone()]),
    ];
    for (stage, vars, want) in cases {
        let w = workflow(stage);
        let snap = snapshot(vars, Facts::default());
        assert_eq!(questions(&w, &snap, t(60)), want, "{stage}");
    }
    // A paused migration asks only for its exits.
    let w = workflow("    gates: [{release: {}}]\n    next: b\n    exits: [{to: b, when: [{metric: {query: up, above: 1}}]}]");
    let mut snap = snapshot(&[], Facts::default());
    assert_eq!(questions(&w, &snap, t(60)), vec![own, up.clone()]);
    snap.issue
        .labels
        .push(crate::core::machine::PAUSED_LABEL.into());
    assert_eq!(questions(&w, &snap, t(60)), vec![up]);
}

#[test]
fn bad_fact_gates_are_refused_where_they_are_written() {
    let cases = [
        (
            "{metric: {query: up}}",
            "`metric` needs `below: X` or `above: X`",
        ),
        ("{metric: {query: up, below: 1, above: 2}}", "not both"),
        ("{metric: {below: 1}}", "`metric` needs a `query`"),
        (
            "{metric: {query: up, below: lots}}",
            "`below`: `lots` is not a number",
        ),
        ("{metric: {query: up, below: 1, for: 5}}", "bad duration"),
        (
            "{metric: {query: up, below: 1, for: 11y}}",
            "bad duration in `for`",
        ),
        (
            "{metric: {query: \"{{nope}}\", below: 1}}",
            "`nope`, which the workflow does not declare",
        ),
        (
            "{release: {pattern: '(unclosed'}}",
            "bad regex in `pattern`",
        ),
        (
            "{release: {project: justone}}",
            "project `justone` is not a path such as group/project",
        ),
        (
            "{release: {project: \"{{nope}}\"}}",
            "`nope`, which the workflow does not declare",
        ),
        (
            "{merge_request: {count: 0}}",
            "`count` must be a number of at least 1",
        ),
        ("{merge_request: {projet: a/b}}", "projet"),
    ];
    for (yaml, want) in cases {
        let text = format!(
            "name: w\ntracking: {{template: t}}\n{VARS}\nstages:\n  - id: a\n    label: a\n    gates: [{yaml}]\n    next: b\n  - id: b\n    label: b\n    terminal: true\n"
        );
        let mut known = Known::default();
        known.templates.insert("t".into(), Default::default());
        let problems = load("w.yaml", &text, None, &known).expect_err(yaml);
        let all: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert!(all.iter().any(|p| p.contains(want)), "{yaml}: {all:?}");
        assert!(
            all.iter().all(|p| p.starts_with("w.yaml:7:")),
            "{yaml}: {all:?}"
        );
    }
}

#[test]
fn after_places_each_migration_against_the_stage_and_waits_for_every_match() {
    use crate::core::facts::{Peer, Reach};
    use crate::core::gates::reach;
    // a → b (terminal); an exit from a to the terminal `gone` is off b's path.
    let mut known = Known::default();
    known.templates.insert("t".into(), Default::default());
    let w = load(
        "w.yaml",
        "name: w\ntracking: {template: t}\nstages:\n  - id: a\n    label: a\n    next: b\n    exits: [{to: gone, when: [{label: x}]}]\n  - id: b\n    label: b\n    next: c\n  - id: c\n    label: c\n    terminal: true\n  - id: gone\n    label: gone\n    terminal: true\n",
        None,
        &known,
    )
    .unwrap();
    let table = [
        (Some("a"), true, Reach::Before),
        (Some("b"), true, Reach::Reached),
        (Some("c"), false, Reach::Reached),
        (Some("gone"), false, Reach::Elsewhere),
        (Some("a"), false, Reach::Elsewhere),
        (None, true, Reach::Elsewhere),
    ];
    for (at, open, want) in table {
        assert_eq!(reach(&w, at, open, "b"), want, "{at:?} open={open}");
    }
    let g = gate("{after: {workflow: w, stage: b, where: {flag: \"{{proj}}\"}, count: 2}}");
    let peer = |number, flag: &str, reach| Peer {
        number,
        vars: [("flag".to_string(), flag.to_string())].into(),
        stage: Some("b".into()),
        reach,
    };
    let cases: [(Vec<Peer>, bool, &str); 4] = [
        (
            vec![peer(5, "g/p", Reach::Reached)],
            false,
            "w #5 reached b (1 of 2 needed)",
        ),
        (
            vec![
                peer(5, "g/p", Reach::Reached),
                peer(6, "g/p", Reach::Reached),
                peer(7, "other", Reach::Before),
            ],
            true,
            "w #5 reached b, #6 reached b",
        ),
        (
            vec![
                peer(5, "g/p", Reach::Reached),
                peer(6, "g/p", Reach::Reached),
                peer(8, "g/p", Reach::Before),
            ],
            false,
            "w #5 reached b, #6 reached b, #8 is in b",
        ),
        (
            vec![peer(9, "g/p", Reach::Elsewhere)],
            false,
            "no open or completed w migration with flag = g/p yet",
        ),
    ];
    for (peers, passed, detail) in cases {
        let mut f = Facts::default();
        f.peers.insert(("w".into(), "b".into()), Ok(peers));
        let snap = snapshot(&[("proj", "g/p")], f);
        let cx = Context {
            snapshot: &snap,
            labels: &snap.issue.labels,
            entered_at: t(0),
            now: t(10),
            vars: &snap.vars,
            exit: false,
        };
        let out = evaluate(&g, &cx);
        assert_eq!((out.passed, out.detail.as_str()), (passed, detail));
    }
}
