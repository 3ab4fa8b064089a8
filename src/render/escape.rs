//! Escaping: `neutralize`, the escape function every `{{value}}` passes through, and the
//! helpers templates may call on values (`urlencode`, `upper`, `lower`, `kebab`, `snake`).

use handlebars::{handlebars_helper, Handlebars};
use serde_json::Value;

pub use crate::core::value::LINE_BREAKS;

/// Makes an untrusted value safe to place in Markdown: one line (no character of
/// `LINE_BREAKS`), no control character but tab (`core::value::clean`: a tracker may read
/// FS, GS or RS as a line break), no leading quick action, no HTML comment opened or
/// closed, no `@mention` that would notify someone (a zero-width space follows the `@`).
/// Control characters go before the other checks, so that taking one out cannot make a
/// `/close`, a `<!--` or an `@name` the checks did not see.
pub fn neutralize(value: &str) -> String {
    let mut out: String = value
        .split(LINE_BREAKS)
        .map(|line| crate::core::value::clean(line).trim().to_string())
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

    /// No C0 or C1 control character but tab survives, whatever surrounds it; one that
    /// hides a quick action, a comment or a mention is taken out before those are looked
    /// for, so they are still defused.
    #[test]
    fn control_characters_are_taken_out() {
        for c in (0u32..=0x9F)
            .filter_map(char::from_u32)
            .filter(|c| c.is_control())
        {
            for value in [
                format!("x{c}/close"),
                format!("{c}/close"),
                format!("/{c}close"),
                format!("a{c}b{c}{c}c"),
            ] {
                let out = neutralize(&value);
                assert!(
                    !out.chars().any(|o| o.is_control() && o != '\t'),
                    "U+{:04X}: {value:?} gave {out:?}",
                    c as u32
                );
                assert!(!out.starts_with('/'), "{value:?} gave {out:?}");
            }
        }
        assert_eq!(neutralize("x\u{1C}/close"), "x/close");
        assert_eq!(neutralize("\u{1E}/close"), "\u{200B}/close");
        assert_eq!(neutralize("a\tb"), "a\tb");
        assert_eq!(neutralize("<!\u{1}-- x -\u{9B}->"), "&lt;!-- x --&gt;");
        assert_eq!(neutralize("@\u{1F}root"), "@\u{200B}root");
        assert_eq!(neutralize("\u{1B}[2J\u{1B}]0;title\u{7}"), "[2J]0;title");
    }

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
