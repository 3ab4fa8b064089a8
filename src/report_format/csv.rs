//! CSV, RFC 4180, for spreadsheets: a header of stable column names, one row per
//! migration; new columns are only ever added at the end.

use crate::core::report::Report;

/// The report as CSV.
pub fn csv(report: &Report) -> Result<String, csv::Error> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    w.write_record([
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
        "transitions",
        "paused",
        "paused_by",
        "paused_reason",
        "failing",
        "overdue",
        "forecast_expected",
        "forecast_p90",
    ])?;
    for row in &report.migrations {
        let s = &row.status;
        let children: Vec<String> = s
            .children
            .iter()
            .map(|c| format!("#{} {} {}", c.number, c.template, c.state))
            .collect();
        w.write_record([
            s.number.to_string(),
            s.title.clone(),
            s.url.clone(),
            s.workflow.clone(),
            s.stage.clone().unwrap_or_default(),
            s.label.clone().unwrap_or_default(),
            s.state.clone(),
            s.entered_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            format!("{:.2}", row.time_in_stage_seconds as f64 / 3600.0),
            row.stale.to_string(),
            row.blocked_by.clone(),
            children.join("; "),
            s.history.as_ref().map(|h| h.len()).unwrap_or(0).to_string(),
            s.paused.to_string(),
            s.paused_by.clone().unwrap_or_default(),
            s.paused_reason.clone().unwrap_or_default(),
            s.failing.clone().unwrap_or_default(),
            s.overdue.to_string(),
            date(s.forecast.as_ref().map(|f| f.expected)),
            date(s.forecast.as_ref().map(|f| f.p90)),
        ])?;
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// A time as RFC 3339 to the second, or empty.
fn date(at: Option<chrono::DateTime<chrono::Utc>>) -> String {
    at.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}
