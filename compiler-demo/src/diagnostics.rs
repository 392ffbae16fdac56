//! Diagnostics: plain values that queries return, and their rustc-style rendering.
//!
//! No stage prints. Each query returns the diagnostics for the syntax it owns; the
//! driver gathers them, sorts them by (file, position, message), drops exact
//! duplicates, and renders them with `codespan-reporting` without colour, so the text is
//! the same byte for byte at every thread count.

use crate::source::{FileId, SourceMap, Span};
use codespan_reporting::diagnostic::{Diagnostic, Label};
use codespan_reporting::files::{Error as FilesError, Files};
use codespan_reporting::term::{self, Chars, Config};
use std::ops::Range;

/// One error, with where it happened and what to say about it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diag {
    pub code: Option<&'static str>,
    pub message: String,
    /// The main location and its label; `None` for errors about the program as a whole.
    pub primary: Option<(Span, String)>,
    pub secondary: Vec<(Span, String)>,
    pub notes: Vec<String>,
}

impl Diag {
    pub fn error(code: &'static str, message: impl Into<String>) -> Diag {
        Diag {
            code: Some(code),
            message: message.into(),
            primary: None,
            secondary: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// An error without an error code (syntax errors, as rustc does).
    pub fn plain(message: impl Into<String>) -> Diag {
        Diag {
            code: None,
            ..Diag::error("", message)
        }
    }

    pub fn at(mut self, span: Span, label: impl Into<String>) -> Diag {
        self.primary = Some((span, label.into()));
        self
    }

    pub fn with_secondary(mut self, span: Span, label: impl Into<String>) -> Diag {
        self.secondary.push((span, label.into()));
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Diag {
        self.notes.push(note.into());
        self
    }

    /// The order diagnostics are printed in.
    fn sort_key(&self) -> (u32, u32, u32, &str) {
        match &self.primary {
            Some((s, _)) => (s.file, s.start, s.end, &self.message),
            None => (0, 0, 0, &self.message),
        }
    }
}

/// Sorts by (file, position, message) and removes exact duplicates.
pub fn sort_and_dedup(diags: &mut Vec<Diag>) {
    diags.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()).then_with(|| a.cmp(b)));
    diags.dedup();
}

impl<'a> Files<'a> for SourceMap {
    type FileId = FileId;
    type Name = &'a str;
    type Source = &'a str;

    fn name(&'a self, id: FileId) -> Result<&'a str, FilesError> {
        Ok(&self.get(id).ok_or(FilesError::FileMissing)?.path)
    }

    fn source(&'a self, id: FileId) -> Result<&'a str, FilesError> {
        Ok(self.get(id).ok_or(FilesError::FileMissing)?.text())
    }

    fn line_index(&'a self, id: FileId, byte_index: usize) -> Result<usize, FilesError> {
        let starts = self.get(id).ok_or(FilesError::FileMissing)?.line_starts();
        Ok(match starts.binary_search(&byte_index) {
            Ok(l) => l,
            Err(l) => l.saturating_sub(1),
        })
    }

    fn line_range(&'a self, id: FileId, line_index: usize) -> Result<Range<usize>, FilesError> {
        let file = self.get(id).ok_or(FilesError::FileMissing)?;
        let starts = file.line_starts();
        let start = *starts.get(line_index).ok_or(FilesError::LineTooLarge {
            given: line_index,
            max: starts.len().saturating_sub(1),
        })?;
        let end = starts
            .get(line_index + 1)
            .copied()
            .unwrap_or(file.text().len());
        Ok(start..end)
    }
}

fn label_range(files: &SourceMap, span: Span) -> Range<usize> {
    let len = files.get(span.file()).map_or(0, |f| f.text().len());
    let start = (span.start as usize).min(len);
    start..(span.end as usize).clamp(start, len)
}

fn to_codespan(files: &SourceMap, d: &Diag) -> Diagnostic<FileId> {
    let mut out = Diagnostic::error().with_message(&d.message);
    if let Some(code) = d.code {
        out = out.with_code(code);
    }
    let mut labels = Vec::new();
    if let Some((span, msg)) = &d.primary {
        labels.push(Label::primary(span.file(), label_range(files, *span)).with_message(msg));
    }
    for (span, msg) in &d.secondary {
        labels.push(Label::secondary(span.file(), label_range(files, *span)).with_message(msg));
    }
    out.with_labels(labels).with_notes(d.notes.clone())
}

/// Renders diagnostics as rustc-style plain text, followed by a summary line.
pub fn render(files: &SourceMap, diags: &[Diag]) -> String {
    let mut text = render_plain(files, diags);
    match diags.len() {
        0 => {}
        1 => text.push_str("error: aborting due to 1 previous error\n"),
        n => text.push_str(&format!("error: aborting due to {n} previous errors\n")),
    }
    text
}

/// Renders diagnostics without the summary line.
pub fn render_plain(files: &SourceMap, diags: &[Diag]) -> String {
    let config = Config {
        chars: Chars::ascii(),
        ..Config::default()
    };
    let mut text = String::new();
    for d in diags {
        let mut buf = term::termcolor::Buffer::no_color();
        // Rendering fails only for spans outside a file, which `label_range` prevents;
        // fall back to the bare message rather than lose the error.
        match term::emit(&mut buf, &config, files, &to_codespan(files, d)) {
            Ok(()) => text.push_str(&String::from_utf8_lossy(buf.as_slice())),
            Err(_) => text.push_str(&format!("error: {}\n\n", d.message)),
        }
    }
    text
}
