//! A report over 10,000 migrations with histories, in every format, against a baseline
//! measured in the same run: serialising the same statuses to JSON with serde_json (the
//! least any format must do: walk every migration and write it out).
//!
//! Run with `cargo bench --bench report`. Figures are medians of 5 runs.

use std::hint::black_box;
use std::time::Duration;

use chrono::{TimeZone, Utc};
#[path = "../tests/it/seeds.rs"]
mod seeds;
mod timing;

use seeds::{status, walked};
use shepherd::catalog::Sources;
use shepherd::core::gates::GateReport;
use shepherd::core::report::{self, Status};
use shepherd::report_format;
use timing::median;

const N: usize = 10_000;

fn main() {
    let catalog = Sources::builtin()
        .load()
        .expect("the shipped workflows load");
    let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let now = t0 + chrono::Duration::days(120);
    let names = [
        "gitaly-migration",
        "acceptance-testing",
        "feature-flag-rollout",
    ];
    let statuses: Vec<Status> = (0..N)
        .map(|i| {
            let w = &catalog.workflows[names[i % names.len()]];
            let depth = 1 + i % w.stages.len();
            let history = walked(w, depth, |k| {
                t0 + chrono::Duration::hours((i % 97) as i64 + 30 * k as i64)
            });
            let title = format!("Migration {i}: move the thing, \"carefully\"");
            let url = format!(
                "https://gitlab.example.com/group/project/-/issues/{}",
                i + 1
            );
            Status {
                gates: vec![GateReport {
                    gate: "checklist".into(),
                    description: "all items are done".into(),
                    passed: false,
                    detail: "3/5 items in *5. Initial Impact Check*".into(),
                    waits_for: Some("whoever works on the migration to tick the items under *5. Initial Impact Check*".into()),
                }],
                // One in 50 paused, one in 200 failing, as a busy deployment might have.
                paused: i % 50 == 7,
                paused_by: (i % 50 == 7).then(|| "alice".to_string()),
                paused_reason: (i % 50 == 7).then(|| "error rate up on staging".to_string()),
                failing: (i % 200 == 3).then(|| "GitLab answered 502".to_string()),
                ..status(w, i as u64 + 1, title, url, history)
            }
        })
        .collect();
    let workflows: Vec<_> = catalog.workflows.values().collect();

    let baseline = median(|| {
        black_box(serde_json::to_string(&statuses).unwrap());
    });
    let past = report::past_of(&statuses);
    let built = median(|| {
        black_box(report::build(
            now,
            &workflows,
            statuses.clone(),
            chrono::Duration::days(14),
            &past,
        ));
    });
    let report = report::build(
        now,
        &workflows,
        statuses.clone(),
        chrono::Duration::days(14),
        &past,
    );
    type Format<'a> = (&'static str, Box<dyn Fn() -> usize + 'a>);
    let formats: [Format; 5] = [
        (
            "text",
            Box::new(|| report_format::text(&report, false).len()),
        ),
        ("md", Box::new(|| report_format::text(&report, true).len())),
        (
            "json",
            Box::new(|| serde_json::to_string_pretty(&report).unwrap().len()),
        ),
        (
            "csv",
            Box::new(|| report_format::csv(&report).unwrap().len()),
        ),
        ("html", Box::new(|| report_format::html(&report).len())),
    ];
    println!("report over {N} migrations with histories; baseline (serde_json of the statuses): {:.1} ms", ms(baseline));
    println!(
        "  model (lead times, staleness, blockers): {:.1} ms, {:.2}x baseline",
        ms(built),
        ratio(built, baseline)
    );
    for (name, f) in &formats {
        let size = f();
        let time = median(|| {
            black_box(f());
        });
        println!(
            "  {name:<5} {:>8.1} ms, {:>5.2}x baseline, {:.1} MB",
            ms(time),
            ratio(time, baseline),
            size as f64 / 1e6
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}
