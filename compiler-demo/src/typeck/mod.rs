//! Function signatures and type checking of bodies.
//!
//! Checking synthesizes a type for each expression and compares it with what the
//! context needs. A failed sub-expression has type `{error}`, which fits everywhere, so
//! one mistake is reported once and not again by every expression around it. The
//! result is typed IR for lowering, plus the diagnostics.

mod places;

use crate::ast::{
    BinOp, Block, Expr, ExprKind, Ident, IfArm, ItemKind, LetStmt, Path, PathRoot, Stmt, UnOp,
};
use crate::diagnostics::Diag;
use crate::engine::Cx;
use crate::modtree::{DefKey, DefKind, ModId, ModuleTree};
use crate::outline::def_name_span;
use crate::queries as q;
use crate::resolve::{describe_res, resolve_at, PathUse, Res};
use crate::source::Span;
use crate::tir::{TExpr, TExprKind, TStmt, TypedFn};
use crate::type_errors::{arg_count, CallArgs, Callee, LocalKind};
use crate::types::{item_of, lower_type, Ty};
use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;

/// A function's parameter and return types.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Signature {
    pub params: Vec<(Arc<str>, Ty)>,
    pub ret: Ty,
    pub diags: Vec<Diag>,
    /// A syntax error lost parameters: calls are not checked against `params`.
    pub incomplete: bool,
}

/// A checked function: typed IR when the body had no errors.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CheckedFn {
    pub typed: Option<TypedFn>,
    pub diags: Vec<Diag>,
}

/// Body of `FnSignature`.
pub fn fn_signature(cx: &Cx<'_>, key: &DefKey) -> Signature {
    let mut sig = Signature::default();
    item_of(cx, key, |m, item| {
        let ItemKind::Fn(decl) = &item.kind else {
            return;
        };
        sig.incomplete = item.incomplete;
        let mut seen: HashMap<&str, Span> = HashMap::default();
        for p in &decl.params {
            let ty = lower_type(cx, m, &p.ty, &mut sig.diags);
            if let Some(&prev) = seen.get(&*p.name.name) {
                sig.diags.push(
                    Diag::error(
                        "E0415",
                        format!(
                            "identifier `{}` is bound more than once in this parameter list",
                            p.name.name
                        ),
                    )
                    .at(p.name.span, "used as parameter more than once")
                    .with_secondary(prev, "first bound here"),
                );
            }
            seen.insert(&p.name.name, p.name.span);
            sig.params.push((p.name.name.clone(), ty));
        }
        sig.ret = match &decl.ret {
            Some(te) => lower_type(cx, m, te, &mut sig.diags),
            None => Ty::Unit,
        };
    });
    sig
}

/// Whether `op` applies to operands of type `ty`.
pub fn binop_accepts(op: BinOp, ty: &Ty) -> bool {
    match op {
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem => *ty == Ty::I64,
        BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => *ty == Ty::I64,
        BinOp::Eq | BinOp::Ne => matches!(ty, Ty::I64 | Ty::Bool | Ty::Unit),
        BinOp::And | BinOp::Or => *ty == Ty::Bool,
    }
}

/// The result type of `op` on operands of type `ty`.
pub fn binop_result(op: BinOp, ty: &Ty) -> Ty {
    match op {
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem => ty.clone(),
        _ => Ty::Bool,
    }
}

pub fn binop_error(op: BinOp, l: &Ty, r: &Ty, span: Span) -> Diag {
    let sym = op.symbol();
    Diag::error(
        "E0369",
        format!("binary operation `{sym}` cannot be applied to `{l}` and `{r}`"),
    )
    .at(
        span,
        format!("`{sym}` needs operands of a matching supported type"),
    )
}

fn mismatch(expected: &Ty, found: &Ty, span: Span) -> Diag {
    Diag::error("E0308", "mismatched types")
        .at(span, format!("expected `{expected}`, found `{found}`"))
}

