//! rayon-core's API on weft: this crate's whole library is the re-export below, so a
//! crate that depends on rayon-core 1.13 can be patched onto weft with three lines:
//!
//! ```toml
//! [patch.crates-io]
//! rayon-core = { path = "path/to/weft/benches/rayon-on-weft/rayon-core" }
//! ```
pub use weft::*;
