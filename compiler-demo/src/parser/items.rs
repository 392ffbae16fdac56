//! Items, and the paths, types and lists inside them.
//!
//! An item whose name was read is kept even when the rest is broken: the parts that
//! could not be read become error placeholders (`TypeExpr::Error`, `Expr::error`,
//! `Block::error`), which later passes accept silently, and parameter or field lists
//! recover per element, so one missing `:` costs one diagnostic and the function
//! keeps its arity. When elements are lost, the item is marked `incomplete`.

use super::{is_item_start, PResult, Parser, Reported};
use crate::ast::*;
use crate::diagnostics::Diag;
use crate::lexer::TokenKind;
use crate::source::Span;
use std::sync::Arc;

/// An item as far as it could be read.
struct ParsedItem {
    /// `None` when not even the item's name was read.
    item: Option<Item>,
    /// Whether the item ended where it should; if not, the item loop skips to the
    /// next item keyword.
    complete: bool,
}

/// An item's kind-specific part, as far as it could be read.
struct Rest {
    kind: ItemKind,
    incomplete: bool,
    complete: bool,
}

impl Rest {
    fn whole(kind: ItemKind) -> Rest {
        Rest {
            kind,
            incomplete: false,
            complete: true,
        }
    }

    /// Read up to an error that the item loop must skip past.
    fn cut(kind: ItemKind) -> Rest {
        Rest {
            kind,
            incomplete: false,
            complete: false,
        }
    }
}

/// How a delimited list ended.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ListEnd {
    /// Closed, every element read (some perhaps with error placeholders).
    Closed,
    /// Closed, but an element was lost entirely.
    Lost,
    /// Never closed; the item loop must resynchronise.
    Broken,
}

