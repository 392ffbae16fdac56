//! Constant evaluation.
//!
//! A constant's initializer may use literals, other constants and operators. Every
//! operand is resolved and type-checked; evaluation then follows short-circuiting, with
//! checked arithmetic: overflow and division by zero are errors at the operator, unless
//! they sit on the side of `&&` or `||` that is never evaluated. A constant that uses
//! itself on an evaluated path, directly or through others, closes a query cycle that
//! the engine resolves and `recover` reports.

use crate::ast::{BinOp, Expr, ExprKind, ItemKind, UnOp};
use crate::bytecode::{checked_binop, Value};
use crate::diagnostics::Diag;
use crate::engine::{Cx, Cycle};
use crate::modtree::{DefKey, DefKind, ModId};
use crate::queries as q;
use crate::resolve::{describe_res, resolve_at, PathUse, Res};
use crate::types::{item_of, lower_type, Ty};

/// A constant's type and value (`None` when evaluation failed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConstValue {
    pub ty: Ty,
    pub value: Option<Value>,
    pub diags: Vec<Diag>,
    pub cycle: Option<Cycle>,
}

/// The declared type of a constant, without evaluating it; `{error}` when that type
/// is not one a constant may have (which its own `ConstEval` reports).
pub fn const_type(cx: &Cx<'_>, key: &DefKey) -> Ty {
    item_of(cx, key, |m, item| match &item.kind {
        ItemKind::Const(te, _) => match lower_type(cx, m, te, &mut Vec::new()) {
            ty @ (Ty::I64 | Ty::Bool) => ty,
            _ => Ty::Error,
        },
        _ => Ty::Error,
    })
    .unwrap_or(Ty::Error)
}

/// Body of `ConstEval`.
pub fn const_eval(cx: &Cx<'_>, key: &DefKey) -> ConstValue {
    let mut diags = Vec::new();
    let result = item_of(cx, key, |m, item| {
        let ItemKind::Const(te, init) = &item.kind else {
            return (Ty::Error, None);
        };
        let ty = lower_type(cx, m, te, &mut diags);
        if !matches!(ty, Ty::I64 | Ty::Bool | Ty::Error) {
            diags.push(
                Diag::error(
                    "E0010",
                    format!("constants must have type `i64` or `bool`, not `{ty}`"),
                )
                .at(te.span(), "unsupported constant type"),
            );
            return (Ty::Error, None);
        }
        let mut ev = ConstEvaluator {
            cx,
            m,
            diags: &mut diags,
        };
        let value = ev.eval(init, true).and_then(|c| {
            if c.ty.fits(&ty) {
                c.value
            } else {
                ev.diags.push(mismatch(&ty, &c.ty, init));
                None
            }
        });
        (ty, value)
    });
    let (ty, value) = result.unwrap_or((Ty::Error, None));
    ConstValue {
        ty,
        value,
        diags,
        cycle: None,
    }
}

fn mismatch(expected: &Ty, found: &Ty, e: &Expr) -> Diag {
    Diag::error("E0308", "mismatched types")
        .at(e.span, format!("expected `{expected}`, found `{found}`"))
}

struct ConstEvaluator<'a, 'c> {
    cx: &'a Cx<'c>,
    m: ModId,
    diags: &'a mut Vec<Diag>,
}

/// A checked sub-expression: its type, and its value when it was evaluated.
struct Checked {
    ty: Ty,
    /// `None` when the expression is not evaluated (the skipped side of `&&` or
    /// `||`) or its value depends on a constant that failed elsewhere.
    value: Option<Value>,
}

impl Checked {
    fn typed(ty: Ty) -> Option<Checked> {
        Some(Checked { ty, value: None })
    }
}