/// Body of `TypeCheck`.
pub fn type_check(cx: &Cx<'_>, key: &DefKey) -> CheckedFn {
    let sig = cx.get_ref::<q::FnSignature>(key);
    let tree = cx.get_ref::<q::ModuleTree>(&());
    let emit = cx.try_get::<q::EmitCode>(&()).unwrap_or(false);
    let checked = item_of(cx, key, |m, item| {
        let ItemKind::Fn(decl) = &item.kind else {
            return CheckedFn::default();
        };
        let mut ck = Checker {
            cx,
            emit,
            tree,
            m,
            diags: Vec::new(),
            scopes: vec![HashMap::default()],
            locals: 0,
            ret: sig.ret.clone(),
        };
        for ((_, ty), param) in sig.params.iter().zip(&decl.params) {
            ck.declare(&param.name, ty.clone(), LocalKind::Param);
        }
        let body = ck.block(&decl.body);
        if !body.ty.fits(&sig.ret) {
            let d = match (&decl.body.tail, &decl.ret) {
                (Some(tail), _) => mismatch(&sig.ret, &body.ty, tail.span),
                (None, Some(ret)) => Diag::error("E0308", "mismatched types")
                    .at(ret.span(), format!("expected `{}`, found `()`", sig.ret))
                    .note("the body has no tail expression or `return`, so it returns `()`"),
                (None, None) => mismatch(&sig.ret, &body.ty, decl.body.span),
            };
            ck.diags.push(d);
        }
        let typed = (emit && ck.diags.is_empty()).then(|| TypedFn {
            body,
            params: sig.params.len() as u32,
            locals: ck.locals,
        });
        CheckedFn {
            typed,
            diags: ck.diags,
        }
    });
    checked.unwrap_or_default()
}

struct Local {
    slot: u32,
    ty: Ty,
    kind: LocalKind,
    /// Where the name is bound.
    decl: Span,
}

struct Checker<'a, 'c> {
    cx: &'a Cx<'c>,
    /// Whether the typed IR is kept (see [`Checker::node`]).
    emit: bool,
    tree: &'a ModuleTree,
    m: ModId,
    diags: Vec<Diag>,
    scopes: Vec<HashMap<Arc<str>, Local>>,
    locals: u32,
    ret: Ty,
}

fn texpr(kind: TExprKind, ty: Ty, span: Span) -> TExpr {
    TExpr { kind, ty, span }
}

fn error(span: Span) -> TExpr {
    texpr(TExprKind::Error, Ty::Error, span)
}

impl Checker<'_, '_> {
    /// A node of the typed IR with children, or [`TExprKind::Elided`] when the IR is
    /// not kept: its children are then dropped, never boxed (most of what checking
    /// allocated).
    fn node(&self, kind: impl FnOnce() -> TExprKind, ty: Ty, span: Span) -> TExpr {
        let kind = if self.emit { kind() } else { TExprKind::Elided };
        texpr(kind, ty, span)
    }

    fn declare(&mut self, name: &Ident, ty: Ty, kind: LocalKind) -> u32 {
        let slot = self.locals;
        self.locals += 1;
        if let Some(scope) = self.scopes.last_mut() {
            let local = Local {
                slot,
                ty,
                kind,
                decl: name.span,
            };
            scope.insert(name.name.clone(), local);
        }
        slot
    }

    fn local(&self, path: &Path) -> Option<&Local> {
        if path.root != PathRoot::Local || path.segments.len() != 1 {
            return None;
        }
        let name = &path.segments[0].name;
        self.scopes.iter().rev().find_map(|s| s.get(name))
    }

    fn expect(&mut self, e: &TExpr, expected: &Ty) {
        if !e.ty.fits(expected) {
            self.diags.push(mismatch(expected, &e.ty, e.span));
        }
    }

    fn block(&mut self, b: &Block) -> TExpr {
        self.scopes.push(HashMap::default());
        let mut stmts = Vec::new();
        let mut diverges = false;
        // A statement failed to parse or check: the block's value is unknown.
        let mut broken = false;
        for s in &b.stmts {
            match s {
                Stmt::Let(l) => {
                    let LetStmt {
                        name,
                        mutable,
                        ty,
                        init,
                    } = &**l;
                    let init = self.expr(init);
                    let ty = match ty {
                        Some(te) => {
                            let ty = lower_type(self.cx, self.m, te, &mut self.diags);
                            if !init.ty.fits(&ty) {
                                self.diags.push(
                                    mismatch(&ty, &init.ty, init.span)
                                        .with_secondary(te.span(), "expected due to this"),
                                );
                            }
                            ty
                        }
                        None => init.ty.clone(),
                    };
                    diverges |= init.ty == Ty::Never;
                    broken |= matches!(init.kind, TExprKind::Error);
                    let kind = LocalKind::Let { mutable: *mutable };
                    let slot = self.declare(name, ty, kind);
                    if self.emit {
                        stmts.push(TStmt::Let(slot, init));
                    }
                }
                Stmt::Expr(e) => {
                    let e = self.expr(e);
                    diverges |= e.ty == Ty::Never;
                    broken |= matches!(e.kind, TExprKind::Error);
                    if self.emit {
                        stmts.push(TStmt::Expr(e));
                    }
                }
            }
        }
        let tail = b.tail.as_ref().map(|t| self.expr(t));
        self.scopes.pop();
        let ty = match &tail {
            Some(t) if !diverges => t.ty.clone(),
            _ if diverges => Ty::Never,
            None if broken => Ty::Error,
            _ => Ty::Unit,
        };
        self.node(
            || TExprKind::Block(stmts.into(), tail.map(Box::new)),
            ty,
            b.span,
        )
    }

