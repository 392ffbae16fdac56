//! Gathering the program's diagnostics from every query that owns some.
//!
//! Each module's are gathered by its own query (`ModuleDiagnostics`), so after an edit
//! only the edited module's gathering runs again, and `CrateDiagnostics` (which merges
//! them) runs again only when some module's diagnostics changed. Modules, bodies and
//! items are visited with `par_map`, whose results come back in input order, so the
//! gathered list does not depend on scheduling; it is then sorted anyway. Cycles arrive
//! once per participant; they are grouped by their canonical participant list and
//! reported once each (see `cycles.rs`).

use crate::ast::ItemKind;
use crate::cycles::{cycle_diag, Step, StructShape};
use crate::diagnostics::{sort_and_dedup, Diag};
use crate::engine::{Cx, Cycle, Query};
use crate::modtree::{DefData, DefId, DefKind, ModId, ModuleTree};
use crate::outline::{def_name_span, use_spans};
use crate::queries as q;
use crate::source::{FileId, Span};
use crate::types::{item_of, Ty};
use std::collections::BTreeMap;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

/// What one item or import contributed: its diagnostics and any cycle it took part in.
type Contribution = (Vec<Diag>, Option<Step>);

fn item_contribution(cx: &Cx<'_>, tree: &ModuleTree, d: DefId) -> Contribution {
    let def = tree.def(d);
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
            let v = cx.get_ref::<q::ExpandAlias>(key);
            (v.diags.clone(), step(&v.cycle, q::ExpandAlias::NAME, None))
        }
        DefKind::Struct => {
            let fields = cx.get_ref::<q::StructFields>(key);
            let layout = cx.get_ref::<q::StructLayout>(key);
            let shape = layout.cycle.as_ref().map(|_| struct_shape(cx, tree, def));
            (
                fields.diags.clone(),
                step(&layout.cycle, q::StructLayout::NAME, shape),
            )
        }
        DefKind::Const => {
            let v = cx.get_ref::<q::ConstEval>(key);
            (v.diags.clone(), step(&v.cycle, q::ConstEval::NAME, None))
        }
        DefKind::Fn => {
            let sig = cx.get_ref::<q::FnSignature>(key);
            let body = cx.get_ref::<q::TypeCheck>(key);
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
        _ => item.name.span,
    })
    .unwrap_or_default()
}

/// A struct's header and the fields whose types are structs.
fn struct_shape(cx: &Cx<'_>, tree: &ModuleTree, def: &DefData) -> StructShape {
    let fields = cx.get_ref::<q::StructFields>(&def.key);
    // `struct Name`, and where each field's type is written.
    let (header, type_spans) = item_of(cx, &def.key, |_, item| {
        let header = Span {
            end: item.name.span.end,
            ..item.span
        };
        let type_spans: Vec<Span> = match &item.kind {
            ItemKind::Struct(written) => fields
                .written_at
                .iter()
                .map(|&i| {
                    written
                        .get(i as usize)
                        .map_or(item.name.span, |f| f.ty.span())
                })
                .collect(),
            _ => Vec::new(),
        };
        (header, type_spans)
    })
    .unwrap_or_default();
    let fields = fields
        .fields
        .iter()
        .zip(&type_spans)
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

/// What one module contributes to the program's diagnostics.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ModuleReport {
    /// The diagnostics of its file's syntax, its scope, its imports and its items.
    pub diags: Vec<Diag>,
    /// Each cycle one of its imports or items took part in, as that participant saw it.
    pub steps: Vec<Step>,
}

/// Body of `ModuleDiagnostics`.
pub fn module_diagnostics(cx: &Cx<'_>, m: ModId) -> ModuleReport {
    let tree = cx.get_ref::<q::ModuleTree>(&());
    let module = tree.module(m);
    let mut report = ModuleReport::default();
    if let Some(file) = module.file {
        report.diags = cx.get_ref::<q::Parse>(&file).diags.clone();
    }
    report
        .diags
        .extend(cx.get_ref::<q::ModuleScope>(&m).diags.iter().cloned());
    let mut contributions: Vec<Contribution> = cx.par_map(&module.uses, |cx, &id| {
        let key = &tree.use_(id).key;
        let r = cx.get_ref::<q::ResolveUse>(key);
        let step = r.cycle.as_ref().map(|c| Step {
            cycle: c.clone(),
            key: (q::ResolveUse::NAME, format!("{key:?}")),
            span: use_spans(cx, tree, id).path,
            shape: None,
        });
        (r.diags.clone(), step)
    });
    contributions.extend(cx.par_map(&module.defs, |cx, &d| item_contribution(cx, tree, d)));
    for (diags, step) in contributions {
        report.diags.extend(diags);
        report.steps.extend(step);
    }
    report
}

/// Body of `CrateDiagnostics`: the module tree's diagnostics, the syntax errors of
/// files that are no module, every module's report, one diagnostic per cycle, and the
/// check of `main`; sorted, without duplicates.
pub fn crate_diagnostics(cx: &Cx<'_>) -> Vec<Diag> {
    let tree = cx.get_ref::<q::ModuleTree>(&());
    let mut diags = tree.diags.clone();
    let in_modules: HashSet<FileId> = tree.modules.iter().filter_map(|m| m.file).collect();
    for f in (0..cx.get_ref::<q::FileList>(&()).len() as u32).map(FileId) {
        if !in_modules.contains(&f) {
            diags.extend(cx.get_ref::<q::Parse>(&f).diags.iter().cloned());
        }
    }
    let mods: Vec<ModId> = (0..tree.modules.len() as u32).map(ModId).collect();
    let reports = cx.par_map(&mods, |cx, m| cx.get::<q::ModuleDiagnostics>(m));
    let mut cycles: BTreeMap<Vec<(&'static str, String)>, Cycle> = BTreeMap::new();
    let mut steps = HashMap::default();
    for report in &reports {
        diags.extend(report.diags.iter().cloned());
        for step in &report.steps {
            cycles.insert(step.cycle.participants().to_vec(), step.cycle.clone());
            steps.insert(step.key.clone(), step.clone());
        }
    }
    diags.extend(cycles.values().map(|c| cycle_diag(c, &steps)));
    diags.extend(check_main(cx, tree));
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
    let sig = cx.get_ref::<q::FnSignature>(&tree.def(main).key);
    let ok = sig.params.is_empty() && matches!(sig.ret, Ty::I64 | Ty::Error);
    (!ok).then(|| {
        Diag::error("E0580", "`main` function has wrong type")
            .at(def_name_span(cx, tree, main), "expected `fn main() -> i64`")
    })
}
