//! Name resolution: module scopes, `use` imports and paths.
//!
//! A name in module `m` is, in order: an item, import or child module declared in `m`;
//! otherwise whatever `m`'s glob imports provide. Globs are searched breadth first with
//! a visited set, so glob cycles (`a` globs `b`, `b` globs `a`) are legal and finite; a
//! module's own names shadow what its globs bring, and two different items reached
//! through globs are ambiguous. The first segment of a `use` path is looked up without
//! globs, so a glob never has to resolve itself.
//!
//! An entry is visible from module `from` when it is `pub` or `from` is inside the
//! module that declares it. Re-exports never widen that: what a path resolves to
//! carries the narrowest visibility met on the way (`Binding`), through `use` and glob
//! imports alike. A module whose file could not be read answers failed lookups with
//! `Res::Err`, already reported. Errors are returned as values (`ResolveError`); the
//! caller turns them into a diagnostic at its own span, so memoized resolutions are
//! shared.

use crate::ast::{Path, PathRoot};
use crate::diagnostics::Diag;
use crate::engine::{Cx, Cycle};
use crate::modtree::{DefId, ModId, ModuleTree, UseId};
use crate::outline::{def_name_span, use_path, use_spans};
use crate::queries as q;
pub use crate::resolve_errors::ResolveError;
use crate::resolve_errors::{error_diag, reexport_of_private, Hidden};
use std::collections::VecDeque;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::sync::Arc;

/// What a name in a module's scope refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    Def(DefId),
    Module(ModId),
    Import(UseId),
}

/// The names one module declares, and its glob imports.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Scope {
    pub names: HashMap<Arc<str>, Entry>,
    pub globs: Vec<UseId>,
    pub diags: Vec<Diag>,
}

/// The result of resolving a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Res {
    Def(DefId),
    Module(ModId),
    /// Resolution failed somewhere already reported.
    Err,
}

/// Who may name a binding: everyone, or only code inside one module (and the modules
/// nested in it). A re-export is never more visible than what it re-exports, so the
/// visibilities met along one chain of imports are nested and `min` is exact.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Vis {
    Public,
    Within(ModId),
}

impl Vis {
    /// The visibility of something declared in `owner`, `pub` or not.
    pub fn declared(is_pub: bool, owner: ModId) -> Vis {
        if is_pub {
            Vis::Public
        } else {
            Vis::Within(owner)
        }
    }

    pub fn admits(self, tree: &ModuleTree, from: ModId) -> bool {
        match self {
            Vis::Public => true,
            Vis::Within(m) => tree.is_within(from, m),
        }
    }

    /// The narrower of two visibilities.
    pub fn min(self, other: Vis, tree: &ModuleTree) -> Vis {
        match (self, other) {
            (Vis::Public, v) | (v, Vis::Public) => v,
            (Vis::Within(a), Vis::Within(b)) if tree.is_within(a, b) => Vis::Within(a),
            (_, narrower) => narrower,
        }
    }
}

/// What a name resolved to, and who may name it there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Binding {
    pub res: Res,
    pub vis: Vis,
}

impl Binding {
    /// The binding of a failed resolution: already reported, usable by anyone.
    pub const ERR: Binding = Binding {
        res: Res::Err,
        vis: Vis::Public,
    };
}

/// Key of a memoized path resolution.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PathKey {
    pub module: ModId,
    pub root: PathRoot,
    pub segments: Arc<[Arc<str>]>,
    /// The first segment is resolved without globs (used by `use` declarations).
    pub for_use: bool,
}

impl PathKey {
    pub fn new(module: ModId, path: &Path, for_use: bool) -> PathKey {
        PathKey {
            module,
            root: path.root,
            segments: path.segments.iter().map(|s| s.name.clone()).collect(),
            for_use,
        }
    }
}

/// Result of resolving one `use`: what it names, and the visibility that thing has
/// where the `use` found it (the `use`'s own `pub` is not part of it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UseResult {
    pub res: Res,
    pub vis: Vis,
    pub diags: Vec<Diag>,
    pub cycle: Option<Cycle>,
}

