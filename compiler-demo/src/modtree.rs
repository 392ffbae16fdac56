//! The module tree: which modules exist, what each defines, and dense ids for both.
//!
//! Module paths come from file paths (`a/b.wd` is `a::b`, `main.wd` is the crate root);
//! a directory without a file of its own is an empty module. Modules are numbered in
//! sorted path order and items in file order, so every id is a function of the program
//! text alone.

use crate::ast::PathRoot;
use crate::diagnostics::Diag;
use crate::engine::Cx;
use crate::outline::OutlineKind;
use crate::queries as q;
use crate::source::FileId;
use std::collections::BTreeMap;

use rustc_hash::FxHashMap as HashMap;
use std::fmt;
use std::sync::Arc;

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct ModId(pub u32);

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct DefId(pub u32);

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct UseId(pub u32);

/// A query key naming an item; its `Debug` text is the item's path, which is what cycle
/// reports show. Keys compare by id and path: after an edit renames an item, or moves
/// another item to its id, the key is a new one, so no memo made for the old item
/// (which shows the old path in its value and its reports) answers for the new one.
///
/// One pointer wide (types, typed IR and memo slots hold many keys), and hashed by id
/// alone (equal keys have equal ids; the path would cost a string hash per request).
#[derive(Clone)]
pub struct DefKey(Arc<DefKeyData>);

/// What a [`DefKey`] names.
#[derive(Clone)]
pub struct DefKeyData {
    pub id: DefId,
    pub path: Arc<str>,
}

/// A query key naming a `use` declaration, shown as the path it imports; compared by
/// id and text, and as small, like [`DefKey`].
#[derive(Clone)]
pub struct UseKey(Arc<UseKeyData>);

/// What a [`UseKey`] names.
#[derive(Clone)]
pub struct UseKeyData {
    pub id: UseId,
    pub text: Arc<str>,
}

macro_rules! key_by_id_and_text {
    ($t:ident, $data:ident, $id:ty, $field:ident) => {
        impl $t {
            pub fn new(id: $id, $field: Arc<str>) -> Self {
                $t(Arc::new($data { id, $field }))
            }

            /// Gives the key its id (the module tree numbers items after making their
            /// keys); copies the key only if it was already shared.
            pub fn set_id(&mut self, id: $id) {
                Arc::make_mut(&mut self.0).id = id;
            }
        }
        impl std::ops::Deref for $t {
            type Target = $data;
            fn deref(&self) -> &$data {
                &self.0
            }
        }
        impl PartialEq for $t {
            fn eq(&self, other: &Self) -> bool {
                Arc::ptr_eq(&self.0, &other.0)
                    || (self.id == other.id
                        && (Arc::ptr_eq(&self.$field, &other.$field)
                            || self.$field == other.$field))
            }
        }
        impl Eq for $t {}
        impl std::hash::Hash for $t {
            fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
                self.id.hash(h);
            }
        }
        impl PartialOrd for $t {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }
        impl Ord for $t {
            /// By id first: within one program ids are distinct, so the text only
            /// orders keys of different revisions.
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                self.id
                    .cmp(&other.id)
                    .then_with(|| self.$field.cmp(&other.$field))
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.$field)
            }
        }
    };
}
key_by_id_and_text!(DefKey, DefKeyData, DefId, path);
key_by_id_and_text!(UseKey, UseKeyData, UseId, text);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefKind {
    Fn,
    Struct,
    Const,
    Alias,
}

