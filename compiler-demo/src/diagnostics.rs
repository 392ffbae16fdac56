//! Diagnostics: plain values that queries return.
//!
//! No stage prints. Each query returns the diagnostics for the syntax it owns; the
//! driver gathers them, sorts them by (file, position, message), drops exact
//! duplicates, and renders them in rustc's layout (`render.rs`), so the text is the
//! same byte for byte at every thread count.

use crate::source::Span;

pub use crate::render::{render, render_plain};

/// A span with what to say about it. Primary labels (`^^^`) mark where the error is;
/// secondary ones (`---`) mark what explains it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Label {
    pub span: Span,
    pub text: String,
    pub primary: bool,
}

/// What a child message is, as rustc words it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Note,
    Help,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Note => "note",
            Level::Help => "help",
        }
    }
}

/// A note or help after the main message: a `= note: ...` line without labels, or a
/// `note: ...` with a snippet of its own.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Child {
    pub level: Level,
    pub message: String,
    pub labels: Vec<Label>,
}

/// One error, with where it happened and what to say about it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diag {
    pub code: Option<&'static str>,
    pub message: String,
    /// The first primary label is the error's location; none for errors about the
    /// program as a whole.
    pub labels: Vec<Label>,
    pub children: Vec<Child>,
}

impl Diag {
    pub fn error(code: &'static str, message: impl Into<String>) -> Diag {
        Diag {
            code: Some(code),
            message: message.into(),
            labels: Vec::new(),
            children: Vec::new(),
        }
    }

    /// An error without an error code (syntax errors, as rustc does).
    pub fn plain(message: impl Into<String>) -> Diag {
        Diag {
            code: None,
            ..Diag::error("", message)
        }
    }

    /// Adds a primary label: the first one is where the error is.
    pub fn at(mut self, span: Span, label: impl Into<String>) -> Diag {
        self.labels.push(Label {
            span,
            text: label.into(),
            primary: true,
        });
        self
    }

    pub fn with_secondary(mut self, span: Span, label: impl Into<String>) -> Diag {
        self.labels.push(Label {
            span,
            text: label.into(),
            primary: false,
        });
        self
    }

    /// A `= note: ...` line.
    pub fn note(self, message: impl Into<String>) -> Diag {
        self.child(Level::Note, message, Vec::new())
    }

    /// A `= help: ...` line.
    pub fn help(self, message: impl Into<String>) -> Diag {
        self.child(Level::Help, message, Vec::new())
    }

    /// A `note: ...` with its own snippet, underlining `span`.
    pub fn note_at(self, span: Span, message: impl Into<String>) -> Diag {
        let label = Label {
            span,
            text: String::new(),
            primary: true,
        };
        self.child(Level::Note, message, vec![label])
    }

    /// A child message with any labels.
    pub fn child(mut self, level: Level, message: impl Into<String>, labels: Vec<Label>) -> Diag {
        self.children.push(Child {
            level,
            message: message.into(),
            labels,
        });
        self
    }

    /// Where the error is: the span of its first primary label.
    pub fn primary_span(&self) -> Option<Span> {
        self.labels.iter().find(|l| l.primary).map(|l| l.span)
    }

    /// The order diagnostics are printed in.
    fn sort_key(&self) -> (u32, u32, u32, &str) {
        match self.primary_span() {
            Some(s) => (s.file, s.start, s.end, &self.message),
            None => (0, 0, 0, &self.message),
        }
    }
}

/// Sorts by (file, position, message) and removes exact duplicates.
pub fn sort_and_dedup(diags: &mut Vec<Diag>) {
    diags.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()).then_with(|| a.cmp(b)));
    diags.dedup();
}
