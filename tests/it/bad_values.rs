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
