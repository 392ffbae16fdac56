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
//! module that declares it. Errors are returned as values (`ResolveError`); the caller
//! turns them into a diagnostic at its own span, so memoized resolutions are shared.

use crate::ast::{Ident, ItemKind, Path, PathRoot, UseKind};
use crate::diagnostics::Diag;
use crate::engine::{Cx, Cycle};
use crate::modtree::{DefId, ModId, ModuleTree, UseId};
use crate::queries as q;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

/// What a name in a module's scope refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    Def(DefId),
    Module(ModId),
    Import(UseId),
}

/// The names one module declares, and its glob imports.
#[derive(Debug, Default)]
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

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResolveError {
    /// Segment `seg` was not found (in module `in_mod`, or in scope when `None`).
    NotFound {
        seg: usize,
        in_mod: Option<String>,
    },
    Private {
        seg: usize,
        what: String,
    },
    NotAModule {
        seg: usize,
        what: String,
    },
    SuperAtRoot,
    Ambiguous {
        seg: usize,
        candidates: Vec<String>,
    },
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

/// Result of resolving one `use`.
#[derive(Clone, Debug)]
pub struct UseResult {
    pub res: Res,
    pub diags: Vec<Diag>,
    pub cycle: Option<Cycle>,
}

/// Builds the scope of module `m`, reporting names declared twice.
pub fn module_scope(cx: &Cx<'_>, m: ModId) -> Scope {
    let tree = cx.get::<q::ModuleTree>(&());
    let module = tree.module(m);
    let mut scope = Scope::default();
    let mut first_span = HashMap::new();
    for (name, &child) in &module.children {
        scope.names.insert(name.clone(), Entry::Module(child));
    }
    let mut declare = |scope: &mut Scope, name: &Arc<str>, span, entry| {
        if let Some(prev) = scope.names.get(name) {
            let mut d = Diag::error(
                "E0428",
                format!("the name `{name}` is defined multiple times"),
            )
            .at(span, format!("`{name}` redefined here"));
            match (prev, first_span.get(name)) {
                (_, Some(&s)) => {
                    d = d.with_secondary(s, format!("previous definition of `{name}` here"))
                }
                (Entry::Module(c), None) => {
                    d = d.note(format!(
                        "module `{}` is defined by a file",
                        tree.module(*c).display_path()
                    ))
                }
                _ => {}
            }
            scope.diags.push(d);
        } else {
            scope.names.insert(name.clone(), entry);
            first_span.insert(name.clone(), span);
        }
    };
    for &d in &module.defs {
        let def = tree.def(d);
        declare(&mut scope, &def.name, def.name_span, Entry::Def(d));
    }
    for &u in &module.uses {
        let data = tree.use_(u);
        match &data.name {
            Some(name) => declare(&mut scope, name, data.span, Entry::Import(u)),
            None => scope.globs.push(u),
        }
    }
    scope
}

fn visible(tree: &ModuleTree, is_pub: bool, owner: ModId, from: ModId) -> bool {
    is_pub || tree.is_within(from, owner)
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

/// Resolves `entry`, declared in `owner`, as seen from `from`.
fn entry_res(
    cx: &Cx<'_>,
    tree: &ModuleTree,
    entry: Entry,
    owner: ModId,
    from: ModId,
) -> Result<Res, String> {
    let (is_pub, res) = match entry {
        Entry::Def(d) => (tree.def(d).is_pub, Res::Def(d)),
        Entry::Module(c) => (true, Res::Module(c)),
        Entry::Import(u) => {
            let data = tree.use_(u);
            if !visible(tree, data.is_pub, owner, from) {
                let name = data.name.as_deref().unwrap_or("*");
                return Err(format!("import `{name}`"));
            }
            return Ok(cx.get::<q::ResolveUse>(&data.key.clone()).res);
        }
    };
    if visible(tree, is_pub, owner, from) {
        Ok(res)
    } else {
        Err(describe_res(tree, res))
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

/// Looks `name` up in module `m`.
fn lookup(
    cx: &Cx<'_>,
    tree: &ModuleTree,
    m: ModId,
    name: &Arc<str>,
    at: Lookup,
) -> Result<Res, ResolveError> {
    let Lookup {
        from,
        seg,
        in_scope,
        for_use,
    } = at;
    let scope = cx.get::<q::ModuleScope>(&m);
    if let Some(&entry) = scope.names.get(name) {
        return entry_res(cx, tree, entry, m, from)
            .map_err(|what| ResolveError::Private { seg, what });
    }
    let not_found = ResolveError::NotFound {
        seg,
        in_mod: (!in_scope).then(|| tree.module(m).display_path()),
    };
    // `use` paths look their first segment up without globs (see the module docs).
    if in_scope && for_use {
        return Err(not_found);
    }
    let mut found: Vec<Res> = Vec::new();
    let mut visited = HashSet::from([m]);
    let mut queue = VecDeque::from([(m, from, scope.clone())]);
    while let Some((g, viewer, g_scope)) = queue.pop_front() {
        for &u in &g_scope.globs {
            let data = tree.use_(u);
            if !visible(tree, data.is_pub, g, viewer) {
                continue;
            }
            let Res::Module(t) = cx.get::<q::ResolveUse>(&data.key.clone()).res else {
                continue;
            };
            if !visited.insert(t) {
                continue;
            }
            let t_scope = cx.get::<q::ModuleScope>(&t);
            match t_scope.names.get(name) {
                Some(&entry) => {
                    if let Ok(res) = entry_res(cx, tree, entry, t, g) {
                        if !found.contains(&res) {
                            found.push(res);
                        }
                    }
                }
                None => queue.push_back((t, g, t_scope)),
            }
        }
    }
    match found.len() {
        0 => Err(not_found),
        1 => Ok(found[0]),
        _ => Err(ResolveError::Ambiguous {
            seg,
            candidates: found.iter().map(|&r| describe_res(tree, r)).collect(),
        }),
    }
}

/// Resolves a path from its module; the body of the `ResolvePath` query.
pub fn resolve_path(cx: &Cx<'_>, key: &PathKey) -> Result<Res, ResolveError> {
    let tree = cx.get::<q::ModuleTree>(&());
    let from = key.module;
    let mut cur = match key.root {
        PathRoot::Local => None,
        PathRoot::Crate => Some(Res::Module(ModuleTree::ROOT)),
        PathRoot::SelfMod => Some(Res::Module(from)),
        PathRoot::Super(n) => {
            let mut m = from;
            for _ in 0..n {
                m = tree.module(m).parent.ok_or(ResolveError::SuperAtRoot)?;
            }
            Some(Res::Module(m))
        }
    };
    for (seg, name) in key.segments.iter().enumerate() {
        cur = Some(match cur {
            None => {
                let at = Lookup {
                    from,
                    seg,
                    in_scope: true,
                    for_use: key.for_use,
                };
                lookup(cx, &tree, from, name, at)?
            }
            Some(Res::Module(m)) => {
                let at = Lookup {
                    from,
                    seg,
                    in_scope: false,
                    for_use: key.for_use,
                };
                lookup(cx, &tree, m, name, at)?
            }
            Some(Res::Err) => return Ok(Res::Err),
            Some(res @ Res::Def(_)) => {
                return Err(ResolveError::NotAModule {
                    seg: seg - 1,
                    what: describe_res(&tree, res),
                })
            }
        });
    }
    Ok(cur.unwrap_or(Res::Module(from)))
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
    let key = PathKey::new(m, path, usage == PathUse::Import);
    match cx.get::<q::ResolvePath>(&key) {
        Ok(res) => res,
        Err(e) => {
            diags.push(error_diag(&e, path, usage));
            Res::Err
        }
    }
}

fn seg_ident(path: &Path, seg: usize) -> Option<&Ident> {
    path.segments.get(seg)
}

/// Turns a resolution error into a rustc-style diagnostic at the failing segment.
pub fn error_diag(e: &ResolveError, path: &Path, usage: PathUse) -> Diag {
    let span_of = |seg: usize| seg_ident(path, seg).map_or(path.span, |i| i.span);
    let name_of =
        |seg: usize| seg_ident(path, seg).map_or_else(String::new, |i| i.name.to_string());
    match e {
        ResolveError::NotFound { seg, in_mod } => {
            let name = name_of(*seg);
            let place = match in_mod {
                Some(m) => format!("in `{m}`"),
                None => "in this scope".to_string(),
            };
            let is_last = *seg + 1 == path.segments.len();
            let (code, msg) = match usage {
                PathUse::Import => {
                    let d = Diag::error("E0432", format!("unresolved import `{}`", path.text()));
                    return d.at(span_of(*seg), format!("no `{name}` {place}"));
                }
                _ if !is_last && in_mod.is_none() => (
                    "E0433",
                    format!("failed to resolve: use of undeclared module `{name}`"),
                ),
                _ if !is_last => (
                    "E0433",
                    format!("failed to resolve: could not find `{name}` {place}"),
                ),
                PathUse::Type => ("E0412", format!("cannot find type `{name}` {place}")),
                PathUse::Call => ("E0425", format!("cannot find function `{name}` {place}")),
                PathUse::Value => ("E0425", format!("cannot find value `{name}` {place}")),
            };
            Diag::error(code, msg).at(span_of(*seg), format!("not found {place}"))
        }
        ResolveError::Private { seg, what } => Diag::error("E0603", format!("{what} is private"))
            .at(span_of(*seg), "private item")
            .note("items are private to their module unless declared `pub`"),
        ResolveError::NotAModule { seg, what } => Diag::error(
            "E0433",
            format!("failed to resolve: {what} is not a module"),
        )
        .at(span_of(*seg), "not a module"),
        ResolveError::SuperAtRoot => Diag::error(
            "E0433",
            "failed to resolve: there are too many leading `super` keywords",
        )
        .at(path.span, "goes past the crate root"),
        ResolveError::Ambiguous { seg, candidates } => {
            let mut d = Diag::error("E0659", format!("`{}` is ambiguous", name_of(*seg)))
                .at(span_of(*seg), "ambiguous name");
            for c in candidates {
                d = d.note(format!("it could refer to {c}, imported by a glob"));
            }
            d
        }
    }
}

/// Resolves one `use`; the body of the `ResolveUse` query.
pub fn resolve_use(cx: &Cx<'_>, id: UseId) -> UseResult {
    let tree = cx.get::<q::ModuleTree>(&());
    let data = tree.use_(id);
    let module = tree.module(data.module);
    let mut diags = Vec::new();
    let mut res = Res::Err;
    if let Some(file) = module.file {
        let parsed = cx.get::<q::Parse>(&file);
        if let Some(ItemKind::Use(decl)) =
            parsed.module.items.get(data.item as usize).map(|i| &i.kind)
        {
            if imports_itself(cx, data.module, data.name.as_deref(), &decl.path) {
                let name = data.name.as_deref().unwrap_or_default();
                diags.push(
                    Diag::error("E0432", format!("unresolved import `{}`", decl.path.text())).at(
                        decl.path.span,
                        format!(
                            "no `{name}` in `{}` other than this import",
                            module.display_path()
                        ),
                    ),
                );
                return UseResult {
                    res,
                    diags,
                    cycle: None,
                };
            }
            res = resolve_at(cx, data.module, &decl.path, PathUse::Import, &mut diags);
            if decl.kind == UseKind::Glob && !matches!(res, Res::Module(_) | Res::Err) {
                diags.push(
                    Diag::error(
                        "E0432",
                        format!("unresolved import `{}::*`", decl.path.text()),
                    )
                    .at(
                        decl.path.span,
                        format!("{} is not a module", describe_res(&tree, res)),
                    ),
                );
                res = Res::Err;
            }
        }
    }
    UseResult {
        res,
        diags,
        cycle: None,
    }
}

/// Whether a single import in module `m` binding `name` names `m::name`, i.e. itself.
fn imports_itself(cx: &Cx<'_>, m: ModId, name: Option<&str>, path: &Path) -> bool {
    let (Some(name), Some((last, prefix))) = (name, path.segments.split_last()) else {
        return false;
    };
    if *last.name != *name {
        return false;
    }
    if prefix.is_empty() && path.root == PathRoot::Local {
        return true;
    }
    let key = PathKey {
        module: m,
        root: path.root,
        segments: prefix.iter().map(|s| s.name.clone()).collect(),
        for_use: true,
    };
    cx.get::<q::ResolvePath>(&key) == Ok(Res::Module(m))
}
