//! Plugin-provided text made safe for a terminal or a text log: control characters
//! (CR, ESC, NUL, line feeds, …) become visible escapes, so `down\rOK fine\e[K` cannot
//! show as "OK fine" and one event stays one log line. JSON output is not touched:
//! serde escapes it exactly.

use std::borrow::Cow;

/// `s` with every control character written as a visible escape: `\r`, `\n`, `\t`,
/// `\e` (ESC), `\0`, or `\u{7f}`-style for the rest.
pub fn visible(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\u{1b}' => out.push_str("\\e"),
            '\0' => out.push_str("\\0"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_become_visible() {
        assert_eq!(visible("down\rOK fine\u{1b}[K"), "down\\rOK fine\\e[K");
        assert_eq!(visible("a\nb\0c\u{7f}\u{9b}"), "a\\nb\\0c\\u{7f}\\u{9b}");
        assert!(matches!(visible("plain é ✔"), Cow::Borrowed(_)));
    }
}
