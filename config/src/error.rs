//! What went wrong, and where: [`Problem`] (one fixable mistake) and [`Problems`] (all of them).
//!
//! A problem prints as `path:line:column: key: message`, the form editors and CI logs link to:
//!
//! ```text
//! /etc/gonogo/gonogo.toml:14:9: check "gw-ping".count: expected a whole number such as 5, found string "five"
//! ```

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One mistake in a configuration file, with the place to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file the problem is in.
    pub file: PathBuf,
    /// 1-based line; 0 when the problem is not at a place in the file (e.g. the file cannot be read).
    pub line: usize,
    /// 1-based column, counted in characters; 0 with `line`.
    pub column: usize,
    /// Key path such as `check "gw-ping".expect.rtt_p95_max`; empty when no key applies (a TOML syntax error).
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl Problem {
    /// A problem with the file as a whole (unreadable, …): no line, column or key.
    pub fn file(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Problem { file: path.into(), line: 0, column: 0, key: String::new(), message: message.into() }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.file.display())?;
        if self.line > 0 {
            write!(f, "{}:{}:", self.line, self.column)?;
        }
        if !self.key.is_empty() {
            write!(f, " {}:", self.key)?;
        }
        write!(f, " {}", self.message)
    }
}

impl std::error::Error for Problem {}

/// Every problem found in one file, in file order. Never empty when returned as an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems(Vec<Problem>);

impl Problems {
    /// Just one problem.
    pub fn single(problem: Problem) -> Self {
        Problems(vec![problem])
    }

    /// The problems, in file order.
    pub fn iter(&self) -> std::slice::Iter<'_, Problem> {
        self.0.iter()
    }

    /// How many problems there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are none (never the case for a returned error).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The problems as a slice, in file order.
    pub fn as_slice(&self) -> &[Problem] {
        &self.0
    }
}

impl From<Vec<Problem>> for Problems {
    fn from(problems: Vec<Problem>) -> Self {
        Problems(problems)
    }
}

impl IntoIterator for Problems {
    type Item = Problem;
    type IntoIter = std::vec::IntoIter<Problem>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Problems {
    type Item = &'a Problem;
    type IntoIter = std::slice::Iter<'a, Problem>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// One problem per line, no trailing newline.
impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// Collects problems for one file, turning byte spans into lines and columns.
#[derive(Debug)]
pub(crate) struct Report<'a> {
    file: &'a Path,
    text: &'a str,
    /// Byte offset where each line starts; `line_starts[0] == 0`.
    line_starts: Vec<usize>,
    problems: Vec<Problem>,
}

impl<'a> Report<'a> {
    pub(crate) fn new(file: &'a Path, text: &'a str) -> Self {
        let line_starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        Report { file, text, line_starts, problems: Vec::new() }
    }

    /// 1-based line and column (in characters) of the byte `offset`.
    pub(crate) fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&start| start <= offset); // >= 1: line_starts[0] == 0
        let start = self.line_starts[line - 1];
        // A span from the parser always falls on a character boundary; count bytes if it somehow does not.
        let column = self.text.get(start..offset).map_or(offset - start, |s| s.chars().count());
        (line, column + 1)
    }

    /// Record a problem at the start of `span`.
    pub(crate) fn at(&mut self, span: Range<usize>, key: impl Into<String>, message: impl Into<String>) {
        let (line, column) = self.position(span.start);
        self.problems.push(Problem {
            file: self.file.to_path_buf(),
            line,
            column,
            key: key.into(),
            message: message.into(),
        });
    }

    /// Number of problems so far.
    pub(crate) fn count(&self) -> usize {
        self.problems.len()
    }

    /// `Ok(value)` when nothing was recorded, else every problem in file order.
    pub(crate) fn finish<T>(self, value: Option<T>) -> Result<T, Problems> {
        let mut problems = self.problems;
        match value {
            Some(value) if problems.is_empty() => Ok(value),
            _ => {
                if problems.is_empty() {
                    // Defensive: a caller gave up without saying why.
                    problems.push(Problem::file(self.file, "invalid configuration"));
                }
                problems.sort_by_key(|p| (p.line, p.column));
                Err(Problems(problems))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let text = "a = 1\n# £é\nb = \"é\" x\r\nlast";
        let report = Report::new(Path::new("f.toml"), text);
        assert_eq!(report.position(0), (1, 1));
        assert_eq!(report.position(4), (1, 5));
        assert_eq!(report.position(6), (2, 1));
        let x = text.find('x').expect("x in text");
        assert_eq!(report.position(x), (3, 9));
        let last = text.find("last").expect("last in text");
        assert_eq!(report.position(last), (4, 1));
        assert_eq!(report.position(text.len()), (4, 5));
        assert_eq!(report.position(text.len() + 10), (4, 5));
    }

    #[test]
    fn display_forms() {
        let p = Problem {
            file: "g.toml".into(),
            line: 3,
            column: 7,
            key: "check \"a\".count".into(),
            message: "too big".into(),
        };
        assert_eq!(p.to_string(), "g.toml:3:7: check \"a\".count: too big");
        let f = Problem::file(Path::new("g.toml"), "cannot read");
        assert_eq!(f.to_string(), "g.toml: cannot read");
        let all = Problems::from(vec![p, f]);
        assert_eq!(all.to_string(), "g.toml:3:7: check \"a\".count: too big\ng.toml: cannot read");
        assert_eq!(all.len(), 2);
        assert_eq!(all.iter().count(), 2);
    }
}
