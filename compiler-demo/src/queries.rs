//! Every stage of the front-end as a query.
//!
//! ```text
//! FileList, SourceText (inputs)
//!   -> Parse(file)                     files parsed in parallel by ModuleTree
//!   -> FileOutline(file) -> ModuleTree, and ItemSyntax(file, item)  (see outline.rs)
//!   -> ModuleScope(mod) -> ResolveUse(use) / ResolvePath(mod, path)
//!   -> ExpandAlias(alias), StructFields(struct), StructLayout(struct), ConstEval(const)
//!   -> FnSignature(fn) -> TypeCheck(fn) -> Lower(fn) (with FunctionIndex) -> LinkedProgram
//! ModuleDiagnostics(mod) gathers the diagnostics of a module's queries (bodies checked
//! in parallel); CrateDiagnostics merges every module's.
//! ```
//!
//! On an incremental engine (`session.rs`), every query whose value a later query reads
//! implements `same` as exact equality (spans included, `Arc`s by their contents): a
//! re-executed query whose value did not change keeps its old one, and what read it is
//! not re-executed (early cutoff). The two roots, `CrateDiagnostics` and
//! `LinkedProgram`, have no readers, so they keep the default.
//!
//! The queries that can close a cycle — `ExpandAlias`, `StructLayout`, `ConstEval` and
//! `ResolveUse` — implement `recover`: the engine unwinds every participant and each
//! stores a placeholder carrying the `Cycle`. `CrateDiagnostics` reports each distinct
//! cycle once, however many participants carry it.

use crate::ast::{Item, SourceModule};
use crate::bytecode::Program;
use crate::collect::ModuleReport;
use crate::consteval::{self, ConstValue};
use crate::diagnostics::Diag;
use crate::engine::{Cx, Cycle, Input, Query};
use crate::modtree::{self, DefId, DefKey, ModId, UseKey};
use crate::outline::{self, ItemRef};
use crate::resolve::{self, Binding, PathKey, Res, ResolveError, Scope, UseResult, Vis};
use crate::source::FileId;
use crate::typeck::{self, CheckedFn, Signature};
use crate::types::{self, AliasValue, Layout, StructFields as Fields, Ty};
use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;

/// Input: the program's file paths, relative and sorted; a file's index is its id.
pub struct FileList;
impl Input for FileList {
    type Key = ();
    type Value = Arc<Vec<String>>;
    const NAME: &'static str = "file_list";
}

/// Input: each file's length in bytes (in id order) when the file list was last set. A
/// scheduling hint only (the module tree outlines the largest files first): it is
/// deliberately not updated when a file is edited, so an edit does not invalidate what
/// reads it, and nothing computed may depend on its values.
pub struct FileSizes;
impl Input for FileSizes {
    type Key = ();
    type Value = Arc<Vec<usize>>;
    const NAME: &'static str = "file_sizes";
}

/// Input: whether type checking keeps each function's typed IR for lowering (`build`
/// and `run` set it `true`). `check` sets it `false`, so its memos hold diagnostics but
/// no IR, as rustc's `check` builds no MIR for code generation. Set it on every engine:
/// unset reads as `false`, but through the input's error, which costs a lock per read.
pub struct EmitCode;
impl Input for EmitCode {
    type Key = ();
    type Value = bool;
    const NAME: &'static str = "emit_code";
}

/// Input: a file's text; `None` when it is not valid UTF-8.
pub struct SourceText;
impl Input for SourceText {
    type Key = FileId;
    type Value = Option<Arc<str>>;
    const NAME: &'static str = "source_text";
}

/// Early cutoff for a shared value: the same allocation, or equal contents.
fn same_arc<T: PartialEq + ?Sized>(old: &Arc<T>, new: &Arc<T>) -> bool {
    Arc::ptr_eq(old, new) || **old == **new
}

/// [`same_arc`] for a value that may be absent.
fn same_opt_arc<T: PartialEq + ?Sized>(old: &Option<Arc<T>>, new: &Option<Arc<T>>) -> bool {
    match (old, new) {
        (Some(old), Some(new)) => same_arc(old, new),
        (None, None) => true,
        _ => false,
    }
}

/// A parsed file and its syntax errors.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    /// The file's items.
    pub module: SourceModule,
    /// Its lexing and syntax errors.
    pub diags: Vec<Diag>,
    /// The file could not be read as text, so what it defines is unknown.
    pub unreadable: bool,
}

/// A file's syntax tree and syntax errors.
pub struct Parse;
impl Query for Parse {
    type Key = FileId;
    type Value = Arc<Parsed>;
    const NAME: &'static str = "parse";
    fn compute(cx: &Cx<'_>, file: &FileId) -> Self::Value {
        let Some(text) = cx.get::<SourceText>(file) else {
            let path = cx.get::<FileList>(&()).get(file.0 as usize).cloned();
            let d = Diag::plain(format!(
                "couldn't read `{}`: stream did not contain valid UTF-8",
                path.unwrap_or_default()
            ));
            return Arc::new(Parsed {
                module: SourceModule::default(),
                diags: vec![d],
                unreadable: true,
            });
        };
        let (module, diags) = crate::parser::parse_file(*file, &text);
        Arc::new(Parsed {
            module,
            diags,
            unreadable: false,
        })
    }
    fn same(old: &Self::Value, new: &Self::Value) -> bool {
        same_arc(old, new)
    }
}

