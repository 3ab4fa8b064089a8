//! Markdown task lists, by section. An item is done when checked (`[x]`, `[X]`) or marked
//! not applicable (`[~]`, GitLab's notation, which pulldown-cmark does not know). Items in
//! code blocks are text, not items. Every item keeps the headings above it and the byte
//! range of its checkbox, so `tick` can change exactly that one box.

use std::ops::Range;
use std::sync::Arc;

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};

/// The state of one checkbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    Open,
    Done,
    NotApplicable,
}

/// One task item of a body.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    /// The item's own text (without nested lists), whitespace collapsed.
    pub text: String,
    pub check: Check,
    /// The headings above the item, outermost first (shared by the items under them).
    pub sections: Arc<[String]>,
    /// The same, lower-cased, for matching.
    lower: Arc<[String]>,
    /// The byte range of `[ ]`/`[x]`/`[~]` in the body.
    pub marker: Range<usize>,
}

impl Item {
    pub fn done(&self) -> bool {
        self.check != Check::Open
    }

    /// Whether one of the item's headings contains `section`, ignoring case.
    pub fn in_section(&self, section: &str) -> bool {
        self.in_lower_section(&section.to_lowercase())
    }

    /// `in_section` for a section name already lower-cased.
    fn in_lower_section(&self, needle: &str) -> bool {
        self.lower.iter().any(|s| s.contains(needle))
    }
}

/// The task items of a Markdown body, in document order.
pub fn parse(body: &str) -> Vec<Item> {
    let mut items = Vec::new();
    let mut headings: Vec<(HeadingLevel, String)> = Vec::new();
    // The headings above, as the items share them; made again when a heading changes.
    let mut shared: (Arc<[String]>, Arc<[String]>) = (Arc::from([]), Arc::from([]));
    let mut heading: Option<(HeadingLevel, String)> = None;
    let mut frames: Vec<Frame> = Vec::new();
    for (event, range) in Parser::new_ext(body, Options::ENABLE_TASKLISTS).into_offset_iter() {
        match event {
            Event::Start(Tag::Heading { level, .. }) => heading = Some((level, String::new())),
            Event::End(TagEnd::Heading(_)) => {
                if let Some((level, text)) = heading.take() {
                    while headings.last().is_some_and(|(l, _)| *l >= level) {
                        headings.pop();
                    }
                    headings.push((level, collapse(&text)));
                    shared = (
                        headings.iter().map(|(_, h)| h.clone()).collect(),
                        headings.iter().map(|(_, h)| h.to_lowercase()).collect(),
                    );
                }
            }
            Event::Start(Tag::Item) => frames.push(Frame {
                check: None,
                marker: 0..0,
                text: String::new(),
                started: false,
            }),
            Event::End(TagEnd::Item) => {
                if let Some(frame) = frames.pop() {
                    if let Some(check) = frame.check {
                        items.push(Item {
                            text: collapse(&frame.text),
                            check,
                            sections: shared.0.clone(),
                            lower: shared.1.clone(),
                            marker: frame.marker,
                        });
                    }
                }
            }
            Event::TaskListMarker(checked) => {
                if let Some(frame) = frames.last_mut() {
                    frame.check = Some(if checked { Check::Done } else { Check::Open });
                    frame.marker = range;
                    frame.started = true;
                }
            }
            Event::Text(text) | Event::Code(text) => {
                if let Some((_, h)) = heading.as_mut() {
                    h.push_str(&text);
                } else if let Some(frame) = frames.last_mut() {
                    if !frame.started {
                        frame.started = true;
                        if not_applicable_marker(&body[range.start..]) {
                            frame.check = Some(Check::NotApplicable);
                            frame.marker = range.start..range.start + 3;
                            frame.text.push_str(text.get(3..).unwrap_or(""));
                            continue;
                        }
                    }
                    if frame.check == Some(Check::NotApplicable) && range.start < frame.marker.end {
                        // pulldown-cmark may split `[~]` over several text events.
                        let skip = (frame.marker.end - range.start).min(text.len());
                        frame.text.push_str(text.get(skip..).unwrap_or(""));
                        continue;
                    }
                    frame.text.push_str(&text);
                }
            }
            Event::SoftBreak | Event::HardBreak => {
                if let Some(frame) = frames.last_mut() {
                    frame.text.push(' ');
                }
            }
            Event::Start(Tag::List(_)) => {
                if let Some(frame) = frames.last_mut() {
                    frame.started = true;
                }
            }
            _ => {}
        }
    }
    items.sort_by_key(|i| i.marker.start);
    items
}

/// Whether `rest` starts with GitLab's `[~]` followed by a space or tab: the same rule as
/// `[x]` follows, so that `tick --undo` (which writes `[ ]`) always leaves a task item.
fn not_applicable_marker(rest: &str) -> bool {
    rest.strip_prefix("[~]")
        .is_some_and(|after| after.is_empty() || after.starts_with([' ', '\t', '\n', '\r']))
}

struct Frame {
    check: Option<Check>,
    marker: Range<usize>,
    text: String,
    /// Whether the item's first content has been seen (a `[~]` can only come first).
    started: bool,
}

fn collapse(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// How many items are done and how many count, for a checklist gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tally {
    pub done: usize,
    pub total: usize,
    /// Whether an item stood under a heading matching the section (always true without a
    /// section). A matching heading without items leaves it false: see `has_section`.
    pub section_found: bool,
}

