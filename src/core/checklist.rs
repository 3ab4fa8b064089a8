//! Markdown task lists, by section. An item is done when checked (`[x]`, `[X]`) or marked
//! not applicable (`[~]`, GitLab's notation, which pulldown-cmark does not know). Items in
//! code blocks are text, not items. Every item keeps the headings above it and the byte
//! range of its checkbox, so `tick` can change exactly that one box.

use std::ops::Range;
use std::sync::{Arc, Mutex};

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

/// A task item as a rollback records it: its innermost heading (empty above the first)
/// and its text. Written into the audit comment's marker, so a run that finishes the
/// rollback after a crash unticks exactly these, and no box a person ticked since.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ItemRef(pub String, pub String);

impl Item {
    /// How a rollback names this item.
    pub fn reference(&self) -> ItemRef {
        ItemRef(
            self.sections.last().cloned().unwrap_or_default(),
            self.text.clone(),
        )
    }
}

/// `body` with the ticked (`[x]`) items that `items` names unticked, in one new body; a
/// `[~]` (not applicable) stays as a person set it. `None` when none of them is ticked.
pub fn untick(body: &str, items: &[ItemRef]) -> Option<String> {
    let ticked: Vec<Item> = parse(body)
        .into_iter()
        .filter(|i| i.check == Check::Done && items.contains(&i.reference()))
        .collect();
    if ticked.is_empty() {
        return None;
    }
    let mut out = body.to_string();
    // From the end, so the earlier byte ranges stay where they are.
    for item in ticked.iter().rev() {
        out.replace_range(item.marker.clone(), "[ ]");
    }
    Some(out)
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

/// The task items under headings containing `section` (any case): what `parse` finds
/// there, reading only those parts of the body. A checklist gate looks at one section of
/// a long issue; parsing the rest is wasted. Bodies whose headings a line scan cannot
/// place for certain (block quotes, HTML, setext headings, indented or nested headings,
/// link reference definitions) are parsed whole.
pub fn parse_section(body: &str, section: &str) -> Vec<Item> {
    in_regions(body, section).unwrap_or_else(|| {
        let needle = section.to_lowercase();
        parse(body)
            .into_iter()
            .filter(|i| i.in_lower_section(&needle))
            .collect()
    })
}

/// `parse_section` when a line scan can place the headings; `None` otherwise.
fn in_regions(body: &str, section: &str) -> Option<Vec<Item>> {
    let needle = section.to_lowercase();
    let regions = regions(body, &needle)?;
    let mut items = Vec::new();
    for (range, above) in regions {
        let lower: Vec<String> = above.iter().map(|h| h.to_lowercase()).collect();
        for mut item in parse(&body[range.clone()]) {
            item.marker = item.marker.start + range.start..item.marker.end + range.start;
            item.sections = above.iter().chain(item.sections.iter()).cloned().collect();
            item.lower = lower.iter().chain(item.lower.iter()).cloned().collect();
            items.push(item);
        }
    }
    Some(items)
}

/// The byte ranges of `body` under a heading containing `needle` (each from that heading
/// to the next heading of its level or above), with the headings above each; `None` when
/// a line scan cannot be sure where the headings are.
#[allow(clippy::type_complexity)]
fn regions(body: &str, needle: &str) -> Option<Vec<(Range<usize>, Vec<String>)>> {
    // (offset, level, text) of every heading, outside fenced code.
    let mut headings: Vec<(usize, usize, String)> = Vec::new();
    let mut fence: Option<(char, usize)> = None;
    let run = |t: &str, c: char| t.len() - t.trim_start_matches(c).len();
    let mut previous_blank = true;
    let mut offset = 0;
    for line in body.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let text = line.trim_end_matches(['\n', '\r']);
        let indent = text.len() - text.trim_start().len();
        let trimmed = text.trim_start();
        if let Some((c, n)) = fence {
            if run(trimmed, c) >= n && trimmed.trim_start_matches(c).trim().is_empty() {
                if indent > 0 {
                    return None;
                }
                fence = None;
            }
            previous_blank = false;
            continue;
        }
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            if indent > 0 {
                return None;
            }
            let c = if trimmed.starts_with('`') { '`' } else { '~' };
            fence = Some((c, run(trimmed, c)));
            previous_blank = false;
            continue;
        }
        let underline = !trimmed.is_empty()
            && (trimmed.trim_end().chars().all(|c| c == '=')
                || trimmed.trim_end().chars().all(|c| c == '-'));
        let html = trimmed.starts_with('<')
            && !(trimmed.starts_with("<!--") && trimmed.trim_end().ends_with("-->"));
        let nested_heading = trimmed.starts_with('#') && indent > 0;
        let list_heading = {
            let after_marker = trimmed.strip_prefix(['-', '*', '+']).or_else(|| {
                let digits = trimmed.len()
                    - trimmed
                        .trim_start_matches(|c: char| c.is_ascii_digit())
                        .len();
                (digits > 0)
                    .then(|| trimmed[digits..].strip_prefix(['.', ')']))
                    .flatten()
            });
            after_marker.is_some_and(|rest| {
                rest.starts_with([' ', '\t']) && rest.trim_start().starts_with('#')
            })
        };
        let reference = trimmed.starts_with('[') && trimmed.contains("]:") && indent < 4;
        if (underline && !previous_blank)
            || html
            || trimmed.starts_with('>')
            || nested_heading
            || list_heading
            || reference
        {
            return None;
        }
        previous_blank = trimmed.is_empty();
        let level = trimmed.len() - trimmed.trim_start_matches('#').len();
        if indent == 0
            && (1..=6).contains(&level)
            && trimmed[level..]
                .chars()
                .next()
                .is_none_or(|c| c == ' ' || c == '\t')
        {
            headings.push((start, level, heading_text(text)));
        }
    }
    let mut out = Vec::new();
    let mut above: Vec<(usize, String)> = Vec::new();
    let mut taken_until = 0;
    for (i, (start, level, text)) in headings.iter().enumerate() {
        while above.last().is_some_and(|(l, _)| l >= level) {
            above.pop();
        }
        if *start >= taken_until && text.to_lowercase().contains(needle) {
            let end = headings[i + 1..]
                .iter()
                .find(|(_, l, _)| l <= level)
                .map_or(body.len(), |(s, _, _)| *s);
            out.push((*start..end, above.iter().map(|(_, t)| t.clone()).collect()));
            taken_until = end;
        }
        above.push((*level, text.clone()));
    }
    Some(out)
}

