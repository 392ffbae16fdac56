//! The query engine this front-end runs on: weft's. Every other module names engine
//! items through here.

pub use weft::query::{Cx, Cycle, Engine, Input, Query, QueryError};