    fn expr(&mut self, e: &Expr) -> TExpr {
        let span = e.span;
        match &e.kind {
            ExprKind::Int(n) => texpr(TExprKind::Int(*n), Ty::I64, span),
            ExprKind::Bool(b) => texpr(TExprKind::Bool(*b), Ty::Bool, span),
            ExprKind::Unit => texpr(TExprKind::Unit, Ty::Unit, span),
            ExprKind::Error => error(span),
            ExprKind::Path(p) => self.path_expr(p),
            ExprKind::Call(p, args) => self.call(p, args, span),
            ExprKind::Field(base, field) => {
                let base = self.expr(base);
                match self.field_index(&base.ty, &field.name, field.span) {
                    Some((idx, ty)) => {
                        self.node(|| TExprKind::Field(Box::new(base), idx), ty, span)
                    }
                    None => error(span),
                }
            }
            ExprKind::StructLit(p, fields) => self.struct_lit(p, fields, span),
            ExprKind::Unary(op, inner) => {
                let inner = self.expr(inner);
                let ok = match op {
                    UnOp::Neg => inner.ty == Ty::I64,
                    UnOp::Not => inner.ty == Ty::Bool,
                };
                if !ok && !matches!(inner.ty, Ty::Error | Ty::Never) {
                    let sym = if *op == UnOp::Neg { "-" } else { "!" };
                    self.diags.push(
                        Diag::error(
                            "E0600",
                            format!("cannot apply unary operator `{sym}` to type `{}`", inner.ty),
                        )
                        .at(span, format!("cannot apply unary operator `{sym}`")),
                    );
                    return error(span);
                }
                let ty = inner.ty.clone();
                self.node(|| TExprKind::Unary(*op, Box::new(inner)), ty, span)
            }
            ExprKind::Binary(op, l, r) => {
                let (l, r) = (self.expr(l), self.expr(r));
                if matches!(l.ty, Ty::Error) || matches!(r.ty, Ty::Error) {
                    return error(span);
                }
                if l.ty != r.ty || !binop_accepts(*op, &l.ty) {
                    self.diags.push(binop_error(*op, &l.ty, &r.ty, span));
                    return error(span);
                }
                let ty = binop_result(*op, &l.ty);
                self.node(
                    || TExprKind::Binary(*op, Box::new(l), Box::new(r)),
                    ty,
                    span,
                )
            }
            ExprKind::If(arms, els) => self.if_chain(arms, els.as_deref(), span),
            ExprKind::While(cond, body) => {
                let cond = self.expr(cond);
                self.expect(&cond, &Ty::Bool);
                let body = self.block(body);
                self.expect(&body, &Ty::Unit);
                self.node(
                    || TExprKind::While(Box::new(cond), Box::new(body)),
                    Ty::Unit,
                    span,
                )
            }
            ExprKind::Block(b) => self.block(b),
            ExprKind::Return(value) => {
                let value = value.as_ref().map(|v| self.expr(v));
                let found = value.as_ref().map_or(Ty::Unit, |v| v.ty.clone());
                if !found.fits(&self.ret) {
                    let at = value.as_ref().map_or(span, |v| v.span);
                    let ret = self.ret.clone();
                    self.diags.push(mismatch(&ret, &found, at));
                }
                self.node(|| TExprKind::Return(value.map(Box::new)), Ty::Never, span)
            }
            ExprKind::Assign(place, value) => self.assign(place, value, span),
        }
    }

