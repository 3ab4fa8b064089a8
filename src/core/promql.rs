//! A metric gate's query: PromQL with `{{name}}` substitutions, nothing more of Handlebars.
//! The query writes the quotes (`flag="{{feature_flag}}"`) and each value is escaped for use
//! inside them, so a value can never end the string and add to the query. For that to hold,
//! a variable may stand only inside a double-quoted string and never right after a
//! backslash; helpers, blocks, comments and raw output (`{{{v}}}`, `{{&v}}`) are refused.
//! The one exception is a query that is a variable and nothing else (`{{error_rate_query}}`):
//! the person starting the migration gives the whole query, which is taken as written
//! (there is no query around it to escape from; `check_query` checks it).
//! `check` also parses the query (with placeholder values) with `promql-parser`, so a typo
//! is found by `validate`, not by Prometheus in the middle of a rollout.

use std::collections::BTreeMap;

/// The longest metric query `check` accepts, in characters.
pub const MAX_LENGTH: usize = 10_000;

/// What a metric query may hold between `{{` and `}}`, for error messages.
const ALLOWED: &str = "a metric query may use only `{{name}}` (a workflow variable: letters, \
                       digits and `_`), inside a double-quoted string such as \
                       `flag=\"{{feature_flag}}\"`, or as the whole query; no helpers, blocks, \
                       comments or raw output";

/// The names of the variables `template` uses, each once, in order of first use. Anything
/// but `{{name}}` inside a double-quoted string is an error saying what is allowed.
pub fn variables(template: &str) -> Result<Vec<String>, String> {
    let mut names: Vec<String> = Vec::new();
    for piece in pieces(template)? {
        if let Piece::Variable(name) | Piece::Whole(name) = piece {
            if !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
        }
    }
    Ok(names)
}

/// The query with each `{{name}}` replaced by its value from `vars`, escaped for use inside
/// a PromQL double-quoted string (a query that is one variable alone: its value as written).
/// A variable without a value is an error naming it (all of them, when several are
/// missing).
pub fn render(template: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut missing: Vec<&str> = Vec::new();
    for piece in pieces(template)? {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Variable(name) => match vars.get(name) {
                Some(value) => out.push_str(&escape(value)),
                None if !missing.contains(&name) => missing.push(name),
                None => {}
            },
            Piece::Whole(name) => match vars.get(name) {
                Some(value) => out.push_str(value),
                None => missing.push(name),
            },
        }
    }
    if missing.is_empty() {
        Ok(out)
    } else {
        let (names, verb) = listed(&missing);
        Err(format!("{names} {verb} not set on this migration"))
    }
}

/// Checks a metric query as `validate` does: only `{{name}}` substitutions, in quotes (or one
/// alone, the whole query); every variable declared by the workflow (`declared`); and, with
/// a placeholder for every value, a query that `promql-parser` accepts (its message
/// otherwise).
pub fn check(template: &str, declared: &[&str]) -> Result<(), String> {
    let used = variables(template)?;
    let undeclared: Vec<&str> = used
        .iter()
        .map(String::as_str)
        .filter(|name| !declared.contains(name))
        .collect();
    if !undeclared.is_empty() {
        return Err(format!(
            "the metric query uses {}, which the workflow does not declare",
            listed(&undeclared).0
        ));
    }
    let placeholders = used
        .into_iter()
        .map(|name| (name, "placeholder".to_string()))
        .collect();
    // `placeholder` is valid PromQL on its own too: a whole-query variable passes here, and
    // its value is checked where it is given (`check_query`).
    check_query(&render(template, &placeholders)?)
}

/// Checks a rendered metric query with `promql-parser` (at most `MAX_LENGTH` characters):
/// for a whole query given as a variable's value, before a migration starts.
pub fn check_query(query: &str) -> Result<(), String> {
    let length = query.chars().count();
    if length > MAX_LENGTH {
        // The parser recurses: a query nested deep enough would overflow the stack.
        return Err(format!(
            "the metric query is {length} characters long; at most {MAX_LENGTH} are allowed"
        ));
    }
    promql_parser::parser::parse(query)
        .map(|_| ())
        .map_err(|e| format!("the metric query is not valid PromQL: {e}"))
}

