//! Metric queries: PromQL with `{{variable}}`s (interim; replaced by the full module).

use std::collections::BTreeMap;

pub fn render(template: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let Some(j) = rest[i..].find("}}") else {
            return Err("an unclosed `{{`".into());
        };
        let name = rest[i + 2..i + j].trim();
        let value = vars
            .get(name)
            .ok_or_else(|| format!("variable `{name}` is not set on this migration"))?;
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        rest = &rest[i + j + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Whether `template` uses only declared variables (interim: the parse comes with the
/// full module).
pub fn check(template: &str, declared: &[&str]) -> Result<(), String> {
    let mut rest = template;
    while let Some(i) = rest.find("{{") {
        let Some(j) = rest[i..].find("}}") else {
            return Err("an unclosed `{{`".into());
        };
        let name = rest[i + 2..i + j].trim();
        if !declared.contains(&name) {
            return Err(format!(
                "the query uses variable `{name}`, which the workflow does not declare"
            ));
        }
        rest = &rest[i + j + 2..];
    }
    Ok(())
}
