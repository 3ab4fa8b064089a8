//! `shepherd label`: change an issue's labels as a person would. Names a tracker could not
//! hold (empty, with a comma, a control character or a line break) are refused before
//! anything is written; a label no workflow uses but that looks like one of theirs (a
//! small edit distance, or a different case) gets a "did you mean" warning, and is set.

use std::process::ExitCode;

use anyhow::{bail, Result};
use serde_json::json;

use super::output::{print, warn, Format};
use crate::core::workflow::check_label_name;
use crate::engine::Engine;

/// Adds and removes labels on issue `reference`.
pub(super) async fn label(
    engine: &Engine<'_>,
    format: Format,
    reference: u64,
    add: Vec<String>,
    remove: Vec<String>,
) -> Result<ExitCode> {
    if add.is_empty() && remove.is_empty() {
        bail!("say what to change: --add LABEL and/or --remove LABEL");
    }
    for name in add.iter().chain(&remove) {
        check_label_name(name).map_err(|e| anyhow::anyhow!("cannot use this label: {e}"))?;
    }
    let known: Vec<String> = engine
        .catalog
        .workflows
        .values()
        .flat_map(|w| w.labels())
        .collect();
    for name in &add {
        if let Some(like) = look_alike(name, &known) {
            warn(&format!(
                "no workflow uses the label `{name}`: did you mean `{like}`?"
            ));
        }
    }
    // Under the migration's lease, so a reconcile at the same moment does not overwrite it.
    let issue = engine.person_labels(reference, &add, &remove).await?;
    print(
        format,
        &json!({"ref": reference, "labels": issue.labels}),
        || format!("#{reference}: {}", issue.labels.join(", ")),
    )
}

/// The known label `name` most likely means, when `name` is not one of them: the same but
/// for case, or within a small edit distance (1 for short names, 2 from 8 characters,
/// 3 from 16).
fn look_alike<'a>(name: &str, known: &'a [String]) -> Option<&'a str> {
    if known.iter().any(|k| k == name) {
        return None;
    }
    let lower = name.to_lowercase();
    let allowed = match name.chars().count() {
        0..=7 => 1,
        8..=15 => 2,
        _ => 3,
    };
    known
        .iter()
        .map(|k| (k, edit_distance(&lower, &k.to_lowercase())))
        .filter(|(_, d)| *d <= allowed)
        .min_by_key(|(_, d)| *d)
        .map(|(k, _)| k.as_str())
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("gitaly::optin", "gitaly::opt-in"), 1);
    }

    #[test]
    fn look_alikes() {
        let known = vec!["gitaly::opt-in".to_string(), "existing-rpc".to_string()];
        assert_eq!(look_alike("gitaly::optin", &known), Some("gitaly::opt-in"));
        assert_eq!(look_alike("Gitaly::Opt-In", &known), Some("gitaly::opt-in"));
        assert_eq!(look_alike("gitaly::opt-in", &known), None);
        assert_eq!(look_alike("team-a", &known), None);
    }
}
