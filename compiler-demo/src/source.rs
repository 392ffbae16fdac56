//! Source files and spans.
//!
//! A program is a directory; every `.wd` file in it is a module. Files get dense ids in
//! sorted path order, so ids — and everything derived from them — do not depend on the
//! order the operating system lists a directory in.

use std::fmt;
use std::sync::Arc;

/// Index of a source file in the program's sorted file list.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct FileId(pub u32);

/// A byte range in one file.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Span {
    pub file: u32,
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(file: FileId, start: usize, end: usize) -> Span {
        Span {
            file: file.0,
            start: start as u32,
            end: end as u32,
        }
    }

    pub fn file(self) -> FileId {
        FileId(self.file)
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span {
            file: self.file,
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}..{}", self.file, self.start, self.end)
    }
}

/// The UTF-8 encoding of U+FEFF, the byte order mark some editors write first.
const BOM: &[u8] = b"\xef\xbb\xbf";

/// One file of the program as read from disk.
#[derive(Debug)]
pub struct SourceFile {
    /// Path relative to the program directory, with `/` separators.
    pub path: String,
    /// The text, or `None` when the file is not valid UTF-8.
    pub text: Option<Arc<str>>,
    /// Byte offsets at which lines start, found when a diagnostic first needs them
    /// (most files of a program never get one).
    line_starts: std::sync::OnceLock<Vec<usize>>,
}

impl SourceFile {
    /// A file from its bytes. A leading UTF-8 byte order mark is dropped, as rustc
    /// does, so it is neither a token nor a column.
    pub fn new(path: String, mut bytes: Vec<u8>) -> SourceFile {
        if bytes.starts_with(BOM) {
            bytes.drain(..BOM.len());
        }
        let text: Option<Arc<str>> = String::from_utf8(bytes).ok().map(Arc::from);
        SourceFile {
            path,
            text,
            line_starts: std::sync::OnceLock::new(),
        }
    }

    pub fn text(&self) -> &str {
        self.text.as_deref().unwrap_or("")
    }

    pub fn line_starts(&self) -> &[usize] {
        self.line_starts.get_or_init(|| {
            std::iter::once(0)
                .chain(self.text().match_indices('\n').map(|(i, _)| i + 1))
                .collect()
        })
    }

    /// 1-based line and column (in chars) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let starts = self.line_starts();
        let line = match starts.binary_search(&offset) {
            Ok(l) => l,
            Err(l) => l - 1,
        };
        let start = starts[line];
        let text = self.text();
        let col = text
            .get(start..offset.min(text.len()))
            .map_or(0, |s| s.chars().count());
        (line + 1, col + 1)
    }
}

/// All files of a program, indexed by `FileId`.
#[derive(Clone, Debug, Default)]
pub struct SourceMap {
    pub files: Vec<Arc<SourceFile>>,
}

impl SourceMap {
    pub fn get(&self, id: FileId) -> Option<&SourceFile> {
        self.files.get(id.0 as usize).map(|f| &**f)
    }
}
