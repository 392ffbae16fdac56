//! compiler-demo: a front-end for a small Rust-like language in which every stage is a
//! weft query. See `LANGUAGE.md` for the language and `queries.rs` for the stages.

pub mod ast;
pub mod bytecode;
pub mod collect;
pub mod consteval;
pub mod cycles;
pub mod diagnostics;
pub mod driver;
pub mod engine;
pub mod gen;
pub mod lexer;
pub mod lower;
pub mod modtree;
pub mod outline;
pub mod parser;
pub mod pool;
pub mod queries;
pub mod render;
pub mod resolve;
pub mod resolve_errors;
pub mod session;
pub mod source;
pub mod tir;
pub mod type_errors;
pub mod typeck;
pub mod types;
pub mod vm;