    /// An `if` chain. With an `else`, its type is that of the first branch that does
    /// not diverge, and every other branch must fit it; mismatches point at the
    /// branches' values (their tail expressions). Without an `else`, it is `()`.
    fn if_chain(&mut self, arms: &[IfArm], els: Option<&Block>, span: Span) -> TExpr {
        let mut typed = Vec::with_capacity(if self.emit { arms.len() } else { 0 });
        let mut branches = Vec::with_capacity(arms.len() + 1);
        for arm in arms {
            let cond = self.expr(&arm.cond);
            self.expect(&cond, &Ty::Bool);
            let then = self.block(&arm.then);
            branches.push((then.ty.clone(), arm.then.value_span(), arm.then.span));
            if self.emit {
                typed.push((cond, then));
            }
        }
        let els = els.map(|b| {
            let e = self.block(b);
            branches.push((e.ty.clone(), b.value_span(), b.span));
            e
        });
        let ty = if els.is_none() {
            let not_unit = branches.iter().find(|(ty, ..)| !ty.fits(&Ty::Unit));
            if let Some((ty, _, block)) = not_unit {
                self.diags.push(
                    Diag::error("E0317", "`if` may be missing an `else` clause")
                        .at(*block, format!("expected `()`, found `{ty}`")),
                );
            }
            Ty::Unit
        } else {
            // The first branch with a value decides the type.
            let mut expected: Option<(Ty, Span)> = None;
            let mut failed = false;
            for (ty, value, _) in branches {
                match &expected {
                    _ if ty == Ty::Never => {}
                    None => expected = Some((ty, value)),
                    Some((want, _)) if ty.fits(want) => {}
                    Some((want, at)) => {
                        self.diags.push(
                            Diag::error("E0308", "`if` and `else` have incompatible types")
                                .at(value, format!("expected `{want}`, found `{ty}`"))
                                .with_secondary(*at, "expected because of this"),
                        );
                        failed = true;
                    }
                }
            }
            match expected {
                _ if failed => Ty::Error,
                Some((ty, _)) => ty,
                None => Ty::Never,
            }
        };
        self.node(|| TExprKind::If(typed.into(), els.map(Box::new)), ty, span)
    }

    fn path_expr(&mut self, p: &Path) -> TExpr {
        if let Some(local) = self.local(p) {
            return texpr(TExprKind::Local(local.slot), local.ty.clone(), p.span);
        }
        match resolve_at(self.cx, self.m, p, PathUse::Value, &mut self.diags) {
            Res::Err => error(p.span),
            Res::Def(d) if self.tree.def(d).kind == DefKind::Const => {
                let key = self.tree.def(d).key.clone();
                let ty = crate::consteval::const_type(self.cx, &key);
                texpr(TExprKind::Const(key), ty, p.span)
            }
            res => {
                let what = describe_res(self.tree, res);
                self.diags.push(
                    Diag::error("E0423", format!("expected value, found {what}"))
                        .at(p.span, "not a value"),
                );
                error(p.span)
            }
        }
    }

    fn call(&mut self, p: &Path, args: &[Expr], span: Span) -> TExpr {
        let args: Vec<TExpr> = args.iter().map(|a| self.expr(a)).collect();
        if let Some(local) = self.local(p) {
            let ty = local.ty.clone();
            self.diags.push(
                Diag::error("E0618", format!("expected function, found `{ty}`"))
                    .at(p.span, "not a function"),
            );
            return error(span);
        }
        let key = match resolve_at(self.cx, self.m, p, PathUse::Call, &mut self.diags) {
            Res::Err => return error(span),
            Res::Def(d) if self.tree.def(d).kind == DefKind::Fn => self.tree.def(d).key.clone(),
            res => {
                let what = describe_res(self.tree, res);
                self.diags.push(
                    Diag::error("E0618", format!("expected function, found {what}"))
                        .at(p.span, "not a function"),
                );
                return error(span);
            }
        };
        let sig = self.cx.get_ref::<q::FnSignature>(&key);
        if sig.incomplete {
            return texpr(TExprKind::Error, sig.ret.clone(), span);
        }
        if sig.params.len() != args.len() {
            let param_spans = item_of(self.cx, &key, |_, item| match &item.kind {
                ItemKind::Fn(decl) => decl
                    .params
                    .iter()
                    .map(|p| p.name.span.to(p.ty.span()))
                    .collect(),
                _ => Vec::new(),
            });
            let callee = Callee {
                name_span: def_name_span(self.cx, self.tree, key.id),
                params: &sig.params,
                param_spans: param_spans.unwrap_or_default(),
            };
            let typed: Vec<(Span, Ty)> = args.iter().map(|a| (a.span, a.ty.clone())).collect();
            let call = CallArgs {
                path: p.span,
                parens: Span {
                    start: p.span.end,
                    ..span
                },
                args: &typed,
            };
            self.diags.push(arg_count(&callee, &call));
            return error(span);
        }
        for (arg, (_, ty)) in args.iter().zip(&sig.params) {
            self.expect(arg, ty);
        }
        self.node(|| TExprKind::Call(key, args.into()), sig.ret.clone(), span)
    }
}
