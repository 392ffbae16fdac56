//! Types: writing them down, expanding aliases, and struct fields and sizes.
//!
//! An alias expands by resolving its right-hand side, which may expand other aliases;
//! a struct's size is the sum of its fields' sizes, which may need other structs'
//! sizes. Both recursions run through queries, so `type A = B; type B = A;` and
//! `struct S { s: S }` close a query cycle, which the engine resolves; `recover` (in
//! `queries.rs`) turns it into a value that carries the cycle for reporting.

use crate::ast::{Item, ItemKind, TypeExpr};
use crate::diagnostics::Diag;
use crate::engine::{Cx, Cycle};
use crate::modtree::{DefKey, DefKind, ModId};
use crate::queries as q;
use crate::resolve::{describe_res, resolve_at, PathUse, Res};
use rustc_hash::FxHashMap as HashMap;
use std::fmt;
use std::sync::Arc;

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Ty {
    I64,
    Bool,
    #[default]
    Unit,
    Struct(DefKey),
    /// The type of `return`: fits wherever any type is expected.
    Never,
    /// A type that could not be computed; already diagnosed, fits everywhere.
    Error,
}

impl fmt::Debug for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ty::I64 => f.write_str("i64"),
            Ty::Bool => f.write_str("bool"),
            Ty::Unit => f.write_str("()"),
            Ty::Struct(k) => write!(f, "{k:?}"),
            Ty::Never => f.write_str("!"),
            Ty::Error => f.write_str("{error}"),
        }
    }
}

impl Ty {
    /// Whether a value of type `self` may be used where `expected` is wanted.
    pub fn fits(&self, expected: &Ty) -> bool {
        self == expected || matches!(self, Ty::Never | Ty::Error) || *expected == Ty::Error
    }
}

/// A type alias after expansion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AliasValue {
    pub ty: Ty,
    pub diags: Vec<Diag>,
    pub cycle: Option<Cycle>,
}

/// The fields of a struct, in declaration order.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct StructFields {
    pub fields: Vec<(Arc<str>, Ty)>,
    /// For each of `fields`, its index among the fields written in the struct's syntax
    /// (a field declared twice is written twice but counted once). An index, not a
    /// span: an edit that moves the struct leaves this value equal, so the bodies that
    /// use the struct need not be checked again.
    pub written_at: Vec<u32>,
    pub index: HashMap<Arc<str>, u32>,
    pub diags: Vec<Diag>,
    /// A syntax error lost fields: unknown or missing field names are not reported.
    pub incomplete: bool,
}

/// The size of a struct in value slots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    pub size: u64,
    pub cycle: Option<Cycle>,
}

/// Finds the syntax of an item (through `ItemSyntax`: see `outline.rs`).
pub fn item_of<R>(cx: &Cx<'_>, key: &DefKey, f: impl FnOnce(ModId, &Item) -> R) -> Option<R> {
    let tree = cx.get_ref::<q::ModuleTree>(&());
    let def = tree.def(key.id);
    let item = crate::outline::item_syntax(cx, tree, def.module, def.item)?;
    Some(f(def.module, &item))
}

/// Converts a written type to a `Ty`, expanding aliases; errors go to `diags`.
pub fn lower_type(cx: &Cx<'_>, m: ModId, te: &TypeExpr, diags: &mut Vec<Diag>) -> Ty {
    let path = match te {
        TypeExpr::Unit(_) => return Ty::Unit,
        TypeExpr::Error(_) => return Ty::Error,
        TypeExpr::Path(p) => p,
    };
    if path.root == crate::ast::PathRoot::Local && path.segments.len() == 1 {
        match &*path.segments[0].name {
            "i64" => return Ty::I64,
            "bool" => return Ty::Bool,
            _ => {}
        }
    }
    match resolve_at(cx, m, path, PathUse::Type, diags) {
        Res::Err => Ty::Error,
        Res::Def(d) => {
            let tree = cx.get_ref::<q::ModuleTree>(&());
            let def = tree.def(d);
            match def.kind {
                DefKind::Struct => Ty::Struct(def.key.clone()),
                DefKind::Alias => cx.get_ref::<q::ExpandAlias>(&def.key.clone()).ty.clone(),
                _ => {
                    diags.push(expected_type(&describe_res(tree, Res::Def(d)), path.span));
                    Ty::Error
                }
            }
        }
        res @ Res::Module(_) => {
            let tree = cx.get_ref::<q::ModuleTree>(&());
            diags.push(expected_type(&describe_res(tree, res), path.span));
            Ty::Error
        }
    }
}

fn expected_type(found: &str, span: crate::source::Span) -> Diag {
    Diag::error("E0573", format!("expected type, found {found}")).at(span, "not a type")
}

/// Body of `ExpandAlias`.
pub fn expand_alias(cx: &Cx<'_>, key: &DefKey) -> AliasValue {
    let mut diags = Vec::new();
    let ty = item_of(cx, key, |m, item| match &item.kind {
        ItemKind::Alias(te) => lower_type(cx, m, te, &mut diags),
        _ => Ty::Error,
    })
    .unwrap_or(Ty::Error);
    AliasValue {
        ty,
        diags,
        cycle: None,
    }
}

/// Body of `StructFields`: field types, without looking inside other structs.
pub fn struct_fields(cx: &Cx<'_>, key: &DefKey) -> StructFields {
    let mut out = StructFields::default();
    item_of(cx, key, |m, item| {
        let ItemKind::Struct(fields) = &item.kind else {
            return;
        };
        out.incomplete = item.incomplete;
        let mut first = HashMap::default();
        for (written, f) in fields.iter().enumerate() {
            let ty = lower_type(cx, m, &f.ty, &mut out.diags);
            if let Some(&prev) = first.get(&f.name.name) {
                out.diags.push(
                    Diag::error(
                        "E0124",
                        format!("field `{}` is already declared", f.name.name),
                    )
                    .at(f.name.span, "field already declared")
                    .with_secondary(prev, format!("`{}` first declared here", f.name.name)),
                );
                continue;
            }
            first.insert(f.name.name.clone(), f.name.span);
            out.index
                .insert(f.name.name.clone(), out.fields.len() as u32);
            out.fields.push((f.name.name.clone(), ty));
            out.written_at.push(written as u32);
        }
    });
    out
}

/// Body of `StructLayout`: a struct's size, which needs its fields' sizes.
pub fn struct_layout(cx: &Cx<'_>, key: &DefKey) -> Layout {
    let fields = cx.get_ref::<q::StructFields>(key);
    let mut size: u64 = 0;
    for (_, ty) in &fields.fields {
        let s = match ty {
            Ty::Struct(k) => cx.get_ref::<q::StructLayout>(k).size,
            _ => 1,
        };
        size = size.saturating_add(s);
    }
    Layout { size, cycle: None }
}
