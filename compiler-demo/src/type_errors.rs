//! The type checker's diagnostics that explain themselves with more than one span:
//! wrong argument counts, missing struct fields, assignments to immutable bindings.
//! Worded and labelled as rustc does, so a rustc user reads them the same way.

use crate::diagnostics::{Diag, Label, Level};
use crate::source::Span;
use crate::types::Ty;

/// "two", "three", ... as rustc counts arguments in messages.
fn count_word(n: usize) -> String {
    match n {
        2 => "two".into(),
        3 => "three".into(),
        4 => "four".into(),
        n => n.to_string(),
    }
}

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

/// `a`, `a` and `b`, `a`, `b` and `c`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The function being called, for E0061.
pub struct Callee<'a> {
    pub name_span: Span,
    pub params: &'a [(std::sync::Arc<str>, Ty)],
    /// Where each parameter is written (`name: type`), if known.
    pub param_spans: Vec<Span>,
}

/// The call's arguments, for E0061: their spans and types.
pub struct CallArgs<'a> {
    pub path: Span,
    /// From the `(` to the `)`.
    pub parens: Span,
    pub args: &'a [(Span, Ty)],
}

/// E0061: the call supplies too few or too many arguments. Points at the callee, says
/// which arguments are missing (or extra), and shows the definition.
pub fn arg_count(callee: &Callee, call: &CallArgs) -> Diag {
    let (want, got) = (callee.params.len(), call.args.len());
    let mut d = Diag::error(
        "E0061",
        format!(
            "this function takes {} but {} {} supplied",
            plural(want, "argument"),
            plural(got, "argument"),
            if got == 1 { "was" } else { "were" }
        ),
    )
    .at(call.path, "");
    if got < want {
        let missing = &callee.params[got..];
        let label = match missing {
            [(_, ty)] => format!("argument #{} of type `{ty}` is missing", got + 1),
            _ => {
                let types: Vec<String> = missing.iter().map(|(_, t)| format!("`{t}`")).collect();
                format!(
                    "{} arguments of type {} are missing",
                    count_word(missing.len()),
                    and_list(&types)
                )
            }
        };
        d = d.with_secondary(call.parens, label);
    } else {
        for (i, (span, ty)) in call.args.iter().enumerate().skip(want) {
            let label = match ty {
                Ty::Error | Ty::Never => format!("unexpected argument #{}", i + 1),
                ty => format!("unexpected argument #{} of type `{ty}`", i + 1),
            };
            d = d.with_secondary(*span, label);
        }
    }
    let mut labels = vec![Label {
        span: callee.name_span,
        text: String::new(),
        primary: true,
    }];
    for &span in callee.param_spans.iter().skip(got) {
        labels.push(Label {
            span,
            text: String::new(),
            primary: false,
        });
    }
    d.child(Level::Note, "function defined here", labels)
}

/// E0063: a struct literal leaves fields out; names them, as rustc does, up to three.
pub fn missing_fields(missing: &[&str], struct_name: &str, path: Span) -> Diag {
    let quoted: Vec<String> = missing.iter().map(|n| format!("`{n}`")).collect();
    let listed = if quoted.len() <= 3 {
        and_list(&quoted)
    } else {
        let rest = quoted.len() - 3;
        format!(
            "{} and {}",
            quoted[..3].join(", "),
            plural(rest, "other field")
        )
    };
    let fields = if missing.len() == 1 {
        "field"
    } else {
        "fields"
    };
    Diag::error(
        "E0063",
        format!("missing {fields} {listed} in initializer of `{struct_name}`"),
    )
    .at(path, format!("missing {listed}"))
}

/// How the local assigned to was bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalKind {
    Param,
    Let { mutable: bool },
}

/// An assignment to a local that is not `let mut` (E0384), or to a field of one
/// (E0594). `place` is `x` or `x.f.g`; `decl` is where `x` is bound.
pub fn assign_to_immutable(
    name: &str,
    place: &str,
    kind: LocalKind,
    decl: Span,
    assignment: Span,
) -> Diag {
    let whole = place == name;
    let d = match (whole, kind) {
        (true, LocalKind::Param) => Diag::error(
            "E0384",
            format!("cannot assign to immutable argument `{name}`"),
        )
        .at(assignment, "cannot assign to immutable argument"),
        (true, _) => Diag::error(
            "E0384",
            format!("cannot assign twice to immutable variable `{name}`"),
        )
        .at(assignment, "cannot assign twice to immutable variable")
        .with_secondary(decl, format!("first assignment to `{name}`")),
        (false, _) => Diag::error(
            "E0594",
            format!("cannot assign to `{place}`, as `{name}` is not declared as mutable"),
        )
        .at(assignment, "cannot assign"),
    };
    match kind {
        LocalKind::Param => d.help(format!(
            "parameters are immutable: copy it into a binding first, `let mut {name} = {name};`"
        )),
        LocalKind::Let { .. } => d.help(format!(
            "consider making this binding mutable: `let mut {name}`"
        )),
    }
}
