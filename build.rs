//! Build script: records the git commit shepherd is built from, for `--version`
//! (`SHEPHERD_COMMIT`; "unknown" outside a git checkout or without git).

use std::process::Command;

fn main() {
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git").args(args).output().ok()?;
        if !out.status.success() {
            return None;
        }
        let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
        (!text.is_empty()).then_some(text)
    };
    let commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=SHEPHERD_COMMIT={commit}");
    // Rebuild when HEAD moves: HEAD itself (a checkout), the branch it points to (a
    // commit), and packed refs. In a worktree these live in the git directory, not .git/.
    println!("cargo:rerun-if-changed=build.rs");
    let paths = [
        git(&["rev-parse", "--git-path", "HEAD"]),
        git(&["symbolic-ref", "-q", "HEAD"]).and_then(|r| git(&["rev-parse", "--git-path", &r])),
        git(&["rev-parse", "--git-path", "packed-refs"]),
    ];
    let mut any = false;
    for path in paths.into_iter().flatten() {
        if std::path::Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
            any = true;
        }
    }
    if !any {
        println!("cargo:rerun-if-changed=.git/HEAD");
    }
}
