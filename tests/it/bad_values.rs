//! Bad values stay data (DESIGN §11): control characters in a variable never reach an
//! issue, the rehearsal clock never goes past 9999-12-31, and a URL's user info is never
//! shown.

use crate::support::{at, stderr, Shepherd};

/// A workflow whose texts print its one variable everywhere a value can go: the tracking
/// issue's title and body (at the start of a line, too), a child's title and body, and an
/// on_enter comment.
const ECHO: &str = "name: echo
variables:
  note: {required: true}
tracking: {template: echo}
stages:
  - id: open
    label: \"echo::open\"
    on_enter:
      - create_issue: {template: echo-child}
      - comment: \"{{note}}\"
    gates:
      - checklist: {section: Plan}
    next: done
  - id: done
    label: \"echo::done\"
    terminal: true
";

const ECHO_TEMPLATE: &str =
    "---\ntitle: \"Echo {{note}}\"\n---\n{{note}}\n\n## Plan\n- [ ] {{note}}\n";
const ECHO_CHILD: &str = "---\ntitle: \"{{note}}\"\n---\n{{note}}\n";

fn echo_project() -> Shepherd {
    let s = Shepherd::new();
    std::fs::create_dir_all(s.path("workflows")).unwrap();
    std::fs::create_dir_all(s.path("templates")).unwrap();
    std::fs::write(s.path("workflows/echo.yaml"), ECHO).unwrap();
    std::fs::write(s.path("templates/echo.md.hbs"), ECHO_TEMPLATE).unwrap();
    std::fs::write(s.path("templates/echo-child.md.hbs"), ECHO_CHILD).unwrap();
    s
}

/// What must hold of every title, body and comment: no C0 or C1 control character but
/// tab and the body's own line breaks, and no line that starts a quick action.
fn assert_clean(what: &str, text: &str) {
    let bad: Vec<String> = text
        .chars()
        .filter(|c| c.is_control() && !matches!(c, '\n' | '\t'))
        .map(|c| format!("U+{:04X}", c as u32))
        .collect();
    assert!(bad.is_empty(), "{what} holds {bad:?}: {text:?}");
    for line in text.split(['\n', '\u{2028}', '\u{2029}']) {
        assert!(
            !line.trim_start().starts_with("/close"),
            "{what} has a line starting a quick action: {line:?} in {text:?}"
        );
    }
}

