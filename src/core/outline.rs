//! What a template's checklists look like before it is rendered: its headings and its task
//! items, read from the Handlebars text as written, so that `validate` can tell a
//! checklist gate that names a heading the template does not have (the migration would
//! wait forever) or asks for more items than stand under it.
//!
//! A template is not yet Markdown, so the reading is conservative: only what is certain is
//! reported. A heading with a `{{…}}` in it, or a line that starts with one and may render
//! as a heading, could say anything, so with such a heading no section is ever "missing"
//! and no count is known. A section that holds a block helper (`{{#each}}`, `{{#if}}`,
//! `{{else}}`, a partial) may render more or fewer items than it shows, so its count is
//! unknown too. An item whose text holds a `{{…}}` may match any `items` pattern.

use std::ops::Range;

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};

use super::checklist::{self, Item};

/// A template body's headings and task items, as written.
#[derive(Clone, Debug)]
pub struct Outline {
    body: String,
    headings: Vec<Heading>,
    items: Vec<Item>,
    /// Whether a heading may come from a value or a helper.
    open_headings: bool,
}

#[derive(Clone, Debug)]
struct Heading {
    start: usize,
    level: HeadingLevel,
    text: String,
}

/// What a template certainly has under a section, for a checklist gate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Count {
    /// No heading contains the section: the template's headings, in order.
    NoHeading(Vec<String>),
    /// This many task items (matching the gate's patterns) stand under it.
    Items(usize),
    /// The template cannot tell before it is rendered.
    Unknown,
}

impl Outline {
    /// The outline of `body`, a template's Handlebars text after its front matter.
    pub fn of(body: &str) -> Outline {
        let mut headings = Vec::new();
        let mut current: Option<Heading> = None;
        for (event, range) in Parser::new_ext(body, Options::ENABLE_TASKLISTS).into_offset_iter() {
            match event {
                Event::Start(Tag::Heading { level, .. }) => {
                    current = Some(Heading {
                        start: range.start,
                        level,
                        text: String::new(),
                    })
                }
                Event::Text(t) | Event::Code(t) => {
                    if let Some(h) = current.as_mut() {
                        h.text.push_str(&t);
                    }
                }
                Event::End(TagEnd::Heading(_)) => headings.extend(current.take()),
                _ => {}
            }
        }
        let open_headings = headings.iter().any(|h| h.text.contains("{{"))
            || body.lines().any(|line| {
                let line = line.trim_start();
                line.starts_with("{{") && without_expressions(line).trim_start().starts_with('#')
            });
        Outline {
            body: body.to_string(),
            headings,
            items: checklist::parse(body),
            open_headings,
        }
    }

    /// The task items under the headings containing `section` (the whole body without
    /// one) whose text contains one of `patterns` (every item without patterns), as a
    /// checklist gate counts them on the rendered issue; or why that cannot be told.
    pub fn count(&self, section: Option<&str>, patterns: &[String]) -> Count {
        if self.open_headings {
            return Count::Unknown;
        }
        let regions = match section {
            None => std::iter::once(0..self.body.len()).collect(),
            Some(s) => {
                let regions = self.regions(&s.to_lowercase());
                if regions.is_empty() {
                    return Count::NoHeading(
                        self.headings.iter().map(|h| h.text.clone()).collect(),
                    );
                }
                regions
            }
        };
        if regions.iter().any(|r| has_block(&self.body[r.clone()])) {
            return Count::Unknown;
        }
        let mut patterns = patterns.to_vec();
        // An item whose text a value fills in may match any pattern.
        let dynamic: Vec<Item> = self
            .items
            .iter()
            .filter(|i| i.text.contains("{{"))
            .cloned()
            .collect();
        let fixed: Vec<Item> = self
            .items
            .iter()
            .filter(|i| !i.text.contains("{{"))
            .cloned()
            .collect();
        let matching = checklist::tally(&fixed, section, &patterns).total;
        patterns.clear();
        Count::Items(matching + checklist::tally(&dynamic, section, &patterns).total)
    }

    /// The byte ranges under each heading containing `needle` (lower case): from the
    /// heading to the next one of its level or above.
    fn regions(&self, needle: &str) -> Vec<Range<usize>> {
        self.headings
            .iter()
            .enumerate()
            .filter(|(_, h)| h.text.to_lowercase().contains(needle))
            .map(|(i, h)| {
                let end = self.headings[i + 1..]
                    .iter()
                    .find(|next| next.level <= h.level)
                    .map_or(self.body.len(), |next| next.start);
                h.start..end
            })
            .collect()
    }
}

