//! Constant evaluation.
//!
//! A constant's initializer may use literals, other constants and operators. It is
//! evaluated with checked arithmetic: overflow and division by zero are errors at the
//! operator. A constant that uses itself, directly or through others, closes a query
//! cycle that the engine resolves and `recover` reports.

use crate::ast::{BinOp, Expr, ExprKind, ItemKind, UnOp};
use crate::bytecode::{checked_binop, Value};
use crate::diagnostics::Diag;
use crate::engine::{Cx, Cycle};
use crate::modtree::{DefKey, DefKind, ModId};
use crate::queries as q;
use crate::resolve::{describe_res, resolve_at, PathUse, Res};
use crate::types::{item_of, lower_type, Ty};

/// A constant's type and value (`None` when evaluation failed).
#[derive(Clone, Debug)]
pub struct ConstValue {
    pub ty: Ty,
    pub value: Option<Value>,
    pub diags: Vec<Diag>,
    pub cycle: Option<Cycle>,
}

/// The declared type of a constant, without evaluating it.
pub fn const_type(cx: &Cx<'_>, key: &DefKey) -> Ty {
    item_of(cx, key, |m, item| match &item.kind {
        ItemKind::Const(te, _) => lower_type(cx, m, te, &mut Vec::new()),
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
        let value = ev.eval(init).and_then(|(vty, v)| {
            if vty.fits(&ty) {
                Some(v)
            } else {
                ev.diags.push(mismatch(&ty, &vty, init));
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

impl ConstEvaluator<'_, '_> {
    /// Evaluates `e`; `None` means an error was reported (or was reported elsewhere).
    fn eval(&mut self, e: &Expr) -> Option<(Ty, Value)> {
        match &e.kind {
            ExprKind::Int(n) => Some((Ty::I64, Value::Int(*n))),
            ExprKind::Bool(b) => Some((Ty::Bool, Value::Bool(*b))),
            ExprKind::Path(p) => match resolve_at(self.cx, self.m, p, PathUse::Value, self.diags) {
                Res::Err => None,
                Res::Def(d) => {
                    let tree = self.cx.get::<q::ModuleTree>(&());
                    let def = tree.def(d);
                    if def.kind != DefKind::Const {
                        let what = describe_res(&tree, Res::Def(d));
                        self.diags.push(
                            Diag::error("E0423", format!("expected value, found {what}"))
                                .at(p.span, "not a value"),
                        );
                        return None;
                    }
                    let c = self.cx.get::<q::ConstEval>(&def.key.clone());
                    Some((c.ty.clone(), c.value.clone()?))
                }
                res @ Res::Module(_) => {
                    let tree = self.cx.get::<q::ModuleTree>(&());
                    let what = describe_res(&tree, res);
                    self.diags.push(
                        Diag::error("E0423", format!("expected value, found {what}"))
                            .at(p.span, "not a value"),
                    );
                    None
                }
            },
            ExprKind::Unary(op, inner) => {
                let (ty, v) = self.eval(inner)?;
                match (op, &v) {
                    (UnOp::Neg, Value::Int(n)) => match n.checked_neg() {
                        Some(r) => Some((ty, Value::Int(r))),
                        None => self.fail(e, "attempt to negate with overflow"),
                    },
                    (UnOp::Not, Value::Bool(b)) => Some((ty, Value::Bool(!b))),
                    _ => {
                        let sym = if *op == UnOp::Neg { "-" } else { "!" };
                        self.diags.push(
                            Diag::error(
                                "E0600",
                                format!("cannot apply unary operator `{sym}` to type `{ty}`"),
                            )
                            .at(e.span, format!("cannot apply unary operator `{sym}`")),
                        );
                        None
                    }
                }
            }
            ExprKind::Binary(op, l, r) => {
                let (lt, lv) = self.eval(l)?;
                if let (BinOp::And | BinOp::Or, Value::Bool(b)) = (op, &lv) {
                    if (*op == BinOp::And) != *b {
                        return Some((Ty::Bool, lv));
                    }
                }
                let (rt, rv) = self.eval(r)?;
                if lt != rt || !crate::typeck::binop_accepts(*op, &lt) {
                    self.diags
                        .push(crate::typeck::binop_error(*op, &lt, &rt, e.span));
                    return None;
                }
                match checked_binop(*op, &lv, &rv) {
                    Ok(v) => Some((crate::typeck::binop_result(*op, &lt), v)),
                    Err(msg) => self.fail(e, msg),
                }
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

    fn fail<T>(&mut self, e: &Expr, msg: &str) -> Option<T> {
        self.diags
            .push(Diag::error("E0080", "evaluation of constant value failed").at(e.span, msg));
        None
    }
}
