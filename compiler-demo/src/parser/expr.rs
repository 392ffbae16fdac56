//! Expressions: precedence climbing for operators, then unary, postfix and primary
//! forms. Every node is built through `mk`, which enforces the tree depth limit.

use super::{PResult, Parser, Reported, MAX_EXPR_DEPTH};
use crate::ast::*;
use crate::diagnostics::Diag;
use crate::lexer::TokenKind;
use crate::source::Span;

impl Parser {
    /// Builds an expression node, enforcing the tree depth limit.
    fn mk(&mut self, kind: ExprKind, span: Span, children: &[u32]) -> PResult<Expr> {
        let depth = 1 + children.iter().copied().max().unwrap_or(0);
        if depth > MAX_EXPR_DEPTH {
            let d = Diag::plain("expression is too deeply nested").at(
                span,
                format!("nesting exceeds the limit of {MAX_EXPR_DEPTH}"),
            );
            self.diags.push(d);
            return Err(Reported);
        }
        Ok(Expr { kind, span, depth })
    }

    pub(crate) fn expr(&mut self) -> PResult<Expr> {
        self.enter()?;
        let r = self.expr_with(false);
        self.leave();
        r
    }

    /// `no_struct` forbids struct literals at the top level, as in `if` conditions.
    fn expr_with(&mut self, no_struct: bool) -> PResult<Expr> {
        if *self.peek() == TokenKind::Return {
            let start = self.bump().span;
            if matches!(
                self.peek(),
                TokenKind::Semi | TokenKind::RBrace | TokenKind::Eof
            ) {
                return self.mk(ExprKind::Return(None), start, &[]);
            }
            let value = self.nested(no_struct)?;
            let (span, d) = (start.to(value.span), value.depth);
            return self.mk(ExprKind::Return(Some(Box::new(value))), span, &[d]);
        }
        let lhs = self.binary(0, no_struct)?;
        if self.eat(&TokenKind::Eq) {
            let rhs = self.nested(no_struct)?;
            let (span, ds) = (lhs.span.to(rhs.span), [lhs.depth, rhs.depth]);
            return self.mk(ExprKind::Assign(Box::new(lhs), Box::new(rhs)), span, &ds);
        }
        Ok(lhs)
    }

    fn binop(&self) -> Option<(BinOp, u8)> {
        Some(match self.peek() {
            TokenKind::OrOr => (BinOp::Or, 1),
            TokenKind::AndAnd => (BinOp::And, 2),
            TokenKind::EqEq => (BinOp::Eq, 3),
            TokenKind::NotEq => (BinOp::Ne, 3),
            TokenKind::Lt => (BinOp::Lt, 3),
            TokenKind::Le => (BinOp::Le, 3),
            TokenKind::Gt => (BinOp::Gt, 3),
            TokenKind::Ge => (BinOp::Ge, 3),
            TokenKind::Plus => (BinOp::Add, 4),
            TokenKind::Minus => (BinOp::Sub, 4),
            TokenKind::Star => (BinOp::Mul, 5),
            TokenKind::Slash => (BinOp::Div, 5),
            TokenKind::Percent => (BinOp::Rem, 5),
            _ => return None,
        })
    }