impl ConstEvaluator<'_, '_> {
    /// Checks `e` and, when `live`, evaluates it. Checking (name resolution and types)
    /// covers every operand; evaluation follows short-circuiting, so overflow or
    /// division by zero on a side that is never evaluated is not an error. `None`
    /// means an error was reported (here or elsewhere) and the type is unknown.
    fn eval(&mut self, e: &Expr, live: bool) -> Option<Checked> {
        match &e.kind {
            ExprKind::Int(n) => Some(Checked {
                ty: Ty::I64,
                value: live.then_some(Value::Int(*n)),
            }),
            ExprKind::Bool(b) => Some(Checked {
                ty: Ty::Bool,
                value: live.then_some(Value::Bool(*b)),
            }),
            ExprKind::Path(p) => self.constant(p, live),
            ExprKind::Unary(op, inner) => {
                let inner = self.eval(inner, live)?;
                let ok = match op {
                    UnOp::Neg => inner.ty == Ty::I64,
                    UnOp::Not => inner.ty == Ty::Bool,
                };
                if !ok {
                    let sym = if *op == UnOp::Neg { "-" } else { "!" };
                    self.diags.push(
                        Diag::error(
                            "E0600",
                            format!("cannot apply unary operator `{sym}` to type `{}`", inner.ty),
                        )
                        .at(e.span, format!("cannot apply unary operator `{sym}`")),
                    );
                    return None;
                }
                let value = match (op, inner.value) {
                    (_, None) => None,
                    (UnOp::Neg, Some(Value::Int(n))) => match n.checked_neg() {
                        Some(r) => Some(Value::Int(r)),
                        None => return self.fail(e, "attempt to negate with overflow"),
                    },
                    (UnOp::Not, Some(Value::Bool(b))) => Some(Value::Bool(!b)),
                    (_, Some(v)) => Some(v),
                };
                Some(Checked {
                    ty: inner.ty,
                    value,
                })
            }
            ExprKind::Binary(op, l, r) => {
                let lc = self.eval(l, live);
                let lv = lc.as_ref().and_then(|c| c.value.clone());
                // `false && _` and `true || _` do not evaluate their right-hand side.
                let short = match (op, &lv) {
                    (BinOp::And | BinOp::Or, Some(Value::Bool(b))) => (*op == BinOp::And) != *b,
                    _ => false,
                };
                let rc = self.eval(r, live && lv.is_some() && !short);
                let (lc, rc) = (lc?, rc?);
                if lc.ty != rc.ty || !crate::typeck::binop_accepts(*op, &lc.ty) {
                    self.diags
                        .push(crate::typeck::binop_error(*op, &lc.ty, &rc.ty, e.span));
                    return None;
                }
                let ty = crate::typeck::binop_result(*op, &lc.ty);
                let value = match (lv, rc.value) {
                    (Some(lv), _) if short => Some(lv),
                    (Some(lv), Some(rv)) => match checked_binop(*op, &lv, &rv) {
                        Ok(v) => Some(v),
                        Err(msg) => return self.fail(e, msg),
                    },
                    _ => None,
                };
                Some(Checked { ty, value })
            }
            ExprKind::Error => None,
            _ => {
                self.diags.push(
                    Diag::error("E0015", "unsupported expression in a constant")
                        .at(e.span, "not allowed in a constant")
                        .note("constants may use literals, other constants and operators"),
                );
                None
            }
        }
    }

    /// A path in an initializer: another constant. Only its type is needed to check
    /// it; its value is computed (by its own `ConstEval`) only when `live`.
    fn constant(&mut self, p: &crate::ast::Path, live: bool) -> Option<Checked> {
        let res = resolve_at(self.cx, self.m, p, PathUse::Value, self.diags);
        let tree = self.cx.get_ref::<q::ModuleTree>(&());
        let def = match res {
            Res::Err => return None,
            Res::Def(d) if tree.def(d).kind == DefKind::Const => tree.def(d),
            res => {
                let what = describe_res(tree, res);
                self.diags.push(
                    Diag::error("E0423", format!("expected value, found {what}"))
                        .at(p.span, "not a value"),
                );
                return None;
            }
        };
        if !live {
            return Checked::typed(const_type(self.cx, &def.key));
        }
        let c = self.cx.get_ref::<q::ConstEval>(&def.key.clone());
        Some(Checked {
            ty: c.ty.clone(),
            value: c.value.clone(),
        })
    }

    fn fail<T>(&mut self, e: &Expr, msg: &str) -> Option<T> {
        self.diags
            .push(Diag::error("E0080", "evaluation of constant value failed").at(e.span, msg));
        None
    }
}
