//! Issue templates: YAML front matter (`title`, `labels`) and a Handlebars body rendered in
//! strict mode, without HTML escaping (the output is Markdown). Variable values come from
//! people and are untrusted: every `{{value}}` passes through `neutralize`, which keeps it on
//! one line and stops it from starting a GitLab quick action or opening an HTML comment.
//! The template's own text is trusted and kept as written; a template that prints a
//! variable raw (`{{{v}}}`) is refused when it is loaded (`template`). Escaping and the
//! value helpers are in `escape`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use handlebars::{Handlebars, RenderErrorReason};
use serde_json::{json, Value};

use crate::core::workflow::{check_label_name, Problem};
use crate::core::yaml::Loc;

mod escape;
mod template;

pub use escape::{neutralize, urlencode, LINE_BREAKS};
pub use template::Template;

/// A rendered issue.
#[derive(Clone, Debug, PartialEq)]
pub struct Rendered {
    pub title: String,
    pub labels: Vec<String>,
    pub body: String,
}

/// A template that could not render, with the variable and place when known.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct RenderError {
    pub message: String,
    pub missing: Option<String>,
}

/// All templates, compiled once.
pub struct Renderer {
    hb: Handlebars<'static>,
    templates: BTreeMap<String, Template>,
}

impl Renderer {
    pub fn new(templates: Vec<Template>) -> Result<Renderer, Vec<Problem>> {
        let mut hb = handlebars();
        let mut problems = Vec::new();
        for t in &templates {
            for (suffix, source, first_line) in
                [("", &t.body, t.body_line), ("#title", &t.title, 2)]
            {
                if let Err(e) = hb.register_template_string(&format!("{}{suffix}", t.name), source)
                {
                    let (line, column) = e.pos().unwrap_or((1, 1));
                    problems.push(Problem {
                        file: t.file.clone(),
                        loc: Loc {
                            line: (line + first_line - 1) as u32,
                            column: column as u32,
                        },
                        message: format!("bad template: {}", e.reason()),
                    });
                }
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Renderer {
            hb,
            templates: templates.into_iter().map(|t| (t.name.clone(), t)).collect(),
        })
    }

    pub fn template(&self, name: &str) -> Option<&Template> {
        self.templates.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.templates.keys().map(String::as_str)
    }

    /// Renders a template with a context from `context`.
    pub fn render(&self, name: &str, context: &Value) -> Result<Rendered, RenderError> {
        let template = self.templates.get(name).ok_or_else(|| RenderError {
            message: format!(
                "unknown template `{name}` (templates: {})",
                self.templates
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            missing: None,
        })?;
        let body = self
            .hb
            .render(name, context)
            .map_err(|e| explain(name, &template.file, template.body_line, e))?;
        let title = self
            .hb
            .render(&format!("{name}#title"), context)
            .map_err(|e| explain(name, &template.file, 2, e))?;
        let labels = template
            .labels
            .iter()
            .map(|l| {
                let label = self
                    .hb
                    .render_template(l, context)
                    .map_err(|e| explain(name, &template.file, 2, e))?;
                // A value may bring a comma or a control character into a label.
                check_label_name(&label).map_err(|e| RenderError {
                    message: format!("template `{name}` gives a bad label: {e}"),
                    missing: None,
                })?;
                Ok(label)
            })
            .collect::<Result<_, RenderError>>()?;
        Ok(Rendered {
            title: one_line(&title),
            labels,
            body,
        })
    }

    /// Renders a short text (an on_enter comment) with the same helpers and rules.
    pub fn render_text(
        &self,
        what: &str,
        text: &str,
        context: &Value,
    ) -> Result<String, RenderError> {
        self.hb
            .render_template(text, context)
            .map_err(|e| explain(what, what, 1, e))
    }
}

/// The values a template sees.
pub struct Context<'a> {
    pub vars: &'a BTreeMap<String, String>,
    pub migration: Option<IssueRef>,
    pub parent: Option<IssueRef>,
    pub issue: Option<IssueRef>,
    pub now: DateTime<Utc>,
}

/// An issue as templates see it.
#[derive(Clone, Debug, Default)]
pub struct IssueRef {
    pub number: String,
    pub url: String,
    pub title: String,
}

impl Context<'_> {
    pub fn to_value(&self) -> Value {
        let mut map = serde_json::Map::new();
        for (k, v) in self.vars {
            map.insert(k.clone(), Value::String(v.clone()));
        }
        let issue = |r: &IssueRef| json!({"ref": r.number, "url": r.url, "title": r.title});
        if let Some(r) = &self.migration {
            map.insert("migration".into(), issue(r));
        }
        if let Some(r) = &self.parent {
            map.insert("parent".into(), issue(r));
        }
        if let Some(r) = &self.issue {
            map.insert("issue".into(), issue(r));
        }
        map.insert(
            "now".into(),
            Value::String(self.now.format("%Y-%m-%d").to_string()),
        );
        Value::Object(map)
    }
}

