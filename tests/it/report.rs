//! Reports: the HTML page opened in headless Chromium (no console errors, the charts with
//! the right number of bars, a legend naming every colour, distinct time ticks, rows named
//! and linked, empty workflows folded, paused and failing migrations marked, PNG
//! screenshots in target/test-output/), CSV read back by a CSV reader, the JSON shape,
//! filters, and `--publish` keeping one summary issue.

use std::path::Path;

use serde_json::Value;

use crate::support::{self, at, start_gitaly, tool, Shepherd, STATUS_KEYS};

/// Four migrations in different places, one of them done, one stale.
fn project() -> Shepherd {
    let s = Shepherd::new();
    let a = start_gitaly(&s, &at("0m"));
    let b = start_gitaly(&s, &at("0m"));
    let c = start_gitaly(&s, &at("1d"));
    s.tick_section(a, None, "Selection", &at("2h"));
    s.ok(&["advance", &a.to_string(), "--now", &at("2h")]);
    for (section, when) in [
        ("Selection", "1d2h"),
        ("Migration Analysis", "2d"),
        ("RPC Design", "3d"),
        ("Server Implementation", "4d"),
        ("Client Implementation", "4d"),
        ("Ready for Testing", "5d"),
    ] {
        s.tick_section(c, None, section, &at(when));
        s.ok(&["advance", &c.to_string(), "--now", &at(when)]);
    }
    let done = s.json(&[
        "start",
        "feature-flag-rollout",
        "--var",
        "feature_flag=old_flag",
        "--title",
        "Roll out old_flag, \"quoted\", with a comma",
        "--now",
        &at("0m"),
    ]);
    let d = done["ref"].as_u64().unwrap();
    s.ok(&[
        "label",
        &d.to_string(),
        "--add",
        "rollback",
        "--now",
        &at("1d"),
    ]);
    s.ok(&["advance", &d.to_string(), "--now", &at("1d")]);
    s.ok(&["close", &d.to_string(), "--now", &at("1d")]);
    s.ok(&[
        "label",
        &b.to_string(),
        "--add",
        "team-gitaly",
        "--now",
        &at("1h"),
    ]);
    s
}

/// Headless Chromium on the page file `page` (`support::headless`).
fn headless(chromium: &Path, page: &Path, args: &[&str]) -> (String, Vec<String>) {
    support::headless(chromium, &format!("file://{}", page.display()), args)
}

/// Every capture of `pattern`'s first group in `text`.
fn captures(text: &str, pattern: &str) -> Vec<String> {
    regex::Regex::new(pattern)
        .unwrap()
        .captures_iter(text)
        .map(|c| c[1].to_string())
        .collect()
}

