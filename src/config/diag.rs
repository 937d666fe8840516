//! Config diagnostics: every problem, with file, line, column, section and key.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// How bad a diagnostic is (not an alert severity: see [`crate::alert::Severity`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// The config is refused.
    Error,
    /// Worth knowing; the config is accepted.
    Note,
}

/// One problem in a config file, printed as
/// `FILE:LINE:COL: [checks.ID] key `KEY`: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or note.
    pub level: Level,
    /// The config file.
    pub file: PathBuf,
    /// 1-based line and column, when the problem has a place in the file.
    pub position: Option<(usize, usize)>,
    /// The section (`checks.positions`, `server`), when there is one.
    pub section: Option<String>,
    /// The key, when there is one.
    pub key: Option<String>,
    /// What is wrong and what is expected.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, col)) = self.position {
            write!(f, ":{line}:{col}")?;
        }
        f.write_str(": ")?;
        if self.level == Level::Note {
            f.write_str("note: ")?;
        }
        if let Some(section) = &self.section {
            write!(f, "[{section}] ")?;
        }
        if let Some(key) = &self.key {
            write!(f, "key `{key}`: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Every error (and note) found in one config file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Only the errors.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.level == Level::Error)
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// Collects diagnostics for one file, turning byte offsets into line:column.
pub(crate) struct Collector<'a> {
    file: &'a Path,
    src: &'a str,
    pub(crate) out: Vec<Diagnostic>,
}

impl<'a> Collector<'a> {
    pub(crate) fn new(file: &'a Path, src: &'a str) -> Self {
        Collector {
            file,
            src,
            out: Vec::new(),
        }
    }

    pub(crate) fn push(
        &mut self,
        level: Level,
        span: Option<Range<usize>>,
        section: Option<&str>,
        key: Option<&str>,
        message: impl Into<String>,
    ) {
        self.out.push(Diagnostic {
            level,
            file: self.file.to_owned(),
            position: span.map(|s| line_col(self.src, s.start)),
            section: section.map(str::to_owned),
            key: key.map(str::to_owned),
            message: message.into(),
        });
    }

    pub(crate) fn error(
        &mut self,
        span: Option<Range<usize>>,
        section: Option<&str>,
        key: Option<&str>,
        message: impl Into<String>,
    ) {
        self.push(Level::Error, span, section, key, message);
    }

    pub(crate) fn note(
        &mut self,
        span: Option<Range<usize>>,
        section: Option<&str>,
        message: impl Into<String>,
    ) {
        self.push(Level::Note, span, section, None, message);
    }

    /// A note about one key.
    pub(crate) fn note_at(
        &mut self,
        span: Option<Range<usize>>,
        section: Option<&str>,
        key: &str,
        message: impl Into<String>,
    ) {
        self.push(Level::Note, span, section, Some(key), message);
    }

    pub(crate) fn has_errors(&self) -> bool {
        self.out.iter().any(|d| d.level == Level::Error)
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let before = &src[..floor_char_boundary(src, offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_count_characters() {
        let src = "a = 1\n# é\nkey = 2\n";
        assert_eq!(line_col(src, 0), (1, 1));
        let k = src.find("key").unwrap();
        assert_eq!(line_col(src, k), (3, 1));
        let v = src.find('2').unwrap();
        assert_eq!(line_col(src, v), (3, 7));
    }
}