/// Counts the items under `section` (all items without one) whose text contains one of
/// `patterns` (all items without patterns).
pub fn tally(items: &[Item], section: Option<&str>, patterns: &[String]) -> Tally {
    let mut tally = Tally {
        done: 0,
        total: 0,
        section_found: section.is_none(),
    };
    let section = section.map(str::to_lowercase);
    let patterns: Vec<String> = patterns.iter().map(|p| p.to_lowercase()).collect();
    for item in items {
        if let Some(s) = &section {
            if !item.in_lower_section(s) {
                continue;
            }
            tally.section_found = true;
        }
        if !patterns.is_empty() && {
            let text = item.text.to_lowercase();
            !patterns.iter().any(|p| text.contains(p.as_str()))
        } {
            continue;
        }
        tally.total += 1;
        if item.done() {
            tally.done += 1;
        }
    }
    tally
}

/// Whether a body has a heading containing `section`, ignoring case.
pub fn has_section(body: &str, section: &str) -> bool {
    let needle = section.to_lowercase();
    let mut in_heading = false;
    let mut text = String::new();
    for event in Parser::new_ext(body, Options::empty()) {
        match event {
            Event::Start(Tag::Heading { .. }) => {
                in_heading = true;
                text.clear();
            }
            Event::Text(t) | Event::Code(t) if in_heading => text.push_str(&t),
            Event::End(TagEnd::Heading(_)) => {
                in_heading = false;
                if text.to_lowercase().contains(&needle) {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

/// Sets the checkbox of `item` in `body`: `[x]` when `done`, `[ ]` otherwise.
pub fn set(body: &str, item: &Item, done: bool) -> String {
    let mut out = String::with_capacity(body.len());
    out.push_str(&body[..item.marker.start]);
    out.push_str(if done { "[x]" } else { "[ ]" });
    out.push_str(&body[item.marker.end..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = "\
Intro
- [x] before any heading

## 1. Preparation
- [ ] **Routes**: what routes use this migration?
  1. Please list a set of routes

## 2. Development Trial
#### Check Dev Server Versions
- [X] Gitaly: [dashboard](https://example.com/x?a=1)
- [~] GitLab: https://dev.gitlab.org/help
- [ ] `!feature-set FLAG true` in #dev
  - [ ] nested task
- not a task

```
- [ ] in a code block
```

    - [ ] indented code block
";

    #[test]
    fn items_by_section() {
        let items = parse(BODY);
        let texts: Vec<(&str, Check, usize)> = items
            .iter()
            .map(|i| (i.text.as_str(), i.check, i.sections.len()))
            .collect();
        assert_eq!(
            texts,
            vec![
                ("before any heading", Check::Done, 0),
                ("Routes: what routes use this migration?", Check::Open, 1),
                ("Gitaly: dashboard", Check::Done, 2),
                (
                    "GitLab: https://dev.gitlab.org/help",
                    Check::NotApplicable,
                    2
                ),
                ("!feature-set FLAG true in #dev", Check::Open, 2),
                ("nested task", Check::Open, 2),
            ]
        );
        for item in &items {
            let marker = &BODY[item.marker.clone()];
            assert!(["[ ]", "[x]", "[X]", "[~]"].contains(&marker), "{marker:?}");
        }
    }

    #[test]
    #[allow(clippy::type_complexity)] // the test table's rows
    fn tallies() {
        let items = parse(BODY);
        let cases: &[(Option<&str>, &[&str], (usize, usize, bool))] = &[
            (None, &[], (3, 6, true)),
            (Some("development trial"), &[], (2, 4, true)),
            (Some("DEV SERVER"), &["gitlab", "nested"], (1, 2, true)),
            (Some("Preparation"), &[], (0, 1, true)),
            (Some("Rollback"), &[], (0, 0, false)),
        ];
        for (section, patterns, (done, total, _)) in cases {
            let patterns: Vec<String> = patterns.iter().map(|s| s.to_string()).collect();
            let t = tally(&items, *section, &patterns);
            assert_eq!(
                (t.done, t.total),
                (*done, *total),
                "{section:?} {patterns:?}"
            );
        }
        assert!(has_section(BODY, "development"));
        assert!(!has_section(BODY, "rollback"));
    }

    /// `[~]` is an item exactly when `[x]` in its place would be, so unticking (`[ ]`) keeps
    /// it an item.
    #[test]
    fn not_applicable_needs_what_done_needs() {
        for after in [" a", "\ta", "a", "", "\n", "  a", "~ a", "] a"] {
            let body = |mark: &str| format!("## S\n- {mark}{after}\n- [ ] other\n");
            let done = parse(&body("[x]")).len();
            let na = parse(&body("[~]"));
            assert_eq!(na.len(), done, "[~]{after:?}");
            if let Some(item) = na.iter().find(|i| i.check == Check::NotApplicable) {
                let unticked = set(&body("[~]"), item, false);
                assert_eq!(parse(&unticked).len(), na.len(), "{unticked:?}");
            }
        }
    }

    #[test]
    fn set_changes_one_box() {
        let items = parse(BODY);
        let ticked = set(BODY, &items[1], true);
        assert_eq!(
            ticked.replacen("- [x] **Routes**", "- [ ] **Routes**", 1),
            BODY
        );
        let unticked = set(BODY, &items[3], false);
        assert!(unticked.contains("- [ ] GitLab: https://dev.gitlab.org/help"));
        assert_eq!(parse(&unticked)[3].check, Check::Open);
    }
}