impl Parser {
    pub(super) fn module(&mut self) -> SourceModule {
        let mut items = Vec::new();
        while *self.peek() != TokenKind::Eof {
            let start = self.pos;
            let parsed = self.item();
            items.extend(parsed.item.map(Arc::new));
            if !parsed.complete {
                self.skip_to_item(start);
            }
            self.abandoned = false;
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

    fn item(&mut self) -> ParsedItem {
        let start = self.span();
        let is_pub = self.eat(&TokenKind::Pub);
        let keyword = self.peek().clone();
        let nothing = ParsedItem {
            item: None,
            complete: false,
        };
        if !matches!(
            keyword,
            TokenKind::Fn | TokenKind::Struct | TokenKind::Const | TokenKind::Type | TokenKind::Use
        ) {
            let _ = self.unexpected::<()>("`fn`, `struct`, `const`, `type` or `use`");
            return nothing;
        }
        self.bump();
        let (name, rest) = if keyword == TokenKind::Use {
            match self.use_decl() {
                Ok(r) => r,
                Err(Reported) => return nothing,
            }
        } else {
            let Ok(name) = self.ident() else {
                return nothing;
            };
            let rest = match keyword {
                TokenKind::Fn => self.fn_rest(),
                TokenKind::Struct => self.struct_rest(),
                TokenKind::Const => self.const_rest(),
                _ => self.alias_rest(),
            };
            (name, rest)
        };
        ParsedItem {
            item: Some(Item {
                is_pub,
                name,
                kind: rest.kind,
                span: start.to(self.prev_span()),
                incomplete: rest.incomplete,
            }),
            complete: rest.complete,
        }
    }

    /// The rest of `fn NAME`: parameters, return type and body.
    fn fn_rest(&mut self) -> Rest {
        let here = self.span();
        if self.expect(TokenKind::LParen).is_err() {
            let decl = FnDecl {
                params: Box::default(),
                ret: Some(TypeExpr::Error(here)),
                body: Block::error(here),
            };
            return Rest {
                incomplete: true,
                ..Rest::cut(ItemKind::Fn(decl))
            };
        }
        let (params, end) = self.list(TokenKind::RParen, Parser::param);
        let incomplete = end != ListEnd::Closed;
        let mut decl = FnDecl {
            params: params.into(),
            ret: Some(TypeExpr::Error(here)),
            body: Block::error(here),
        };
        if end == ListEnd::Broken {
            return Rest {
                incomplete,
                ..Rest::cut(ItemKind::Fn(decl))
            };
        }
        decl.ret = if self.eat(&TokenKind::Arrow) {
            // A broken return type still lets the body be read if it follows.
            Some(
                self.type_expr()
                    .unwrap_or_else(|_| TypeExpr::Error(self.span())),
            )
        } else {
            None
        };
        let complete = match self.block() {
            Ok(body) => {
                decl.body = body;
                true
            }
            Err(Reported) => false,
        };
        Rest {
            kind: ItemKind::Fn(decl),
            incomplete,
            complete,
        }
    }

    /// One parameter: on an error after its name, the name is kept with an error type.
    fn param(&mut self) -> Result<Param, Option<Param>> {
        let name = self.ident().map_err(|_| None)?;
        match self.expect(TokenKind::Colon).and_then(|_| self.type_expr()) {
            Ok(ty) => Ok(Param { name, ty }),
            Err(Reported) => Err(Some(Param {
                name,
                ty: TypeExpr::Error(self.span()),
            })),
        }
    }

    /// The rest of `struct NAME`: its fields.
    fn struct_rest(&mut self) -> Rest {
        if self.expect(TokenKind::LBrace).is_err() {
            return Rest {
                incomplete: true,
                ..Rest::cut(ItemKind::Struct(Box::default()))
            };
        }
        let (fields, end) = self.list(TokenKind::RBrace, Parser::field);
        Rest {
            kind: ItemKind::Struct(fields.into()),
            incomplete: end != ListEnd::Closed,
            complete: end != ListEnd::Broken,
        }
    }

    /// One field: on an error after its name, the name is kept with an error type.
    fn field(&mut self) -> Result<Field, Option<Field>> {
        let name = self.ident().map_err(|_| None)?;
        match self.expect(TokenKind::Colon).and_then(|_| self.type_expr()) {
            Ok(ty) => Ok(Field { name, ty }),
            Err(Reported) => Err(Some(Field {
                name,
                ty: TypeExpr::Error(self.span()),
            })),
        }
    }

    /// The rest of `const NAME`: `: TYPE = EXPR;`.
    fn const_rest(&mut self) -> Rest {
        let here = self.span();
        let ty = self.expect(TokenKind::Colon).and_then(|_| self.type_expr());
        let Ok(ty) = ty else {
            return Rest::cut(ItemKind::Const(TypeExpr::Error(here), Expr::error(here)));
        };
        let init = self.expect(TokenKind::Eq).and_then(|_| self.expr());
        let Ok(init) = init else {
            return Rest::cut(ItemKind::Const(ty, Expr::error(here)));
        };
        self.end_item(ItemKind::Const(ty, init))
    }

    /// The rest of `type NAME`: `= TYPE;`.
    fn alias_rest(&mut self) -> Rest {
        let here = self.span();
        let ty = self.expect(TokenKind::Eq).and_then(|_| self.type_expr());
        match ty {
            Ok(ty) => self.end_item(ItemKind::Alias(ty)),
            Err(Reported) => Rest::cut(ItemKind::Alias(TypeExpr::Error(here))),
        }
    }

    /// The `;` that ends an item; without it the item is kept and the loop resyncs.
    fn end_item(&mut self, kind: ItemKind) -> Rest {
        match self.expect(TokenKind::Semi) {
            Ok(_) => Rest::whole(kind),
            Err(Reported) => Rest::cut(kind),
        }
    }

    /// `use PATH;`, `use PATH as NAME;` or `use PATH::*;`, after the `use`.
    fn use_decl(&mut self) -> PResult<(Ident, Rest)> {
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
        Ok((name, self.end_item(ItemKind::Use(UseDecl { path, kind }))))
    }

    /// `elem, elem, ... close` (after the opening delimiter), recovering per element: a
    /// broken element is skipped to the next `,` or `close`, keeping what `elem`
    /// salvaged of it.
    fn list<T>(
        &mut self,
        close: TokenKind,
        mut elem: impl FnMut(&mut Parser) -> Result<T, Option<T>>,
    ) -> (Vec<T>, ListEnd) {
        let mut out = Vec::new();
        let mut lost = false;
        while *self.peek() != close {
            match elem(self) {
                Ok(t) => out.push(t),
                Err(salvaged) => {
                    lost |= salvaged.is_none();
                    out.extend(salvaged);
                    if !self.skip_list_element(&close) {
                        return (out, ListEnd::Broken);
                    }
                }
            }
            if !self.eat(&TokenKind::Comma) {
                break;
            }
        }
        if self.expect(close).is_err() {
            return (out, ListEnd::Broken);
        }
        (out, if lost { ListEnd::Lost } else { ListEnd::Closed })
    }

    /// Skips to the `,` or `close` that ends a broken list element; false when the
    /// list itself ends first (the file, an item keyword, a stray closing delimiter).
    fn skip_list_element(&mut self, close: &TokenKind) -> bool {
        let mut depth = 0u32;
        loop {
            match self.peek() {
                TokenKind::Eof => return false,
                k if depth == 0 && (k == close || *k == TokenKind::Comma) => return true,
                k if depth == 0 && is_item_start(k) => return false,
                TokenKind::LParen | TokenKind::LBrace => depth += 1,
                TokenKind::RParen | TokenKind::RBrace => match depth.checked_sub(1) {
                    Some(d) => depth = d,
                    None => return false,
                },
                _ => {}
            }
            self.bump();
        }
    }

    /// Parses a path. With `allow_glob`, a trailing `::*` is accepted and its span
    /// returned.
    pub(super) fn path(&mut self, allow_glob: bool) -> PResult<(Path, Option<Span>)> {
        let mut segments = std::mem::take(&mut self.segments);
        segments.clear();
        let path = self.path_into(allow_glob, &mut segments);
        self.segments = segments;
        path
    }

    /// [`Parser::path`], collecting the segments in `segments` (empty).
    fn path_into(
        &mut self,
        allow_glob: bool,
        segments: &mut Vec<Ident>,
    ) -> PResult<(Path, Option<Span>)> {
        let start = self.span();
        let mut root = PathRoot::Local;
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
            // Exactly as long as the path: one allocation, no shrinking.
            segments: segments.drain(..).collect(),
            span: start.to(self.prev_span()),
        };
        Ok((path, glob))
    }

    pub(super) fn type_expr(&mut self) -> PResult<TypeExpr> {
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
}
