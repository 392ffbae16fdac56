//! Typed IR: a function body after type checking, with every name resolved.
//!
//! Lowering reads only this, never the syntax tree: locals are slots, calls name their
//! function, field accesses carry field indices.

use crate::ast::{BinOp, UnOp};
use crate::modtree::DefKey;
use crate::source::Span;
use crate::types::Ty;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TExpr {
    pub kind: TExprKind,
    pub ty: Ty,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TExprKind {
    Int(i64),
    Bool(bool),
    Unit,
    Local(u32),
    Const(DefKey),
    Call(DefKey, Box<[TExpr]>),
    Field(Box<TExpr>, u32),
    /// Field initializers in source order, each with its field index.
    StructLit(Box<[(u32, TExpr)]>),
    Unary(UnOp, Box<TExpr>),
    Binary(BinOp, Box<TExpr>, Box<TExpr>),
    /// The arms of an `if` chain (condition, block) and its `else`.
    If(Box<[(TExpr, TExpr)]>, Option<Box<TExpr>>),
    While(Box<TExpr>, Box<TExpr>),
    Block(Box<[TStmt]>, Option<Box<TExpr>>),
    Return(Option<Box<TExpr>>),
    /// Assignment to a local or a field path inside it.
    Assign(u32, Box<[u32]>, Box<TExpr>),
    /// Something that failed to check; the body is never lowered.
    Error,
    /// A node whose children were not kept: type checking builds no IR unless the
    /// `EmitCode` input asks for it (`check` does not lower), only each node's type.
    Elided,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TStmt {
    Let(u32, TExpr),
    Expr(TExpr),
}

/// A checked function body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypedFn {
    pub body: TExpr,
    pub params: u32,
    pub locals: u32,
}
