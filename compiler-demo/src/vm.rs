//! The interpreter: runs a linked program's `main`.
//!
//! Frames live in a vector, not on the Rust stack, so deep recursion in the program is
//! a run-time error ("stack overflow") rather than a crash. Arithmetic is checked.

use crate::bytecode::{checked_binop, Instr, Program, Value};
use crate::source::Span;
use std::sync::Arc;

/// Deepest call nesting a program may reach.
pub const MAX_FRAMES: usize = 10_000;

/// A run-time failure and the source location of the instruction that failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuntimeError {
    pub message: String,
    pub span: Span,
}

struct Frame {
    func: usize,
    pc: usize,
    base: usize,
}

/// Runs `main` and returns its value.
pub fn run(program: &Program) -> Result<Value, RuntimeError> {
    let mut stack: Vec<Value> = Vec::new();
    let mut frames: Vec<Frame> = Vec::new();
    let enter = |stack: &mut Vec<Value>, frames: &mut Vec<Frame>, func: usize, argc: usize| {
        let f = &program.functions[func];
        let base = stack.len() - argc;
        stack.resize(base + f.locals as usize, Value::Unit);
        frames.push(Frame { func, pc: 0, base });
    };
    enter(&mut stack, &mut frames, program.main as usize, 0);
    loop {
        let Some(frame) = frames.last_mut() else {
            return Err(internal(Span::default()));
        };
        let f = &program.functions[frame.func];
        let Some(ins) = f.code.get(frame.pc) else {
            return Err(internal(Span::default()));
        };
        let span = f.spans[frame.pc];
        frame.pc += 1;
        let base = frame.base;
        match ins {
            Instr::Push(v) => stack.push(v.clone()),
            Instr::Load(l) => stack.push(stack[base + *l as usize].clone()),
            Instr::Store(l) => {
                let v = pop(&mut stack, span)?;
                stack[base + *l as usize] = v;
            }
            Instr::StoreField(l, path) => {
                let v = pop(&mut stack, span)?;
                let mut slot = &mut stack[base + *l as usize];
                for &i in path.iter() {
                    let Value::Struct(fields) = slot else {
                        return Err(internal(span));
                    };
                    slot = &mut Arc::make_mut(fields)[i as usize];
                }
                *slot = v;
            }
            Instr::GetField(i) => match pop(&mut stack, span)? {
                Value::Struct(fields) => stack.push(fields[*i as usize].clone()),
                _ => return Err(internal(span)),
            },
            Instr::MakeStruct(order) => {
                let start = stack.len() - order.len();
                let mut fields = vec![Value::Unit; order.len()];
                for (v, &i) in stack.drain(start..).zip(order.iter()) {
                    fields[i as usize] = v;
                }
                stack.push(Value::Struct(Arc::new(fields)));
            }
            Instr::Binary(op) => {
                let r = pop(&mut stack, span)?;
                let l = pop(&mut stack, span)?;
                match checked_binop(*op, &l, &r) {
                    Ok(v) => stack.push(v),
                    Err(msg) => {
                        return Err(RuntimeError {
                            message: msg.to_string(),
                            span,
                        })
                    }
                }
            }
            Instr::Neg => match pop(&mut stack, span)? {
                Value::Int(n) => match n.checked_neg() {
                    Some(r) => stack.push(Value::Int(r)),
                    None => {
                        return Err(RuntimeError {
                            message: "attempt to negate with overflow".into(),
                            span,
                        })
                    }
                },
                _ => return Err(internal(span)),
            },
            Instr::Not => match pop(&mut stack, span)? {
                Value::Bool(b) => stack.push(Value::Bool(!b)),
                _ => return Err(internal(span)),
            },
            Instr::Jump(t) => frame.pc = *t as usize,
            Instr::JumpIfFalse(t) => match pop(&mut stack, span)? {
                Value::Bool(false) => {
                    if let Some(fr) = frames.last_mut() {
                        fr.pc = *t as usize;
                    }
                }
                Value::Bool(true) => {}
                _ => return Err(internal(span)),
            },
            Instr::Call(func, argc) => {
                if frames.len() >= MAX_FRAMES {
                    return Err(RuntimeError {
                        message: format!("stack overflow: more than {MAX_FRAMES} nested calls"),
                        span,
                    });
                }
                enter(&mut stack, &mut frames, *func as usize, *argc as usize);
            }
            Instr::Return => {
                let v = pop(&mut stack, span)?;
                stack.truncate(base);
                frames.pop();
                if frames.is_empty() {
                    return Ok(v);
                }
                stack.push(v);
            }
            Instr::Pop => {
                pop(&mut stack, span)?;
            }
        }
    }
}

fn pop(stack: &mut Vec<Value>, span: Span) -> Result<Value, RuntimeError> {
    stack.pop().ok_or_else(|| internal(span))
}

/// A broken invariant of the bytecode; lowering never produces such code.
fn internal(span: Span) -> RuntimeError {
    RuntimeError {
        message: "internal error: malformed bytecode".into(),
        span,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast::BinOp;
    use crate::bytecode::Function;

    fn program(code: Vec<Instr>) -> Program {
        let spans = vec![Span::default(); code.len()];
        let main = Function {
            name: "main".into(),
            params: 0,
            locals: 0,
            code: code.into(),
            spans: spans.into(),
        };
        Program {
            functions: vec![Arc::new(main)],
            main: 0,
        }
    }

    #[test]
    fn adds_and_returns() {
        let p = program(vec![
            Instr::Push(Value::Int(2)),
            Instr::Push(Value::Int(3)),
            Instr::Binary(BinOp::Add),
            Instr::Return,
        ]);
        assert_eq!(run(&p), Ok(Value::Int(5)));
    }

    #[test]
    fn overflow_is_an_error_not_a_panic() {
        let p = program(vec![
            Instr::Push(Value::Int(i64::MAX)),
            Instr::Push(Value::Int(1)),
            Instr::Binary(BinOp::Add),
            Instr::Return,
        ]);
        let err = run(&p).expect_err("overflows");
        assert_eq!(err.message, "attempt to add with overflow");
    }

    #[test]
    fn unbounded_recursion_is_a_stack_overflow_error() {
        let p = program(vec![Instr::Call(0, 0), Instr::Return]);
        let err = run(&p).expect_err("recurses forever");
        assert!(err.message.starts_with("stack overflow"));
    }
}
