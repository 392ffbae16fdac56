//! Blocks and statements.
//!
//! A broken statement is skipped to its `;` or to the `}` of its block and stands in
//! the block as an error expression, so the block's type is unknown rather than `()`.
//! A block that never closes (the end of the file, or an item keyword in a file with
//! unclosed delimiters) keeps what it read and marks the parser `abandoned`, so the
//! blocks and expressions around it end quietly too.

use super::{is_item_start, PResult, Parser, Reported};
use crate::ast::*;
use crate::lexer::TokenKind;
use crate::source::Span;

/// Where skipping a broken statement stopped.
#[derive(PartialEq, Eq)]
enum Resync {
    /// After its `;`, or at the `}` of its block: the block goes on.
    Resumed,
    /// At the end of the file or at an item keyword: the block never closes.
    CutOff,
}

impl Parser {
    pub(super) fn block(&mut self) -> PResult<Block> {
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
            if self.abandoned {
                return Ok(self.cut_off_block(start, stmts, tail));
            }
            match self.peek() {
                TokenKind::RBrace => break,
                TokenKind::Eof => {
                    let _ = self.unexpected::<()>("`}`");
                    self.abandoned = true;
                    continue;
                }
                // With unclosed delimiters, an item keyword means this block is one.
                k if self.eof_reported && is_item_start(k) && *k != TokenKind::Const => {
                    self.abandoned = true;
                    continue;
                }
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
                    stmts.push(Stmt::Expr(Expr::error(self.tokens[before].span)));
                    if !self.abandoned && self.skip_stmt(before) == Resync::CutOff {
                        self.abandoned = true;
                    }
                }
            }
        }
        let end = self.expect(TokenKind::RBrace)?;
        Ok(Block {
            stmts: stmts.into(),
            tail: tail.map(Box::new),
            span: start.to(end),
        })
    }

    /// What a block that never closed read: its value is unknown.
    fn cut_off_block(&self, start: Span, mut stmts: Vec<Stmt>, tail: Option<Expr>) -> Block {
        stmts.extend(tail.map(Stmt::Expr));
        let span = start.to(self.prev_span());
        stmts.push(Stmt::Expr(Expr::error(span)));
        Block {
            stmts: stmts.into(),
            tail: None,
            span,
        }
    }

    /// Skips past the next `;` or up to the `}` that closes the current block.
    fn skip_stmt(&mut self, start: usize) -> Resync {
        if self.pos == start && *self.peek() != TokenKind::RBrace {
            self.bump();
        }
        let mut depth = 0i64;
        loop {
            match self.peek() {
                TokenKind::Eof => return Resync::CutOff,
                TokenKind::Semi if depth == 0 => {
                    self.bump();
                    return Resync::Resumed;
                }
                TokenKind::RBrace if depth == 0 => return Resync::Resumed,
                TokenKind::LBrace => depth += 1,
                TokenKind::RBrace => depth -= 1,
                // An item keyword at statement level: the block was never closed.
                k if depth == 0 && is_item_start(k) && *k != TokenKind::Const => {
                    return Resync::CutOff
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
                    if !self.abandoned && self.skip_stmt(start) == Resync::CutOff {
                        self.abandoned = true;
                    }
                    (None, Expr::error(name.span))
                }
            };
            let stmt = Stmt::Let(Box::new(LetStmt {
                name,
                mutable,
                ty,
                init,
            }));
            return Ok((stmt, true));
        }
        let e = self.expr()?;
        let block_like = matches!(
            e.kind,
            ExprKind::If(..) | ExprKind::While(..) | ExprKind::Block(_)
        );
        if self.eat(&TokenKind::Semi) {
            Ok((Stmt::Expr(e), true))
        } else if *self.peek() == TokenKind::RBrace || block_like || self.abandoned {
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