impl DefKind {
    pub fn describe(self) -> &'static str {
        match self {
            DefKind::Fn => "function",
            DefKind::Struct => "struct",
            DefKind::Const => "constant",
            DefKind::Alias => "type alias",
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct ModuleData {
    /// Path segments from the crate root; empty for the root.
    pub path: Vec<Arc<str>>,
    pub file: Option<FileId>,
    /// Its file could not be read, so it may define names we do not know of: failed
    /// lookups in it are not reported (the unreadable file is).
    pub unreadable: bool,
    pub parent: Option<ModId>,
    pub children: BTreeMap<Arc<str>, ModId>,
    pub defs: Vec<DefId>,
    pub uses: Vec<UseId>,
}

impl ModuleData {
    /// `crate::a::b`, as shown in messages.
    pub fn display_path(&self) -> String {
        let mut s = String::from("crate");
        for seg in &self.path {
            s.push_str("::");
            s.push_str(seg);
        }
        s
    }
}

/// A definition. Where its name is written is not here (see `outline.rs`):
/// [`def_name_span`](crate::outline::def_name_span) reads it from the item's syntax.
#[derive(Debug, PartialEq, Eq)]
pub struct DefData {
    pub kind: DefKind,
    pub module: ModId,
    pub name: Arc<str>,
    pub is_pub: bool,
    /// Index of the item in its file's item list.
    pub item: u32,
    pub key: DefKey,
}

/// An import. Where it is written is not here (see `outline.rs`):
/// [`use_spans`](crate::outline::use_spans) reads it from the item's syntax.
#[derive(Debug, PartialEq, Eq)]
pub struct UseData {
    pub module: ModId,
    /// The bound name, or `None` for a glob.
    pub name: Option<Arc<str>>,
    /// How the imported path (for a glob, the module's) starts.
    pub root: PathRoot,
    /// The imported path's segments after its root.
    pub segments: Arc<[Arc<str>]>,
    pub is_pub: bool,
    pub item: u32,
    pub key: UseKey,
}

/// Every module, item and import in the program.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ModuleTree {
    pub modules: Vec<ModuleData>,
    pub defs: Vec<DefData>,
    pub uses: Vec<UseData>,
    pub diags: Vec<Diag>,
}

impl ModuleTree {
    pub fn module(&self, id: ModId) -> &ModuleData {
        &self.modules[id.0 as usize]
    }

    pub fn def(&self, id: DefId) -> &DefData {
        &self.defs[id.0 as usize]
    }

    pub fn use_(&self, id: UseId) -> &UseData {
        &self.uses[id.0 as usize]
    }

    pub const ROOT: ModId = ModId(0);

    /// Whether `inner` is `outer` or nested inside it.
    pub fn is_within(&self, inner: ModId, outer: ModId) -> bool {
        let mut m = Some(inner);
        while let Some(id) = m {
            if id == outer {
                return true;
            }
            m = self.module(id).parent;
        }
        false
    }