/// A heading line's text as `parse` reads it.
fn heading_text(line: &str) -> String {
    let bare = line.trim().trim_start_matches('#');
    if !bare.contains(['*', '_', '`', '[', ']', '&', '\\', '<', '#', '!', '~']) {
        // No inline markup: the text is the line as written.
        return collapse(bare);
    }
    let mut text = String::new();
    let mut inside = false;
    for event in Parser::new_ext(line, Options::ENABLE_TASKLISTS) {
        match event {
            Event::Start(Tag::Heading { .. }) => inside = true,
            Event::End(TagEnd::Heading(_)) => inside = false,
            Event::Text(t) | Event::Code(t) if inside => text.push_str(&t),
            _ => {}
        }
    }
    collapse(&text)
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

/// The task items of one body, by section, each parsed once: deciding a migration looks
/// at the same section several times (which facts to ask, the plan, the status). It goes
/// with the body it was made for (`IssueView::checklists`) and is shared by its clones;
/// each entry keeps the body it was parsed from, so a body changed since is parsed again.
#[derive(Clone, Default)]
pub struct Memo(Arc<Mutex<Vec<Parsed>>>);

struct Parsed {
    section: Option<String>,
    body: Arc<str>,
    items: Arc<[Item]>,
}

/// How many sections one body keeps.
const MEMO_SECTIONS: usize = 8;

impl Memo {
    /// `parse_section(body, section)`, or `parse(body)` without a section.
    pub fn items(&self, body: &Arc<str>, section: Option<&str>) -> Arc<[Item]> {
        // The same allocation is the same text (a live `Arc<str>` never changes); else the
        // texts are compared.
        let same = |kept: &Arc<str>| Arc::ptr_eq(kept, body) || **kept == **body;
        let mut memo = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(hit) = memo
            .iter()
            .find(|p| p.section.as_deref() == section && same(&p.body))
        {
            return hit.items.clone();
        }
        let items: Arc<[Item]> = match section {
            // A body a line scan cannot place is parsed whole once for all its sections.
            Some(s) => match in_regions(body, s) {
                Some(items) => items.into(),
                None => {
                    drop(memo);
                    let needle = s.to_lowercase();
                    let whole = self.items(body, None);
                    let items: Arc<[Item]> = whole
                        .iter()
                        .filter(|i| i.in_lower_section(&needle))
                        .cloned()
                        .collect();
                    memo = self.0.lock().unwrap_or_else(|e| e.into_inner());
                    items
                }
            },
            None => parse(body).into(),
        };
        if memo.len() >= MEMO_SECTIONS {
            memo.clear();
        }
        memo.push(Parsed {
            section: section.map(str::to_string),
            body: body.clone(),
            items: items.clone(),
        });
        items
    }
}

/// Always equal: the memo is a cache of what the body says, not part of the issue.
impl PartialEq for Memo {
    fn eq(&self, _: &Memo) -> bool {
        true
    }
}

impl std::fmt::Debug for Memo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("checklist::Memo")
    }
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
    let section_found = section.is_none_or(|s| {
        let s = s.to_lowercase();
        items.iter().any(|i| i.in_lower_section(&s))
    });
    let mut tally = Tally {
        done: 0,
        total: 0,
        section_found,
    };
    for item in counted(items, section, patterns) {
        tally.total += 1;
        if item.done() {
            tally.done += 1;
        }
    }
    tally
}

