//! Bad values stay data (DESIGN §11): control characters in a variable never reach an
//! issue, the rehearsal clock never goes past 9999-12-31, and a URL's user info is never
//! shown.

use crate::support::{at, stderr, write_workflow, Shepherd};

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
    write_workflow(
        s.dir.path(),
        "echo",
        ECHO,
        &[("echo", ECHO_TEMPLATE), ("echo-child", ECHO_CHILD)],
    );
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

/// The password of every URL in the tests below.
const SECRET: &str = "pa55-SECRET-w0rd";

/// `url` (`http://HOST…`) with user info `bot:SECRET` put in.
fn with_user_info(url: &str) -> String {
    url.replacen("://", &format!("://bot:{SECRET}@"), 1)
}

/// Runs shepherd in `dir` with `args` and the tokens set; asserts the password appears in
/// neither stdout nor stderr, and returns (exit code, stdout and stderr).
fn run_hiding(dir: &std::path::Path, args: &[&str]) -> (Option<i32>, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shepherd"))
        .current_dir(dir)
        .env_remove("SHEPHERD_TRACKER")
        .env("GITLAB_TOKEN", "glpat-bot-0123456789")
        .env("GITHUB_TOKEN", "ghp_bot0123456789")
        .env("SHEPHERD_RETRY_BASE_MS", "10")
        .env("SHEPHERD_GITLAB_URL", with_user_info("http://127.0.0.1:1"))
        .args(["--max-wait", "1s", "--timeout", "2s"])
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        crate::support::stdout(&out),
        crate::support::stderr(&out)
    );
    assert!(
        !text.contains(SECRET),
        "{args:?} shows the password:\n{text}"
    );
    (out.status.code(), text)
}