/// Builds the scope of module `m`, reporting names declared twice.
pub fn module_scope(cx: &Cx<'_>, m: ModId) -> Scope {
    let tree = cx.get_ref::<q::ModuleTree>(&());
    let module = tree.module(m);
    let mut scope = Scope::default();
    for (name, &child) in &module.children {
        scope.names.insert(name.clone(), Entry::Module(child));
    }
    // Where a declared name is written, read from its item's syntax only to report it
    // defined twice: the scope itself does not depend on where its items are.
    let span_of = |entry: Entry| match entry {
        Entry::Def(d) => Some(def_name_span(cx, tree, d)),
        Entry::Import(u) => Some(use_spans(cx, tree, u).name),
        Entry::Module(_) => None,
    };
    let declare = |scope: &mut Scope, name: &Arc<str>, entry: Entry| {
        if let Some(&prev) = scope.names.get(name) {
            let span = span_of(entry).unwrap_or_default();
            let mut d = Diag::error(
                "E0428",
                format!("the name `{name}` is defined multiple times"),
            )
            .at(span, format!("`{name}` redefined here"));
            match (prev, span_of(prev)) {
                (_, Some(s)) => {
                    d = d.with_secondary(s, format!("previous definition of `{name}` here"))
                }
                (Entry::Module(c), None) => {
                    d = d.note(format!(
                        "module `{}` is defined by a file",
                        tree.module(c).display_path()
                    ))
                }
                _ => {}
            }
            scope.diags.push(d);
        } else {
            scope.names.insert(name.clone(), entry);
        }
    };
    for &d in &module.defs {
        declare(&mut scope, &tree.def(d).name, Entry::Def(d));
    }
    for &u in &module.uses {
        match &tree.use_(u).name {
            Some(name) => declare(&mut scope, name, Entry::Import(u)),
            None => scope.globs.push(u),
        }
    }
    scope
}

/// Describes what an entry is, for messages: "struct `a::S`".
pub fn describe_res(tree: &ModuleTree, res: Res) -> String {
    match res {
        Res::Def(d) => {
            let def = tree.def(d);
            format!("{} `{:?}`", def.kind.describe(), def.key)
        }
        Res::Module(m) => format!("module `{}`", tree.module(m).display_path()),
        Res::Err => "an unresolved name".to_string(),
    }
}

/// The binding of `entry`, declared in `owner`, if every module in `viewers` may name
/// it. An import is resolved only once its own visibility admits the viewers, so an
/// import nobody outside may use never becomes part of someone else's resolution.
fn entry_binding(
    cx: &Cx<'_>,
    tree: &ModuleTree,
    entry: Entry,
    owner: ModId,
    viewers: &[ModId],
) -> Result<Binding, Hidden> {
    let admits = |vis: Vis| viewers.iter().all(|&v| vis.admits(tree, v));
    let binding = match entry {
        Entry::Def(d) => {
            let def = tree.def(d);
            Binding {
                res: Res::Def(d),
                vis: Vis::declared(def.is_pub, owner),
            }
        }
        Entry::Module(c) => Binding {
            res: Res::Module(c),
            vis: Vis::Public,
        },
        Entry::Import(u) => {
            let data = tree.use_(u);
            let own = Vis::declared(data.is_pub, owner);
            if !admits(own) {
                let name = data.name.as_deref().unwrap_or("*");
                return Err(Hidden {
                    kind: "import".to_string(),
                    what: format!("import `{name}`"),
                    defined_at: use_spans(cx, tree, u).name,
                    refers_to: None,
                });
            }
            let target = cx.get_ref::<q::ResolveUse>(&data.key.clone());
            Binding {
                res: target.res,
                vis: own.min(target.vis, tree),
            }
        }
    };
    if admits(binding.vis) {
        Ok(binding)
    } else {
        Err(match entry {
            Entry::Import(u) => Hidden::import_of(cx, tree, u, binding.res),
            _ => Hidden::item(cx, tree, binding.res),
        })
    }
}

/// One segment lookup: where the path is written and which segment this is.
struct Lookup {
    /// The module the path is written in (visibility is checked from here).
    from: ModId,
    seg: usize,
    /// Looking in the path's own scope (first segment without a prefix), as opposed to
    /// inside a named module.
    in_scope: bool,
    /// The path belongs to a `use`.
    for_use: bool,
}

/// A name found through glob imports.
struct GlobFind {
    binding: Binding,
    /// The glob import in the searched module through which it was found.
    via: UseId,
}