/// What a reader checks on any report page: one file with nothing fetched, time ticks
/// that say different things, a legend naming every colour drawn, rows named by number
/// and title, lead times only where a stay ended.
fn check_page(html: &str, dom: &str, report: &Value) {
    for external in ["<script", "<link", "@import", "src=\"http", "@font-face"] {
        assert!(
            !html.contains(external),
            "the page must be self-contained: {external}"
        );
    }
    for target in captures(html, r"url\(([^)]*)\)") {
        assert!(
            target.starts_with('#'),
            "only the page's own patterns: url({target})"
        );
    }
    let ticks = captures(dom, r#"<text class="tick"[^>]*>([^<]*)</text>"#);
    assert!(ticks.len() >= 2, "{ticks:?}");
    let mut distinct = ticks.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        ticks.len(),
        "repeated tick labels: {ticks:?}"
    );

    let drawn: std::collections::BTreeSet<String> =
        captures(dom, r#"class="bar timeline-bar" data-stage="([^"]*)""#)
            .into_iter()
            .collect();
    let legend: std::collections::BTreeSet<String> =
        captures(dom, r#"<span class="key" data-stage="([^"]*)""#)
            .into_iter()
            .collect();
    assert!(!drawn.is_empty());
    assert_eq!(
        legend, drawn,
        "the legend names every stage the timeline draws"
    );
    for key in &drawn {
        let stage = key.split(':').nth(1).unwrap();
        assert!(
            dom.contains(&format!("data-stage=\"{key}\"><svg class=\"swatch\"")),
            "a swatch for {key}"
        );
        assert!(legend.iter().any(|l| l.ends_with(stage)));
    }

    let labels = captures(
        dom,
        r#"<text class="row-label"[^>]*><title>([^<]*)</title>"#,
    );
    let migrations = report["migrations"].as_array().unwrap();
    assert_eq!(labels.len(), migrations.len());
    for (label, m) in labels.iter().zip(migrations) {
        let title = m["title"]
            .as_str()
            .unwrap()
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        assert_eq!(
            label,
            &format!("#{} {}", m["ref"], title),
            "rows carry number and title"
        );
    }

    let stays = captures(
        dom,
        r#"<tr><td>[^<]*</td><td>[^<]*</td><td>[^<]*</td><td>[^<]*</td><td>(\d+)</td></tr>"#,
    );
    assert!(!stays.is_empty(), "some stage has lead times");
    assert!(
        stays.iter().all(|n| n != "0"),
        "lead times only for stages with finished stays: {stays:?}"
    );
}

/// A screenshot of `page` at a laptop's width into target/test-output/NAME.
pub(crate) fn screenshot(chromium: &Path, page: &Path, name: &str, height: u32) {
    let url = format!("file://{}", page.display());
    support::screenshot(chromium, &url, name, height, 20_000);
}

#[test]
fn the_html_report_renders_in_chromium() {
    let Some(chromium) = tool(
        "the_html_report_renders_in_chromium",
        "chromium",
        "Debian's chromium opens the page: apt-get install chromium",
    ) else {
        return;
    };
    let s = project();
    let now = at("20d");
    s.ok(&[
        "report",
        "--format",
        "html",
        "--output",
        "report.html",
        "--include-closed",
        "--now",
        &now,
    ]);
    let page = s.path("report.html");
    let html = std::fs::read_to_string(&page).unwrap();
    let report = s.json(&["report", "--include-closed", "--now", &now]);
    let migrations = report["migrations"].as_array().unwrap();
    let timeline_bars: usize = migrations
        .iter()
        .map(|m| m["history"].as_array().unwrap().len() - usize::from(m["state"] == "completed"))
        .sum();
    let stages: usize = report["stages"]
        .as_object()
        .unwrap()
        .values()
        .map(|w| w.as_object().unwrap().len())
        .sum();

    // A control page proves that console errors would be seen.
    let control = s.path("control.html");
    std::fs::write(
        &control,
        "<!DOCTYPE html><p>x</p><script>console.error('shepherd control')</script>",
    )
    .unwrap();
    let (_, console) = headless(&chromium, &control, &["--dump-dom"]);
    assert!(
        console.iter().any(|l| l.contains("shepherd control")),
        "console lines are captured"
    );

    let (dom, console) = headless(&chromium, &page, &["--dump-dom"]);
    assert!(console.is_empty(), "console output: {console:#?}");
    check_page(&html, &dom, &report);
    assert_eq!(
        dom.matches("<svg class=\"funnel\"").count(),
        3,
        "a funnel per workflow with migrations"
    );
    assert!(!dom.contains("class=\"folded\""), "{dom}");
    assert_eq!(dom.matches("class=\"bar funnel-bar\"").count(), stages);
    assert_eq!(dom.matches("<svg class=\"timeline\"").count(), 1);
    assert_eq!(
        dom.matches("class=\"bar timeline-bar\"").count(),
        timeline_bars
    );
    assert!(timeline_bars >= 10, "{timeline_bars}");
    assert!(dom.contains("class=\"today\""), "today is marked");
    for label in ["migrations (count)", "stage", "time (UTC)", "migration"] {
        assert!(
            dom.contains(&format!(">{label}</text>")),
            "axis label {label}"
        );
    }
    // 20 days from Jan 1: a tick a week, on Mondays.
    assert_eq!(
        captures(&dom, r#"<text class="tick"[^>]*>([^<]*)</text>"#),
        ["Jan 5", "Jan 12", "Jan 19"]
    );
    assert!(
        dom.contains("<span class=\"badge stale\">stale</span>"),
        "the stale migration is marked"
    );
    assert!(dom.contains(">done</text>"), "the completed one too");
    assert!(
        dom.contains("<b>checklist</b>: 0/3 items in <em>Migration Analysis</em>"),
        "what blocks each migration"
    );
    assert!(dom.contains("<li class=\"stale attention\"><b>4</b> stale</li>"));
    screenshot(&chromium, &page, "report.png", 1500);

    // Without the closed one, its workflow has no migration: one line, no funnel.
    s.ok(&[
        "report",
        "--format",
        "html",
        "--output",
        "open.html",
        "--now",
        &now,
    ]);
    let page = s.path("open.html");
    let (dom, _) = headless(&chromium, &page, &["--dump-dom"]);
    assert_eq!(dom.matches("<svg class=\"funnel\"").count(), 2);
    assert!(
        dom.contains("<p class=\"folded\">No migrations yet: feature-flag-rollout</p>"),
        "{dom}"
    );
}

/// A report as a deployment sees it, built with the library: issues on a web tracker,
/// months of history, one paused and one failing migration, a workflow nobody uses.
fn deployment_report() -> shepherd::core::report::Report {
    use crate::seeds::{status, walked};
    use shepherd::core::report;
    let catalog = shepherd::catalog::Sources::builtin().load().unwrap();
    let gitaly = &catalog.workflows["gitaly-migration"];
    let t0 = chrono::DateTime::parse_from_rfc3339("2026-01-05T09:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let now = t0 + chrono::Duration::days(75);
    let titles = [
        "Gitaly migration: CommitService::FindCommit (gitaly_find_commit)",
        "Gitaly migration: RefService::FindAllBranches <with an & in it>",
        "Gitaly migration: BlobService::GetBlob",
        "Gitaly migration: DiffService::CommitDiff",
    ];
    let statuses: Vec<report::Status> = titles
        .iter()
        .enumerate()
        .map(|(i, title)| {
            let depth = 3 + 2 * i;
            let history = walked(gitaly, depth, |k| {
                t0 + chrono::Duration::days((3 * i + 6 * k) as i64)
            });
            let number = 40 + i as u64;
            let url = format!("https://gitlab.example.com/gitaly/-/issues/{number}");
            report::Status {
                paused: i == 1,
                paused_by: (i == 1).then(|| "alice".into()),
                paused_reason: (i == 1).then(|| "error rate up on staging".into()),
                failing: (i == 2).then(|| "GitLab answered 502 Bad Gateway".into()),
                ..status(gitaly, number, title.to_string(), url, history)
            }
        })
        .collect();
    let workflows: Vec<_> = catalog.workflows.values().collect();
    let past = report::past_of(&statuses);
    report::build(now, &workflows, statuses, chrono::Duration::days(14), &past)
}

#[test]
fn paused_and_failing_migrations_are_marked_and_rows_link_to_their_issues() {
    let Some(chromium) = tool(
        "paused_and_failing_migrations_are_marked_and_rows_link_to_their_issues",
        "chromium",
        "Debian's chromium opens the page: apt-get install chromium",
    ) else {
        return;
    };
    let report = deployment_report();
    let html = shepherd::report_format::html(&report);
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    std::fs::write(&page, &html).unwrap();
    let (dom, console) = headless(&chromium, &page, &["--dump-dom"]);
    assert!(console.is_empty(), "console output: {console:#?}");
    check_page(&html, &dom, &serde_json::to_value(&report).unwrap());

    let links = captures(&dom, r#"<a class="row-link" href="([^"]*)">"#);
    assert_eq!(
        links,
        (40..44)
            .map(|n| format!("https://gitlab.example.com/gitaly/-/issues/{n}"))
            .collect::<Vec<_>>(),
        "every row links to its issue"
    );
    assert!(
        dom.contains(
            "#41 Gitaly migration: RefService::FindAllBranches &lt;with an &amp; in it&gt;</title>"
        ),
        "the whole title on hover, escaped"
    );
    // 75 days: ticks every two weeks or a month, all distinct, none a bare repeat.
    let ticks = captures(&dom, r#"<text class="tick"[^>]*>([^<]*)</text>"#);
    assert!((3..=8).contains(&ticks.len()), "{ticks:?}");

    let marks = captures(&dom, r#"<text class="mark"[^>]*>([^<]*)</text>"#);
    assert_eq!(marks, ["stale", "paused", "failing", "stale"], "{marks:?}");
    assert_eq!(
        dom.matches("class=\"paused-hatch\"").count(),
        1,
        "the paused stay is hatched"
    );
    assert!(dom.contains("<span class=\"badge paused\">paused</span>"));
    assert!(dom.contains(
        "<li class=\"paused-note\"><b>paused by alice: error rate up on staging</b></li>"
    ));
    assert!(dom.contains("<span class=\"badge failing\">failing</span>"));
    assert!(dom.contains("<b>failing</b>: GitLab answered 502 Bad Gateway"));
    assert!(dom.contains("<li class=\"paused attention\"><b>1</b> paused</li>"));
    assert!(dom.contains("<li class=\"failing attention\"><b>1</b> failing</li>"));
    assert!(
        dom.contains(
            "<p class=\"folded\">No migrations yet: acceptance-testing, feature-flag-rollout</p>"
        ),
        "empty workflows folded into one line"
    );
    assert_eq!(dom.matches("<svg class=\"funnel\"").count(), 1);
    screenshot(&chromium, &page, "report-deployment.png", 1300);

    // The same facts in the other formats.
    let text = shepherd::report_format::text(&report, false);
    assert!(
        text.contains("paused by alice: error rate up on staging"),
        "{text}"
    );
    assert!(
        text.contains("⏸ paused") && text.contains("✖ failing"),
        "{text}"
    );
    assert!(text.contains("No migrations yet: acceptance-testing, feature-flag-rollout"));
    let md = shepherd::report_format::text(&report, true);
    assert!(md.contains("| open ⚠ stale ⏸ paused |"), "{md}");
    let csv = shepherd::report_format::csv(&report).unwrap();
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(
        (&rows[1][13], &rows[1][14], &rows[1][15], &rows[1][16]),
        ("true", "alice", "error rate up on staging", "")
    );
    assert_eq!(
        (&rows[2][13], &rows[2][16]),
        ("false", "GitLab answered 502 Bad Gateway")
    );
}

#[test]
fn csv_reads_back_with_a_csv_reader() {
    let s = project();
    let now = at("20d");
    let text = s.ok(&[
        "report",
        "--format",
        "csv",
        "--include-closed",
        "--now",
        &now,
    ]);
    let report = s.json(&["report", "--include-closed", "--now", &now]);
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    // Stable column names, new ones only ever added at the end.
    assert_eq!(
        headers.join(","),
        "ref,title,url,workflow,stage,label,state,entered_at,time_in_stage_hours,stale,\
         blocked_by,children,transitions,paused,paused_by,paused_reason,failing,overdue,\
         forecast_expected,forecast_p90"
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    let migrations = report["migrations"].as_array().unwrap();
    assert_eq!(rows.len(), migrations.len());
    for (row, m) in rows.iter().zip(migrations) {
        assert_eq!(row[0], m["ref"].to_string());
        assert_eq!(&row[1], m["title"].as_str().unwrap());
        assert_eq!(&row[6], m["state"].as_str().unwrap());
        assert_eq!(&row[10], m["blocked_by"].as_str().unwrap());
        assert_eq!(row[12], m["history"].as_array().unwrap().len().to_string());
    }
    assert!(
        rows.iter()
            .any(|r| &r[1] == "Roll out old_flag, \"quoted\", with a comma"),
        "quotes and commas survive"
    );
    assert!(text.contains("\r\n"), "RFC 4180 line ends");
}

/// The numbers of the report's migrations `m` for which `keep(m)`.
fn refs_where(report: &Value, keep: impl Fn(&Value) -> bool) -> Vec<u64> {
    report["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| keep(m))
        .map(|m| m["ref"].as_u64().unwrap())
        .collect()
}

fn is_stale(m: &Value) -> bool {
    m["stale"] == true
}

#[test]
fn json_report_shape_and_filters() {
    let s = project();
    let now = at("20d");
    let report = s.json(&["report", "--now", &now]);
    for key in [
        "generated_at",
        "stages",
        "lead_times",
        "stale_after_seconds",
        "migrations",
    ] {
        assert!(report.get(key).is_some(), "report lacks {key}");
    }
    let m: &Value = &report["migrations"][0];
    let report_keys = ["history", "time_in_stage_seconds", "blocked_by", "stale"];
    for key in STATUS_KEYS.iter().chain(&report_keys) {
        assert!(m.get(key).is_some(), "migration lacks {key}: {m}");
    }
    assert_eq!(refs_where(&report, |_| true), [1, 2, 3, 4], "three migrations and #3's acceptance-testing child; the closed #5 only with --include-closed");
    let lead = report["lead_times"]["gitaly-migration"].as_array().unwrap();
    let selection = lead.iter().find(|l| l["stage"] == "selection").unwrap();
    assert_eq!(selection["samples"], 2);
    assert_eq!(selection["median_seconds"], 2 * 3600);
    assert_eq!(selection["p90_seconds"], 2 * 3600);
    assert_eq!(
        refs_where(&report, is_stale),
        [1, 2, 3, 4],
        "more than 14 days in their stage"
    );

    let refs = |args: &[&str]| -> Vec<u64> {
        let mut all = vec!["report", "--now", &now];
        all.extend(args);
        refs_where(&s.json(&all), |_| true)
    };
    assert_eq!(refs(&["--stage", "selection"]), [2]);
    assert_eq!(refs(&["--label", "team-gitaly"]), [2]);
    assert_eq!(
        refs(&["--workflow", "feature-flag-rollout", "--include-closed"]),
        [5]
    );
    assert_eq!(refs(&["--workflow", "acceptance-testing"]), [4]);
    let stale = s.json(&["report", "--now", &now, "--stale-after", "16d"]);
    assert_eq!(
        refs_where(&stale, is_stale),
        [1, 2],
        "#3 and its child entered their stage on day 5"
    );
    let err = s.fails(&["report", "--workflow", "nope"]);
    assert!(err.contains("unknown workflow `nope`"), "{err}");
    // A bad flag value is a usage error (exit 2).
    let out = s.run(&["report", "--stale-after", "soon"]);
    assert_eq!(out.status.code(), Some(2));
    let err = crate::support::stderr(&out);
    assert!(err.contains("--stale-after"), "{err}");
}

#[test]
fn publish_keeps_one_summary_issue() {
    let s = project();
    s.ok(&["report", "--publish", "--now", &at("20d")]);
    let summaries = || {
        s.issues()
            .into_iter()
            .filter(|i| i.labels.contains(&"shepherd report".to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(summaries().len(), 1);
    let first = summaries()[0].clone();
    assert!(
        first.body.contains("# Migration report")
            && first.body.contains("<!-- shepherd:report -->")
    );
    s.tick_section(2, None, "Selection", &at("21d"));
    s.ok(&["advance", "2", "--now", &at("21d")]);
    s.ok(&["report", "--publish", "--now", &at("21d")]);
    let after = summaries();
    assert_eq!(after.len(), 1, "updated in place, never duplicated");
    assert_eq!(after[0].number, first.number);
    assert_ne!(after[0].body, first.body);
    assert!(
        s.ok(&["status"])
            .lines()
            .all(|l| !l.starts_with(&format!("#{} ", first.number))),
        "the summary is no migration"
    );
}
