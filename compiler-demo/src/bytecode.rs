//! The bytecode: values, instructions, functions and the linked program.
//!
//! A stack machine. Every expression leaves exactly one value on the stack (`()` for
//! statements), which keeps lowering simple. Each instruction carries the span it came
//! from, so run-time errors point at the source.

use crate::ast::BinOp;
use crate::source::Span;
use std::fmt::{self, Write};
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Int(i64),
    Bool(bool),
    Unit,
    /// Field values in declaration order; copied on write.
    Struct(Arc<Vec<Value>>),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(n) => write!(f, "{n}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Unit => f.write_str("()"),
            Value::Struct(fields) => {
                f.write_str("{")?;
                for (i, v) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("}")
            }
        }
    }
}

/// Applies a binary operator with checked arithmetic; `Err` names the failure.
pub fn checked_binop(op: BinOp, l: &Value, r: &Value) -> Result<Value, &'static str> {
    use Value::{Bool, Int};
    Ok(match (op, l, r) {
        (BinOp::Add, Int(a), Int(b)) => {
            Int(a.checked_add(*b).ok_or("attempt to add with overflow")?)
        }
        (BinOp::Sub, Int(a), Int(b)) => Int(a
            .checked_sub(*b)
            .ok_or("attempt to subtract with overflow")?),
        (BinOp::Mul, Int(a), Int(b)) => Int(a
            .checked_mul(*b)
            .ok_or("attempt to multiply with overflow")?),
        (BinOp::Div, Int(_), Int(0)) => return Err("attempt to divide by zero"),
        (BinOp::Div, Int(a), Int(b)) => {
            Int(a.checked_div(*b).ok_or("attempt to divide with overflow")?)
        }
        (BinOp::Rem, Int(_), Int(0)) => {
            return Err("attempt to calculate the remainder with a divisor of zero")
        }
        (BinOp::Rem, Int(a), Int(b)) => Int(a
            .checked_rem(*b)
            .ok_or("attempt to calculate the remainder with overflow")?),
        (BinOp::Lt, Int(a), Int(b)) => Bool(a < b),
        (BinOp::Le, Int(a), Int(b)) => Bool(a <= b),
        (BinOp::Gt, Int(a), Int(b)) => Bool(a > b),
        (BinOp::Ge, Int(a), Int(b)) => Bool(a >= b),
        (BinOp::Eq, a, b) => Bool(a == b),
        (BinOp::Ne, a, b) => Bool(a != b),
        (BinOp::And, Bool(a), Bool(b)) => Bool(*a && *b),
        (BinOp::Or, Bool(a), Bool(b)) => Bool(*a || *b),
        _ => return Err("operands of the wrong type"),
    })
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Instr {
    Push(Value),
    Load(u32),
    Store(u32),
    /// Pops a value and stores it into a field path of a local.
    StoreField(u32, Box<[u32]>),
    GetField(u32),
    /// Pops one value per entry; entry `i` is the field index of the `i`-th pushed value.
    MakeStruct(Box<[u32]>),
    Binary(BinOp),
    Neg,
    Not,
    Jump(u32),
    JumpIfFalse(u32),
    /// Calls a function by its index in the program with this many arguments.
    Call(u32, u32),
    Return,
    Pop,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Function {
    pub name: Arc<str>,
    pub params: u32,
    pub locals: u32,
    pub code: Box<[Instr]>,
    pub spans: Box<[Span]>,
}

/// All functions, with calls resolved to indices, and the entry point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    pub functions: Vec<Arc<Function>>,
    pub main: u32,
}

impl Program {
    /// The textual form `build -o` writes: one block per function.
    pub fn listing(&self) -> String {
        let mut out = String::from("; weft compiler-demo bytecode v1\n");
        let _ = writeln!(out, "entry {}", self.main);
        for (i, f) in self.functions.iter().enumerate() {
            let _ = writeln!(
                out,
                "\nfn {i} {} params={} locals={}",
                f.name, f.params, f.locals
            );
            for (pc, ins) in f.code.iter().enumerate() {
                let _ = writeln!(out, "  {pc:>5}  {}", render_instr(ins));
            }
        }
        out
    }
}

fn render_instr(ins: &Instr) -> String {
    let list = |xs: &[u32]| {
        xs.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    match ins {
        Instr::Push(v) => format!("push {v}"),
        Instr::Load(l) => format!("load {l}"),
        Instr::Store(l) => format!("store {l}"),
        Instr::StoreField(l, p) => format!("store_field {l} [{}]", list(p)),
        Instr::GetField(i) => format!("get_field {i}"),
        Instr::MakeStruct(o) => format!("make_struct [{}]", list(o)),
        Instr::Binary(op) => format!("binary {}", op.symbol()),
        Instr::Neg => "neg".into(),
        Instr::Not => "not".into(),
        Instr::Jump(t) => format!("jump {t}"),
        Instr::JumpIfFalse(t) => format!("jump_if_false {t}"),
        Instr::Call(f, n) => format!("call {f} {n}"),
        Instr::Return => "return".into(),
        Instr::Pop => "pop".into(),
    }
}
