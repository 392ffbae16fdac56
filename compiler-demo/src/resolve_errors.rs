//! Resolution errors, as values and as rustc-worded diagnostics.
//!
//! Resolution returns a `ResolveError` (memoized with the path); whoever wrote the path
//! turns it into a diagnostic at its own span with `error_diag`, worded for how the
//! path is used (an import, a type, a value, a call).

use crate::ast::{Ident, Path};
use crate::diagnostics::Diag;
use crate::engine::Cx;
use crate::modtree::{DefId, ModuleTree, UseId};
use crate::outline::{def_name_span, use_spans};
use crate::resolve::{describe_res, PathUse, Res};
use crate::source::Span;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResolveError {
    /// Segment `seg` was not found (in module `in_mod`, or in scope when `None`).
    NotFound {
        seg: usize,
        in_mod: Option<String>,
    },
    /// Segment `seg` names `what` (a `kind`: "function", "import", ...), declared or
    /// imported at `defined_at`, which the path's module may not name. For an import
    /// that is hidden because what it names is, `refers_to` is that and where.
    Private {
        seg: usize,
        kind: String,
        what: String,
        defined_at: Span,
        refers_to: Option<(String, Span)>,
    },
    NotAModule {
        seg: usize,
        what: String,
    },
    SuperAtRoot,
    /// Segment `seg` is brought in by several globs: each candidate with the span of
    /// the glob import that brings it.
    Ambiguous {
        seg: usize,
        candidates: Vec<(String, Span)>,
    },
}

/// An entry that a module may not name: what it is and where it is declared.
pub(crate) struct Hidden {
    pub(crate) kind: String,
    pub(crate) what: String,
    pub(crate) defined_at: Span,
    pub(crate) refers_to: Option<(String, Span)>,
}

fn kind_of(tree: &ModuleTree, res: Res) -> &'static str {
    match res {
        Res::Def(d) => tree.def(d).kind.describe(),
        Res::Module(_) => "module",
        Res::Err => "item",
    }
}

impl Hidden {
    /// An item that is not visible where it is named.
    pub(crate) fn item(cx: &Cx<'_>, tree: &ModuleTree, res: Res) -> Hidden {
        Hidden {
            kind: kind_of(tree, res).to_string(),
            what: describe_res(tree, res),
            defined_at: def_span(cx, tree, res),
            refers_to: None,
        }
    }

    /// An import, visible itself, that names something not visible where it is named.
    pub(crate) fn import_of(cx: &Cx<'_>, tree: &ModuleTree, u: UseId, res: Res) -> Hidden {
        let data = tree.use_(u);
        let kind = format!("{} import", kind_of(tree, res));
        let name = data.name.as_deref().unwrap_or("*");
        Hidden {
            what: format!("{kind} `{name}`"),
            kind,
            defined_at: use_spans(cx, tree, u).name,
            refers_to: Some((describe_res(tree, res), def_span(cx, tree, res))),
        }
    }

    pub(crate) fn at(self, seg: usize) -> ResolveError {
        ResolveError::Private {
            seg,
            kind: self.kind,
            what: self.what,
            defined_at: self.defined_at,
            refers_to: self.refers_to,
        }
    }
}

/// Where a definition's name is written (nothing for modules and errors).
pub(crate) fn def_span(cx: &Cx<'_>, tree: &ModuleTree, res: Res) -> Span {
    match res {
        Res::Def(d) => def_name_span(cx, tree, d),
        _ => Span::default(),
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
        ResolveError::Private {
            seg,
            kind,
            what,
            defined_at,
            refers_to,
        } => {
            let d = Diag::error("E0603", format!("{what} is private"))
                .at(span_of(*seg), format!("private {kind}"));
            match refers_to {
                None => d.note_at(*defined_at, format!("the {what} is defined here")),
                Some((target, at)) => d
                    .note_at(*defined_at, format!("the {what} is defined here..."))
                    .note_at(
                        *at,
                        format!("...and refers to the {target} which is defined here"),
                    ),
            }
        }
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
            let name = name_of(*seg);
            let mut d = Diag::error("E0659", format!("`{name}` is ambiguous"))
                .at(span_of(*seg), "ambiguous name")
                .note("ambiguous because of multiple glob imports of a name in the same module");
            for (i, (what, glob)) in candidates.iter().enumerate() {
                let also = if i == 0 { "" } else { "also " };
                d = d
                    .note_at(
                        *glob,
                        format!("`{name}` could {also}refer to the {what} imported here"),
                    )
                    .help(format!(
                        "consider adding an explicit import of `{name}` to disambiguate"
                    ));
            }
            d
        }
    }
}

/// `pub use` of something less than public (E0364). The import still binds the name,
/// at the narrower visibility, so other modules get E0603 rather than a leak.
pub(crate) fn reexport_of_private(cx: &Cx<'_>, tree: &ModuleTree, d: DefId, at: Span) -> Diag {
    let def = tree.def(d);
    Diag::error(
        "E0364",
        format!("`{}` is private, and cannot be re-exported", def.name),
    )
    .at(at, format!("re-export of private {}", def.kind.describe()))
    .note_at(
        def_name_span(cx, tree, d),
        format!(
            "consider marking `{}` as `pub` where it is defined",
            def.name
        ),
    )
}