/// What the module tree needs of a file: its items' names and kinds, without spans.
pub struct FileOutline;
impl Query for FileOutline {
    type Key = FileId;
    type Value = Arc<outline::FileOutline>;
    const NAME: &'static str = "file_outline";
    fn compute(cx: &Cx<'_>, file: &FileId) -> Self::Value {
        Arc::new(outline::file_outline(cx.get_ref::<Parse>(file)))
    }
    fn same(old: &Self::Value, new: &Self::Value) -> bool {
        same_arc(old, new)
    }
}

/// One item's syntax (`None` past the end of its file's items).
pub struct ItemSyntax;
impl Query for ItemSyntax {
    type Key = ItemRef;
    type Value = Option<Arc<Item>>;
    const NAME: &'static str = "item_syntax";
    fn compute(cx: &Cx<'_>, at: &ItemRef) -> Self::Value {
        let parsed = cx.get_ref::<Parse>(&at.file);
        parsed.module.items.get(at.index as usize).cloned()
    }
    fn same(old: &Self::Value, new: &Self::Value) -> bool {
        same_opt_arc(old, new)
    }
}

/// Every module, item and import of the program.
pub struct ModuleTree;
impl Query for ModuleTree {
    type Key = ();
    type Value = Arc<modtree::ModuleTree>;
    const NAME: &'static str = "module_tree";
    fn compute(cx: &Cx<'_>, _: &()) -> Self::Value {
        Arc::new(modtree::module_tree(cx))
    }
    fn same(old: &Self::Value, new: &Self::Value) -> bool {
        same_arc(old, new)
    }
}

/// The names a module declares, and its glob imports.
pub struct ModuleScope;
impl Query for ModuleScope {
    type Key = ModId;
    type Value = Arc<Scope>;
    const NAME: &'static str = "module_scope";
    fn compute(cx: &Cx<'_>, m: &ModId) -> Self::Value {
        Arc::new(resolve::module_scope(cx, *m))
    }
    fn same(old: &Self::Value, new: &Self::Value) -> bool {
        same_arc(old, new)
    }
}

/// What a path written in a module names.
pub struct ResolvePath;
impl Query for ResolvePath {
    type Key = PathKey;
    /// The error is boxed: most paths resolve, and this table holds one slot per path.
    type Value = Result<Binding, Box<ResolveError>>;
    const NAME: &'static str = "resolve_path";
    fn compute(cx: &Cx<'_>, key: &PathKey) -> Self::Value {
        resolve::resolve_path(cx, key).map_err(Box::new)
    }
    /// A path on an import cycle; the `ResolveUse` participants report it.
    fn recover(_: &Cx<'_>, _: &PathKey, _: &Cycle) -> Option<Self::Value> {
        Some(Ok(Binding::ERR))
    }
    fn same(old: &Self::Value, new: &Self::Value) -> bool {
        old == new
    }
}

/// What a `use` declaration imports.
pub struct ResolveUse;
impl Query for ResolveUse {
    type Key = UseKey;
    type Value = Arc<UseResult>;
    const NAME: &'static str = "resolve_use";
    fn compute(cx: &Cx<'_>, key: &UseKey) -> Self::Value {
        Arc::new(resolve::resolve_use(cx, key.id))
    }
    fn recover(_: &Cx<'_>, _: &UseKey, cycle: &Cycle) -> Option<Self::Value> {
        Some(Arc::new(UseResult {
            res: Res::Err,
            vis: Vis::Public,
            diags: Vec::new(),
            cycle: Some(cycle.clone()),
        }))
    }
    fn same(old: &Self::Value, new: &Self::Value) -> bool {
        same_arc(old, new)
    }
}

/// A type alias's expansion.
pub struct ExpandAlias;
impl Query for ExpandAlias {
    type Key = DefKey;
    type Value = Arc<AliasValue>;
    const NAME: &'static str = "expand_alias";
    fn compute(cx: &Cx<'_>, key: &DefKey) -> Self::Value {
        Arc::new(types::expand_alias(cx, key))
    }
    fn recover(_: &Cx<'_>, _: &DefKey, cycle: &Cycle) -> Option<Self::Value> {
        Some(Arc::new(AliasValue {
            ty: Ty::Error,
            diags: Vec::new(),
            cycle: Some(cycle.clone()),
        }))
    }
    fn same(old: &Self::Value, new: &Self::Value) -> bool {
        same_arc(old, new)
    }
}