/// Whether `text` holds a Handlebars block (`{{#…}}`, `{{/…}}`, `{{^…}}`, `{{else}}`) or a
/// partial (`{{>…}}`), any of which may change what renders around it.
fn has_block(text: &str) -> bool {
    text.match_indices("{{").any(|(at, _)| {
        let rest = text[at + 2..].trim_start_matches(['{', '~']).trim_start();
        rest.starts_with(['#', '/', '^', '>']) || rest.starts_with("else")
    })
}

/// `line` without its `{{…}}` expressions.
fn without_expressions(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        match rest[start..].find("}}") {
            Some(end) => rest = rest[start + end + 2..].trim_start_matches('}'),
            None => return out,
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(body: &str, section: Option<&str>, patterns: &[&str]) -> Count {
        let patterns: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
        Outline::of(body).count(section, &patterns)
    }

    #[test]
    fn sections_and_their_items() {
        let body = "Intro\n\n## Plan\n- [ ] write it\n- [ ] test it {{table}}\n\n### Sub\n- [ ] deeper\n\n## Done\n- [ ] ship\n\n```\n## Fenced\n- [ ] not an item\n```\n";
        assert_eq!(count(body, Some("plan"), &[]), Count::Items(3));
        assert_eq!(count(body, Some("Sub"), &[]), Count::Items(1));
        assert_eq!(count(body, None, &[]), Count::Items(4));
        // Patterns, and an item a value fills in, which may match any of them.
        assert_eq!(count(body, Some("Plan"), &["WRITE"]), Count::Items(2));
        assert_eq!(count(body, Some("Done"), &["nothing"]), Count::Items(0));
        assert_eq!(
            count(body, Some("Fenced"), &[]),
            Count::NoHeading(vec!["Plan".into(), "Sub".into(), "Done".into()])
        );
        assert_eq!(
            count(body, Some("Rollout"), &[]),
            Count::NoHeading(vec!["Plan".into(), "Sub".into(), "Done".into()])
        );
    }

    #[test]
    fn what_a_render_may_change_is_unknown() {
        let block = "## Plan\n{{#each steps}}\n- [ ] {{this}}\n{{/each}}\n\n## Done\n- [ ] ship\n";
        assert_eq!(count(block, Some("Plan"), &[]), Count::Unknown);
        assert_eq!(count(block, Some("Done"), &[]), Count::Items(1));
        assert_eq!(count(block, None, &[]), Count::Unknown);
        let ifs = "## Plan\n- [ ] a\n{{#if x}}\n- [ ] b\n{{else}}\n- [ ] c\n{{/if}}\n";
        assert_eq!(count(ifs, Some("Plan"), &[]), Count::Unknown);
        assert_eq!(
            count("## Plan\n{{> steps}}\n", Some("Plan"), &[]),
            Count::Unknown
        );
        // A heading with a value in it could contain any section.
        let open = "## Rollout of {{flag}}\n- [ ] a\n";
        assert_eq!(count(open, Some("Plan"), &[]), Count::Unknown);
        let line = "{{#if x}}## Plan{{/if}}\n- [ ] a\n";
        assert_eq!(count(line, Some("Plan"), &[]), Count::Unknown);
        // An expression that is only a value keeps the count.
        assert_eq!(
            count("## Plan\n- [ ] a {{x}}\n- [ ] b\n", Some("Plan"), &[]),
            Count::Items(2)
        );
    }

    /// The shipped templates: every checklist gate of the shipped workflows finds its
    /// section, with the items the seeds give it.
    #[test]
    fn shipped_templates() {
        let body = |text: &str| text.splitn(3, "---\n").nth(2).unwrap().to_string();
        let gitaly = Outline::of(&body(include_str!(
            "../../templates/gitaly-migration.md.hbs"
        )));
        assert_eq!(
            gitaly.count(Some("Migration Analysis"), &[]),
            Count::Items(3)
        );
        assert_eq!(gitaly.count(Some("Mandatory"), &[]), Count::Items(2));
        let at = Outline::of(&body(include_str!(
            "../../templates/acceptance-testing.md.hbs"
        )));
        assert_eq!(at.count(Some("8. Full Impact Trial"), &[]), Count::Items(6));
        let ff = Outline::of(&body(include_str!(
            "../../templates/feature-flag-rollout.md.hbs"
        )));
        assert_eq!(
            ff.count(Some("Preparation before global rollout"), &[]),
            Count::Unknown
        );
        assert_eq!(
            ff.count(Some("Cleanup"), &["Clean up the feature flag".into()]),
            Count::Items(1)
        );
        for step in [
            "Roll out to 10%",
            "Roll out to 50%",
            "Enable globally on production",
        ] {
            assert_eq!(ff.count(Some(step), &[]), Count::Items(2), "{step}");
        }
    }
}
