//! Parser unit tests.

use super::parse_file;
use crate::ast::*;
use crate::diagnostics::Diag;
use crate::source::FileId;

fn parse(text: &str) -> (SourceModule, Vec<Diag>) {
    parse_file(FileId(0), text)
}

#[test]
fn parses_every_item_kind() {
    let (m, d) = parse(
        "pub fn f(a: i64, b: bool) -> i64 { let mut x: i64 = a * 2 + 1; x = -x; \
         if b && !false { x } else { 0 } }\n\
         struct P { x: i64, y: Q }\nconst C: i64 = 1 + 2;\ntype T = crate::a::B;\n\
         use super::super::x as y;\nuse self::m::*;",
    );
    assert!(d.is_empty(), "{d:?}");
    assert_eq!(m.items.len(), 6);
}

#[test]
fn precedence_is_conventional() {
    let (m, _) = parse("const C: i64 = 1 + 2 * 3 - 4;");
    let ItemKind::Const(_, e) = &m.items[0].kind else {
        panic!("not a const")
    };
    let ExprKind::Binary(BinOp::Sub, lhs, _) = &e.kind else {
        panic!("top is not `-`: {e:?}")
    };
    assert!(matches!(lhs.kind, ExprKind::Binary(BinOp::Add, ..)));
}

#[test]
fn one_mistake_gives_one_diagnostic() {
    let (m, d) = parse(
        "fn f() -> i64 { let x = 1 +; let y = 2; y }\nfn g() -> i64 { 3 }\nstruct S { a i64 }\nfn h() {}",
    );
    assert_eq!(d.len(), 2, "{d:?}");
    // The broken struct is kept, its field with an error type.
    assert_eq!(m.items.len(), 4);
}

#[test]
fn a_broken_parameter_keeps_its_function_and_arity() {
    let (m, d) = parse("fn f(a: i64, b i64, c: bool) -> i64 { a }\nfn g() {}");
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(m.items.len(), 2);
    let ItemKind::Fn(decl) = &m.items[0].kind else {
        panic!("not a function")
    };
    assert_eq!(decl.params.len(), 3);
    assert!(matches!(decl.params[1].ty, TypeExpr::Error(_)));
    assert!(!m.items[0].incomplete);
}

#[test]
fn a_lost_parameter_makes_the_signature_incomplete() {
    let (m, d) = parse("fn f(a: i64, 7, c: bool) -> i64 { a }");
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(m.items.len(), 1);
    assert!(m.items[0].incomplete);
}

#[test]
fn an_unclosed_block_is_one_diagnostic_and_keeps_the_items() {
    let (m, d) = parse("fn f() -> i64 { 1 }\nfn main() -> i64 {\n    if true { f()\n");
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(d[0].message.contains("unclosed delimiter"));
    assert_eq!(d[0].labels.len(), 3);
    assert_eq!(m.items.len(), 2);
}

#[test]
fn an_item_keyword_ends_a_block_that_never_closed() {
    let (m, d) = parse("fn f() -> i64 {\n    let x = 1;\nfn main() -> i64 { 0 }\n");
    assert_eq!(d.len(), 1, "{d:?}");
    let names: Vec<&str> = m.items.iter().map(|i| &*i.name.name).collect();
    assert_eq!(names, ["f", "main"]);
}

#[test]
fn struct_literals_are_not_parsed_in_conditions() {
    let (_, d) = parse("fn f(x: i64) { if x { } while x { } let p = P { a: 1 }; }");
    assert!(d.is_empty(), "{d:?}");
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = format!(
        "const C: i64 = {}1{};",
        "(".repeat(100_000),
        ")".repeat(100_000)
    );
    let (_, d) = parse(&deep);
    assert_eq!(d.len(), 1);
    let chain = format!("const C: i64 = 1{};", " + 1".repeat(100_000));
    let (_, d) = parse(&chain);
    assert_eq!(d.len(), 1);
    let unary = format!("const C: i64 = {}1;", "-".repeat(100_000));
    assert_eq!(parse(&unary).1.len(), 1);
}

#[test]
fn chained_comparisons_are_rejected() {
    let (_, d) = parse("const C: bool = 1 < 2 < 3;");
    assert_eq!(d.len(), 1);
    assert!(d[0].message.contains("chained"));
}