#[test]
fn control_characters_in_values_reach_no_issue_or_comment() {
    let s = echo_project();
    // Every C0 and C1 control character but NUL (which no argument can carry; the vars
    // file below brings it), each before a quick action, as a GitLab that reads FS, GS
    // and RS as line breaks would have run it.
    let mut value = String::from("x");
    for c in (1u32..=0x9F)
        .filter_map(char::from_u32)
        .filter(|c| c.is_control())
    {
        value.push(c);
        value.push_str("/close ");
    }
    let out = s.run(&[
        "start",
        "echo",
        "--var",
        &format!("note={value}"),
        "--now",
        &at("0m"),
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("variable `note`: control characters taken out of its value"),
        "{}",
        stderr(&out)
    );
    let issues = s.issues();
    assert_eq!(issues.len(), 2, "the tracking issue and its child");
    for issue in &issues {
        assert_clean(&format!("#{} title", issue.number), &issue.title);
        assert_clean(&format!("#{} body", issue.number), &issue.body);
        for c in s.comments(issue.number) {
            assert_clean(&format!("a comment on #{}", issue.number), &c.body);
        }
    }
    // The value is still there, as text.
    let tracking = s.issue(1);
    assert!(
        tracking.title.starts_with("Echo x/close"),
        "{}",
        tracking.title
    );
    // The first line of the body is the value; `/close` never starts a line.
    let first = tracking.body.lines().next().unwrap();
    assert!(first.starts_with("x/close"), "{first:?}");

    // A value that starts with a control character and a quick action is defused too,
    // from a vars file (NUL included) and with a given title.
    let s = echo_project();
    std::fs::write(
        s.path("vars.yaml"),
        "note: \"\\0\\x1C/close\\x1D/label ~x\\x1E\"\n",
    )
    .unwrap();
    s.ok(&[
        "start",
        "echo",
        "--vars-file",
        "vars.yaml",
        "--title",
        "\u{1b}[2Jtitle\u{9b}/close",
        "--now",
        &at("0m"),
    ]);
    let issue = s.issue(1);
    assert_eq!(issue.title, "[2Jtitle/close");
    assert_clean("the body", &issue.body);
    assert!(
        issue.body.starts_with("\u{200B}/close/label ~x\n"),
        "{:?}",
        issue.body
    );
    let status = s.json(&["status", "1"]);
    assert_eq!(status["title"], "[2Jtitle/close");
}

/// The clock as `clock --format json` shows it.
fn clock(s: &Shepherd) -> String {
    s.json(&["clock"])["clock"].as_str().unwrap().to_string()
}

#[test]
fn the_clock_never_goes_past_9999() {
    let s = Shepherd::new();
    s.ok(&["clock", "set", "9999-12-31T23:59:59Z"]);
    for by in ["1d", "1s"] {
        let err = s.fails(&["clock", "advance", by]);
        assert!(
            err.contains("cannot move the clock from 9999-12-31T23:59:59Z by")
                && err.contains("is past 9999-12-31T23:59:59Z, the latest time shepherd can keep"),
            "{err}"
        );
        assert_eq!(clock(&s), "9999-12-31T23:59:59Z", "nothing written");
    }
    // A time that is past the end only in UTC is a bad flag value: a usage error (exit 2),
    // for `clock set` and for `--now` alike.
    for args in [
        &["clock", "set", "9999-12-31T23:59:59-01:00"][..],
        &["status", "--now", "9999-12-31T23:59:59-01:00"][..],
        &["clock", "set", "0000-01-01T00:00:00+01:00"][..],
    ] {
        let out = s.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert!(
            err.contains("the latest time shepherd can keep")
                || err.contains("the earliest time shepherd can keep"),
            "{err}"
        );
    }
    assert_eq!(clock(&s), "9999-12-31T23:59:59Z", "nothing written");
    // Every command still works at the last second.
    s.ok(&["status"]);
    s.ok(&["clock", "set", "2026-01-01T00:00:00Z"]);
}

#[test]
fn a_tracker_file_with_an_unreadable_time_is_named() {
    let s = Shepherd::new();
    crate::support::start_gitaly(&s, &at("0m"));
    s.ok(&["clock", "set", &at("1h")]);
    let conn = rusqlite::Connection::open(s.db()).unwrap();
    conn.execute(
        "UPDATE shepherd_meta SET value = '+10000-01-01T23:59:59Z' WHERE key = 'clock'",
        [],
    )
    .unwrap();
    drop(conn);
    let path = s.db().display().to_string();
    for args in [
        &["status"][..],
        &["clock"][..],
        &["clock", "advance", "1d"][..],
    ] {
        let err = s.fails(args);
        assert!(
            err.contains(&format!(
                "the rehearsal clock stored in {path} is `+10000-01-01T23:59:59Z`, which is no time shepherd can read"
            )) && err.contains("set it again with `shepherd clock set"),
            "{args:?}: {err}"
        );
    }
    // `clock set` repairs it.
    s.ok(&["clock", "set", &at("2h")]);
    assert_eq!(clock(&s), at("2h"));
    assert!(s.ok(&["status", "1"]).contains("selection"));

    // An issue's time out of range names the file too.
    let conn = rusqlite::Connection::open(s.db()).unwrap();
    conn.execute(
        "UPDATE issues SET created_at = '+10000-01-01T00:00:00Z' WHERE number = 1",
        [],
    )
    .unwrap();
    drop(conn);
    let err = s.fails(&["status", "1"]);
    assert!(
        err.contains(&format!(
            "{path} is corrupt: a stored time is unreadable: `+10000-01-01T00:00:00Z`"
        )),
        "{err}"
    );
}
