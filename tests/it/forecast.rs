//! The forecast and the burn-down (DESIGN §13), checked against a history made on the
//! local tracker's rehearsal clock whose answer is known: three migrations go through
//! draft → review → verify → done on set days, a fourth starts, and `status`, the report
//! (JSON, text, CSV, HTML) and the service's page give each open one the expected date
//! and 90th percentile that the past stays say (a stage's `target` while it has fewer than
//! three), and the burn-down counts the open ones over time. The page is looked at in
//! Chromium.

use serde_json::Value;

use crate::support::{schema_change_workflow, tool, Shepherd, SCHEMA_CHANGE_TEMPLATE};

/// draft → review (target 2d) → verify (target 1d) → done; each moves on a ticked box.
fn workflow() -> String {
    schema_change_workflow("", "    target: 1d\n")
}

/// `2026-01-DD` at midnight, `day` days after the first.
fn day(day: u32) -> String {
    format!("2026-01-{:02}T00:00:00Z", day + 1)
}

fn project() -> Shepherd {
    let s = Shepherd::new();
    crate::support::write_workflow(
        s.dir.path(),
        "schema-change",
        &workflow(),
        &[("schema-change", SCHEMA_CHANGE_TEMPLATE)],
    );
    std::fs::write(
        s.path("shepherd.toml"),
        "workflows = \"workflows\"\ntemplates = \"templates\"\n",
    )
    .unwrap();
    s
}

/// Ticks `item` on migration `n` and advances it.
fn pass(s: &Shepherd, n: &str, item: &str) {
    s.ok(&["tick", n, item]);
    s.ok(&["advance", n]);
}

/// The forecast of `status` as (expected, p90), or `None`.
fn forecast(status: &Value) -> Option<(String, String)> {
    let f = status.get("forecast").filter(|f| !f.is_null())?;
    Some((
        f["expected"].as_str()?.to_string(),
        f["p90"].as_str()?.to_string(),
    ))
}

/// Day `d` as the JSON prints it.
fn json_day(d: u32) -> String {
    format!("2026-01-{:02}T00:00:00Z", d + 1)
}

