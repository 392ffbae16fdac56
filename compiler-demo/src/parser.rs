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

struct Parser {
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
                Err(Reported) => self.skip_stmt(before)?,
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
            let ty = if self.eat(&TokenKind::Colon) {
                Some(self.type_expr()?)
            } else {
                None
            };
            self.expect(TokenKind::Eq)?;
            let init = self.expr()?;
            self.expect(TokenKind::Semi)?;
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
            let value = self.expr_with(no_struct)?;
            let (span, d) = (start.to(value.span), value.depth);
            return self.mk(ExprKind::Return(Some(Box::new(value))), span, &[d]);
        }
        let lhs = self.binary(0, no_struct)?;
        if self.eat(&TokenKind::Eq) {
            let rhs = self.expr_with(no_struct)?;
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
                    .note("split the comparison with `&&`");
                self.diags.push(d);
                return Err(Reported);
            }
            let (span, ds) = (lhs.span.to(rhs.span), [lhs.depth, rhs.depth]);
            lhs = self.mk(ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)), span, &ds)?;
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
                self.mk(ExprKind::Block(Box::new(b)), start.to(self.prev_span()), &[d])
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
        self.enter()?;
        let r = self.expr_with(true);
        self.leave();
        r
    }

    fn if_expr(&mut self) -> PResult<Expr> {
        let start = self.expect(TokenKind::If)?;
        let cond = self.expr_with_no_struct()?;
        let then = self.block()?;
        let els = if self.eat(&TokenKind::Else) {
            if *self.peek() == TokenKind::If {
                self.enter()?;
                let e = self.if_expr();
                self.leave();
                Some(Box::new(e?))
            } else {
                let b = self.block()?;
                let d = block_depth(&b);
                let span = b.span;
                Some(Box::new(self.mk(ExprKind::Block(Box::new(b)), span, &[d])?))
            }
        } else {
            None
        };
        let ds = [
            cond.depth,
            block_depth(&then),
            els.as_ref().map_or(0, |e| e.depth),
        ];
        let span = start.to(self.prev_span());
        self.mk(ExprKind::If(Box::new(cond), Box::new(then), els), span, &ds)
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
            return self.mk(ExprKind::Call(path, args), start.to(end), &ds);
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
            return self.mk(ExprKind::StructLit(path, fields), start.to(end), &ds);
        }
        self.mk(ExprKind::Path(path), start, &[])
    }
}

/// Depth of a block: one more than its deepest statement or tail.
fn block_depth(b: &Block) -> u32 {
    let stmts = b.stmts.iter().map(|s| match s {
        Stmt::Let { init, .. } => init.depth,
        Stmt::Expr(e) => e.depth,
    });
    1 + stmts
        .chain(b.tail.iter().map(|e| e.depth))
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (SourceModule, Vec<Diag>) {
        parse_file(FileId(0), text)
    }

    #[test]
    fn parses_every_item_kind() {
        let (m, d) = parse(
            "pub fn f(a: i64, b: bool) -> i64 { let mut x: i64 = a * 2 + 1; x = -x; \
             if b && !false { x } else { 0 } }\n\
             struct P { x: i64, y: Q }\nconst C: i64 = 1 + 2;\ntype T = crate::a::B;\n\
             use super::super::x as y;\nuse self::m::*;",
        );
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(m.items.len(), 6);
    }

    #[test]
    fn precedence_is_conventional() {
        let (m, _) = parse("const C: i64 = 1 + 2 * 3 - 4;");
        let ItemKind::Const(_, e) = &m.items[0].kind else {
            panic!("not a const")
        };
        let ExprKind::Binary(BinOp::Sub, lhs, _) = &e.kind else {
            panic!("top is not `-`: {e:?}")
        };
        assert!(matches!(lhs.kind, ExprKind::Binary(BinOp::Add, ..)));
    }

    #[test]
    fn one_mistake_gives_one_diagnostic() {
        let (m, d) = parse(
            "fn f() -> i64 { let x = 1 +; let y = 2; y }\nfn g() -> i64 { 3 }\nstruct S { a i64 }\nfn h() {}",
        );
        assert_eq!(d.len(), 2, "{d:?}");
        assert_eq!(m.items.len(), 3);
    }

    #[test]
    fn struct_literals_are_not_parsed_in_conditions() {
        let (_, d) = parse("fn f(x: i64) { if x { } while x { } let p = P { a: 1 }; }");
        assert!(d.is_empty(), "{d:?}");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!("const C: i64 = {}1{};", "(".repeat(100_000), ")".repeat(100_000));
        let (_, d) = parse(&deep);
        assert_eq!(d.len(), 1);
        let chain = format!("const C: i64 = 1{};", " + 1".repeat(100_000));
        let (_, d) = parse(&chain);
        assert_eq!(d.len(), 1);
        let unary = format!("const C: i64 = {}1;", "-".repeat(100_000));
        assert_eq!(parse(&unary).1.len(), 1);
    }

    #[test]
    fn chained_comparisons_are_rejected() {
        let (_, d) = parse("const C: bool = 1 < 2 < 3;");
        assert_eq!(d.len(), 1);
        assert!(d[0].message.contains("chained"));
    }
}
