//! Lowering typed IR to bytecode, and linking functions into a program.
//!
//! Every expression leaves one value on the stack. Calls are emitted with the callee's
//! index in the program (`FunctionIndex`: functions in id order), so linking only
//! collects the functions: after an edit it does not copy every function again.

use crate::bytecode::{Function, Instr, Program, Value};
use crate::engine::Cx;
use crate::modtree::{DefId, DefKey, DefKind};
use crate::queries as q;
use crate::source::Span;
use crate::tir::{TExpr, TExprKind, TStmt};
use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;

struct Emitter<'a, 'c> {
    cx: &'a Cx<'c>,
    /// Each function's index in the program.
    index: &'a HashMap<DefId, u32>,
    /// A call named something that is not a function of the program.
    unlinked: bool,
    code: Vec<Instr>,
    spans: Vec<Span>,
}

impl Emitter<'_, '_> {
    fn emit(&mut self, ins: Instr, span: Span) -> usize {
        self.code.push(ins);
        self.spans.push(span);
        self.code.len() - 1
    }

    fn here(&self) -> u32 {
        self.code.len() as u32
    }

    fn patch(&mut self, at: usize, target: u32) {
        match &mut self.code[at] {
            Instr::Jump(t) | Instr::JumpIfFalse(t) => *t = target,
            _ => unreachable!("only jumps are patched"),
        }
    }

    fn expr(&mut self, e: &TExpr) {
        let span = e.span;
        match &e.kind {
            TExprKind::Int(n) => {
                self.emit(Instr::Push(Value::Int(*n)), span);
            }
            TExprKind::Bool(b) => {
                self.emit(Instr::Push(Value::Bool(*b)), span);
            }
            TExprKind::Elided => unreachable!("lowering reads IR kept for code generation"),
            TExprKind::Unit | TExprKind::Error => {
                self.emit(Instr::Push(Value::Unit), span);
            }
            TExprKind::Local(l) => {
                self.emit(Instr::Load(*l), span);
            }
            TExprKind::Const(key) => {
                let v = self
                    .cx
                    .get_ref::<q::ConstEval>(key)
                    .value
                    .clone()
                    .unwrap_or(Value::Unit);
                self.emit(Instr::Push(v), span);
            }
            TExprKind::Call(key, args) => {
                for a in args {
                    self.expr(a);
                }
                let target = self.index.get(&key.id).copied();
                self.unlinked |= target.is_none();
                self.emit(Instr::Call(target.unwrap_or(0), args.len() as u32), span);
            }
            TExprKind::Field(base, i) => {
                self.expr(base);
                self.emit(Instr::GetField(*i), span);
            }
            TExprKind::StructLit(inits) => {
                for (_, v) in inits {
                    self.expr(v);
                }
                let order: Box<[u32]> = inits.iter().map(|(i, _)| *i).collect();
                self.emit(Instr::MakeStruct(order), span);
            }
            TExprKind::Unary(op, inner) => {
                self.expr(inner);
                let ins = match op {
                    crate::ast::UnOp::Neg => Instr::Neg,
                    crate::ast::UnOp::Not => Instr::Not,
                };
                self.emit(ins, span);
            }
            TExprKind::Binary(op, l, r) => self.binary(*op, l, r, span),
            TExprKind::If(arms, els) => {
                let mut to_end = Vec::with_capacity(arms.len());
                for (cond, then) in arms {
                    self.expr(cond);
                    let to_next = self.emit(Instr::JumpIfFalse(0), span);
                    self.expr(then);
                    to_end.push(self.emit(Instr::Jump(0), span));
                    let next = self.here();
                    self.patch(to_next, next);
                }
                match els {
                    Some(els) => self.expr(els),
                    None => {
                        self.emit(Instr::Push(Value::Unit), span);
                    }
                }
                let end = self.here();
                for at in to_end {
                    self.patch(at, end);
                }
            }
            TExprKind::While(cond, body) => {
                let top = self.here();
                self.expr(cond);
                let exit = self.emit(Instr::JumpIfFalse(0), span);
                self.expr(body);
                self.emit(Instr::Pop, span);
                self.emit(Instr::Jump(top), span);
                let end = self.here();
                self.patch(exit, end);
                self.emit(Instr::Push(Value::Unit), span);
            }
            TExprKind::Block(stmts, tail) => {
                for s in stmts {
                    match s {
                        TStmt::Let(slot, init) => {
                            self.expr(init);
                            self.emit(Instr::Store(*slot), init.span);
                        }
                        TStmt::Expr(e) => {
                            self.expr(e);
                            self.emit(Instr::Pop, e.span);
                        }
                    }
                }
                match tail {
                    Some(t) => self.expr(t),
                    None => {
                        self.emit(Instr::Push(Value::Unit), span);
                    }
                }
            }
            TExprKind::Return(value) => {
                match value {
                    Some(v) => self.expr(v),
                    None => {
                        self.emit(Instr::Push(Value::Unit), span);
                    }
                }
                self.emit(Instr::Return, span);
                // Unreachable, but keeps "one value per expression" uniform.
                self.emit(Instr::Push(Value::Unit), span);
            }
            TExprKind::Assign(slot, path, value) => {
                self.expr(value);
                if path.is_empty() {
                    self.emit(Instr::Store(*slot), span);
                } else {
                    self.emit(Instr::StoreField(*slot, path.clone()), span);
                }
                self.emit(Instr::Push(Value::Unit), span);
            }
        }
    }

