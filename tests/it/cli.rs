//! The command line as a user meets it, through the real binary: help with descriptions
//! and examples, `--version` with the commit, completions and the man page, usage errors
//! (exit 2) for bad flag values, a closed stdout, logging, `shepherd.toml` found from a
//! subdirectory, filters and labels checked, and `--output` that leaves nothing behind.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::support::{start_gitaly, stderr, stdout, Shepherd, GITALY_VARS, T0};

/// Runs shepherd in `dir` without `--tracker`, as a user in a project would.
fn bare(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shepherd"));
    cmd.current_dir(dir)
        .env_remove("SHEPHERD_TRACKER")
        .env_remove("SHEPHERD_LOG")
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .env("USER", "tester")
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("shepherd runs")
}

/// The subcommands listed by `shepherd --help`.
fn subcommands() -> Vec<String> {
    let out = bare(Path::new("."), &["--help"], &[]);
    let help = stdout(&out);
    let list = help
        .split("Commands:\n")
        .nth(1)
        .expect("a Commands section")
        .split("\n\n")
        .next()
        .unwrap_or_default();
    list.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

#[test]
fn every_flag_and_argument_is_described_and_every_command_has_examples() {
    let commands = subcommands();
    assert!(commands.len() >= 17, "{commands:?}");
    for command in &commands {
        let out = bare(Path::new("."), &[command, "--help"], &[]);
        assert_eq!(out.status.code(), Some(0), "{command} --help");
        let help = stdout(&out);
        // In long help, each flag or argument is a line of its own followed by its
        // description, indented further.
        let lines: Vec<&str> = help.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let item = line.starts_with("  -")
                || line.starts_with("      --")
                || line.starts_with("  <")
                || line.starts_with("  [");
            if !item {
                continue;
            }
            let next = lines.get(i + 1).copied().unwrap_or_default();
            assert!(
                next.starts_with("          ") && !next.trim().is_empty(),
                "`shepherd {command} --help`: `{}` has no description",
                line.trim()
            );
        }
        let examples = help
            .split("Examples:\n")
            .nth(1)
            .unwrap_or_else(|| panic!("`shepherd {command} --help` has no examples"));
        assert!(
            examples.lines().any(|l| l.starts_with("  shepherd ")),
            "{command}: {examples}"
        );
    }
    let top = stdout(&bare(Path::new("."), &["--help"], &[]));
    for documented in [
        "SHEPHERD_LOG",
        "RUST_LOG",
        "NO_COLOR",
        "shepherd.toml",
        "Examples:",
    ] {
        assert!(top.contains(documented), "--help lacks {documented}");
    }
}

#[test]
fn version_names_the_commit() {
    let out = bare(Path::new("."), &["--version"], &[]);
    let version = stdout(&out);
    let re = regex::Regex::new(r"^shepherd \d+\.\d+\.\d+ \(([0-9a-f]{7,}|unknown)\)\n$").unwrap();
    assert!(re.is_match(&version), "{version:?}");
    let head = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    if let Some(head) = head.ok().filter(|h| h.status.success()) {
        let commit = String::from_utf8_lossy(&head.stdout).trim().to_string();
        assert!(
            version.contains(&format!("({commit})")),
            "{version} vs {commit}"
        );
    }
}

