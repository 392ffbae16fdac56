//! Model tests of weft's concurrency protocols, explored by the `loom` model checker.
//!
//! The models live in `tests/models.rs` and compile only with `--cfg loom`, against
//! weft's real code: under that cfg weft's sync facade hands out loom's atomics, locks,
//! threads and thread-locals (and a locked deque in place of `crossbeam-deque`, which
//! loom cannot run). See `run.sh` for the command CI uses.
