//! Field access, struct literals and assignment: the checks about struct values and
//! the places a value can be stored in.

use super::{error, Checker};
use crate::ast::{Expr, ExprKind, Ident, Path};
use crate::diagnostics::Diag;
use crate::modtree::DefKind;
use crate::queries as q;
use crate::resolve::{resolve_at, PathUse, Res};
use crate::source::Span;
use crate::tir::{TExpr, TExprKind};
use crate::type_errors::{assign_to_immutable, missing_fields, LocalKind};
use crate::types::Ty;
use rustc_hash::FxHashMap as HashMap;

impl Checker<'_, '_> {
    /// Index and type of `name` in values of type `ty`, or a diagnostic.
    pub(super) fn field_index(&mut self, ty: &Ty, name: &str, span: Span) -> Option<(u32, Ty)> {
        match ty {
            Ty::Struct(key) => {
                let fields = self.cx.get_ref::<q::StructFields>(key);
                match fields.index.get(name) {
                    Some(&i) => Some((i, fields.fields[i as usize].1.clone())),
                    None if fields.incomplete => None,
                    None => {
                        self.diags.push(
                            Diag::error("E0609", format!("no field `{name}` on type `{ty}`"))
                                .at(span, "unknown field"),
                        );
                        None
                    }
                }
            }
            Ty::Error | Ty::Never => None,
            _ => {
                self.diags.push(
                    Diag::error(
                        "E0610",
                        format!("`{ty}` is a primitive type and therefore doesn't have fields"),
                    )
                    .at(span, "no fields"),
                );
                None
            }
        }
    }

    pub(super) fn struct_lit(&mut self, p: &Path, inits: &[(Ident, Expr)], span: Span) -> TExpr {
        let values: Vec<TExpr> = inits.iter().map(|(_, e)| self.expr(e)).collect();
        let key = match resolve_at(self.cx, self.m, p, PathUse::Type, &mut self.diags) {
            Res::Err => return error(span),
            Res::Def(d) => match self.tree.def(d).kind {
                DefKind::Struct => Some(self.tree.def(d).key.clone()),
                DefKind::Alias => match self
                    .cx
                    .get_ref::<q::ExpandAlias>(&self.tree.def(d).key.clone())
                    .ty
                    .clone()
                {
                    Ty::Struct(k) => Some(k),
                    Ty::Error => return error(span),
                    _ => None,
                },
                _ => None,
            },
            Res::Module(_) => None,
        };
        let Some(key) = key else {
            self.diags.push(
                Diag::error("E0574", format!("expected struct, found `{}`", p.text()))
                    .at(p.span, "not a struct"),
            );
            return error(span);
        };
        let fields = self.cx.get_ref::<q::StructFields>(&key);
        let mut seen: HashMap<&str, Span> = HashMap::default();
        let mut out = Vec::new();
        let mut ok = true;
        for ((name, _), value) in inits.iter().zip(values) {
            if let Some(&prev) = seen.get(&*name.name) {
                self.diags.push(
                    Diag::error(
                        "E0062",
                        format!("field `{}` specified more than once", name.name),
                    )
                    .at(name.span, "used more than once")
                    .with_secondary(prev, "first use of this field"),
                );
                ok = false;
                continue;
            }
            seen.insert(&name.name, name.span);
            match fields.index.get(&name.name) {
                Some(&i) => {
                    self.expect(&value, &fields.fields[i as usize].1);
                    out.push((i, value));
                }
                None if fields.incomplete => ok = false,
                None => {
                    self.diags.push(
                        Diag::error(
                            "E0560",
                            format!("struct `{key:?}` has no field named `{}`", name.name),
                        )
                        .at(name.span, "unknown field"),
                    );
                    ok = false;
                }
            }
        }
        let missing: Vec<&str> = fields
            .fields
            .iter()
            .filter(|(n, _)| !seen.contains_key(&**n))
            .map(|(n, _)| &**n)
            .collect();
        // A struct whose fields are not all known cannot be built, but is not
        // reported again.
        ok &= !fields.incomplete;
        if !missing.is_empty() && ok {
            let d = missing_fields(&missing, &format!("{key:?}"), p.span);
            self.diags.push(d);
            ok = false;
        }
        if !ok {
            return error(span);
        }
        let ty = Ty::Struct(key);
        self.node(|| TExprKind::StructLit(out.into()), ty, span)
    }

    pub(super) fn assign(&mut self, place: &Expr, value: &Expr, span: Span) -> TExpr {
        let value = self.expr(value);
        // Walk `a.b.c` down to the local `a`, collecting field names.
        let mut names = Vec::new();
        let mut cur = place;
        while let ExprKind::Field(base, f) = &cur.kind {
            names.push(f);
            cur = base;
        }
        let ExprKind::Path(p) = &cur.kind else {
            if cur.kind != ExprKind::Error {
                self.diags.push(
                    Diag::error("E0070", "invalid left-hand side of assignment")
                        .at(place.span, "cannot assign to this expression"),
                );
            }
            return error(span);
        };
        let Some(local) = self.local(p) else {
            let d = match resolve_at(self.cx, self.m, p, PathUse::Value, &mut self.diags) {
                Res::Err => return error(span),
                _ => Diag::error("E0070", "invalid left-hand side of assignment")
                    .at(place.span, "cannot assign to an item"),
            };
            self.diags.push(d);
            return error(span);
        };
        let (slot, mut ty) = (local.slot, local.ty.clone());
        if local.kind != (LocalKind::Let { mutable: true }) {
            let name = &p.segments[0].name;
            let mut place_text = name.to_string();
            for f in names.iter().rev() {
                place_text.push('.');
                place_text.push_str(&f.name);
            }
            let d = assign_to_immutable(name, &place_text, local.kind, local.decl, span);
            self.diags.push(d);
            return error(span);
        }
        let mut path = Vec::new();
        for f in names.iter().rev() {
            match self.field_index(&ty, &f.name, f.span) {
                Some((i, fty)) => {
                    path.push(i);
                    ty = fty;
                }
                None => return error(span),
            }
        }
        self.expect(&value, &ty);
        self.node(
            || TExprKind::Assign(slot, path.into(), Box::new(value)),
            Ty::Unit,
            span,
        )
    }
}