/// Searches the glob imports of `m` for `name`, breadth first, each module once.
///
/// A glob in module `g` imports the names of its target that `g` may name, and
/// re-exports each at the narrower of the glob's and the name's visibility. So a name
/// reached through a chain of globs must be nameable by every module on the chain
/// before it; with `strict`, also by `from`, the module the path is written in.
/// Without `strict` the search finds what exists but is hidden from `from`. The flag
/// says whether the search passed an unreadable module, which might have the name.
fn glob_search(
    cx: &Cx<'_>,
    tree: &ModuleTree,
    m: ModId,
    name: &Arc<str>,
    from: ModId,
    strict: bool,
) -> (Vec<GlobFind>, bool) {
    let mut found: Vec<GlobFind> = Vec::new();
    let mut unknown = false;
    let mut visited: HashSet<ModId> = std::iter::once(m).collect();
    // (module whose globs to follow, the modules that import its names, the first
    // glob on the way, the narrowest visibility of the globs on the way)
    let mut queue: VecDeque<(ModId, Vec<ModId>, Option<UseId>, Vis)> =
        VecDeque::from([(m, Vec::new(), None, Vis::Public)]);
    while let Some((g, importers, first, outer_vis)) = queue.pop_front() {
        let g_scope = cx.get_ref::<q::ModuleScope>(&g);
        let mut viewers = importers.clone();
        if strict {
            viewers.push(from);
        }
        for &u in &g_scope.globs {
            let data = tree.use_(u);
            let glob_vis = Vis::declared(data.is_pub, g);
            if !viewers.iter().all(|&v| glob_vis.admits(tree, v)) {
                continue;
            }
            let chain_vis = outer_vis.min(glob_vis, tree);
            let Res::Module(t) = cx.get_ref::<q::ResolveUse>(&data.key.clone()).res else {
                continue;
            };
            if !visited.insert(t) {
                continue;
            }
            let via = first.unwrap_or(u);
            unknown |= tree.module(t).unreadable;
            let mut chain = importers.clone();
            chain.push(g);
            let t_scope = cx.get_ref::<q::ModuleScope>(&t);
            match t_scope.names.get(name) {
                Some(&entry) => {
                    let mut entry_viewers = chain.clone();
                    if strict {
                        entry_viewers.push(from);
                    }
                    if let Ok(b) = entry_binding(cx, tree, entry, t, &entry_viewers) {
                        let binding = Binding {
                            res: b.res,
                            vis: chain_vis.min(b.vis, tree),
                        };
                        if !found.iter().any(|f| f.binding.res == binding.res) {
                            found.push(GlobFind { binding, via });
                        }
                    }
                }
                None => queue.push_back((t, chain, Some(via), chain_vis)),
            }
        }
    }
    (found, unknown)
}

/// Looks `name` up in module `m`.
fn lookup(
    cx: &Cx<'_>,
    tree: &ModuleTree,
    m: ModId,
    name: &Arc<str>,
    at: Lookup,
) -> Result<Binding, ResolveError> {
    let Lookup {
        from,
        seg,
        in_scope,
        for_use,
    } = at;
    let scope = cx.get_ref::<q::ModuleScope>(&m);
    if let Some(&entry) = scope.names.get(name) {
        return entry_binding(cx, tree, entry, m, &[from]).map_err(|h| h.at(seg));
    }
    let not_found = ResolveError::NotFound {
        seg,
        in_mod: (!in_scope).then(|| tree.module(m).display_path()),
    };
    // `use` paths look their first segment up without globs (see the module docs).
    if in_scope && for_use {
        return Err(not_found);
    }
    if tree.module(m).unreadable {
        return Ok(Binding::ERR);
    }
    let (found, unknown) = glob_search(cx, tree, m, name, from, true);
    match found.len() {
        0 if unknown => return Ok(Binding::ERR),
        0 => {}
        1 => return Ok(found[0].binding),
        _ => {
            return Err(ResolveError::Ambiguous {
                seg,
                candidates: found
                    .iter()
                    .map(|f| {
                        let what = describe_res(tree, f.binding.res);
                        (what, use_spans(cx, tree, f.via).path)
                    })
                    .collect(),
            })
        }
    }
    // Nothing `from` may name: report what exists but is hidden, if anything.
    match glob_search(cx, tree, m, name, from, false).0.first() {
        Some(hidden) => Err(Hidden::item(cx, tree, hidden.binding.res).at(seg)),
        None => Err(not_found),
    }
}