/// Builds a context from dotted variables (`migration.ref=12`), as `render` takes them.
pub fn context_from_dotted(vars: &BTreeMap<String, String>, now: DateTime<Utc>) -> Value {
    let mut root = serde_json::Map::new();
    root.insert(
        "now".into(),
        Value::String(now.format("%Y-%m-%d").to_string()),
    );
    for (key, value) in vars {
        let mut parts: Vec<&str> = key.split('.').collect();
        let last = parts.pop().unwrap_or_default();
        let mut map = &mut root;
        for part in parts {
            let entry = map
                .entry(part.to_string())
                .or_insert_with(|| Value::Object(Default::default()));
            if !entry.is_object() {
                *entry = Value::Object(Default::default());
            }
            map = entry.as_object_mut().expect("object");
        }
        map.insert(last.to_string(), Value::String(value.clone()));
    }
    Value::Object(root)
}

fn handlebars() -> Handlebars<'static> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_escape_fn(neutralize);
    escape::register_helpers(&mut hb);
    hb
}

fn explain(name: &str, file: &str, first_line: usize, e: handlebars::RenderError) -> RenderError {
    let at = match (e.line_no, e.column_no) {
        (Some(l), Some(c)) => format!(" ({file}, line {}, column {c})", l + first_line - 1),
        _ => String::new(),
    };
    match e.reason() {
        RenderErrorReason::MissingVariable(Some(var)) => RenderError {
            message: format!("template `{name}` needs variable `{var}`, which was not given{at}"),
            missing: Some(var.clone()),
        },
        reason => RenderError {
            message: format!("template `{name}` failed to render: {reason}{at}"),
            missing: None,
        },
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn renderer(body: &str) -> Renderer {
        let text = format!("---\ntitle: \"T {{{{name}}}}\"\nlabels: [a]\n---\n{body}");
        Renderer::new(vec![Template::parse("t", "t.md.hbs", &text).unwrap()]).unwrap()
    }

    fn vars(pairs: &[(&str, &str)]) -> Value {
        let map = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        context_from_dotted(&map, DateTime::UNIX_EPOCH)
    }

    #[test]
    fn renders_with_helpers() {
        let r = renderer("`{{name}}` {{urlencode name}} {{upper name}} {{kebab name}} {{snake name}} #{{migration.ref}}\n/label ~x\n");
        let out = r
            .render(
                "t",
                &vars(&[("name", "Find Commit/x"), ("migration.ref", "12")]),
            )
            .unwrap();
        assert_eq!(out.title, "T Find Commit/x");
        assert_eq!(out.body, "`Find Commit/x` Find%20Commit%2Fx FIND COMMIT/X find-commit-x find_commit_x #12\n/label ~x\n");
    }

    #[test]
    fn untrusted_values_cannot_start_quick_actions() {
        let r = renderer("{{name}}\n");
        for value in [
            "x\n/close",
            "/close",
            "a\r\n/label ~y",
            "x <!-- hide",
            "\u{2028}/close",
            "x\u{2029}/close",
            "x\u{85}/close",
            "x\u{0B}/close",
            "x\u{0C}/close",
            "x --> /close",
        ] {
            let out = r.render("t", &vars(&[("name", value)])).unwrap();
            let lines = out
                .body
                .split(LINE_BREAKS)
                .chain(out.title.split(LINE_BREAKS));
            for line in lines {
                assert!(
                    !line.trim_start().starts_with('/'),
                    "{value:?} gave {line:?}"
                );
            }
            assert!(!out.body.contains("<!--") && !out.body.contains("-->"));
        }
        let out = r
            .render(
                "t",
                &vars(&[("name", "ask @octocat or @org/team, mail a@b.c")]),
            )
            .unwrap();
        assert_eq!(
            out.body,
            "ask @\u{200B}octocat or @\u{200B}org/team, mail a@\u{200B}b.c\n"
        );
    }

    #[test]
    fn a_value_cannot_break_a_label() {
        let text = "---\ntitle: T\nlabels: [\"team::{{name}}\"]\n---\nbody\n";
        let r = Renderer::new(vec![Template::parse("t", "t.md.hbs", text).unwrap()]).unwrap();
        let out = r.render("t", &vars(&[("name", "db")])).unwrap();
        assert_eq!(out.labels, ["team::db"]);
        let err = r.render("t", &vars(&[("name", "db,ops")])).unwrap_err();
        assert!(err.message.contains("bad label"), "{}", err.message);
        // A control character is taken out of the value before it reaches the label.
        let out = r.render("t", &vars(&[("name", "db\u{7}\u{9B}x")])).unwrap();
        assert_eq!(out.labels, ["team::dbx"]);
    }

    /// Control characters in a value reach neither the body nor the title: a tracker that
    /// reads FS, GS or RS as a line break sees no `/close` at the start of a line.
    #[test]
    fn values_lose_their_control_characters() {
        let r = renderer("{{name}}\n");
        for c in (0u32..=0x9F)
            .filter_map(char::from_u32)
            .filter(|c| c.is_control())
        {
            let value = format!("x{c}/close{c}\u{1B}[2J");
            let out = r.render("t", &vars(&[("name", &value)])).unwrap();
            for text in [&out.body, &out.title] {
                assert!(
                    !text
                        .chars()
                        .any(|o| o.is_control() && !matches!(o, '\n' | '\t')),
                    "U+{:04X} gave {text:?}",
                    c as u32
                );
            }
        }
    }

    #[test]
    fn missing_variables_are_named() {
        let r = renderer("line\n{{name}} {{other}}\n");
        let err = r.render("t", &vars(&[("name", "x")])).unwrap_err();
        assert_eq!(err.missing.as_deref(), Some("other"));
        assert!(err.message.contains("line 6"), "{}", err.message);
    }
}
