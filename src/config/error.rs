//! A configuration mistake, located: file, line, column and the dotted key it concerns.

use std::fmt;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based; `None` when the mistake has no place in the file (e.g. it cannot be read).
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Dotted key path, e.g. `projects[1].db.db_url` (empty for the whole document).
    pub key: String,
    pub message: String,
}

impl ConfigError {
    /// A mistake at byte `offset` of `text` (`None`: no position).
    pub fn at(
        file: &std::path::Path,
        text: &str,
        offset: Option<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        let (line, column) = match offset {
            Some(o) => {
                let o = o.min(text.len());
                let before = &text[..o];
                let line = before.matches('\n').count() + 1;
                let col = before
                    .rsplit('\n')
                    .next()
                    .map(|l| l.chars().count())
                    .unwrap_or(0)
                    + 1;
                (Some(line), Some(col))
            }
            None => (None, None),
        };
        ConfigError {
            file: file.to_path_buf(),
            line,
            column,
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    /// `/etc/snap/snap.toml, line 12, key retention.keep_within: invalid duration "3x": …`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(l) = self.line {
            write!(f, ", line {l}")?;
            if let Some(c) = self.column {
                write!(f, ", column {c}")?;
            }
        }
        if !self.key.is_empty() {
            write!(f, ", key {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}
