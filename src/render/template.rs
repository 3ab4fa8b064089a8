//! A template file: YAML front matter (`title`, `labels`) between `---` lines, then the
//! Handlebars body. Parsing checks what can be checked before rendering: the front matter's
//! fields, label names, and that no variable is printed raw (`{{{v}}}`, `{{&v}}` would skip
//! `neutralize`).

use std::collections::BTreeSet;

use serde::Deserialize;

use crate::core::workflow::{
    check_label_name, raw_use_message, raw_variable_uses, template_variables, Problem,
};
use crate::core::yaml::{self, Loc, NodeKind};

/// A parsed template, not yet compiled.
#[derive(Clone, Debug)]
pub struct Template {
    pub name: String,
    /// Where it came from, for messages: a path, or `(built-in)/<name>.md.hbs`.
    pub file: String,
    pub title: String,
    pub labels: Vec<String>,
    pub body: String,
    /// The workflow variables the title and body use.
    pub variables: BTreeSet<String>,
    /// The line of the file on which the body starts.
    pub(super) body_line: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FrontMatter {
    title: String,
    #[serde(default)]
    labels: Vec<String>,
}

impl Template {
    /// Splits front matter from body and checks the front matter.
    pub fn parse(name: &str, file: &str, text: &str) -> Result<Template, Vec<Problem>> {
        let problem = |line: u32, column: u32, message: String| Problem {
            file: file.to_string(),
            loc: Loc { line, column },
            message,
        };
        let Some(rest) = text.strip_prefix("---\n") else {
            return Err(vec![problem(
                1,
                1,
                "a template starts with YAML front matter between `---` lines (title, labels)"
                    .into(),
            )]);
        };
        let Some(end) = rest
            .find("\n---\n")
            .or_else(|| rest.strip_suffix("\n---").map(|r| r.len()))
        else {
            return Err(vec![problem(
                1,
                1,
                "the front matter has no closing `---` line".into(),
            )]);
        };
        let front_text = &rest[..end];
        let body = rest.get(end + 5..).unwrap_or("").to_string();
        let front: FrontMatter = serde_saphyr::from_str(front_text).map_err(|e| {
            let (line, column) = e
                .location()
                .map(|l| (l.line() as u32 + 1, l.column() as u32))
                .unwrap_or((2, 1));
            let message = e.to_string();
            let message = message
                .lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("error: ");
            let message = match message.split_once(": ") {
                Some((head, tail)) if head.starts_with("line ") => tail,
                _ => message,
            };
            vec![problem(
                line,
                column,
                format!("bad front matter: {message}"),
            )]
        })?;
        let problems = check(file, front_text, &front, &body, body_line(front_text));
        if !problems.is_empty() {
            return Err(problems);
        }
        let mut variables = template_variables(&front.title);
        variables.extend(template_variables(&body));
        for label in &front.labels {
            variables.extend(template_variables(label));
        }
        Ok(Template {
            name: name.to_string(),
            file: file.to_string(),
            title: front.title,
            labels: front.labels,
            body,
            variables,
            body_line: body_line(front_text),
        })
    }
}

/// The line of the file on which the body starts: after `---`, the front matter and `---`.
fn body_line(front_text: &str) -> usize {
    front_text.lines().count() + 3
}

/// Label names and raw uses of variables, each with its place in the file.
fn check(
    file: &str,
    front_text: &str,
    front: &FrontMatter,
    body: &str,
    body_line: usize,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut push = |loc: Loc, message: String| {
        problems.push(Problem {
            file: file.to_string(),
            loc,
            message,
        })
    };
    // The front matter starts on the file's second line.
    let located = yaml::parse(front_text).ok();
    let place = |node: Option<&yaml::Node>| {
        node.map(|n| Loc {
            line: n.loc.line + 1,
            column: n.loc.column,
        })
        .unwrap_or(Loc { line: 2, column: 1 })
    };
    let label_nodes = match located.as_ref().and_then(|n| n.get("labels")) {
        Some(yaml::Node {
            kind: NodeKind::Seq(items),
            ..
        }) => items.iter().collect(),
        _ => Vec::new(),
    };
    for (i, label) in front.labels.iter().enumerate() {
        let loc = place(label_nodes.get(i).copied());
        if let Err(e) = check_label_name(label) {
            push(loc, e);
        }
        for (_, what) in raw_variable_uses(label) {
            push(loc, raw_use_message(&what));
        }
    }
    let title = place(located.as_ref().and_then(|n| n.get("title")));
    for (_, what) in raw_variable_uses(&front.title) {
        push(title, raw_use_message(&what));
    }
    for (offset, what) in raw_variable_uses(body) {
        let before = &body[..offset];
        let line = before.matches('\n').count() + body_line;
        let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        push(
            Loc {
                line: line as u32,
                column: column as u32,
            },
            raw_use_message(&what),
        );
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_front_matter_has_a_location() {
        let err =
            Template::parse("t", "t.md.hbs", "---\ntitle: x\nlabls: [a]\n---\nbody").unwrap_err();
        assert_eq!(err[0].loc.line, 3, "{err:?}");
    }

    /// (template text, expected `line:column: message` parts); `None`: the template is fine.
    #[test]
    #[allow(clippy::type_complexity)] // the test table's rows
    fn labels_and_raw_values_are_checked_with_their_place() {
        let cases: &[(&str, Option<(u32, u32, &str)>)] = &[
            (
                "---\ntitle: T\nlabels: [a, \"b,c\"]\n---\n",
                Some((3, 13, "has a comma")),
            ),
            (
                "---\ntitle: T\nlabels:\n  - a\n  - \"\"\n---\n",
                Some((5, 5, "label name is empty")),
            ),
            (
                "---\ntitle: T\nlabels: [\"a\\nb\"]\n---\n",
                Some((3, 10, "line break")),
            ),
            (
                "---\ntitle: T\n---\nok\nsee {{{flag}}} here\n",
                Some((5, 5, "`flag` is printed raw")),
            ),
            (
                "---\ntitle: T\n---\n{{~& flag}}\n",
                Some((4, 1, "`flag` is printed raw")),
            ),
            (
                "---\ntitle: \"{{{flag}}}\"\n---\n",
                Some((2, 8, "printed raw")),
            ),
            (
                "---\ntitle: T\n---\n{{{migration.title}}}\n",
                Some((4, 1, "`migration.title`")),
            ),
            (
                "---\ntitle: T\n---\n{{{migration.url}}} {{& now}} {{flag}}\n",
                None,
            ),
        ];
        for (text, expected) in cases {
            let result = Template::parse("t", "t.md.hbs", text);
            match (expected, result) {
                (None, Ok(_)) => {}
                (None, Err(p)) => panic!("{text:?}: {p:?}"),
                (Some(_), Ok(_)) => panic!("{text:?} was accepted"),
                (Some((line, column, message)), Err(p)) => assert!(
                    p.iter().any(|p| p.loc
                        == Loc {
                            line: *line,
                            column: *column
                        }
                        && p.message.contains(message)),
                    "{text:?}: expected {line}:{column}: {message}, got {p:?}"
                ),
            }
        }
    }
}