#[test]
fn completions_for_every_shell_and_bash_parses() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = bare(Path::new("."), &["completions", shell], &[]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", stderr(&out));
        assert!(stdout(&out).contains("reconcile"), "{shell}");
    }
    let s = Shepherd::new();
    let out = bare(s.dir.path(), &["completions", "bash"], &[]);
    std::fs::write(s.path("shepherd.bash"), &out.stdout).unwrap();
    let check = Command::new("bash")
        .args(["-n", "shepherd.bash"])
        .current_dir(s.dir.path())
        .output()
        .expect("bash runs");
    assert!(check.status.success(), "{}", stderr(&check));
    let out = bare(Path::new("."), &["completions", "tcsh"], &[]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_man_page_renders() {
    let out = bare(Path::new("."), &["man"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let page = stdout(&out);
    assert!(page.contains(".TH shepherd 1"), "{page}");
    let renderers: [(&str, &[&str]); 2] = [
        ("groff", &["-k", "-man", "-Tutf8", "-ww"]),
        ("man", &["-l", "-"]),
    ];
    let Some((program, args)) = renderers.iter().find(|(p, _)| {
        Command::new(p)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    }) else {
        assert!(std::env::var_os("CI").is_none(), "CI needs groff or man-db");
        eprintln!("skipped rendering the man page: neither groff nor man is installed");
        return;
    };
    let mut child = Command::new(program)
        .args(*args)
        .env("MANWIDTH", "100")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the renderer runs");
    use std::io::Write as _;
    child.stdin.take().unwrap().write_all(&out.stdout).unwrap();
    let rendered = child.wait_with_output().unwrap();
    assert!(rendered.status.success(), "{}", stderr(&rendered));
    // Bold and underline are overstruck (`N\bN`): keep the letters.
    let text = regex::Regex::new(".\u{8}")
        .unwrap()
        .replace_all(&stdout(&rendered), "")
        .into_owned();
    assert!(
        text.contains("NAME") && text.contains("reconcile"),
        "{text}"
    );
    assert!(
        !stderr(&rendered).contains("warning"),
        "{}",
        stderr(&rendered)
    );
}

#[test]
fn bad_flag_values_are_usage_errors() {
    let s = Shepherd::new();
    for args in [
        &["workflows", "--format", "xml"][..],
        &["status", "--now", "yesterday"],
        &["report", "--stale-after", "5x"],
        &["report", "--stale-after", "2147483647w"],
        &["status", "--timeout", "0s"],
        &["status", "--max-wait", "soon"],
        &["status", "--concurrency", "0"],
        &["status", "0"],
    ] {
        let out = s.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("Usage:") || stderr(&out).contains("--help"),
            "{args:?}"
        );
    }
    // Seconds and sums are durations on the command line.
    s.ok(&["report", "--stale-after", "1m30s"]);
    s.ok(&["status", "--timeout", "30s", "--max-wait", "1h"]);
    // A format this command cannot print is an error of the command (1).
    s.fails(&["show", "gitaly-migration", "--format", "csv"]);
}

#[test]
fn a_closed_stdout_ends_quietly() {
    let s = Shepherd::new();
    for args in [
        &["show", "gitaly-migration"][..],
        &["man"],
        &["report", "--format", "html"],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader); // every write now fails with a broken pipe
        let out = Command::new(env!("CARGO_BIN_EXE_shepherd"))
            .current_dir(s.dir.path())
            .arg("--tracker")
            .arg(format!("local:{}", s.db().display()))
            .args(args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("Broken pipe"),
            "{err}"
        );
    }
}

#[test]
fn logs_follow_shepherd_log_then_rust_log_without_colour_in_pipes() {
    let s = Shepherd::new();
    let dir = s.dir.path();
    let quiet = bare(dir, &["status"], &[]);
    assert!(!stderr(&quiet).contains("opening the tracker"));
    for env in [&[("SHEPHERD_LOG", "debug")][..], &[("RUST_LOG", "debug")]] {
        let out = bare(dir, &["status"], env);
        let err = stderr(&out);
        assert!(err.contains("opening the tracker"), "{env:?}: {err}");
        assert!(!err.contains('\u{1b}'), "colour codes in a pipe: {err:?}");
    }
    let out = bare(
        dir,
        &["status"],
        &[("SHEPHERD_LOG", "off"), ("RUST_LOG", "debug")],
    );
    assert!(
        !stderr(&out).contains("opening the tracker"),
        "SHEPHERD_LOG wins"
    );
    // A warning is printed once, whatever the log filter.
    for log in ["off", "warn", "debug"] {
        let out = bare(
            dir,
            &[
                "render",
                "feature-flag-rollout",
                "--var",
                "feature_flag=f",
                "--var",
                "feature_description=d",
                "--var",
                "bogus=1",
            ],
            &[("SHEPHERD_LOG", log)],
        );
        let err = stderr(&out);
        assert_eq!(
            err.matches("does not use variable `bogus`").count(),
            1,
            "{log}: {err}"
        );
    }
}

#[test]
fn shepherd_toml_is_found_from_a_subdirectory() {
    let s = Shepherd::new();
    let dir = s.dir.path();
    assert!(bare(dir, &["init", "project"], &[]).status.success());
    let project = dir.join("project");
    let config = std::fs::read_to_string(project.join("shepherd.toml")).unwrap();
    std::fs::write(
        project.join("shepherd.toml"),
        config.replace("local:.shepherd/tracker.db", "local:data/tracker.db"),
    )
    .unwrap();
    std::fs::create_dir(project.join("data")).unwrap();
    let deep = project.join("src/deep");
    std::fs::create_dir_all(&deep).unwrap();
    let start = [&["start", "gitaly-migration", "--now", T0], GITALY_VARS].concat();
    let started = bare(&deep, &start, &[]);
    assert!(started.status.success(), "{}", stderr(&started));
    let db = project.join("data/tracker.db");
    assert!(
        db.is_file(),
        "the relative path is relative to shepherd.toml"
    );
    let text = stdout(&bare(&deep, &["status"], &[]));
    assert!(
        text.contains(&format!("tracker: local:{}", db.display())),
        "{text}"
    );
    assert!(text.contains("#1 "), "{text}");
    let json: serde_json::Value =
        serde_json::from_slice(&bare(&deep, &["status", "--format", "json"], &[]).stdout).unwrap();
    assert_eq!(json["tracker"], format!("local:{}", db.display()));
    assert_eq!(json["migrations"][0]["ref"], 1);
    let report = stdout(&bare(&deep, &["report"], &[]));
    assert!(
        report.starts_with(&format!("tracker: local:{}\n", db.display())),
        "{report}"
    );
    // The project's workflows directory is in use from the subdirectory too.
    let listed = stdout(&bare(&deep, &["workflows", "--format", "json"], &[]));
    assert!(
        listed.contains(&project.join("workflows").display().to_string()),
        "{listed}"
    );
}

#[test]
fn unknown_report_filters_are_rejected_with_the_known_ones() {
    let s = Shepherd::new();
    start_gitaly(&s, T0);
    let err = s.fails(&["report", "--stage", "selecton"]);
    assert!(err.contains("unknown stage `selecton`"), "{err}");
    assert!(
        err.contains("gitaly-migration: selection, migration-analysis"),
        "{err}"
    );
    let err = s.fails(&["report", "--workflow", "gitaly", "--stage", "selection"]);
    assert!(
        err.contains("unknown workflow `gitaly`") && err.contains("gitaly-migration"),
        "{err}"
    );
    let err = s.fails(&[
        "report",
        "--workflow",
        "feature-flag-rollout",
        "--stage",
        "selection",
    ]);
    assert!(
        err.contains("feature-flag-rollout: non-production"),
        "{err}"
    );
    let json = s.json(&["report", "--stage", "selection"]);
    assert_eq!(json["migrations"].as_array().unwrap().len(), 1);
}

#[test]
fn labels_are_checked_before_they_are_set() {
    let s = Shepherd::new();
    let n = start_gitaly(&s, T0).to_string();
    let before = s.issue(1).labels;
    for bad in ["", "a,b", "line\nbreak", "bell\u{7}"] {
        let err = s.fails(&["label", &n, "--add", bad]);
        assert!(err.contains("cannot use this label"), "{bad:?}: {err}");
    }
    assert_eq!(s.issue(1).labels, before, "nothing written");
    let out = s.run(&["label", &n, "--add", "Migration:OptIn"]);
    assert!(out.status.success());
    assert!(
        stderr(&out).contains("warning: no workflow uses the label `Migration:OptIn`: did you mean `Migration:Opt-In`?"),
        "{}",
        stderr(&out)
    );
    let out = s.run(&["label", &n, "--add", "team-a", "--add", "existing-rpc"]);
    assert!(out.status.success());
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
}

#[test]
fn output_into_a_directory_or_a_missing_one_fails_and_leaves_nothing() {
    let s = Shepherd::new();
    start_gitaly(&s, T0);
    std::fs::create_dir(s.path("out")).unwrap();
    let listing = |dir: &Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let before = listing(s.dir.path());
    let err = s.fails(&["report", "--output", "out"]);
    assert!(err.contains("cannot write out: it is a directory"), "{err}");
    let err = s.fails(&[
        "report",
        "--output",
        "missing/report.html",
        "--format",
        "html",
    ]);
    assert!(
        err.contains("cannot write missing/report.html: missing does not exist"),
        "{err}"
    );
    assert_eq!(listing(s.dir.path()), before);
    assert!(listing(&s.path("out")).is_empty());
    s.ok(&["report", "--output", "out/report.txt"]);
    assert_eq!(listing(&s.path("out")), ["report.txt"]);
    // Permission errors name the path (root may write anywhere: then there is no error to see).
    let locked = s.path("locked");
    std::fs::create_dir(&locked).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    if std::fs::write(locked.join("probe"), "").is_ok() {
        eprintln!("skipped the permission check: this user may write into a read-only directory");
        return;
    }
    let err = s.fails(&["report", "--output", "locked/report.txt"]);
    assert!(
        err.contains("permission denied: locked/report.txt"),
        "{err}"
    );
    assert!(listing(&locked).is_empty());
}

/// Every field `docs/json.md` shows is in the real output with the same JSON type. A doc
/// `null` accepts anything; array elements are compared with the doc's first element.
fn check_shape(doc: &serde_json::Value, real: &serde_json::Value, at: &str) {
    use serde_json::Value;
    match (doc, real) {
        (Value::Null, _) => {}
        (Value::Object(d), Value::Object(r)) => {
            for (key, d) in d {
                let r = r
                    .get(key)
                    .unwrap_or_else(|| panic!("{at}: documented field `{key}` is missing"));
                check_shape(d, r, &format!("{at}.{key}"));
            }
        }
        (Value::Array(d), Value::Array(r)) => {
            if let Some(d) = d.first() {
                for (i, r) in r.iter().enumerate() {
                    check_shape(d, r, &format!("{at}[{i}]"));
                }
            }
        }
        (Value::Bool(_), Value::Bool(_))
        | (Value::Number(_), Value::Number(_))
        | (Value::String(_), Value::String(_)) => {}
        _ => panic!("{at}: documented as {doc}, printed {real}"),
    }
}

/// Splits a `check:` line as a shell would for simple words and "double quotes".
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

#[test]
fn json_shapes_are_as_documented() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/json.md"))
        .expect("docs/json.md");
    let s = Shepherd::new();
    start_gitaly(&s, T0);
    s.ok(&["tick", "1", "route to migrate", "--now", T0]);
    s.ok(&["advance", "1", "--now", "2026-01-01T01:00:00Z"]);
    let mut checked = Vec::new();
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        let Some(args) = line
            .strip_prefix("<!-- check: ")
            .and_then(|l| l.strip_suffix(" -->"))
        else {
            continue;
        };
        assert_eq!(
            lines.next(),
            Some("```json"),
            "a json block follows `{args}`"
        );
        let block: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
        let documented: serde_json::Value = serde_json::from_str(&block.join("\n"))
            .unwrap_or_else(|e| panic!("docs/json.md, `{args}`: {e}"));
        let mut argv = words(args);
        argv.extend(["--now".to_string(), "2026-01-01T02:00:00Z".to_string()]);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let real = s.json(&argv);
        check_shape(&documented, &real, args);
        checked.push(argv[0].to_string());
    }
    for command in [
        "init",
        "validate",
        "workflows",
        "show",
        "render",
        "issue",
        "start",
        "status",
        "advance",
        "reconcile",
        "tick",
        "history",
        "report",
        "label",
        "close",
        "reopen",
        "rollback",
        "mr",
        "release",
    ] {
        assert!(
            checked.iter().any(|c| c == command),
            "docs/json.md has no `{command}`"
        );
    }
}
