//! Gathering the program's diagnostics from every query that owns some.
//!
//! Bodies and items are visited with `par_map`, whose results come back in input
//! order, so the gathered list does not depend on scheduling; it is then sorted anyway.
//! Cycles arrive once per participant; they are grouped by their canonical participant
//! list and reported once each (see `cycles.rs`).

use crate::ast::ItemKind;
use crate::cycles::{cycle_diag, Step, StructShape};
use crate::diagnostics::{sort_and_dedup, Diag};
use crate::engine::{Cx, Cycle, Query};
use crate::modtree::{DefData, DefKind, ModId, ModuleTree};
use crate::queries as q;
use crate::source::{FileId, Span};
use crate::types::{item_of, Ty};
use std::collections::{BTreeMap, HashMap};

/// What one item or import contributed: its diagnostics and any cycle it took part in.
type Contribution = (Vec<Diag>, Option<Step>);

fn item_contribution(cx: &Cx<'_>, tree: &ModuleTree, i: usize) -> Contribution {
    let def = &tree.defs[i];
    let key = &def.key;
    let step = |cycle: &Option<Cycle>, name: &'static str, shape: Option<StructShape>| {
        cycle.as_ref().map(|c| Step {
            cycle: c.clone(),
            key: (name, format!("{key:?}")),
            span: right_hand_side(cx, def),
            shape,
        })
    };
    match def.kind {
        DefKind::Alias => {
            let v = cx.get::<q::ExpandAlias>(key);
            (v.diags.clone(), step(&v.cycle, q::ExpandAlias::NAME, None))
        }
        DefKind::Struct => {
            let fields = cx.get::<q::StructFields>(key);
            let layout = cx.get::<q::StructLayout>(key);
            let shape = layout.cycle.as_ref().map(|_| struct_shape(cx, tree, def));
            (
                fields.diags.clone(),
                step(&layout.cycle, q::StructLayout::NAME, shape),
            )
        }
        DefKind::Const => {
            let v = cx.get::<q::ConstEval>(key);
            (v.diags.clone(), step(&v.cycle, q::ConstEval::NAME, None))
        }
        DefKind::Fn => {
            let sig = cx.get::<q::FnSignature>(key);
            let body = cx.get::<q::TypeCheck>(key);
            let mut diags = sig.diags.clone();
            diags.extend(body.diags.iter().cloned());
            (diags, None)
        }
    }
}

/// The part of an item that refers onward: an alias's type, a constant's initializer;
/// the name for other items.
fn right_hand_side(cx: &Cx<'_>, def: &DefData) -> Span {
    item_of(cx, &def.key, |_, item| match &item.kind {
        ItemKind::Alias(te) => te.span(),
        ItemKind::Const(_, init) => init.span,
        _ => def.name_span,
    })
    .unwrap_or(def.name_span)
}

/// A struct's header and the fields whose types are structs.
fn struct_shape(cx: &Cx<'_>, tree: &ModuleTree, def: &DefData) -> StructShape {
    let fields = cx.get::<q::StructFields>(&def.key);
    let header = item_of(cx, &def.key, |_, item| Span {
        end: def.name_span.end,
        ..item.span
    })
    .unwrap_or(def.name_span);
    let fields = fields
        .fields
        .iter()
        .zip(&fields.type_spans)
        .filter_map(|((_, ty), &span)| match ty {
            Ty::Struct(k) => Some((span, tree.def(k.id).key.id)),
            _ => None,
        })
        .collect();
    StructShape {
        def: def.key.id,
        header,
        fields,
    }
}

/// Body of `CrateDiagnostics`.
pub fn crate_diagnostics(cx: &Cx<'_>) -> Vec<Diag> {
    let tree = cx.get::<q::ModuleTree>(&());
    let mut diags = tree.diags.clone();
    let files: Vec<FileId> = (0..cx.get::<q::FileList>(&()).len() as u32)
        .map(FileId)
        .collect();
    for f in &files {
        diags.extend(cx.get::<q::Parse>(f).diags.iter().cloned());
    }
    let mods: Vec<ModId> = (0..tree.modules.len() as u32).map(ModId).collect();
    for scope in cx.par_map(&mods, |cx, m| cx.get::<q::ModuleScope>(m)) {
        diags.extend(scope.diags.iter().cloned());
    }

    let mut contributions: Vec<Contribution> = cx.par_map(&tree.uses, |cx, u| {
        let r = cx.get::<q::ResolveUse>(&u.key);
        let step = r.cycle.as_ref().map(|c| Step {
            cycle: c.clone(),
            key: (q::ResolveUse::NAME, format!("{:?}", u.key)),
            span: u.path_span,
            shape: None,
        });
        (r.diags.clone(), step)
    });
    let indices: Vec<usize> = (0..tree.defs.len()).collect();
    contributions.extend(cx.par_map(&indices, |cx, &i| item_contribution(cx, &tree, i)));

    let mut cycles: BTreeMap<Vec<(&'static str, String)>, Cycle> = BTreeMap::new();
    let mut steps = HashMap::new();
    for (ds, step) in contributions {
        diags.extend(ds);
        if let Some(step) = step {
            cycles.insert(step.cycle.participants().to_vec(), step.cycle.clone());
            steps.insert(step.key.clone(), step);
        }
    }
    diags.extend(cycles.values().map(|c| cycle_diag(c, &steps)));
    diags.extend(check_main(cx, &tree));
    sort_and_dedup(&mut diags);
    diags
}

/// The crate root must define `fn main() -> i64`.
fn check_main(cx: &Cx<'_>, tree: &ModuleTree) -> Option<Diag> {
    let root = tree.module(ModuleTree::ROOT);
    if root.file.is_none() || root.unreadable {
        return None;
    }
    let Some(main) = tree.main_fn() else {
        return Some(
            Diag::error("E0601", "`main` function not found in crate root")
                .help("add `fn main() -> i64 { ... }` to `main.wd`"),
        );
    };
    let def = tree.def(main);
    let sig = cx.get::<q::FnSignature>(&def.key);
    let ok = sig.params.is_empty() && matches!(sig.ret, Ty::I64 | Ty::Error);
    (!ok).then(|| {
        Diag::error("E0580", "`main` function has wrong type")
            .at(def.name_span, "expected `fn main() -> i64`")
    })
}
