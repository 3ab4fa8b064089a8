//! Tidy: `core` stays pure. It must not import async runtimes, HTTP clients, tracker
//! clients or the file system, nor read the clock.

use std::path::Path;

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
    ];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/core");
    let mut offences = Vec::new();
    let mut files = Vec::new();
    let mut dirs = vec![dir];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    assert!(files.iter().any(|p| p.ends_with("workflow/load.rs")));
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, line) in text.lines().enumerate() {
            for f in forbidden {
                if line.contains(f) && !line.trim_start().starts_with("//") {
                    offences.push(format!("{}:{}: {f}", path.display(), i + 1));
                }
            }
        }
    }
    assert!(
        offences.is_empty(),
        "core must stay pure:\n{}",
        offences.join("\n")
    );
}
