//! Manifest errors: every problem names the file, the line and the column, and says how to fix it.

use std::fmt;
use std::path::PathBuf;

/// A position in a manifest file (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Location {
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
}

impl Location {
    /// The location of byte `offset` in `source`.
    #[must_use]
    pub fn of_offset(source: &str, offset: usize) -> Location {
        let before = &source[..offset.min(source.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Location { line, column }
    }
}

/// One thing wrong with a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where.
    pub at: Location,
    /// What is wrong.
    pub message: String,
    /// How to fix it, when there is something concrete to say.
    pub help: Option<String>,
}

impl Problem {
    pub(crate) fn new(at: Location, message: impl Into<String>) -> Problem {
        Problem { at, message: message.into(), help: None }
    }

    pub(crate) fn help(mut self, help: impl Into<String>) -> Problem {
        self.help = Some(help.into());
        self
    }
}

/// A manifest that could not be read or is invalid; lists every problem found.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("{}: cannot read the manifest: {source}", path.display())]
    Read {
        /// The manifest.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file was read but is not a valid manifest.
    #[error("{}", Invalid { path, problems })]
    Invalid {
        /// The manifest.
        path: PathBuf,
        /// Everything wrong with it, in file order.
        problems: Vec<Problem>,
    },
}

struct Invalid<'a> {
    path: &'a PathBuf,
    problems: &'a [Problem],
}

impl fmt::Display for Invalid<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{}:{}:{}: {}", self.path.display(), p.at.line, p.at.column, p.message)?;
            if let Some(help) = &p.help {
                write!(f, " (help: {help})")?;
            }
        }
        Ok(())
    }
}