/// The items a checklist gate counts: those under `section` (all without one) whose text
/// contains one of `patterns` (all without patterns), ignoring case.
pub fn counted<'i>(
    items: &'i [Item],
    section: Option<&str>,
    patterns: &[String],
) -> impl Iterator<Item = &'i Item> {
    let section = section.map(str::to_lowercase);
    let patterns: Vec<String> = patterns.iter().map(|p| p.to_lowercase()).collect();
    items.iter().filter(move |item| {
        section.as_ref().is_none_or(|s| item.in_lower_section(s))
            && (patterns.is_empty() || {
                let text = item.text.to_lowercase();
                patterns.iter().any(|p| text.contains(p.as_str()))
            })
    })
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

    /// Reading one section gives what reading the whole body gives there, in the shipped
    /// templates (read section by section, without a whole parse) and in bodies whose
    /// structure a line scan must not guess (those are read whole).
    #[test]
    fn a_section_read_alone_is_the_section_of_the_whole() {
        let template = |t: &str| t.splitn(3, "---\n").nth(2).unwrap_or(t).to_string();
        let shipped = [
            template(include_str!("../../templates/gitaly-migration.md.hbs")),
            template(include_str!("../../templates/acceptance-testing.md.hbs")),
            template(include_str!("../../templates/feature-flag-rollout.md.hbs")),
        ];
        let tricky = [
            BODY.to_string(),
            "# A\n```\n# not a heading\n- [ ] in code\n```\n- [ ] a\n## B *emph* `code`\n- [x] b\n"
                .into(),
            "# A\n````\n```\n# still code\n````\n- [ ] a\n".into(),
            "Setext\n======\n- [ ] s\n# A\n- [ ] a\n".into(),
            "> # quoted\n> - [ ] q\n# A\n- [ ] a\n".into(),
            "<details>\n# in html\n- [ ] h\n</details>\n\n# A\n- [ ] a\n".into(),
            "# A\n- [ ] [ref]\n\n[ref]: https://example.com\n".into(),
            "- item\n  # nested heading\n  - [ ] n\n# A\n- [ ] a\n".into(),
            "# A\n## A1\n- [ ] a1\n# B\n- [ ] b\n## a again\n- [x] c\n".into(),
            "# A\n- [ ] a\n  ```\n# inside?\n  ```\n".into(),
            "text\n---\n# A\n- [ ] a\n".into(),
            "# A\n- [~] n/a\n- [ ] b\n<!-- shepherd:{} -->\n".into(),
        ];
        let key = |i: &Item| {
            (
                i.text.clone(),
                i.check,
                i.marker.clone(),
                i.sections.to_vec(),
            )
        };
        for (n, body) in shipped.iter().chain(tricky.iter()).enumerate() {
            let whole = parse(body);
            let mut names: Vec<String> = whole.iter().flat_map(|i| i.sections.to_vec()).collect();
            names.extend(["a", "impact", "opt", "trial", "nowhere", "1."].map(String::from));
            for name in names {
                let expected: Vec<_> = whole
                    .iter()
                    .filter(|i| i.in_section(&name))
                    .map(key)
                    .collect();
                let got: Vec<_> = parse_section(body, &name).iter().map(key).collect();
                assert_eq!(got, expected, "body {n}, section {name:?}");
            }
        }
        // The shipped Gitaly templates are read section by section, not whole.
        for body in &shipped[..2] {
            assert!(regions(body, "impact").is_some());
        }
    }

    #[test]
    fn the_memo_parses_a_body_once_and_again_when_it_changes() {
        let memo = Memo::default();
        let open: Arc<str> = "## Plan\n\n- [ ] one\n\n## Rest\n\n- [ ] two\n".into();
        let first = memo.items(&open, Some("Plan"));
        assert_eq!(first.len(), 1);
        let again = memo.items(&open, Some("Plan"));
        assert!(Arc::ptr_eq(&first, &again), "parsed once");
        let copy: Arc<str> = open.to_string().into();
        let same_text = memo.items(&copy, Some("Plan"));
        assert!(Arc::ptr_eq(&first, &same_text), "the same text, elsewhere");
        assert_eq!(memo.items(&open, None).len(), 2, "each section apart");
        let ticked: Arc<str> = "## Plan\n\n- [x] one\n\n## Rest\n\n- [ ] two\n".into();
        let changed = memo.items(&ticked, Some("Plan"));
        assert!(changed[0].done(), "a changed body is read again");
        assert!(!memo.items(&open, Some("Plan"))[0].done());
    }
}
