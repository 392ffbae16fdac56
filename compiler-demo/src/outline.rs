//! What the later stages read of a parsed file, in pieces small enough that an edit
//! re-executes only the queries that read a piece it changed (see `session.rs`).
//!
//! - `FileOutline(file)`: each item's kind, name and visibility, and for an import the
//!   path it names, without spans. The module tree is built from outlines alone, so an
//!   edit that renames, adds or removes no item and changes no `pub` or import leaves
//!   it equal, even when the edit moves every later item of the file.
//! - `ItemSyntax(file, index)`: one item's syntax tree. Every query about an item reads
//!   its item's syntax, never the whole file's, so an edit inside one function body
//!   re-executes that function's queries. The items after it in the file re-execute
//!   only when the edit moved them (their spans are part of their syntax).
//!
//! The spans of item names and imports are therefore not in the module tree: a
//! diagnostic that needs one reads it from the item's syntax ([`def_name_span`],
//! [`use_spans`], [`use_path`]), which makes that diagnostic's query depend on the
//! item's syntax, and only that query.

use crate::ast::{Ident, Item, ItemKind, Path, PathRoot, UseKind};
use crate::engine::Cx;
use crate::modtree::{DefId, DefKind, ModId, ModuleTree, UseId};
use crate::queries::{self as q, Parsed};
use crate::source::{FileId, Span};
use std::sync::Arc;

/// What the module tree needs of one file.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FileOutline {
    /// The file's items, in file order.
    pub items: Vec<ItemOutline>,
    /// The file could not be read as text (see [`Parsed::unreadable`]).
    pub unreadable: bool,
}

/// One item of a [`FileOutline`].
#[derive(Debug, PartialEq, Eq)]
pub struct ItemOutline {
    /// The bound name (for a glob import, `*`).
    pub name: Arc<str>,
    /// Declared `pub`.
    pub is_pub: bool,
    /// What it defines or imports.
    pub kind: OutlineKind,
}

/// Whether an outlined item defines something or imports something.
#[derive(Debug, PartialEq, Eq)]
pub enum OutlineKind {
    /// A function, struct, constant or type alias.
    Def(DefKind),
    /// An import.
    Use {
        /// The name it binds; `None` for a glob.
        binds: Option<Arc<str>>,
        /// How the imported path (for a glob, the module's) starts.
        root: PathRoot,
        /// The imported path's segments after its root.
        segments: Arc<[Arc<str>]>,
        /// The imported path as written, with a glob's `::*`.
        written: String,
    },
}

/// The outline of a parsed file; the body of the `FileOutline` query.
pub fn file_outline(parsed: &Parsed) -> FileOutline {
    let items = parsed
        .module
        .items
        .iter()
        .map(|item| {
            let kind = match &item.kind {
                ItemKind::Fn(_) => OutlineKind::Def(DefKind::Fn),
                ItemKind::Struct(_) => OutlineKind::Def(DefKind::Struct),
                ItemKind::Const(..) => OutlineKind::Def(DefKind::Const),
                ItemKind::Alias(_) => OutlineKind::Def(DefKind::Alias),
                ItemKind::Use(u) => {
                    let (binds, written) = match &u.kind {
                        UseKind::Single(n) => (Some(n.name.clone()), u.path.text()),
                        UseKind::Glob => (None, format!("{}::*", u.path.text())),
                    };
                    OutlineKind::Use {
                        binds,
                        root: u.path.root,
                        segments: u.path.segments.iter().map(|s| s.name.clone()).collect(),
                        written,
                    }
                }
            };
            ItemOutline {
                name: item.name.name.clone(),
                is_pub: item.is_pub,
                kind,
            }
        })
        .collect();
    FileOutline {
        items,
        unreadable: parsed.unreadable,
    }
}

/// Names one item of one file: the key of `ItemSyntax`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ItemRef {
    /// The file the item is in.
    pub file: FileId,
    /// The item's index in its file's item list.
    pub index: u32,
}

/// The syntax of item `index` of module `m`'s file, if it has one.
pub fn item_syntax(cx: &Cx<'_>, tree: &ModuleTree, m: ModId, index: u32) -> Option<Arc<Item>> {
    let file = tree.module(m).file?;
    cx.get_ref::<q::ItemSyntax>(&ItemRef { file, index })
        .clone()
}

/// Where definition `d`'s name is written.
pub fn def_name_span(cx: &Cx<'_>, tree: &ModuleTree, d: DefId) -> Span {
    let def = tree.def(d);
    item_syntax(cx, tree, def.module, def.item).map_or_else(Span::default, |i| i.name.span)
}

/// Where an import is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UseSpans {
    /// The bound name (the `*` of a glob).
    pub name: Span,
    /// The imported path, with a glob's `::*`.
    pub path: Span,
}

/// Where import `u` is written.
pub fn use_spans(cx: &Cx<'_>, tree: &ModuleTree, u: UseId) -> UseSpans {
    let data = tree.use_(u);
    let item = item_syntax(cx, tree, data.module, data.item);
    match item.as_deref() {
        Some(Item {
            name,
            kind: ItemKind::Use(decl),
            ..
        }) => UseSpans {
            name: name.span,
            path: match decl.kind {
                UseKind::Single(_) => decl.path.span,
                UseKind::Glob => decl.path.span.to(name.span),
            },
        },
        _ => UseSpans {
            name: Span::default(),
            path: Span::default(),
        },
    }
}

/// The path import `u` names, as written (for a glob, the module's path). Read from
/// the import's syntax, so only a diagnostic should need it: what the path names
/// is in the module tree.
pub fn use_path(cx: &Cx<'_>, tree: &ModuleTree, u: UseId) -> Path {
    let data = tree.use_(u);
    match item_syntax(cx, tree, data.module, data.item).as_deref() {
        Some(Item {
            kind: ItemKind::Use(decl),
            ..
        }) => decl.path.clone(),
        // Unreachable: the tree and the syntax come from the same parse.
        _ => Path {
            root: data.root,
            segments: data
                .segments
                .iter()
                .map(|name| Ident {
                    name: name.clone(),
                    span: Span::default(),
                })
                .collect(),
            span: Span::default(),
        },
    }
}