/// `value` escaped for use inside a PromQL double-quoted string: backslash and `"`, and
/// every control character and line break (`\n`, `\r`, VT, FF, U+0085, U+2028, U+2029), so
/// the value stays one string on one line whatever it holds.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{0b}' => out.push_str("\\v"),
            '\u{0c}' => out.push_str("\\f"),
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out
}

/// A template cut into literal text and variables.
#[derive(Debug, PartialEq)]
enum Piece<'t> {
    Text(&'t str),
    /// A variable inside a double-quoted string: its value is escaped.
    Variable(&'t str),
    /// The variable that is the whole query: its value is the query.
    Whole(&'t str),
}

/// Where the PromQL lexer would be at some point of the template.
#[derive(Clone, Copy, PartialEq)]
enum Context {
    Code,
    /// Inside `"…"`; `true` right after a backslash.
    Double(bool),
    /// Inside `'…'`; `true` right after a backslash.
    Single(bool),
    /// Inside `` `…` ``, where nothing is escaped.
    Backtick,
    /// From `#` to the end of the line.
    Comment,
}

/// Cuts `template` into pieces, following PromQL's strings and comments well enough to know
/// whether each `{{` stands inside a double-quoted string.
fn pieces(template: &str) -> Result<Vec<Piece<'_>>, String> {
    let alone = template.trim();
    if alone.starts_with("{{") && !alone.starts_with("{{{") {
        if let Ok((name, end)) = mustache(alone, 0) {
            if end == alone.len() {
                return Ok(vec![Piece::Whole(name)]);
            }
        }
    }
    let mut out = Vec::new();
    let mut context = Context::Code;
    let mut text_start = 0;
    let mut pos = 0;
    while let Some(c) = template[pos..].chars().next() {
        if template[pos..].starts_with("{{") {
            let (name, end) = mustache(template, pos)?;
            let whole = &template[pos..end];
            match context {
                Context::Double(false) => {}
                Context::Double(true) => {
                    return Err(format!(
                        "`{whole}` follows a backslash, which would escape the start of its \
                         value; {ALLOWED}"
                    ))
                }
                _ => {
                    return Err(format!(
                        "`{whole}` stands outside a double-quoted string, where no escaping \
                         keeps its value from changing the query; {ALLOWED}"
                    ))
                }
            }
            if text_start < pos {
                out.push(Piece::Text(&template[text_start..pos]));
            }
            out.push(Piece::Variable(name));
            pos = end;
            text_start = end;
            continue;
        }
        context = match (context, c) {
            (Context::Code, '"') => Context::Double(false),
            (Context::Code, '\'') => Context::Single(false),
            (Context::Code, '`') => Context::Backtick,
            (Context::Code, '#') => Context::Comment,
            (Context::Double(false), '\\') => Context::Double(true),
            (Context::Double(false), '"') => Context::Code,
            (Context::Double(_), _) => Context::Double(false),
            (Context::Single(false), '\\') => Context::Single(true),
            (Context::Single(false), '\'') => Context::Code,
            (Context::Single(_), _) => Context::Single(false),
            (Context::Backtick, '`') => Context::Code,
            (Context::Comment, '\n') => Context::Code,
            (context, _) => context,
        };
        pos += c.len_utf8();
    }
    if text_start < template.len() {
        out.push(Piece::Text(&template[text_start..]));
    }
    Ok(out)
}

/// The `{{…}}` starting at byte `start`: the variable it names and the byte after its `}}`.
fn mustache(template: &str, start: usize) -> Result<(&str, usize), String> {
    let inner_start = start + 2;
    let rest = &template[inner_start..];
    if rest.starts_with('{') {
        let shown = rest.find("}}}").map_or(&template[start..], |e| {
            &template[start..inner_start + e + 3]
        });
        return Err(format!("`{shown}` prints raw; {ALLOWED}"));
    }
    let Some(len) = rest.find("}}") else {
        return Err(format!(
            "`{}` has no closing `}}}}`; {ALLOWED}",
            shorten(&template[start..])
        ));
    };
    let end = inner_start + len + 2;
    let whole = &template[start..end];
    let name = rest[..len].trim();
    if name.is_empty() {
        return Err(format!("`{whole}` names no variable; {ALLOWED}"));
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        let what = match name.chars().next() {
            Some('&') => "prints raw",
            Some('#' | '/' | '^') => "is a block",
            Some('!') => "is a comment",
            Some('>') => "is a partial",
            Some('~') => "controls whitespace",
            _ if name.contains(char::is_whitespace) => "calls a helper",
            _ => "is no variable name",
        };
        return Err(format!("`{whole}` {what}; {ALLOWED}"));
    }
    Ok((name, end))
}

/// The first 40 characters of `text`, and `…` if there was more.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// "variable `a`" and "is", or "variables `a`, `b` and `c`" and "are".
fn listed(names: &[&str]) -> (String, &'static str) {
    let names: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => {
            (format!("variables {} and {last}", rest.join(", ")), "are")
        }
        _ => (format!("variable {}", names.concat()), "is"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use promql_parser::parser::{parse, Expr};

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The value of the label matcher `label` of the query's one vector selector, found
    /// anywhere in the expression.
    fn matcher_value(expr: &Expr, label: &str) -> Option<String> {
        match expr {
            Expr::VectorSelector(vs) => vs
                .matchers
                .find_matchers(label)
                .first()
                .map(|m| m.value.clone()),
            Expr::MatrixSelector(ms) => ms
                .vs
                .matchers
                .find_matchers(label)
                .first()
                .map(|m| m.value.clone()),
            Expr::Call(call) => call.args.args.iter().find_map(|a| matcher_value(a, label)),
            Expr::Aggregate(agg) => matcher_value(&agg.expr, label),
            Expr::Paren(p) => matcher_value(&p.expr, label),
            _ => None,
        }
    }

    #[test]
    fn variables_are_listed_once_in_order() {
        let cases: &[(&str, &[&str])] = &[
            ("up", &[]),
            (r#"up{job="{{job}}"}"#, &["job"]),
            (r#"up{job="{{ job }}"}"#, &["job"]),
            (
                r#"rate(e{flag="{{flag}}", env="{{env}}"}[5m]) / rate(t{flag="{{flag}}"}[5m])"#,
                &["flag", "env"],
            ),
            (r#"up{job="pre-{{job}}-post"}"#, &["job"]),
            (r#"up{job=~"{{a}}|{{b}}"}"#, &["a", "b"]),
            (r#"up{job="a\"{{job}}"}"#, &["job"]),
            (r#"up{job="a\\{{job}}"}"#, &["job"]),
            ("up{job=\"{{job}}\"} # a note: {job}\n", &["job"]),
            (r#"up{job="x}}"}"#, &[]),
            ("{{error_rate_query}}", &["error_rate_query"]),
            (" {{ q }}\n", &["q"]),
        ];
        for (template, expected) in cases {
            assert_eq!(
                variables(template).as_deref(),
                Ok(expected
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .as_slice()),
                "{template}"
            );
        }
    }

    #[test]
    fn anything_but_a_quoted_variable_is_refused_saying_why() {
        let cases = [
            (r#"up{job="{{{job}}}"}"#, "`{{{job}}}` prints raw"),
            (r#"up{job="{{&job}}"}"#, "`{{&job}}` prints raw"),
            (r#"up{job="{{#if a}}x{{/if}}"}"#, "`{{#if a}}` is a block"),
            (r#"up{job="{{!note}}"}"#, "`{{!note}}` is a comment"),
            (r#"up{job="{{> part}}"}"#, "`{{> part}}` is a partial"),
            (r#"up{job="{{~job~}}"}"#, "`{{~job~}}` controls whitespace"),
            (
                r#"up{job="{{lower job}}"}"#,
                "`{{lower job}}` calls a helper",
            ),
            (r#"up{job="{{a.b}}"}"#, "`{{a.b}}` is no variable name"),
            (
                r#"up{job="{{@index}}"}"#,
                "`{{@index}}` is no variable name",
            ),
            (r#"up{job="{{}}"}"#, "`{{}}` names no variable"),
            (r#"up{job="{{job"}"#, "`{{job\"}` has no closing `}}`"),
            (
                "rate(up[{{window}}])",
                "`{{window}}` stands outside a double-quoted string",
            ),
            (
                "up > {{threshold}}",
                "`{{threshold}}` stands outside a double-quoted string",
            ),
            (
                "up{job='{{job}}'}",
                "`{{job}}` stands outside a double-quoted string",
            ),
            (
                "up{job=`{{job}}`}",
                "`{{job}}` stands outside a double-quoted string",
            ),
            (
                "up # {{job}}",
                "`{{job}}` stands outside a double-quoted string",
            ),
            (r#"up{job="\{{job}}"}"#, "`{{job}}` follows a backslash"),
            (
                "{{q}} > 0.1",
                "`{{q}}` stands outside a double-quoted string",
            ),
            ("{{{q}}}", "`{{{q}}}` prints raw"),
            ("{{&q}}", "`{{&q}}` prints raw"),
        ];
        for (template, expected) in cases {
            let err = variables(template).expect_err(template);
            assert!(err.starts_with(expected), "{template}: {err}");
            assert!(err.contains("may use only `{{name}}`"), "{template}: {err}");
        }
    }

    #[test]
    fn values_are_escaped_for_a_double_quoted_string() {
        let cases = [
            ("plain", "plain"),
            ("", ""),
            ("ünïcode ✓", "ünïcode ✓"),
            (r"back\slash", r"back\\slash"),
            (r#"a"b"#, r#"a\"b"#),
            ("a\nb\rc\td", r"a\nb\rc\td"),
            ("v\u{0b}f\u{0c}", r"v\vf\f"),
            (
                "nel\u{85}ls\u{2028}ps\u{2029}",
                r"nel\u0085ls\u2028ps\u2029",
            ),
            ("nul\u{0}del\u{7f}", r"nul\u0000del\u007f"),
            ("'single' `back`", "'single' `back`"),
        ];
        for (value, expected) in cases {
            assert_eq!(escape(value), expected, "{value:?}");
            // Whatever it holds, the value comes back whole from the parser.
            let query = render(r#"up{v="{{v}}"}"#, &vars(&[("v", value)])).unwrap();
            let expr = parse(&query).unwrap_or_else(|e| panic!("{query}: {e}"));
            assert_eq!(matcher_value(&expr, "v").as_deref(), Some(value), "{query}");
        }
    }

    #[test]
    fn an_injection_attempt_stays_inside_its_string() {
        let template = r#"sum(rate(errors{flag="{{flag}}"}[5m]))"#;
        for value in [
            r#"a"} or vector(1) #"#,
            r#"a\"} or vector(1) #"#,
            "a\"}\nor vector(1)",
            r#"\"#,
        ] {
            let query = render(template, &vars(&[("flag", value)])).unwrap();
            assert!(!query.contains('\n'), "{query}");
            let expr = parse(&query).unwrap_or_else(|e| panic!("{query}: {e}"));
            assert!(matches!(expr, Expr::Aggregate(_)), "still one sum: {query}");
            assert_eq!(
                matcher_value(&expr, "flag").as_deref(),
                Some(value),
                "{query}"
            );
        }
        assert_eq!(
            render(template, &vars(&[("flag", r#"a"} or vector(1) #"#)])).unwrap(),
            r#"sum(rate(errors{flag="a\"} or vector(1) #"}[5m]))"#
        );
    }

    #[test]
    fn a_whole_query_variable_is_taken_as_written() {
        let query = r#"sum(rate(errors{flag="a\"b"}[5m])) / sum(rate(all[5m]))"#;
        for template in ["{{q}}", " {{ q }}\n"] {
            assert_eq!(
                render(template, &vars(&[("q", query)])).as_deref(),
                Ok(query)
            );
            assert_eq!(render(template, &vars(&[("q", "")])).as_deref(), Ok(""));
            assert_eq!(
                render(template, &vars(&[])),
                Err("variable `q` is not set on this migration".into())
            );
        }
        assert_eq!(check_query(query), Ok(()));
        let err = check_query("sum(rate(errors[5m])").unwrap_err();
        assert!(
            err.starts_with("the metric query is not valid PromQL: "),
            "{err}"
        );
        // Only alone: beside anything else, a variable stands in a string.
        assert!(render("{{q}}{{q}}", &vars(&[("q", "up")])).is_err());
    }

    #[test]
    fn a_missing_value_is_named() {
        let template = r#"up{a="{{a}}", b="{{b}}", c="{{c}}", b2="{{b}}"}"#;
        assert_eq!(
            render(template, &vars(&[("a", "1")])),
            Err("variables `b` and `c` are not set on this migration".into())
        );
        assert_eq!(
            render(r#"up{a="{{a}}"}"#, &vars(&[])),
            Err("variable `a` is not set on this migration".into())
        );
        assert_eq!(
            render(template, &vars(&[("a", "1"), ("b", "2"), ("c", "3")])),
            Ok(r#"up{a="1", b="2", c="3", b2="2"}"#.into())
        );
    }

    #[test]
    fn check_names_undeclared_variables_then_asks_the_parser() {
        let deepest = format!("{}up{}", "(".repeat(4999), ")".repeat(4999));
        assert_eq!(deepest.len(), MAX_LENGTH);
        assert_eq!(check(&deepest, &[]), Ok(()), "no stack overflow");
        let long = format!("{}up", "-".repeat(MAX_LENGTH + 1));
        let cases: &[(&str, &[&str], Result<(), &str>)] = &[
            (r#"rate(e{flag="{{flag}}"}[5m]) > 0"#, &["flag"], Ok(())),
            (
                r#"sum(rate(e{flag="{{flag}}"}[5m])) / sum(rate(t{flag="{{flag}}"}[5m]))"#,
                &["flag", "other"],
                Ok(()),
            ),
            ("up", &[], Ok(())),
            (
                r#"up{a="{{a}}", b="{{b}}", c="{{c}}"}"#,
                &["b"],
                Err("the metric query uses variables `a` and `c`, which the workflow does not declare"),
            ),
            (
                "{{nope}}",
                &[],
                Err("the metric query uses variable `nope`, which the workflow does not declare"),
            ),
            ("{{error_rate_query}}", &["error_rate_query"], Ok(())),
            (
                "{{q}} > 0.1",
                &["q"],
                Err("`{{q}}` stands outside a double-quoted string"),
            ),
            (
                r#"up{job="{{{job}}}"}"#,
                &["job"],
                Err("`{{{job}}}` prints raw"),
            ),
            (
                r#"rate(e{flag="{{flag}}"}[5m]"#,
                &["flag"],
                Err("the metric query is not valid PromQL: "),
            ),
            (
                r#"sum by (x (e{flag="{{flag}}"})"#,
                &["flag"],
                Err("the metric query is not valid PromQL: "),
            ),
            ("", &[], Err("the metric query is not valid PromQL: ")),
            (
                &long,
                &[],
                Err("the metric query is 10003 characters long; at most 10000 are allowed"),
            ),
            (
                r#"up{job="{{job}}""#,
                &["job"],
                Err("the metric query is not valid PromQL: "),
            ),
        ];
        for (template, declared, expected) in cases {
            match (check(template, declared), expected) {
                (Ok(()), Ok(())) => {}
                (Err(err), Err(start)) => assert!(err.starts_with(start), "{template}: {err}"),
                (got, _) => panic!("{template}: {got:?}, expected {expected:?}"),
            }
        }
    }
}
