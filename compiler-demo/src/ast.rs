//! The syntax tree of one file, as the parser builds it.
//!
//! Every expression records its `depth` (1 + the deepest child), so later passes that
//! recurse over the tree are bounded by the parser's nesting limit.

use crate::source::Span;
use std::sync::Arc;

/// An identifier with where it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ident {
    pub name: Arc<str>,
    pub span: Span,
}

/// The first segment of a path, when it is a keyword.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathRoot {
    /// Relative to the current module's scope.
    Local,
    Crate,
    SelfMod,
    /// `super` repeated this many times.
    Super(u32),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Path {
    pub root: PathRoot,
    pub segments: Box<[Ident]>,
    pub span: Span,
}

impl Path {
    /// The path as written, e.g. `super::a::B`.
    pub fn text(&self) -> String {
        let mut parts: Vec<String> = match self.root {
            PathRoot::Local => vec![],
            PathRoot::Crate => vec!["crate".into()],
            PathRoot::SelfMod => vec!["self".into()],
            PathRoot::Super(n) => vec!["super".into(); n as usize],
        };
        parts.extend(self.segments.iter().map(|s| s.name.to_string()));
        parts.join("::")
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TypeExpr {
    Path(Path),
    /// `()`.
    Unit(Span),
    /// A type that failed to parse; already diagnosed.
    Error(Span),
}

impl TypeExpr {
    pub fn span(&self) -> Span {
        match self {
            TypeExpr::Path(p) => p.span,
            TypeExpr::Unit(s) | TypeExpr::Error(s) => *s,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::And => "&&",
            BinOp::Or => "||",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnOp {
    Neg,
    Not,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
    pub depth: u32,
}

impl Expr {
    /// Stands for an expression that failed to parse (already diagnosed).
    pub fn error(span: Span) -> Expr {
        Expr {
            kind: ExprKind::Error,
            span,
            depth: 1,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExprKind {
    Int(i64),
    Bool(bool),
    /// `()`.
    Unit,
    Path(Path),
    Call(Box<Path>, Box<[Expr]>),
    Field(Box<Expr>, Ident),
    StructLit(Box<Path>, Box<[(Ident, Expr)]>),
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// `if c1 { .. } else if c2 { .. } else { .. }`: the arms of a chain in order and
    /// the final `else`. Kept flat, so a long chain is not deep nesting.
    If(Box<[IfArm]>, Option<Box<Block>>),
    While(Box<Expr>, Box<Block>),
    Block(Box<Block>),
    Return(Option<Box<Expr>>),
    Assign(Box<Expr>, Box<Expr>),
    /// An expression that failed to parse; already diagnosed.
    Error,
}

/// One `if` (or `else if`) of a chain: its condition and block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfArm {
    pub cond: Expr,
    pub then: Block,
}

/// `let [mut] name [: ty] = init;`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LetStmt {
    pub name: Ident,
    pub mutable: bool,
    pub ty: Option<TypeExpr>,
    pub init: Expr,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stmt {
    /// Boxed: a `let` is twice an expression statement's size.
    Let(Box<LetStmt>),
    /// An expression followed by `;`, or a block-like expression without one.
    Expr(Expr),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    pub stmts: Box<[Stmt]>,
    /// The final expression without `;`, which is the block's value.
    pub tail: Option<Box<Expr>>,
    pub span: Span,
}

impl Block {
    /// Stands for a block that failed to parse: its value is unknown, not `()`.
    pub fn error(span: Span) -> Block {
        Block {
            stmts: Box::new([Stmt::Expr(Expr::error(span))]),
            tail: None,
            span,
        }
    }

    /// Where the block's value comes from: its tail expression, or the whole block.
    pub fn value_span(&self) -> Span {
        self.tail.as_ref().map_or(self.span, |t| t.span)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Param {
    pub name: Ident,
    pub ty: TypeExpr,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FnDecl {
    pub params: Box<[Param]>,
    pub ret: Option<TypeExpr>,
    pub body: Block,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: Ident,
    pub ty: TypeExpr,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UseKind {
    /// `use path;` or `use path as name;`: binds `name`.
    Single(Ident),
    /// `use path::*;`.
    Glob,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UseDecl {
    /// For `Single`, the full path of the imported item; for `Glob`, the module's path.
    pub path: Path,
    pub kind: UseKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ItemKind {
    Fn(FnDecl),
    Struct(Box<[Field]>),
    Const(TypeExpr, Expr),
    Alias(TypeExpr),
    Use(UseDecl),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub is_pub: bool,
    /// The bound name (for a glob `use`, the `*`).
    pub name: Ident,
    pub kind: ItemKind,
    pub span: Span,
    /// A syntax error lost some of the item's parameters or fields, so the ones
    /// listed are not all there are: uses are not checked against them.
    pub incomplete: bool,
}

impl Item {
    /// "function", "struct", ... as used in messages.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            ItemKind::Fn(_) => "function",
            ItemKind::Struct(_) => "struct",
            ItemKind::Const(..) => "constant",
            ItemKind::Alias(_) => "type alias",
            ItemKind::Use(_) => "import",
        }
    }
}

/// A parsed file. Each item is shared, so the query that hands out one item's syntax
/// (`ItemSyntax`) clones a pointer, not a tree.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SourceModule {
    pub items: Vec<Arc<Item>>,
}