#[test]
fn the_forecast_and_burndown_follow_the_past_stays() {
    let s = project();
    s.ok(&["clock", "set", &day(0)]);
    for _ in 0..3 {
        s.ok(&["start", "schema-change"]);
    }
    // Stays in draft: 1, 2 and 4 days (median 2d, p90 4d).
    s.ok(&["clock", "set", &day(1)]);
    pass(&s, "1", "Write it");
    s.ok(&["clock", "set", &day(2)]);
    pass(&s, "2", "Write it");
    s.ok(&["clock", "set", &day(4)]);
    pass(&s, "3", "Write it");
    pass(&s, "1", "Review it");

    // Day 5: one stay in review so far (3d) and none in verify: their targets stand in.
    // #3 entered review on day 4: 2d − 1d of review left, then 1d of verify.
    s.ok(&["clock", "set", &day(5)]);
    let status = s.json(&["status", "3"]);
    assert_eq!(forecast(&status), Some((json_day(7), json_day(7))));
    let text = s.ok(&["status", "3"]);
    assert!(
        text.contains("forecast: done by 2026-01-08, 90% by 2026-01-08"),
        "{text}"
    );

    // Stays in review: 3, 5 and 6 days (median 5d, p90 6d); in verify: 3 and 3 (too few).
    s.ok(&["clock", "set", &day(7)]);
    pass(&s, "2", "Review it");
    pass(&s, "1", "Verify it");
    s.ok(&["clock", "set", &day(10)]);
    pass(&s, "3", "Review it");
    pass(&s, "2", "Verify it");
    s.ok(&["clock", "set", &day(11)]);
    s.ok(&["start", "schema-change"]);

    // #4 just started: draft 2d + review 5d + verify (target) 1d; at the 90th percentile
    // 4d + 6d + 1d. #3 has been in verify a day: its target is used up.
    let status = s.json(&["status", "4"]);
    assert_eq!(forecast(&status), Some((json_day(19), json_day(22))));
    let status = s.json(&["status", "3"]);
    assert_eq!(forecast(&status), Some((json_day(11), json_day(11))));
    let all = s.json(&["status"]);
    let listed: Vec<(u64, Option<(String, String)>)> = all["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["ref"].as_u64().unwrap(), forecast(m)))
        .collect();
    assert_eq!(
        listed,
        [
            (1, None),
            (2, None),
            (3, Some((json_day(11), json_day(11)))),
            (4, Some((json_day(19), json_day(22))))
        ],
        "done ones have none"
    );

    // The report gives each open one its forecast.
    let report = s.json(&["report"]);
    let rows = report["migrations"].as_array().unwrap();
    assert_eq!(rows.len(), 4, "{report:#}");
    assert_eq!(
        forecast(&rows[3]),
        Some((json_day(19), json_day(22))),
        "{:#}",
        rows[3]
    );
    let review = report["lead_times"]["schema-change"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["stage"] == "review")
        .unwrap()
        .clone();
    assert_eq!(review["samples"], 3);
    assert_eq!(review["median_seconds"], 5 * 86_400);
    // Open over time: three from day 0, #1 done on day 7, #2 on day 10, #4 started on day
    // 11; ahead, #3 is due now and #4 on day 19 (day 22 at the 90th percentile).
    let points = |key: &str| -> Vec<(String, u64)> {
        report["burndown"][key]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["at"].as_str().unwrap().to_string(),
                    p["open"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(
        points("open"),
        [
            (json_day(0), 3),
            (json_day(7), 2),
            (json_day(10), 1),
            (json_day(11), 2)
        ]
    );
    assert_eq!(points("expected"), [(json_day(11), 1), (json_day(19), 0)]);
    assert_eq!(points("p90"), [(json_day(11), 1), (json_day(22), 0)]);
    assert_eq!(report["burndown"]["unknown"], 0);

    let text = s.ok(&["report"]);
    assert!(
        text.contains("Forecast: 2 of 2 open expected done by 2026-01-20 (90%: 2026-01-23)"),
        "{text}"
    );
    let csv = s.ok(&["report", "--format", "csv"]);
    let mut lines = csv.lines();
    assert!(lines
        .next()
        .unwrap()
        .ends_with(",overdue,forecast_expected,forecast_p90"));
    assert!(
        csv.contains(",false,2026-01-20T00:00:00Z,2026-01-23T00:00:00Z"),
        "{csv}"
    );

    let html = s.ok(&["report", "--format", "html"]);
    assert!(html.contains("<h2>Burn-down</h2>"), "{html}");
    assert!(html.contains("Burn-down: all 2 open expected done by 2026-01-20 (90%: 2026-01-23)"));
    assert!(html.contains("<td>2026-01-20 (90%: 2026-01-23)</td>"));
    for line in ["open-line", "expected-line", "p90-line"] {
        assert_eq!(
            html.matches(&format!("class=\"{line}\"")).count(),
            1,
            "{line}"
        );
    }
    look_in_chromium(&s);
    dashboard(&s);
}

/// The service's page over `s` (as after its first resync): the burn-down and each open
/// migration's forecast, as the report has them.
fn dashboard(s: &Shepherd) {
    let (get, _) = crate::serve::local_pages(s);
    let (_, page) = get("/?tracker=local");
    assert!(
        page.contains("Burn-down: all 2 open expected done by 2026-01-20 (90%: 2026-01-23)"),
        "{page}"
    );
    assert!(
        page.contains("<td>2026-01-20 (90%: 2026-01-23)</td>"),
        "{page}"
    );
}

/// With a stage ahead that has neither three past stays nor a target, there is no
/// forecast, and every view says so rather than guessing.
#[test]
fn no_forecast_without_past_stays_or_targets() {
    let s = project();
    let unpaced = schema_change_workflow("", "");
    std::fs::write(s.path("workflows/schema-change.yaml"), unpaced).unwrap();
    s.ok(&["clock", "set", &day(0)]);
    s.ok(&["start", "schema-change"]);
    let status = s.json(&["status", "1"]);
    assert!(status["forecast"].is_null(), "{status:#}");
    let text = s.ok(&["status", "1"]);
    assert!(text.contains("forecast: unknown"), "{text}");
    let report = s.json(&["report"]);
    assert_eq!(report["burndown"]["unknown"], 1);
    assert_eq!(report["burndown"]["expected"].as_array().unwrap().len(), 1);
    let html = s.ok(&["report", "--format", "html"]);
    assert!(html.contains("1 migration without a forecast"), "{html}");
    assert!(html.contains("<td>unknown</td>"));
}

/// The report page with its burn-down, opened in Chromium: no console error, the chart's
/// lines drawn; a screenshot in target/test-output/burndown.png.
fn look_in_chromium(s: &Shepherd) {
    let Some(chromium) = tool(
        "the_forecast_and_burndown_follow_the_past_stays",
        "chromium",
        "Debian's chromium opens the page: apt-get install chromium",
    ) else {
        return;
    };
    s.ok(&["report", "--format", "html", "--output", "report.html"]);
    let page = s.path("report.html");
    let url = format!("file://{}", page.display());
    let (dom, console) = crate::support::headless(&chromium, &url, &["--dump-dom"]);
    assert!(console.is_empty(), "{console:#?}");
    assert!(dom.contains("<svg class=\"burndown\""), "{dom}");
    assert!(dom.contains("class=\"expected-line\""));
    crate::report::screenshot(&chromium, &page, "burndown.png", 1000);
}
