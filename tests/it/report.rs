//! Reports: the HTML page opened in headless Chromium (no console errors, the charts with
//! the right number of bars, a PNG screenshot), CSV read back by a CSV reader, the JSON
//! shape, filters, and `--publish` keeping one summary issue.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::{at, start_gitaly, tool, Shepherd};

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

/// Runs headless Chromium on `page` with `args`; returns (stdout, console lines).
fn headless(chromium: &Path, page: &Path, args: &[&str]) -> (String, Vec<String>) {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let console = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(String::from)
        .collect();
    (String::from_utf8_lossy(&out.stdout).into_owned(), console)
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
    for external in [
        "<script",
        "<link",
        "@import",
        "url(",
        "src=\"http",
        "@font-face",
    ] {
        assert!(
            !html.contains(external),
            "the page must be self-contained: {external}"
        );
    }
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
    assert_eq!(
        dom.matches("<svg class=\"funnel\"").count(),
        3,
        "a funnel per workflow"
    );
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
    assert!(
        dom.contains("<span class=\"badge\">stale</span>"),
        "the stale migration is marked"
    );
    assert!(
        dom.contains("<b>checklist</b>: 0/3 items in <em>Migration Analysis</em>"),
        "what blocks each migration"
    );

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-output");
    std::fs::create_dir_all(&dir).unwrap();
    let png = dir.join("report.png");
    let _ = std::fs::remove_file(&png);
    let (_, console) = headless(
        &chromium,
        &page,
        &[
            &format!("--screenshot={}", png.display()),
            "--window-size=1280,2400",
            "--hide-scrollbars",
        ],
    );
    assert!(console.is_empty(), "{console:#?}");
    let bytes = std::fs::read(&png).expect("a screenshot");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert!(
        bytes.len() > 20_000,
        "a real picture, not a blank page: {} bytes",
        bytes.len()
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
    assert_eq!(
        headers,
        [
            "ref",
            "title",
            "url",
            "workflow",
            "stage",
            "label",
            "state",
            "entered_at",
            "time_in_stage_hours",
            "stale",
            "blocked_by",
            "children",
            "transitions"
        ]
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
    for key in [
        "ref",
        "title",
        "url",
        "workflow",
        "stage",
        "label",
        "state",
        "entered_at",
        "gates",
        "children",
        "history",
        "time_in_stage_seconds",
        "blocked_by",
        "stale",
    ] {
        assert!(m.get(key).is_some(), "migration lacks {key}: {m}");
    }
    let open: Vec<u64> = report["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["ref"].as_u64().unwrap())
        .collect();
    assert_eq!(open, [1, 2, 3, 4], "three migrations and #3's acceptance-testing child; the closed #5 only with --include-closed");
    let lead = report["lead_times"]["gitaly-migration"].as_array().unwrap();
    let selection = lead.iter().find(|l| l["stage"] == "selection").unwrap();
    assert_eq!(selection["samples"], 2);
    assert_eq!(selection["median_seconds"], 2 * 3600);
    assert_eq!(selection["p90_seconds"], 2 * 3600);
    let stale: Vec<u64> = report["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["stale"] == true)
        .map(|m| m["ref"].as_u64().unwrap())
        .collect();
    assert_eq!(stale, [1, 2, 3, 4], "more than 14 days in their stage");

    let refs = |args: &[&str]| -> Vec<u64> {
        let mut all = vec!["report", "--now", &now];
        all.extend(args);
        s.json(&all)["migrations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["ref"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(refs(&["--stage", "selection"]), [2]);
    assert_eq!(refs(&["--label", "team-gitaly"]), [2]);
    assert_eq!(
        refs(&["--workflow", "feature-flag-rollout", "--include-closed"]),
        [5]
    );
    assert_eq!(refs(&["--workflow", "acceptance-testing"]), [4]);
    let stale = s.json(&["report", "--now", &now, "--stale-after", "16d"]);
    let stale: Vec<u64> = stale["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["stale"] == true)
        .map(|m| m["ref"].as_u64().unwrap())
        .collect();
    assert_eq!(
        stale,
        [1, 2],
        "#3 and its child entered their stage on day 5"
    );
    let err = s.fails(&["report", "--workflow", "nope"]);
    assert!(err.contains("unknown workflow `nope`"), "{err}");
    let err = s.fails(&["report", "--stale-after", "soon"]);
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
