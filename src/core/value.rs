//! Variable values are data from people, never control codes. `clean` takes every C0 and C1
//! control character out of a value (U+0000–U+001F, U+007F, U+0080–U+009F), except tab:
//! a tracker may read some of them (FS, GS, RS, NEL) as line breaks, after which a value
//! could start a GitLab quick action, and a terminal runs escape sequences. A line break
//! becomes a space instead, so that two lines of a value do not run together.
//!
//! It runs where a value comes in (`--var`, `--vars-file`), where one is read back from an
//! issue's marker (a migration started before this rule, or a marker edited by hand), and
//! inside `render::neutralize`, which every value printed into a body, title or comment
//! passes through.

use std::borrow::Cow;

/// `value` without control characters but tab; each line break (`\n`, `\r`, VT, FF, NEL,
/// U+2028, U+2029) a space. Borrows when there is nothing to take out.
pub fn clean(value: &str) -> Cow<'_, str> {
    if !value.chars().any(|c| removed(c) || is_line_break(c)) {
        return Cow::Borrowed(value);
    }
    Cow::Owned(
        value
            .chars()
            .filter_map(|c| {
                if is_line_break(c) {
                    Some(' ')
                } else if removed(c) {
                    None
                } else {
                    Some(c)
                }
            })
            .collect(),
    )
}

/// Whether `clean` takes `c` out: a C0 or C1 control character (Unicode's `Cc`: U+0000–
/// U+001F and U+007F–U+009F) other than tab.
pub fn removed(c: char) -> bool {
    c.is_control() && c != '\t'
}

/// The characters after which GitLab may start a quick action: every line break Unicode
/// knows, and the vertical tab and form feed.
pub const LINE_BREAKS: &[char] = &[
    '\r', '\n', '\u{0B}', '\u{0C}', '\u{85}', '\u{2028}', '\u{2029}',
];

fn is_line_break(c: char) -> bool {
    LINE_BREAKS.contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every C0 and C1 control character goes, tab stays, line breaks become spaces, and
    /// nothing else is touched.
    #[test]
    fn control_characters_are_taken_out() {
        for c in (0u32..=0x9F).filter_map(char::from_u32) {
            let out = clean(&format!("a{c}b")).into_owned();
            let want = match c {
                '\t' => "a\tb".to_string(),
                c if LINE_BREAKS.contains(&c) => "a b".to_string(),
                c if c.is_control() => "ab".to_string(),
                c => format!("a{c}b"),
            };
            assert_eq!(out, want, "U+{:04X}", c as u32);
        }
        assert_eq!(clean("x\u{2028}y\u{2029}z"), "x y z");
        assert_eq!(clean("\u{1B}[31mred\u{1B}[0m"), "[31mred[0m");
        assert_eq!(clean("\u{1C}/close\u{9B}1;2"), "/close1;2");
        assert!(matches!(clean("plain ünïcode ✓"), Cow::Borrowed(_)));
        assert_eq!(clean("\u{A0}\u{200B}kept"), "\u{A0}\u{200B}kept");
    }
}