/// A watch workflow for the local tracker: one metric gate, so that Prometheus is asked.
const WATCH: &str = "name: watch
tracking: {template: watch}
stages:
  - id: watching
    label: \"watch::watching\"
    gates:
      - metric: {query: \"up\", below: 1}
    next: done
  - id: done
    label: \"watch::done\"
    terminal: true
";

const WATCH_TEMPLATE: &str = "---\ntitle: Watch\n---\nbody\n";

#[test]
fn user_info_in_urls_is_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on (refused), and one that accepts and never answers.
    let refused = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}", l.local_addr().unwrap().port())
    };
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://127.0.0.1:{}", silent.local_addr().unwrap().port());
    let shown_refused = refused.clone();
    let (refused, silent_url) = (with_user_info(&refused), with_user_info(&silent_url));
    let local = format!("local:{}", dir.path().join("tracker.db").display());
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "--tracker",
                "gitlab:group/project",
                "--gitlab-url",
                &refused,
                "status",
            ],
            "cannot connect to GitLab at http://127.0.0.1:",
        ),
        (
            vec![
                "--tracker",
                "gitlab:group/project",
                "--gitlab-url",
                &silent_url,
                "status",
            ],
            "did not answer",
        ),
        (
            vec![
                "--tracker",
                "gitlab:group/project",
                "--gitlab-url",
                "http://bot:pa55-SECRET-w0rd@127.0.0.1:notaport",
                "status",
            ],
            "bad --gitlab-url `http://127.0.0.1:notaport`",
        ),
        (
            vec![
                "--tracker",
                "github:owner/repo",
                "--github-url",
                &refused,
                "status",
            ],
            "the user info of the GitHub URL is not used",
        ),
        (
            vec![
                "--tracker",
                "github:owner/repo",
                "--github-url",
                &silent_url,
                "status",
            ],
            "did not answer",
        ),
        (
            vec![
                "--tracker",
                &local,
                "--state",
                "postgres://shepherd:pa55-SECRET-w0rd@127.0.0.1:1/state",
                "status",
            ],
            "cannot open the state store postgres://127.0.0.1:1/state",
        ),
        (
            vec![
                "--tracker",
                &local,
                "--state",
                "postgres://shepherd:pa55-SECRET-w0rd@db:notaport/state",
                "status",
            ],
            "bad state URL `postgres://db:notaport/state`",
        ),
        (
            vec![
                "--tracker",
                &local,
                "--prometheus-url",
                "http://bot:pa55-SECRET-w0rd@prom:99999",
                "status",
            ],
            "bad Prometheus URL `http://prom:99999`",
        ),
        (
            vec![
                "--tracker",
                "gitlab:group/project",
                "--flags",
                "gitlab-project",
                "--gitlab-url",
                &refused,
                "flag",
                "list",
            ],
            "gitlab-project at http://127.0.0.1:",
        ),
        (
            vec![
                "--tracker",
                &local,
                "--flags",
                "gitlab-instance",
                "--gitlab-url",
                &refused,
                "flag",
                "list",
            ],
            "gitlab-instance at http://127.0.0.1:",
        ),
        // The URL from SHEPHERD_GITLAB_URL is not shown by --help either.
        (vec!["--help"], "SHEPHERD_GITLAB_URL"),
    ];
    for (args, expected) in &cases {
        let (_, text) = run_hiding(dir.path(), args);
        assert!(
            text.contains(expected),
            "{args:?}: expected {expected:?} in:\n{text}"
        );
    }

    // Unleash, from shepherd.toml.
    let project = tempfile::tempdir().unwrap();
    std::fs::write(
        project.path().join("shepherd.toml"),
        format!("[flags]\nbackend = \"unleash\"\nurl = \"{refused}\"\n"),
    )
    .unwrap();
    let (code, text) = run_hiding(project.path(), &["flag", "list"]);
    assert_eq!(code, Some(1));
    assert!(
        text.contains(&format!("unleash at {shown_refused}")),
        "{text}"
    );

    // Prometheus, asked by a metric gate: its answer (none) is the gate's detail.
    write_workflow(project.path(), "watch", WATCH, &[("watch", WATCH_TEMPLATE)]);
    std::fs::write(project.path().join("shepherd.toml"), "").unwrap();
    let prometheus = ["--prometheus-url", refused.as_str()];
    let (code, _) = run_hiding(
        project.path(),
        &[&prometheus[..], &["start", "watch"]].concat(),
    );
    assert_eq!(code, Some(0));
    let (_, text) = run_hiding(
        project.path(),
        &[&prometheus[..], &["status", "1"]].concat(),
    );
    assert!(
        text.contains(&format!("Prometheus at {shown_refused}")),
        "{text}"
    );
    drop(silent);
}

/// On the GitLab test server, with user info in `--gitlab-url`: the requests go through,
/// and a gate's detail that names the server shows it without.
#[test]
fn user_info_stays_out_of_what_a_remote_run_prints() {
    use crate::api::Api;
    let server =
        crate::gitlab_server::GitLabServer::start(&[("glpat-bot-0123456789", "shepherd-bot")]);
    let dir = tempfile::tempdir().unwrap();
    let watch = WATCH.replace(
        "      - metric: {query: \"up\", below: 1}",
        "      - release: {project: nobody/nothing}",
    );
    write_workflow(dir.path(), "watch", &watch, &[("watch", WATCH_TEMPLATE)]);
    let url = with_user_info(server.url());
    let remote = [
        "--tracker",
        "gitlab:group/project",
        "--gitlab-url",
        url.as_str(),
    ];
    let (code, text) = run_hiding(dir.path(), &[&remote[..], &["start", "watch"]].concat());
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = run_hiding(dir.path(), &[&remote[..], &["status", "1"]].concat());
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains(&format!(
            "project `nobody/nothing` not found on {}",
            server.url()
        )),
        "{text}"
    );
    for (args, what) in [
        (&["status"][..], "tracker: gitlab:group/project"),
        (&["report"][..], ""),
    ] {
        let (code, text) = run_hiding(dir.path(), &[&remote[..], args].concat());
        assert_eq!(code, Some(0), "{text}");
        assert!(text.contains(what), "{text}");
    }
}