    /// The function `main` in the crate root, if there is one.
    pub fn main_fn(&self) -> Option<DefId> {
        let root = self.module(ModuleTree::ROOT);
        root.defs
            .iter()
            .copied()
            .find(|&d| self.def(d).kind == DefKind::Fn && &*self.def(d).name == "main")
    }
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !matches!(
            s,
            "fn" | "struct"
                | "const"
                | "type"
                | "use"
                | "pub"
                | "let"
                | "mut"
                | "if"
                | "else"
                | "while"
                | "return"
                | "true"
                | "false"
                | "as"
                | "crate"
                | "self"
                | "super"
        )
}

/// Module path of a file, or `None` when a segment is not an identifier.
fn module_path(file: &str) -> Option<Vec<Arc<str>>> {
    let stem = file.strip_suffix(".wd")?;
    if stem == "main" {
        return Some(Vec::new());
    }
    let segs: Vec<Arc<str>> = stem.split('/').map(Arc::from).collect();
    segs.iter().all(|s| is_ident(s)).then_some(segs)
}

/// Computes the module tree from every file's outline (files are parsed in parallel).
pub fn module_tree(cx: &Cx<'_>) -> ModuleTree {
    let files = cx.get_ref::<q::FileList>(&());
    // Largest files first (by the sizes hint): the workers share the files out as they
    // go, and a big file started last (a large `main.wd`, which sorts last) would keep
    // one worker busy while the others wait. The order changes nothing computed.
    // (Unset, as by an embedder that never heard of it, it orders nothing.)
    let sizes = cx.try_get::<q::FileSizes>(&()).unwrap_or_default();
    let size = |id: FileId| sizes.get(id.0 as usize).copied().unwrap_or(0);
    let mut ids: Vec<FileId> = (0..files.len() as u32).map(FileId).collect();
    ids.sort_by_key(|&id| (std::cmp::Reverse(size(id)), id));
    let mut outlines = vec![None; files.len()];
    for (id, outline) in ids
        .iter()
        .zip(cx.par_map(&ids, |cx, id| cx.get::<q::FileOutline>(id)))
    {
        outlines[id.0 as usize] = Some(outline);
    }
    let outlines: Vec<Arc<crate::outline::FileOutline>> = outlines
        .into_iter()
        .map(|o| o.expect("every file's outline was requested"))
        .collect();

    let mut tree = ModuleTree::default();
    let mut by_path: BTreeMap<Vec<Arc<str>>, Option<FileId>> = BTreeMap::new();
    by_path.insert(Vec::new(), None);
    for (i, path) in files.iter().enumerate() {
        match module_path(path) {
            Some(segs) => {
                for n in 1..segs.len() {
                    by_path.entry(segs[..n].to_vec()).or_insert(None);
                }
                by_path.insert(segs, Some(FileId(i as u32)));
            }
            None => tree.diags.push(
                Diag::error("E0583", format!("file `{path}` is not a valid module name"))
                    .note("module file and directory names must be identifiers and not keywords"),
            ),
        }
    }
    let index: HashMap<Vec<Arc<str>>, ModId> = by_path
        .keys()
        .enumerate()
        .map(|(i, p)| (p.clone(), ModId(i as u32)))
        .collect();
    for (path, file) in &by_path {
        let parent = (!path.is_empty()).then(|| index[&path[..path.len() - 1]]);
        tree.modules.push(ModuleData {
            path: path.clone(),
            file: *file,
            unreadable: file.is_some_and(|f| outlines[f.0 as usize].unreadable),
            parent,
            children: BTreeMap::new(),
            defs: Vec::new(),
            uses: Vec::new(),
        });
    }
    for m in 0..tree.modules.len() {
        if let Some(p) = tree.modules[m].parent {
            let name = tree.modules[m]
                .path
                .last()
                .cloned()
                .unwrap_or_else(|| Arc::from(""));
            tree.modules[p.0 as usize]
                .children
                .insert(name, ModId(m as u32));
        }
    }
    // Each module's definitions and imports (their keys' texts are most of the work),
    // made in parallel, then numbered in module order: ids as a serial loop gives them.
    let with_files: Vec<(ModId, FileId)> = tree
        .modules
        .iter()
        .enumerate()
        .filter_map(|(m, data)| data.file.map(|file| (ModId(m as u32), file)))
        .collect();
    let entries = cx.par_map(&with_files, |_, &(module, file)| {
        module_entries(
            &tree.modules[module.0 as usize],
            module,
            &outlines[file.0 as usize],
        )
    });
    for (&(module, _), entries) in with_files.iter().zip(entries) {
        let data = &mut tree.modules[module.0 as usize];
        for entry in entries {
            match entry {
                Entry::Def(mut def) => {
                    def.key.set_id(DefId(tree.defs.len() as u32));
                    data.defs.push(def.key.id);
                    tree.defs.push(def);
                }
                Entry::Use(mut import) => {
                    import.key.set_id(UseId(tree.uses.len() as u32));
                    data.uses.push(import.key.id);
                    tree.uses.push(import);
                }
            }
        }
    }
    if tree.modules[0].file.is_none() {
        tree.diags
            .push(Diag::error("E0601", "no `main.wd` crate root found"));
    }
    tree
}

/// One item of a module's file, complete but for its id (see `module_tree`).
enum Entry {
    Def(DefData),
    Use(UseData),
}

/// The definitions and imports of `module`'s file, in item order, with placeholder ids.
fn module_entries(
    data: &ModuleData,
    module: ModId,
    outline: &crate::outline::FileOutline,
) -> Vec<Entry> {
    let prefix: String = data.path.iter().map(|s| format!("{s}::")).collect();
    let module_name = data.display_path();
    outline
        .items
        .iter()
        .enumerate()
        .map(|(i, item)| match &item.kind {
            OutlineKind::Def(kind) => {
                let mut path = String::with_capacity(prefix.len() + item.name.len());
                path.push_str(&prefix);
                path.push_str(&item.name);
                Entry::Def(DefData {
                    kind: *kind,
                    module,
                    name: item.name.clone(),
                    is_pub: item.is_pub,
                    item: i as u32,
                    key: DefKey::new(DefId(u32::MAX), Arc::from(path)),
                })
            }
            OutlineKind::Use {
                binds,
                root,
                segments,
                written,
            } => Entry::Use(UseData {
                module,
                name: binds.clone(),
                root: *root,
                segments: segments.clone(),
                is_pub: item.is_pub,
                item: i as u32,
                key: UseKey::new(
                    UseId(u32::MAX),
                    Arc::from(format!("{module_name}::{{use {written}}}")),
                ),
            }),
        })
        .collect()
}
