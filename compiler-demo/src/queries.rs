//! Every stage of the front-end as a query.
//!
//! ```text
//! FileList, SourceText (inputs)
//!   -> Parse(file)                     files parsed in parallel by ModuleTree
//!   -> ModuleTree -> ModuleScope(mod) -> ResolveUse(use) / ResolvePath(mod, path)
//!   -> ExpandAlias(alias), StructFields(struct), StructLayout(struct), ConstEval(const)
//!   -> FnSignature(fn) -> TypeCheck(fn) -> Lower(fn) -> LinkedProgram
//! CrateDiagnostics gathers every query's diagnostics (bodies checked in parallel).
//! ```
//!
//! The queries that can close a cycle — `ExpandAlias`, `StructLayout`, `ConstEval` and
//! `ResolveUse` — implement `recover`: the engine unwinds every participant and each
//! stores a placeholder carrying the `Cycle`. `CrateDiagnostics` reports each distinct
//! cycle once, however many participants carry it.

use crate::ast::SourceModule;
use crate::bytecode::Program;
use crate::consteval::{self, ConstValue};
use crate::diagnostics::Diag;
use crate::engine::{Cx, Cycle, Input, Query};
use crate::modtree::{self, DefKey, ModId, UseKey};
use crate::resolve::{self, Binding, PathKey, Res, ResolveError, Scope, UseResult, Vis};
use crate::source::FileId;
use crate::typeck::{self, CheckedFn, Signature};
use crate::types::{self, AliasValue, Layout, StructFields as Fields, Ty};
use std::sync::Arc;

/// Input: the program's file paths, relative and sorted; a file's index is its id.
pub struct FileList;
impl Input for FileList {
    type Key = ();
    type Value = Arc<Vec<String>>;
    const NAME: &'static str = "file_list";
}

/// Input: a file's text; `None` when it is not valid UTF-8.
pub struct SourceText;
impl Input for SourceText {
    type Key = FileId;
    type Value = Option<Arc<str>>;
    const NAME: &'static str = "source_text";
}

/// A parsed file and its syntax errors.
#[derive(Debug, Default)]
pub struct Parsed {
    pub module: SourceModule,
    pub diags: Vec<Diag>,
    /// The file could not be read as text, so what it defines is unknown.
    pub unreadable: bool,
}

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
}

pub struct ModuleTree;
impl Query for ModuleTree {
    type Key = ();
    type Value = Arc<modtree::ModuleTree>;
    const NAME: &'static str = "module_tree";
    fn compute(cx: &Cx<'_>, _: &()) -> Self::Value {
        Arc::new(modtree::module_tree(cx))
    }
}

pub struct ModuleScope;
impl Query for ModuleScope {
    type Key = ModId;
    type Value = Arc<Scope>;
    const NAME: &'static str = "module_scope";
    fn compute(cx: &Cx<'_>, m: &ModId) -> Self::Value {
        Arc::new(resolve::module_scope(cx, *m))
    }
}

pub struct ResolvePath;
impl Query for ResolvePath {
    type Key = PathKey;
    type Value = Result<Binding, ResolveError>;
    const NAME: &'static str = "resolve_path";
    fn compute(cx: &Cx<'_>, key: &PathKey) -> Self::Value {
        resolve::resolve_path(cx, key)
    }
    /// A path on an import cycle; the `ResolveUse` participants report it.
    fn recover(_: &Cx<'_>, _: &PathKey, _: &Cycle) -> Option<Self::Value> {
        Some(Ok(Binding::ERR))
    }
}

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
}

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
}

pub struct StructFields;
impl Query for StructFields {
    type Key = DefKey;
    type Value = Arc<Fields>;
    const NAME: &'static str = "struct_fields";
    fn compute(cx: &Cx<'_>, key: &DefKey) -> Self::Value {
        Arc::new(types::struct_fields(cx, key))
    }
}

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
}

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
}

pub struct FnSignature;
impl Query for FnSignature {
    type Key = DefKey;
    type Value = Arc<Signature>;
    const NAME: &'static str = "fn_signature";
    fn compute(cx: &Cx<'_>, key: &DefKey) -> Self::Value {
        Arc::new(typeck::fn_signature(cx, key))
    }
}

pub struct TypeCheck;
impl Query for TypeCheck {
    type Key = DefKey;
    type Value = Arc<CheckedFn>;
    const NAME: &'static str = "type_check";
    fn compute(cx: &Cx<'_>, key: &DefKey) -> Self::Value {
        Arc::new(typeck::type_check(cx, key))
    }
}

pub struct Lower;
impl Query for Lower {
    type Key = DefKey;
    type Value = Option<Arc<crate::bytecode::Function>>;
    const NAME: &'static str = "lower";
    fn compute(cx: &Cx<'_>, key: &DefKey) -> Self::Value {
        crate::lower::lower_fn(cx, key)
    }
}

pub struct LinkedProgram;
impl Query for LinkedProgram {
    type Key = ();
    type Value = Option<Arc<Program>>;
    const NAME: &'static str = "linked_program";
    fn compute(cx: &Cx<'_>, _: &()) -> Self::Value {
        crate::lower::link(cx)
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