    fn binary(&mut self, op: crate::ast::BinOp, l: &TExpr, r: &TExpr, span: Span) {
        use crate::ast::BinOp;
        self.expr(l);
        match op {
            BinOp::And | BinOp::Or => {
                // a && b: if !a then false else b.   a || b: if !a then b else true.
                let to_rhs_or_short = self.emit(Instr::JumpIfFalse(0), span);
                if op == BinOp::And {
                    self.expr(r);
                    let to_end = self.emit(Instr::Jump(0), span);
                    let short = self.here();
                    self.patch(to_rhs_or_short, short);
                    self.emit(Instr::Push(Value::Bool(false)), span);
                    let end = self.here();
                    self.patch(to_end, end);
                } else {
                    self.emit(Instr::Push(Value::Bool(true)), span);
                    let to_end = self.emit(Instr::Jump(0), span);
                    let rhs = self.here();
                    self.patch(to_rhs_or_short, rhs);
                    self.expr(r);
                    let end = self.here();
                    self.patch(to_end, end);
                }
            }
            _ => {
                self.expr(r);
                self.emit(Instr::Binary(op), span);
            }
        }
    }
}

/// Body of `FunctionIndex`: each function's index in the program, in id order.
pub fn function_index(cx: &Cx<'_>) -> HashMap<DefId, u32> {
    let tree = cx.get_ref::<q::ModuleTree>(&());
    let fns = tree.defs.iter().filter(|d| d.kind == DefKind::Fn);
    fns.enumerate().map(|(i, d)| (d.key.id, i as u32)).collect()
}

/// Body of `Lower`: bytecode for one checked function; `None` if it did not check.
pub fn lower_fn(cx: &Cx<'_>, key: &DefKey) -> Option<Arc<Function>> {
    let checked = cx.get_ref::<q::TypeCheck>(key);
    let typed = checked.typed.as_ref()?;
    let index = cx.get_ref::<q::FunctionIndex>(&());
    let mut em = Emitter {
        cx,
        index,
        unlinked: false,
        code: Vec::new(),
        spans: Vec::new(),
    };
    em.expr(&typed.body);
    if em.unlinked {
        return None;
    }
    em.emit(Instr::Return, typed.body.span);
    let name = Arc::clone(&key.path);
    Some(Arc::new(Function {
        name,
        params: typed.params,
        locals: typed.locals,
        code: em.code.into(),
        spans: em.spans.into(),
    }))
}

/// Body of `LinkedProgram`: lowers every function in parallel and collects them.
/// `None` when the program has no `main` or a function failed to check.
pub fn link(cx: &Cx<'_>) -> Option<Arc<Program>> {
    let tree = cx.get_ref::<q::ModuleTree>(&());
    let fns: Vec<DefKey> = tree
        .defs
        .iter()
        .filter(|d| d.kind == DefKind::Fn)
        .map(|d| d.key.clone())
        .collect();
    let lowered = cx.par_map(&fns, |cx, key| cx.get::<q::Lower>(key));
    let functions = lowered.into_iter().collect::<Option<Vec<_>>>()?;
    let main = *cx.get_ref::<q::FunctionIndex>(&()).get(&tree.main_fn()?)?;
    Some(Arc::new(Program { functions, main }))
}