/// A struct's fields and their types.
pub struct StructFields;
impl Query for StructFields {
    type Key = DefKey;
    type Value = Arc<Fields>;
    const NAME: &'static str = "struct_fields";
    fn compute(cx: &Cx<'_>, key: &DefKey) -> Self::Value {
        Arc::new(types::struct_fields(cx, key))
    }
    fn same(old: &Self::Value, new: &Self::Value) -> bool {
        same_arc(old, new)
    }
}

/// A struct's size.
pub struct StructLayout;
impl Query for StructLayout {
    type Key = DefKey;
    type Value = Layout;
    const NAME: &'static str = "struct_layout";
    fn compute(cx: &Cx<'_>, key: &DefKey) -> Self::Value {
        types::struct_layout(cx, key)
    }
    fn recover(_: &Cx<'_>, _: &DefKey, cycle: &Cycle) -> Option<Self::Value> {
        Some(Layout {
            size: 0,
            cycle: Some(cycle.clone()),
        })
    }
    fn same(old: &Self::Value, new: &Self::Value) -> bool {
        old == new
    }
}

/// A constant's type and value.
pub struct ConstEval;
impl Query for ConstEval {
    type Key = DefKey;
    type Value = Arc<ConstValue>;
    const NAME: &'static str = "const_eval";
    fn compute(cx: &Cx<'_>, key: &DefKey) -> Self::Value {
        Arc::new(consteval::const_eval(cx, key))
    }
    fn recover(_: &Cx<'_>, _: &DefKey, cycle: &Cycle) -> Option<Self::Value> {
        Some(Arc::new(ConstValue {
            ty: Ty::Error,
            value: None,
            diags: Vec::new(),
            cycle: Some(cycle.clone()),
        }))
    }
    fn same(old: &Self::Value, new: &Self::Value) -> bool {
        same_arc(old, new)
    }
}

/// A function's parameter and return types.
pub struct FnSignature;
impl Query for FnSignature {
    type Key = DefKey;
    type Value = Arc<Signature>;
    const NAME: &'static str = "fn_signature";
    fn compute(cx: &Cx<'_>, key: &DefKey) -> Self::Value {
        Arc::new(typeck::fn_signature(cx, key))
    }
    fn same(old: &Self::Value, new: &Self::Value) -> bool {
        same_arc(old, new)
    }
}

/// A function body, type-checked into typed IR.
pub struct TypeCheck;
impl Query for TypeCheck {
    type Key = DefKey;
    type Value = Arc<CheckedFn>;
    const NAME: &'static str = "type_check";
    fn compute(cx: &Cx<'_>, key: &DefKey) -> Self::Value {
        Arc::new(typeck::type_check(cx, key))
    }
    fn same(old: &Self::Value, new: &Self::Value) -> bool {
        same_arc(old, new)
    }
}

/// A checked function's bytecode (calls not yet linked).
pub struct Lower;
impl Query for Lower {
    type Key = DefKey;
    type Value = Option<Arc<crate::bytecode::Function>>;
    const NAME: &'static str = "lower";
    fn compute(cx: &Cx<'_>, key: &DefKey) -> Self::Value {
        crate::lower::lower_fn(cx, key)
    }
    fn same(old: &Self::Value, new: &Self::Value) -> bool {
        same_opt_arc(old, new)
    }
}

/// Each function's index in the linked program (functions in id order).
pub struct FunctionIndex;
impl Query for FunctionIndex {
    type Key = ();
    type Value = Arc<HashMap<DefId, u32>>;
    const NAME: &'static str = "function_index";
    fn compute(cx: &Cx<'_>, _: &()) -> Self::Value {
        Arc::new(crate::lower::function_index(cx))
    }
    fn same(old: &Self::Value, new: &Self::Value) -> bool {
        same_arc(old, new)
    }
}

/// Every function's bytecode, linked into a program.
pub struct LinkedProgram;
impl Query for LinkedProgram {
    type Key = ();
    type Value = Option<Arc<Program>>;
    const NAME: &'static str = "linked_program";
    fn compute(cx: &Cx<'_>, _: &()) -> Self::Value {
        crate::lower::link(cx)
    }
}

/// One module's diagnostics and cycle participations (see `collect.rs`).
pub struct ModuleDiagnostics;
impl Query for ModuleDiagnostics {
    type Key = ModId;
    type Value = Arc<ModuleReport>;
    const NAME: &'static str = "module_diagnostics";
    fn compute(cx: &Cx<'_>, m: &ModId) -> Self::Value {
        Arc::new(crate::collect::module_diagnostics(cx, *m))
    }
    fn same(old: &Self::Value, new: &Self::Value) -> bool {
        same_arc(old, new)
    }
}

/// Every diagnostic of the program, sorted and deduplicated.
pub struct CrateDiagnostics;
impl Query for CrateDiagnostics {
    type Key = ();
    type Value = Arc<Vec<Diag>>;
    const NAME: &'static str = "crate_diagnostics";
    fn compute(cx: &Cx<'_>, _: &()) -> Self::Value {
        Arc::new(crate::collect::crate_diagnostics(cx))
    }
}
