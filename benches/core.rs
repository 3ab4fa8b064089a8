//! Benchmarks of the pure core, each against a baseline measured in the same run:
//!
//! - `plan` over 10,000 migrations of the shipped workflows (bodies rendered from the
//!   shipped templates, half-ticked checklists, label histories), against a bare
//!   pulldown-cmark pass over the same bodies: the parsing `plan` cannot avoid.
//! - rendering the acceptance-testing template 10,000 times, against replacing the seed's
//!   seven placeholders with `str::replace`: what a person's copy-and-edit does.
//!
//! Run with `cargo bench --bench core`. Figures are medians of 5 runs.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

use chrono::{TimeZone, Utc};
mod timing;
include!("servers.rs");

use shepherd::catalog::Sources;
use shepherd::core::machine;
use shepherd::core::snapshot::{
    Child, ChildStage, IssueView, LabelEvent, Snapshot, TransitionRecord,
};
use shepherd::render::{context_from_dotted, Context, IssueRef};
use timing::median;

const N: usize = 10_000;

fn main() {
    let catalog = Sources::builtin()
        .load()
        .expect("the shipped workflows load");
    let now = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
    let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();

    // 10,000 migrations across the three shipped workflows, at every stage.
    let mut vars = api::gitaly_vars();
    vars.insert("feature_flag".into(), "gitaly_find_commit".into());
    let names = [
        "gitaly-migration",
        "acceptance-testing",
        "feature-flag-rollout",
    ];
    let mut bodies = BTreeMap::new();
    for name in names {
        let w = &catalog.workflows[name];
        let mut v = vars.clone();
        for var in &w.variables {
            v.entry(var.name.clone())
                .or_insert_with(|| var.default.clone().unwrap_or_default());
        }
        let me = IssueRef {
            number: "12".into(),
            ..Default::default()
        };
        let cx = Context {
            vars: &v,
            migration: Some(me.clone()),
            parent: Some(me.clone()),
            issue: Some(me),
            now,
        };
        let body = catalog
            .renderer
            .render(&w.tracking.template, &cx.to_value())
            .unwrap()
            .body;
        bodies.insert(name, (body, v));
    }
    let at_body = bodies["acceptance-testing"].0.clone();
    let snapshots: Vec<(&str, Snapshot)> = (0..N)
        .map(|i| {
            let name = names[i % names.len()];
            let w = &catalog.workflows[name];
            let stage = &w.stages[i / names.len() % w.stages.len()];
            let (body, vars) = &bodies[name];
            // Tick every other item so that checklists are half done.
            let body: String = body
                .split("- [ ]")
                .enumerate()
                .map(|(k, part)| {
                    if k == 0 {
                        part.to_string()
                    } else if k % 2 == 0 {
                        format!("- [x]{part}")
                    } else {
                        format!("- [ ]{part}")
                    }
                })
                .collect();
            let entered = t0 + chrono::Duration::hours((i % 500) as i64);
            let issue = IssueView {
                number: i as u64 + 1,
                title: format!("migration {i}"),
                body: body.into(),
                labels: vec![
                    w.tracking.labels.first().cloned().unwrap_or_default(),
                    stage.label.clone(),
                ],
                open: true,
                created_at: t0,
                url: String::new(),
                checklists: Default::default(),
            };
            let label_events = vec![
                LabelEvent {
                    label: stage.label.clone(),
                    added: true,
                    actor: "shepherd".into(),
                    at: entered,
                },
                LabelEvent {
                    label: "Opt-In Approved".into(),
                    added: true,
                    actor: "mallory".into(),
                    at: entered,
                },
            ];
            let transitions = vec![TransitionRecord {
                seq: 1,
                from: None,
                to: stage.id.clone(),
                at: entered,
                by: "shepherd".into(),
                reason: None,
                rollback: false,
                untick: Vec::new(),
            }];
            let children = if name == "gitaly-migration" {
                vec![Child {
                    issue: IssueView {
                        number: 100_000 + i as u64,
                        body: at_body.as_str().into(),
                        checklists: Default::default(),
                        ..issue.clone()
                    },
                    template: "acceptance-testing".into(),
                    entry: Some(1),
                    stage: Some(ChildStage {
                        id: "staging-trial".into(),
                        terminal: false,
                    }),
                }]
            } else {
                Vec::new()
            };
            (
                name,
                Snapshot {
                    issue,
                    vars: vars.clone(),
                    label_events,
                    history_unread: false,
                    portfolio: Default::default(),
                    facts: Default::default(),
                    transitions,
                    children,
                },
            )
        })
        .collect();

    let baseline = median(|| {
        let mut events = 0usize;
        for (_, s) in &snapshots {
            events += pulldown_cmark::Parser::new_ext(
                &s.issue.body,
                pulldown_cmark::Options::ENABLE_TASKLISTS,
            )
            .count();
        }
        black_box(events);
    });
    let planned = median(|| {
        let mut moves = 0usize;
        for (name, s) in &snapshots {
            moves += machine::plan(&catalog.workflows[*name], s, now)
                .transitions
                .len();
        }
        black_box(moves);
    });
    report(
        "plan, 10,000 migrations",
        planned,
        "pulldown-cmark pass over the same bodies",
        baseline,
    );

    // Rendering.
    let seed = include_str!("../templates/acceptance-testing.md.hbs");
    let values: BTreeMap<String, String> = [
        ("feature_flag", "gitaly_find_commit"),
        ("grpc_service", "CommitService"),
        ("grpc_method", "FindCommit"),
        ("gitaly_version", "v1.2.3"),
        ("gitlab_version", "v11.4"),
        ("migration.ref", "12"),
        ("issue.ref", "13"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let context = context_from_dotted(&values, now);
    let by_hand = median(|| {
        for _ in 0..N {
            let mut text = seed.to_string();
            for (placeholder, value) in [
                ("{{feature_flag}}", "gitaly_find_commit"),
                ("{{grpc_service}}", "CommitService"),
                ("{{grpc_method}}", "FindCommit"),
                ("{{gitaly_version}}", "v1.2.3"),
                ("{{gitlab_version}}", "v11.4"),
                ("{{migration.ref}}", "12"),
                ("{{issue.ref}}", "13"),
            ] {
                text = text.replace(placeholder, value);
            }
            black_box(text);
        }
    });
    let rendered = median(|| {
        for _ in 0..N {
            black_box(
                catalog
                    .renderer
                    .render("acceptance-testing", &context)
                    .unwrap(),
            );
        }
    });
    report(
        "render acceptance-testing, 10,000 times",
        rendered,
        "str::replace of the 7 placeholders",
        by_hand,
    );
}

fn report(what: &str, time: Duration, baseline_name: &str, baseline: Duration) {
    let per = time.as_secs_f64() * 1e6 / N as f64;
    println!(
        "{what}: {:.1} ms ({per:.1} µs each); baseline ({baseline_name}): {:.1} ms; ratio {:.2}x",
        time.as_secs_f64() * 1e3,
        baseline.as_secs_f64() * 1e3,
        time.as_secs_f64() / baseline.as_secs_f64()
    );
}