/// Resolves a path from its module; the body of the `ResolvePath` query.
pub fn resolve_path(cx: &Cx<'_>, key: &PathKey) -> Result<Binding, ResolveError> {
    let tree = cx.get_ref::<q::ModuleTree>(&());
    let from = key.module;
    let module = |m| Binding {
        res: Res::Module(m),
        vis: Vis::Public,
    };
    let mut cur = match key.root {
        PathRoot::Local => None,
        PathRoot::Crate => Some(module(ModuleTree::ROOT)),
        PathRoot::SelfMod => Some(module(from)),
        PathRoot::Super(n) => {
            let mut m = from;
            for _ in 0..n {
                m = tree.module(m).parent.ok_or(ResolveError::SuperAtRoot)?;
            }
            Some(module(m))
        }
    };
    for (seg, name) in key.segments.iter().enumerate() {
        let (m, in_scope) = match cur.map(|b| b.res) {
            None => (from, true),
            Some(Res::Module(m)) => (m, false),
            Some(Res::Err) => return Ok(Binding::ERR),
            Some(res @ Res::Def(_)) => {
                return Err(ResolveError::NotAModule {
                    seg: seg - 1,
                    what: describe_res(tree, res),
                })
            }
        };
        let at = Lookup {
            from,
            seg,
            in_scope,
            for_use: key.for_use,
        };
        cur = Some(lookup(cx, tree, m, name, at)?);
    }
    Ok(cur.unwrap_or(module(from)))
}

/// Where a path is used, which decides the wording of its errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathUse {
    Import,
    Type,
    Value,
    Call,
}

/// Resolves `path` written in module `m`; on failure pushes a diagnostic and returns
/// `Res::Err`.
pub fn resolve_at(
    cx: &Cx<'_>,
    m: ModId,
    path: &Path,
    usage: PathUse,
    diags: &mut Vec<Diag>,
) -> Res {
    binding_at(cx, m, path, usage, diags).res
}

/// [`resolve_at`], with the visibility of what the path names.
fn binding_at(
    cx: &Cx<'_>,
    m: ModId,
    path: &Path,
    usage: PathUse,
    diags: &mut Vec<Diag>,
) -> Binding {
    let key = PathKey::new(m, path, usage == PathUse::Import);
    match cx.get::<q::ResolvePath>(&key) {
        Ok(binding) => binding,
        Err(e) => {
            diags.push(error_diag(&e, path, usage));
            Binding::ERR
        }
    }
}

/// Resolves one `use`; the body of the `ResolveUse` query. What the import names is
/// in the module tree; its syntax is read only to report an error at its spans, so an
/// edit elsewhere in its file does not make it run again.
pub fn resolve_use(cx: &Cx<'_>, id: UseId) -> UseResult {
    let tree = cx.get_ref::<q::ModuleTree>(&());
    let data = tree.use_(id);
    let written = || use_path(cx, tree, id);
    let mut diags = Vec::new();
    if imports_itself(
        cx,
        data.module,
        data.name.as_deref(),
        data.root,
        &data.segments,
    ) {
        let path = written();
        let name = data.name.as_deref().unwrap_or_default();
        diags.push(
            Diag::error("E0432", format!("unresolved import `{}`", path.text())).at(
                path.span,
                format!(
                    "no `{name}` in `{}` other than this import",
                    tree.module(data.module).display_path()
                ),
            ),
        );
        return UseResult {
            res: Res::Err,
            vis: Vis::Public,
            diags,
            cycle: None,
        };
    }
    let key = PathKey {
        module: data.module,
        root: data.root,
        segments: data.segments.clone(),
        for_use: true,
    };
    let mut binding = match cx.get::<q::ResolvePath>(&key) {
        Ok(binding) => binding,
        Err(e) => {
            diags.push(error_diag(&e, &written(), PathUse::Import));
            Binding::ERR
        }
    };
    let res = binding.res;
    let glob = data.name.is_none();
    if glob && !matches!(res, Res::Module(_) | Res::Err) {
        let path = written();
        diags.push(
            Diag::error("E0432", format!("unresolved import `{}::*`", path.text())).at(
                path.span,
                format!("{} is not a module", describe_res(tree, res)),
            ),
        );
        binding = Binding::ERR;
    }
    if let (false, true, Res::Def(d)) = (glob, data.is_pub, res) {
        if binding.vis != Vis::Public {
            diags.push(reexport_of_private(cx, tree, d, written().span));
        }
    }
    UseResult {
        res: binding.res,
        vis: binding.vis,
        diags,
        cycle: None,
    }
}

/// Whether a single import in module `m` binding `name` names `m::name`, i.e. itself.
fn imports_itself(
    cx: &Cx<'_>,
    m: ModId,
    name: Option<&str>,
    root: PathRoot,
    segments: &[Arc<str>],
) -> bool {
    let (Some(name), Some((last, prefix))) = (name, segments.split_last()) else {
        return false;
    };
    if **last != *name {
        return false;
    }
    if prefix.is_empty() && root == PathRoot::Local {
        return true;
    }
    let key = PathKey {
        module: m,
        root,
        segments: prefix.into(),
        for_use: true,
    };
    cx.get::<q::ResolvePath>(&key)
        .is_ok_and(|b| b.res == Res::Module(m))
}