    /// Precedence climbing over left-associative operators; comparisons do not chain.
    fn binary(&mut self, min_prec: u8, no_struct: bool) -> PResult<Expr> {
        let mut lhs = self.unary(no_struct)?;
        while let Some((op, prec)) = self.binop() {
            if prec <= min_prec {
                break;
            }
            let op_span = self.bump().span;
            self.enter()?;
            let rhs = self.binary(prec, no_struct);
            self.leave();
            let rhs = rhs?;
            if prec == 3 && self.binop().is_some_and(|(_, p)| p == 3) {
                let d = Diag::plain("comparison operators cannot be chained")
                    .at(self.span(), "second comparison here")
                    .with_secondary(op_span, "first comparison here")
                    .help("split the comparison with `&&`");
                self.diags.push(d);
                return Err(Reported);
            }
            let (span, ds) = (lhs.span.to(rhs.span), [lhs.depth, rhs.depth]);
            lhs = self.mk(
                ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)),
                span,
                &ds,
            )?;
        }
        Ok(lhs)
    }

    fn unary(&mut self, no_struct: bool) -> PResult<Expr> {
        let op = match self.peek() {
            TokenKind::Minus => UnOp::Neg,
            TokenKind::Bang => UnOp::Not,
            _ => return self.postfix(no_struct),
        };
        let start = self.bump().span;
        self.enter()?;
        let operand = self.unary(no_struct);
        self.leave();
        let operand = operand?;
        let (span, d) = (start.to(operand.span), operand.depth);
        self.mk(ExprKind::Unary(op, Box::new(operand)), span, &[d])
    }

    fn postfix(&mut self, no_struct: bool) -> PResult<Expr> {
        let mut e = self.primary(no_struct)?;
        while *self.peek() == TokenKind::Dot {
            self.bump();
            let field = self.ident()?;
            let (span, d) = (e.span.to(field.span), e.depth);
            e = self.mk(ExprKind::Field(Box::new(e), field), span, &[d])?;
        }
        Ok(e)
    }

    fn primary(&mut self, no_struct: bool) -> PResult<Expr> {
        let start = self.span();
        match self.peek().clone() {
            TokenKind::Int(n) => {
                self.bump();
                self.mk(ExprKind::Int(n), start, &[])
            }
            TokenKind::True | TokenKind::False => {
                let b = *self.peek() == TokenKind::True;
                self.bump();
                self.mk(ExprKind::Bool(b), start, &[])
            }
            TokenKind::LParen => {
                self.bump();
                if *self.peek() == TokenKind::RParen {
                    let end = self.bump().span;
                    return self.mk(ExprKind::Unit, start.to(end), &[]);
                }
                let inner = self.expr()?;
                let end = self.expect(TokenKind::RParen)?;
                Ok(Expr {
                    span: start.to(end),
                    ..inner
                })
            }
            TokenKind::LBrace => {
                let b = self.block()?;
                let d = block_depth(&b);
                self.mk(
                    ExprKind::Block(Box::new(b)),
                    start.to(self.prev_span()),
                    &[d],
                )
            }
            TokenKind::If => self.if_expr(),
            TokenKind::While => {
                self.bump();
                let cond = self.expr_with_no_struct()?;
                let body = self.block()?;
                let ds = [cond.depth, block_depth(&body)];
                let span = start.to(self.prev_span());
                self.mk(ExprKind::While(Box::new(cond), Box::new(body)), span, &ds)
            }
            TokenKind::Ident(_) | TokenKind::Crate | TokenKind::SelfKw | TokenKind::Super => {
                self.path_expr(no_struct)
            }
            _ => self.unexpected("expression"),
        }
    }

    fn expr_with_no_struct(&mut self) -> PResult<Expr> {
        self.nested(true)
    }

    /// A sub-expression one recursion level down.
    fn nested(&mut self, no_struct: bool) -> PResult<Expr> {
        self.enter()?;
        let r = self.expr_with(no_struct);
        self.leave();
        r
    }

    /// An `if` with its whole `else if` chain, parsed in a loop: each arm costs one
    /// level of the expression tree's depth for its own contents, not for its
    /// position in the chain.
    fn if_expr(&mut self) -> PResult<Expr> {
        let start = self.expect(TokenKind::If)?;
        let mut arms = Vec::new();
        let mut els = None;
        loop {
            let cond = self.expr_with_no_struct()?;
            let then = self.block()?;
            arms.push(IfArm { cond, then });
            if !self.eat(&TokenKind::Else) {
                break;
            }
            if !self.eat(&TokenKind::If) {
                els = Some(Box::new(self.block()?));
                break;
            }
        }
        let ds: Vec<u32> = arms
            .iter()
            .flat_map(|a| [a.cond.depth, block_depth(&a.then)])
            .chain(els.as_deref().map(block_depth))
            .collect();
        let span = start.to(self.prev_span());
        self.mk(ExprKind::If(arms.into(), els), span, &ds)
    }

    fn path_expr(&mut self, no_struct: bool) -> PResult<Expr> {
        let (path, _) = self.path(false)?;
        let start = path.span;
        if *self.peek() == TokenKind::LParen {
            self.bump();
            let mut args = Vec::new();
            while *self.peek() != TokenKind::RParen {
                args.push(self.expr()?);
                if !self.eat(&TokenKind::Comma) {
                    break;
                }
            }
            let end = self.expect(TokenKind::RParen)?;
            let ds: Vec<u32> = args.iter().map(|a| a.depth).collect();
            return self.mk(
                ExprKind::Call(Box::new(path), args.into()),
                start.to(end),
                &ds,
            );
        }
        let struct_start = *self.peek() == TokenKind::LBrace
            && matches!(
                (self.peek_at(1), self.peek_at(2)),
                (TokenKind::RBrace, _) | (TokenKind::Ident(_), TokenKind::Colon)
            );
        if struct_start && !no_struct {
            self.bump();
            let mut fields = Vec::new();
            while *self.peek() != TokenKind::RBrace {
                let name = self.ident()?;
                self.expect(TokenKind::Colon)?;
                let value = self.expr()?;
                fields.push((name, value));
                if !self.eat(&TokenKind::Comma) {
                    break;
                }
            }
            let end = self.expect(TokenKind::RBrace)?;
            let ds: Vec<u32> = fields.iter().map(|(_, e)| e.depth).collect();
            return self.mk(
                ExprKind::StructLit(Box::new(path), fields.into()),
                start.to(end),
                &ds,
            );
        }
        self.mk(ExprKind::Path(path), start, &[])
    }
}

/// Depth of a block: one more than its deepest statement or tail.
fn block_depth(b: &Block) -> u32 {
    let stmts = b.stmts.iter().map(|s| match s {
        Stmt::Let(l) => l.init.depth,
        Stmt::Expr(e) => e.depth,
    });
    1 + stmts
        .chain(b.tail.iter().map(|e| e.depth))
        .max()
        .unwrap_or(0)
}
