//! Escaping: `neutralize`, the escape function every `{{value}}` passes through, and the
//! helpers templates may call on values (`urlencode`, `upper`, `lower`, `kebab`, `snake`).

use handlebars::{handlebars_helper, Handlebars};
use serde_json::Value;

/// The characters after which GitLab may start a quick action: every line break Unicode
/// knows, and the vertical tab and form feed.
pub const LINE_BREAKS: &[char] = &[
    '\r', '\n', '\u{0B}', '\u{0C}', '\u{85}', '\u{2028}', '\u{2029}',
];

/// Makes an untrusted value safe to place in Markdown: one line (no character of
/// `LINE_BREAKS`), no leading quick action, no HTML comment opened or closed, no `@mention`
/// that would notify someone (a zero-width space follows the `@`).
pub fn neutralize(value: &str) -> String {
    let mut out: String = value
        .split(LINE_BREAKS)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if out.starts_with('/') {
        out.insert(0, '\u{200B}');
    }
    let out = out
        .replace("<!--", "&lt;!--")
        .replace("-->", "--&gt;")
        .replace("--!>", "--!&gt;");
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

/// Registers the value helpers on `hb`.
pub(super) fn register_helpers(hb: &mut Handlebars<'static>) {
    hb.register_helper("urlencode", Box::new(urlencode_helper));
    hb.register_helper("upper", Box::new(upper_helper));
    hb.register_helper("lower", Box::new(lower_helper));
    hb.register_helper("kebab", Box::new(kebab_helper));
    hb.register_helper("snake", Box::new(snake_helper));
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each line break GitLab honours ends a line; after `neutralize` no line of the value
    /// starts with `/`, and the value can neither open nor close an HTML comment.
    #[test]
    fn every_line_break_is_flattened() {
        for br in LINE_BREAKS {
            let value = format!("x{br}/close{br}{br} /label ~y");
            let out = neutralize(&value);
            assert!(!out.contains(LINE_BREAKS), "{value:?} gave {out:?}");
            assert_eq!(out, "x /close /label ~y");
            assert!(neutralize(&format!("{br}/close")).starts_with('\u{200B}'));
        }
        for value in ["a --> b", "a --!> b", "<!-- c"] {
            let out = neutralize(value);
            assert!(
                !out.contains("-->") && !out.contains("--!>") && !out.contains("<!--"),
                "{out}"
            );
        }
    }
}
