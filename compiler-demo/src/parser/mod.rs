//! The parser: tokens to a syntax tree, with error recovery.
//!
//! Recovery is by resynchronisation: a parse function that meets something it cannot
//! use reports it once and returns `Err(Reported)`; the nearest list skips to the next
//! `,`, the nearest statement loop to the next `;` or closing `}`, and the item loop to
//! the next item keyword. So one mistake gives one diagnostic, not one per following
//! token.
//!
//! A broken item still defines its name (see `items.rs`): what could not be read
//! becomes an error placeholder, so uses of the item report nothing more. Unclosed
//! delimiters are found before parsing and reported once, as rustc does; a block that
//! reaches the end of the file, or an item keyword in such a file, is cut off there
//! (`abandoned`), silently, and keeps what it had.
//!
//! Nesting is bounded twice: the recursion depth of the parser itself, and the depth of
//! every expression tree it builds (left-deep operator chains included). Past either
//! limit the parser reports "too deeply nested" instead of overflowing its stack or
//! handing later passes a tree they would overflow on.

mod block;
mod expr;
mod items;
#[cfg(test)]
mod tests;

use crate::ast::*;
use crate::diagnostics::Diag;
use crate::lexer::{lex, Token, TokenKind};
use crate::source::{FileId, Span};
use std::sync::Arc;

/// Deepest recursion the parser allows itself.
pub const MAX_RECURSION: u32 = 64;
/// Deepest expression tree the parser will build.
pub const MAX_EXPR_DEPTH: u32 = 256;

/// Marker: the error has been reported; the caller should resynchronise.
#[derive(Debug)]
pub struct Reported;

type PResult<T> = Result<T, Reported>;

/// Lexes and parses one file.
pub fn parse_file(file: FileId, text: &str) -> (SourceModule, Vec<Diag>) {
    let (tokens, mut diags) = lex(file, text);
    let unclosed = unclosed_delimiters(&tokens);
    let mut p = Parser {
        tokens,
        pos: 0,
        diags: Vec::new(),
        depth: 0,
        eof_reported: unclosed.is_some(),
        abandoned: false,
        segments: Vec::new(),
    };
    p.diags.extend(unclosed);
    let module = p.module();
    diags.append(&mut p.diags);
    (module, diags)
}

/// Unclosed delimiters labelled in one diagnostic; the rest are counted.
const MAX_UNCLOSED_LABELS: usize = 4;

/// Finds the `{` and `(` that are never closed, and reports them once, with the end of
/// the file, before parsing. A `}` also closes any `(` left open inside its block.
fn unclosed_delimiters(tokens: &[Token]) -> Option<Diag> {
    let mut open: Vec<&Token> = Vec::new();
    for t in tokens {
        match t.kind {
            TokenKind::LBrace | TokenKind::LParen => open.push(t),
            TokenKind::RParen if open.last().is_some_and(|o| o.kind == TokenKind::LParen) => {
                open.pop();
            }
            TokenKind::RBrace => {
                if let Some(i) = open.iter().rposition(|o| o.kind == TokenKind::LBrace) {
                    open.truncate(i);
                }
            }
            _ => {}
        }
    }
    if open.is_empty() {
        return None;
    }
    let eof = tokens.last()?.span;
    let mut d = Diag::plain("this file contains an unclosed delimiter").at(eof, "");
    for o in open.iter().take(MAX_UNCLOSED_LABELS) {
        d = d.with_secondary(o.span, "unclosed delimiter");
    }
    if open.len() > MAX_UNCLOSED_LABELS {
        let more = open.len() - MAX_UNCLOSED_LABELS;
        d = d.note(format!("and {more} more unclosed delimiters after these"));
    }
    Some(d)
}

pub(crate) struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    diags: Vec<Diag>,
    depth: u32,
    /// The file has unclosed delimiters, already reported: reaching its end is not
    /// reported again.
    eof_reported: bool,
    /// The current item was cut off (its block never closed); nothing more is
    /// reported until the item loop resynchronises.
    abandoned: bool,
    /// A path's segments while it is parsed (paths do not nest), then copied into a
    /// slice of the exact length: growing and shrinking a fresh `Vec` per path was a
    /// tenth of all the work of a `check`, in the allocator.
    segments: Vec<Ident>,
}

fn is_item_start(k: &TokenKind) -> bool {
    matches!(
        k,
        TokenKind::Fn
            | TokenKind::Struct
            | TokenKind::Const
            | TokenKind::Type
            | TokenKind::Use
            | TokenKind::Pub
    )
}

impl Parser {
    fn peek(&self) -> &TokenKind {
        &self.tokens[self.pos].kind
    }

    fn peek_at(&self, n: usize) -> &TokenKind {
        let i = (self.pos + n).min(self.tokens.len() - 1);
        &self.tokens[i].kind
    }

    fn span(&self) -> Span {
        self.tokens[self.pos].span
    }

    fn prev_span(&self) -> Span {
        self.tokens[self.pos.saturating_sub(1)].span
    }

    fn bump(&mut self) -> Token {
        let t = self.tokens[self.pos].clone();
        if self.pos + 1 < self.tokens.len() {
            self.pos += 1;
        }
        t
    }

    fn eat(&mut self, k: &TokenKind) -> bool {
        if self.peek() == k {
            self.bump();
            true
        } else {
            false
        }
    }

    /// Reports "expected X, found Y" at the current token. Tokens the lexer already
    /// diagnosed, an end of file already reported as unclosed delimiters, and anything
    /// in an abandoned item are not reported again.
    fn unexpected<T>(&mut self, expected: &str) -> PResult<T> {
        let silent = match self.peek() {
            TokenKind::Error => true,
            TokenKind::Eof => self.eof_reported || self.abandoned,
            _ => self.abandoned,
        };
        if !silent {
            let found = self.peek().describe();
            let d = Diag::plain(format!("expected {expected}, found {found}"))
                .at(self.span(), format!("expected {expected}"));
            self.diags.push(d);
        }
        Err(Reported)
    }

    fn expect(&mut self, k: TokenKind) -> PResult<Span> {
        if self.peek() == &k {
            Ok(self.bump().span)
        } else {
            self.unexpected(&k.describe())
        }
    }

    fn ident(&mut self) -> PResult<Ident> {
        if let TokenKind::Ident(name) = self.peek() {
            let name = Arc::clone(name);
            let span = self.bump().span;
            Ok(Ident { name, span })
        } else {
            self.unexpected("identifier")
        }
    }

    /// Enters one level of recursion, or reports that the input nests too deeply.
    fn enter(&mut self) -> PResult<()> {
        if self.depth >= MAX_RECURSION {
            let d = Diag::plain("expression is too deeply nested").at(
                self.span(),
                format!("nesting exceeds the limit of {MAX_RECURSION}"),
            );
            self.diags.push(d);
            return Err(Reported);
        }
        self.depth += 1;
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }
}
