//! Issue templates: YAML front matter (`title`, `labels`) and a Handlebars body rendered in
//! strict mode, without HTML escaping (the output is Markdown). Variable values come from
//! people and are untrusted: every `{{value}}` passes through `neutralize`, which keeps it on
//! one line and stops it from starting a GitLab quick action or opening an HTML comment.
//! The template's own text is trusted and kept as written.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use handlebars::{handlebars_helper, Handlebars, RenderErrorReason};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::core::workflow::{template_variables, Problem};
use crate::core::yaml::Loc;

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
    body_line: usize,
}

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
            body_line: front_text.lines().count() + 3,
        })
    }
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
                self.hb
                    .render_template(l, context)
                    .map_err(|e| explain(name, &template.file, 2, e))
            })
            .collect::<Result<_, _>>()?;
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

/// Makes an untrusted value safe to place in Markdown: one line, no leading quick action,
/// no HTML comment, no `@mention` that would notify someone (a zero-width space follows
/// the `@`).
pub fn neutralize(value: &str) -> String {
    let mut out: String = value
        .split(['\r', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if out.starts_with('/') {
        out.insert(0, '\u{200B}');
    }
    let out = out.replace("<!--", "&lt;!--").replace("-->", "--&gt;");
    let mut safe = String::with_capacity(out.len());
    let mut chars = out.chars().peekable();
    while let Some(c) = chars.next() {
        safe.push(c);
        if c == '@'
            && chars
                .peek()
                .is_some_and(|n| n.is_alphanumeric() || *n == '-' || *n == '_')
        {
            safe.push('\u{200B}');
        }
    }
    safe
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn urlencode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn words(value: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut prev_lower = false;
    for c in value.chars() {
        if !c.is_alphanumeric() {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        current.extend(c.to_lowercase());
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

handlebars_helper!(urlencode_helper: |v: Value| urlencode(&scalar(&v)));
handlebars_helper!(upper_helper: |v: Value| scalar(&v).to_uppercase());
handlebars_helper!(lower_helper: |v: Value| scalar(&v).to_lowercase());
handlebars_helper!(kebab_helper: |v: Value| words(&scalar(&v)).join("-"));
handlebars_helper!(snake_helper: |v: Value| words(&scalar(&v)).join("_"));

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn handlebars() -> Handlebars<'static> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_escape_fn(neutralize);
    hb.register_helper("urlencode", Box::new(urlencode_helper));
    hb.register_helper("upper", Box::new(upper_helper));
    hb.register_helper("lower", Box::new(lower_helper));
    hb.register_helper("kebab", Box::new(kebab_helper));
    hb.register_helper("snake", Box::new(snake_helper));
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
        for value in ["x\n/close", "/close", "a\r\n/label ~y", "x <!-- hide"] {
            let out = r.render("t", &vars(&[("name", value)])).unwrap();
            for line in out.body.lines().chain(std::iter::once(out.title.as_str())) {
                assert!(
                    !line.trim_start().starts_with('/'),
                    "{value:?} gave {line:?}"
                );
            }
            assert!(!out.body.contains("<!--"));
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
    fn missing_variables_are_named() {
        let r = renderer("line\n{{name}} {{other}}\n");
        let err = r.render("t", &vars(&[("name", "x")])).unwrap_err();
        assert_eq!(err.missing.as_deref(), Some("other"));
        assert!(err.message.contains("line 6"), "{}", err.message);
    }

    #[test]
    fn bad_front_matter_has_a_location() {
        let err =
            Template::parse("t", "t.md.hbs", "---\ntitle: x\nlabls: [a]\n---\nbody").unwrap_err();
        assert_eq!(err[0].loc.line, 3, "{err:?}");
    }
}
