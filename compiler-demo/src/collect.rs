//! Gathering the program's diagnostics from every query that owns some.
//!
//! Bodies and items are visited with `par_map`, whose results come back in input
//! order, so the gathered list does not depend on scheduling; it is then sorted anyway.
//! Cycles arrive once per participant; they are grouped by their canonical participant
//! list and reported once each, in rustc's E0391 form, starting at the participant
//! that comes first in the source.

use crate::diagnostics::{sort_and_dedup, Diag};
use crate::engine::{Cx, Cycle, Query};
use crate::modtree::{DefKind, ModId, ModuleTree};
use crate::queries as q;
use crate::source::{FileId, Span};
use crate::types::Ty;
use std::collections::{BTreeMap, HashMap};

/// What one item contributed: its diagnostics and any cycle it took part in, with the
/// participant's (query, key) and the span that stands for it.
type Contribution = (Vec<Diag>, Option<(Cycle, (&'static str, String), Span)>);

fn item_contribution(cx: &Cx<'_>, tree: &ModuleTree, i: usize) -> Contribution {
    let def = &tree.defs[i];
    let key = &def.key;
    let part = |cycle: &Option<Cycle>, name: &'static str| {
        cycle
            .as_ref()
            .map(|c| (c.clone(), (name, format!("{key:?}")), def.name_span))
    };
    match def.kind {
        DefKind::Alias => {
            let v = cx.get::<q::ExpandAlias>(key);
            (v.diags.clone(), part(&v.cycle, q::ExpandAlias::NAME))
        }
        DefKind::Struct => {
            let fields = cx.get::<q::StructFields>(key);
            let layout = cx.get::<q::StructLayout>(key);
            (
                fields.diags.clone(),
                part(&layout.cycle, q::StructLayout::NAME),
            )
        }
        DefKind::Const => {
            let v = cx.get::<q::ConstEval>(key);
            (v.diags.clone(), part(&v.cycle, q::ConstEval::NAME))
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

/// How a cycle step reads in a report; `None` for steps that only connect others
/// (path resolutions between imports).
fn describe(query: &str, key: &str) -> Option<String> {
    Some(match query {
        "expand_alias" => format!("expanding type alias `{key}`"),
        "struct_layout" => format!("computing the size of struct `{key}`"),
        "const_eval" => format!("evaluating constant `{key}`"),
        "resolve_use" => match key.split_once("::{use ") {
            Some((module, path)) => format!(
                "resolving the import `{}` in `{module}`",
                path.trim_end_matches('}')
            ),
            None => format!("resolving `{key}`"),
        },
        "resolve_path" => return None,
        _ => format!("computing `{query}({key})`"),
    })
}

/// One E0391 diagnostic for a cycle.
fn cycle_diag(cycle: &Cycle, spans: &HashMap<(&'static str, String), Span>) -> Diag {
    let all = cycle.participants();
    let mut parts: Vec<&(&'static str, String)> = all
        .iter()
        .filter(|(n, k)| describe(n, k).is_some())
        .collect();
    if parts.is_empty() {
        parts = all.iter().collect();
    }
    // Start the report at the participant that comes first in the source, whatever
    // rotation the engine chose, so the text reads in program order.
    let pos = |p: &(&'static str, String)| {
        let span = spans.get(&(p.0, p.1.clone()));
        (
            span.is_none(),
            span.map(|s| (s.file, s.start)),
            p.0,
            p.1.clone(),
        )
    };
    let first = (0..parts.len()).min_by_key(|&i| pos(parts[i])).unwrap_or(0);
    parts.rotate_left(first);
    let desc: Vec<String> = parts
        .iter()
        .map(|(n, k)| describe(n, k).unwrap_or_else(|| format!("computing `{n}({k})`")))
        .collect();
    let span_of = |i: usize| spans.get(&(parts[i].0, parts[i].1.clone())).copied();
    let mut d = Diag::error("E0391", format!("cycle detected when {}", desc[0]));
    if let Some(s) = span_of(0) {
        d = d.at(s, "");
    }
    for (i, text) in desc.iter().enumerate().skip(1) {
        let step = format!("...which requires {text}...");
        d = match span_of(i) {
            Some(s) => d.with_secondary(s, step),
            None => d.note(step),
        };
    }
    if parts.len() == 1 {
        d.note(format!("...which immediately requires {} again", desc[0]))
    } else {
        d.note(format!(
            "...which again requires {}, completing the cycle",
            desc[0]
        ))
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
        let part = r.cycle.as_ref().map(|c| {
            let key = (q::ResolveUse::NAME, format!("{:?}", u.key));
            (c.clone(), key, u.span)
        });
        (r.diags.clone(), part)
    });
    let indices: Vec<usize> = (0..tree.defs.len()).collect();
    contributions.extend(cx.par_map(&indices, |cx, &i| item_contribution(cx, &tree, i)));

    let mut cycles: BTreeMap<Vec<(&'static str, String)>, Cycle> = BTreeMap::new();
    let mut spans = HashMap::new();
    for (ds, part) in contributions {
        diags.extend(ds);
        if let Some((cycle, key, span)) = part {
            spans.insert(key, span);
            cycles.insert(cycle.participants().to_vec(), cycle);
        }
    }
    diags.extend(cycles.values().map(|c| cycle_diag(c, &spans)));
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
                .note("add `fn main() -> i64 { ... }` to `main.wd`"),
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
