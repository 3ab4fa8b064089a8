//! Tidy: `core` stays pure (no async runtimes, HTTP or tracker clients, file system or
//! clock, no Store, flags or metric source), nothing below the edge reads the environment
//! or prints, and the tests and benchmarks read only what the repository holds.

use std::path::{Path, PathBuf};

/// Every file under `dir`, depth first, in a stable order.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Each line of `paths` that names one of `forbidden` outside a comment, with its place.
fn mentions(paths: &[PathBuf], forbidden: &[&str]) -> Vec<String> {
    let mut offences = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(path).unwrap();
        for (i, line) in text.lines().enumerate() {
            for f in forbidden {
                if line.contains(f) && !line.trim_start().starts_with("//") {
                    offences.push(format!("{}:{}: {f}", path.display(), i + 1));
                }
            }
        }
    }
    offences
}

#[test]
fn core_does_no_io_and_reads_no_clock() {
    let forbidden = [
        "tokio",
        "reqwest",
        "octocrab",
        "gitlab::",
        "std::fs",
        "std::net",
        "rusqlite",
        "Utc::now",
        "SystemTime",
        "Instant::now",
        "Local::now",
        "async fn",
        "crate::tracker",
        "crate::engine",
        "crate::store",
        "crate::flags",
        "crate::metric_source",
        "crate::serve",
        "crate::cli",
    ];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/core");
    let files = files(&dir);
    assert!(files.iter().any(|p| p.ends_with("workflow/load.rs")));
    let offences = mentions(&files, &forbidden);
    assert!(
        offences.is_empty(),
        "core must stay pure:\n{}",
        offences.join("\n")
    );
}

/// Settings are read once at the edge (`cli`, `serve`) into typed configuration, and only
/// the edge speaks to the person running shepherd: below it, nothing reads the environment
/// or prints.
#[test]
fn nothing_below_the_edge_reads_the_environment_or_prints() {
    let forbidden = [
        "env::var",
        "env::vars",
        "println!",
        "eprintln!",
        "print!(",
        "eprint!(",
        "dbg!(",
    ];
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let edge = [src.join("cli"), src.join("serve"), src.join("main.rs")];
    let below: Vec<PathBuf> = files(&src)
        .into_iter()
        .filter(|path| !edge.iter().any(|e| path.starts_with(e)))
        .collect();
    let offences = mentions(&below, &forbidden);
    assert!(
        offences.is_empty(),
        "read settings at the edge and hand them down:\n{}",
        offences.join("\n")
    );
}

/// A clone of the repository has nothing beside it: every fixture a test or benchmark
/// reads lives in `tests/fixtures/`.
#[test]
fn tests_and_benches_read_nothing_outside_the_repository() {
    // Spelled in two pieces so that this file does not name it.
    let outside = format!("{}/shared", "..");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut offences = Vec::new();
    for dir in ["tests", "benches"] {
        for path in files(&root.join(dir)) {
            let bytes = std::fs::read(&path).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            for (i, line) in text.lines().enumerate() {
                if line.contains(&outside) {
                    offences.push(format!("{}:{}", path.display(), i + 1));
                }
            }
        }
    }
    assert!(
        offences.is_empty(),
        "these read {outside}, which a clone does not have (copy the file into tests/fixtures/):\n{}",
        offences.join("\n")
    );
}

/// Modules of one job: no file in `src/` over 600 lines and no function over 120 (tests
/// aside: `tests.rs`, `*_tests.rs` and what follows `#[cfg(test)]`).
#[test]
fn files_and_functions_stay_small() {
    const FILE_LINES: usize = 600;
    const FN_LINES: usize = 120;
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut offences = Vec::new();
    for path in files(&src) {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name == "tests.rs" || name.ends_with("_tests.rs") || !name.ends_with(".rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text
            .lines()
            .take_while(|l| !l.trim_start().starts_with("#[cfg(test)]"))
            .collect();
        if lines.len() > FILE_LINES {
            offences.push(format!("{}: {} lines", path.display(), lines.len()));
        }
        for (start, end, name) in functions(&lines) {
            if end - start + 1 > FN_LINES {
                offences.push(format!(
                    "{}:{}: fn {name} is {} lines",
                    path.display(),
                    start + 1,
                    end - start + 1
                ));
            }
        }
    }
    assert!(
        offences.is_empty(),
        "split these (at most {FILE_LINES} lines a file, {FN_LINES} a function):\n{}",
        offences.join("\n")
    );
}

/// Each function's first and last line (0-based) and name: from its `fn` line to the
/// closing brace at the same indentation (rustfmt's layout).
fn functions(lines: &[&str]) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let indent = line.len() - line.trim_start().len();
        let words: Vec<&str> = line.split_whitespace().collect();
        let at = words.iter().position(|w| *w == "fn");
        let is_fn = at.is_some_and(|at| {
            words[..at].iter().all(|w| {
                matches!(*w, "pub" | "async" | "const" | "unsafe")
                    || w.starts_with("pub(")
                    || *w == "extern"
            })
        });
        if !is_fn {
            i += 1;
            continue;
        }
        let name: String = words[at.unwrap() + 1]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        // The signature ends at `{` (a body) or `;` (a declaration).
        let mut j = i;
        while j < lines.len()
            && !lines[j].trim_end().ends_with('{')
            && !lines[j].trim_end().ends_with(';')
        {
            j += 1;
        }
        if j >= lines.len() || lines[j].trim_end().ends_with(';') {
            i = j + 1;
            continue;
        }
        let close = format!("{}}}", " ".repeat(indent));
        let end = (j + 1..lines.len())
            .find(|&k| lines[k] == close)
            .unwrap_or(lines.len() - 1);
        out.push((i, end, name));
        i = end + 1;
    }
    out
}
