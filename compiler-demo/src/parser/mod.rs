//! The parser: tokens to a syntax tree, with error recovery.
//!
//! Recovery is by resynchronisation: a parse function that meets something it cannot
//! use reports it once and returns `Err(Reported)`; the nearest statement loop skips to
//! the next `;` or closing `}`, and the item loop skips to the next item keyword. So one
//! mistake gives one diagnostic, not one per following token.
//!
//! Nesting is bounded twice: the recursion depth of the parser itself, and the depth of
//! every expression tree it builds (left-deep operator chains included). Past either
//! limit the parser reports "too deeply nested" instead of overflowing its stack or
//! handing later passes a tree they would overflow on.

mod expr;
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
    let mut p = Parser {
        tokens,
        pos: 0,
        diags: Vec::new(),
        depth: 0,
    };
    let module = p.module();
    diags.append(&mut p.diags);
    (module, diags)
}

pub(crate) struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    diags: Vec<Diag>,
    depth: u32,
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
    /// diagnosed are not reported again.
    fn unexpected<T>(&mut self, expected: &str) -> PResult<T> {
        if *self.peek() != TokenKind::Error {
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
            let name: Arc<str> = Arc::from(name.as_str());
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

    fn module(&mut self) -> SourceModule {
        let mut items = Vec::new();
        while *self.peek() != TokenKind::Eof {
            let start = self.pos;
            match self.item() {
                Ok(item) => items.push(item),
                Err(Reported) => self.skip_to_item(start),
            }
        }
        SourceModule { items }
    }

    /// Skips to the next token that can start an item at brace depth zero, always
    /// making progress.
    fn skip_to_item(&mut self, start: usize) {
        if self.pos == start {
            self.bump();
        }
        let mut depth = 0i64;
        loop {
            match self.peek() {
                TokenKind::Eof => return,
                k if depth <= 0 && is_item_start(k) => return,
                TokenKind::LBrace => depth += 1,
                TokenKind::RBrace => depth -= 1,
                _ => {}
            }
            self.bump();
        }
    }

    fn item(&mut self) -> PResult<Item> {
        let start = self.span();
        let is_pub = self.eat(&TokenKind::Pub);
        let (name, kind) = match self.peek() {
            TokenKind::Fn => {
                self.bump();
                let name = self.ident()?;
                (name, ItemKind::Fn(self.fn_rest()?))
            }
            TokenKind::Struct => {
                self.bump();
                let name = self.ident()?;
                (name, ItemKind::Struct(self.struct_fields()?))
            }
            TokenKind::Const => {
                self.bump();
                let name = self.ident()?;
                self.expect(TokenKind::Colon)?;
                let ty = self.type_expr()?;
                self.expect(TokenKind::Eq)?;
                let value = self.expr()?;
                self.expect(TokenKind::Semi)?;
                (name, ItemKind::Const(ty, value))
            }
            TokenKind::Type => {
                self.bump();
                let name = self.ident()?;
                self.expect(TokenKind::Eq)?;
                let ty = self.type_expr()?;
                self.expect(TokenKind::Semi)?;
                (name, ItemKind::Alias(ty))
            }
            TokenKind::Use => {
                self.bump();
                self.use_decl()?
            }
            _ => return self.unexpected("`fn`, `struct`, `const`, `type` or `use`"),
        };
        Ok(Item {
            is_pub,
            name,
            kind,
            span: start.to(self.prev_span()),
        })
    }

    fn fn_rest(&mut self) -> PResult<FnDecl> {
        self.expect(TokenKind::LParen)?;
        let mut params = Vec::new();
        while *self.peek() != TokenKind::RParen {
            let name = self.ident()?;
            self.expect(TokenKind::Colon)?;
            let ty = self.type_expr()?;
            params.push(Param { name, ty });
            if !self.eat(&TokenKind::Comma) {
                break;
            }
        }
        self.expect(TokenKind::RParen)?;
        let ret = if self.eat(&TokenKind::Arrow) {
            Some(self.type_expr()?)
        } else {
            None
        };
        let body = self.block()?;
        Ok(FnDecl { params, ret, body })
    }

    fn struct_fields(&mut self) -> PResult<Vec<Field>> {
        self.expect(TokenKind::LBrace)?;
        let mut fields = Vec::new();
        while *self.peek() != TokenKind::RBrace {
            let name = self.ident()?;
            self.expect(TokenKind::Colon)?;
            let ty = self.type_expr()?;
            fields.push(Field { name, ty });
            if !self.eat(&TokenKind::Comma) {
                break;
            }
        }
        self.expect(TokenKind::RBrace)?;
        Ok(fields)
    }

    fn use_decl(&mut self) -> PResult<(Ident, ItemKind)> {
        let (path, glob) = self.path(true)?;
        let (name, kind) = if let Some(star) = glob {
            let name = Ident {
                name: Arc::from("*"),
                span: star,
            };
            (name, UseKind::Glob)
        } else {
            let name = if self.eat(&TokenKind::As) {
                self.ident()?
            } else {
                match path.segments.last() {
                    Some(last) => last.clone(),
                    None => {
                        let d = Diag::error("E0429", "`self` imports are only allowed in groups")
                            .at(path.span, "import a named item instead");
                        self.diags.push(d);
                        return Err(Reported);
                    }
                }
            };
            (name.clone(), UseKind::Single(name))
        };
        self.expect(TokenKind::Semi)?;
        Ok((name, ItemKind::Use(UseDecl { path, kind })))
    }

    /// Parses a path. With `allow_glob`, a trailing `::*` is accepted and its span
    /// returned.
    fn path(&mut self, allow_glob: bool) -> PResult<(Path, Option<Span>)> {
        let start = self.span();
        let mut root = PathRoot::Local;
        let mut segments = Vec::new();
        match self.peek() {
            TokenKind::Crate => root = PathRoot::Crate,
            TokenKind::SelfKw => root = PathRoot::SelfMod,
            TokenKind::Super => root = PathRoot::Super(1),
            _ => segments.push(self.ident()?),
        }
        if root != PathRoot::Local {
            self.bump();
        }
        let mut glob = None;
        while *self.peek() == TokenKind::ColonColon {
            self.bump();
            match (self.peek(), root) {
                (TokenKind::Super, PathRoot::Super(n)) if segments.is_empty() => {
                    self.bump();
                    root = PathRoot::Super(n + 1);
                }
                (TokenKind::Star, _) if allow_glob => {
                    glob = Some(self.bump().span);
                    break;
                }
                _ => segments.push(self.ident()?),
            }
        }
        let path = Path {
            root,
            segments,
            span: start.to(self.prev_span()),
        };
        Ok((path, glob))
    }

    fn type_expr(&mut self) -> PResult<TypeExpr> {
        if *self.peek() == TokenKind::LParen {
            let start = self.bump().span;
            let end = self.expect(TokenKind::RParen)?;
            return Ok(TypeExpr::Unit(start.to(end)));
        }
        match self.peek() {
            TokenKind::Ident(_) | TokenKind::Crate | TokenKind::SelfKw | TokenKind::Super => {
                Ok(TypeExpr::Path(self.path(false)?.0))
            }
            _ => self.unexpected("type"),
        }
    }

    fn block(&mut self) -> PResult<Block> {
        self.enter()?;
        let r = self.block_inner();
        self.leave();
        r
    }

    fn block_inner(&mut self) -> PResult<Block> {
        let start = self.expect(TokenKind::LBrace)?;
        let mut stmts = Vec::new();
        let mut tail = None;
        loop {
            match self.peek() {
                TokenKind::RBrace => break,
                TokenKind::Eof => return self.unexpected("`}`"),
                TokenKind::Semi => {
                    self.bump();
                    continue;
                }
                _ => {}
            }
            if let Some(t) = tail.take() {
                stmts.push(Stmt::Expr(t));
            }
            let before = self.pos;
            match self.stmt() {
                Ok((stmt, true)) => stmts.push(stmt),
                Ok((Stmt::Expr(e), false)) => tail = Some(e),
                Ok((stmt, false)) => stmts.push(stmt),
                Err(Reported) => {
                    let span = self.tokens[before].span;
                    self.skip_stmt(before)?;
                    // Stands for the broken statement, so the block's type is unknown
                    // rather than `()`.
                    stmts.push(Stmt::Expr(Expr {
                        kind: ExprKind::Error,
                        span,
                        depth: 1,
                    }));
                }
            }
        }
        let end = self.expect(TokenKind::RBrace)?;
        Ok(Block {
            stmts,
            tail,
            span: start.to(end),
        })
    }

    /// Skips past the next `;` or up to the `}` that closes the current block. A `}` at
    /// item level means the block was never closed: give up on the item.
    fn skip_stmt(&mut self, start: usize) -> PResult<()> {
        if self.pos == start && *self.peek() != TokenKind::RBrace {
            self.bump();
        }
        let mut depth = 0i64;
        loop {
            match self.peek() {
                TokenKind::Eof => return Err(Reported),
                TokenKind::Semi if depth == 0 => {
                    self.bump();
                    return Ok(());
                }
                TokenKind::RBrace if depth == 0 => return Ok(()),
                TokenKind::LBrace => depth += 1,
                TokenKind::RBrace => depth -= 1,
                k if depth == 0 && is_item_start(k) && *k != TokenKind::Const => {
                    return Err(Reported)
                }
                _ => {}
            }
            self.bump();
        }
    }

    /// Parses a statement; the flag says whether it was terminated (so it cannot be the
    /// block's tail).
    fn stmt(&mut self) -> PResult<(Stmt, bool)> {
        if self.eat(&TokenKind::Let) {
            let mutable = self.eat(&TokenKind::Mut);
            let name = self.ident()?;
            let start = self.pos;
            let (ty, init) = match self.let_rest() {
                Ok(r) => r,
                Err(Reported) => {
                    // Keep the binding, with an erroneous value, so later uses of
                    // the name do not report "not found" as well.
                    self.skip_stmt(start)?;
                    let init = Expr {
                        kind: ExprKind::Error,
                        span: name.span,
                        depth: 1,
                    };
                    (None, init)
                }
            };
            let stmt = Stmt::Let {
                name,
                mutable,
                ty,
                init,
            };
            return Ok((stmt, true));
        }
        let e = self.expr()?;
        let block_like = matches!(
            e.kind,
            ExprKind::If(..) | ExprKind::While(..) | ExprKind::Block(_)
        );
        if self.eat(&TokenKind::Semi) {
            Ok((Stmt::Expr(e), true))
        } else if *self.peek() == TokenKind::RBrace || block_like {
            Ok((Stmt::Expr(e), false))
        } else {
            self.unexpected("`;` or `}`")
        }
    }

    /// The part of a `let` after the name, through the `;`.
    fn let_rest(&mut self) -> PResult<(Option<TypeExpr>, Expr)> {
        let ty = if self.eat(&TokenKind::Colon) {
            Some(self.type_expr()?)
        } else {
            None
        };
        self.expect(TokenKind::Eq)?;
        let init = self.expr()?;
        self.expect(TokenKind::Semi)?;
        Ok((ty, init))
    }
}
