//! Stand-in for `weft::query` while the real engine is being written.
//!
//! It implements the same API serially: memoized queries, inputs, and cycle
//! resolution in which every participant of a cycle is unwound, a participant with
//! `recover` stores that value, the others store `QueryError::Cycle`, and the caller
//! outside the cycle continues. The rest of the crate names only the items re-exported
//! here, so switching to `weft::query` is a one-line change.

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::panic::{self, AssertUnwindSafe};

/// A demand-driven, memoized computation.
pub trait Query: 'static {
    type Key: Clone + Eq + Hash + Ord + fmt::Debug + Send + Sync;
    type Value: Clone + Send + Sync;
    const NAME: &'static str;
    fn compute(cx: &Cx<'_>, key: &Self::Key) -> Self::Value;
    /// The value a participant takes when a cycle it is in is resolved.
    fn recover(_cx: &Cx<'_>, _key: &Self::Key, _cycle: &Cycle) -> Option<Self::Value> {
        None
    }
}

/// A closed chain of waits among in-progress queries.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Cycle {
    participants: Vec<(&'static str, String)>,
}

impl Cycle {
    /// `(query NAME, key Debug text)`, rotated to start at the least.
    pub fn participants(&self) -> &[(&'static str, String)] {
        &self.participants
    }
}

impl fmt::Display for Cycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = |p: &(&str, String)| format!("`{}({})`", p.0, p.1);
        let first = &self.participants[0];
        write!(f, "cycle detected when computing {}", name(first))?;
        for p in &self.participants[1..] {
            write!(f, "\n  ...which requires computing {}...", name(p))?;
        }
        write!(
            f,
            "\n  ...which again requires computing {}, completing the cycle",
            name(first)
        )
    }
}

/// Why a query produced no value.
#[derive(Clone, Debug)]
pub enum QueryError {
    Cycle(Cycle),
    Panicked {
        query: &'static str,
        key: String,
        message: String,
    },
    Deadlock(String),
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryError::Cycle(c) => write!(f, "{c}"),
            QueryError::Panicked {
                query,
                key,
                message,
            } => write!(f, "query `{query}({key})` panicked: {message}"),
            QueryError::Deadlock(s) => write!(f, "deadlock: {s}"),
        }
    }
}

enum Slot<V> {
    InProgress(usize),
    Done(Result<V, QueryError>),
}

/// Unwind payload: the cycle, and the stack depth of its outermost participant.
struct CycleUnwind {
    cycle: Cycle,
    outermost: usize,
}

/// Unwind payload carrying an error to the nearest `try_get` or `run`.
struct ErrorUnwind(QueryError);

#[derive(Default)]
struct State {
    tables: HashMap<TypeId, Box<dyn Any>>,
    stack: Vec<(&'static str, String)>,
}

/// The query database.
pub struct Engine {
    state: RefCell<State>,
}

/// Context handed to a query while it computes.
pub struct Cx<'a> {
    engine: &'a Engine,
}

type Table<Q> = HashMap<<Q as Query>::Key, Slot<<Q as Query>::Value>>;

impl Engine {
    pub fn new() -> Engine {
        Engine::serial()
    }

    pub fn serial() -> Engine {
        Engine {
            state: RefCell::new(State::default()),
        }
    }

    pub fn set_input<Q: Query>(&self, key: Q::Key, value: Q::Value) {
        let mut st = self.state.borrow_mut();
        let table = st
            .tables
            .entry(TypeId::of::<Q>())
            .or_insert_with(|| Box::new(Table::<Q>::new()));
        if let Some(t) = table.downcast_mut::<Table<Q>>() {
            t.insert(key, Slot::Done(Ok(value)));
        }
    }

    pub fn run<R>(&self, f: impl FnOnce(&Cx<'_>) -> R) -> Result<R, QueryError> {
        let cx = Cx { engine: self };
        match panic::catch_unwind(AssertUnwindSafe(|| f(&cx))) {
            Ok(r) => Ok(r),
            Err(p) => match p.downcast::<ErrorUnwind>() {
                Ok(e) => Err(e.0),
                Err(p) => panic::resume_unwind(p),
            },
        }
    }
}

impl Default for Engine {
    fn default() -> Self {
        Engine::new()
    }
}

impl<'a> Cx<'a> {
    fn with_table<Q: Query, R>(&self, f: impl FnOnce(&mut Table<Q>) -> R) -> R {
        let mut st = self.engine.state.borrow_mut();
        let table = st
            .tables
            .entry(TypeId::of::<Q>())
            .or_insert_with(|| Box::new(Table::<Q>::new()));
        match table.downcast_mut::<Table<Q>>() {
            Some(t) => f(t),
            None => unreachable!("table type is keyed by TypeId"),
        }
    }

    pub fn get<Q: Query>(&self, key: &Q::Key) -> Q::Value {
        match self.try_get::<Q>(key) {
            Ok(v) => v,
            Err(e) => panic::resume_unwind(Box::new(ErrorUnwind(e))),
        }
    }

    pub fn try_get<Q: Query>(&self, key: &Q::Key) -> Result<Q::Value, QueryError> {
        let existing = self.with_table::<Q, _>(|t| match t.get(key) {
            Some(Slot::Done(r)) => Some(Ok(r.clone())),
            Some(Slot::InProgress(depth)) => Some(Err(*depth)),
            None => None,
        });
        match existing {
            Some(Ok(r)) => return r,
            Some(Err(depth)) => {
                let st = self.engine.state.borrow();
                let mut parts: Vec<_> = st.stack[depth..].to_vec();
                drop(st);
                let least = (0..parts.len())
                    .min_by(|&a, &b| parts[a].cmp(&parts[b]))
                    .unwrap_or(0);
                parts.rotate_left(least);
                let cycle = Cycle {
                    participants: parts,
                };
                panic::resume_unwind(Box::new(CycleUnwind {
                    cycle,
                    outermost: depth,
                }));
            }
            None => {}
        }
        let depth = {
            let mut st = self.engine.state.borrow_mut();
            st.stack.push((Q::NAME, format!("{key:?}")));
            st.stack.len() - 1
        };
        self.with_table::<Q, _>(|t| t.insert(key.clone(), Slot::InProgress(depth)));
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| Q::compute(self, key)));
        self.engine.state.borrow_mut().stack.truncate(depth);
        let result = match outcome {
            Ok(v) => Ok(v),
            Err(p) => match p.downcast::<CycleUnwind>() {
                Ok(cu) => {
                    let r = match Q::recover(self, key, &cu.cycle) {
                        Some(v) => Ok(v),
                        None => Err(QueryError::Cycle(cu.cycle.clone())),
                    };
                    self.with_table::<Q, _>(|t| t.insert(key.clone(), Slot::Done(r.clone())));
                    if cu.outermost < depth {
                        panic::resume_unwind(cu);
                    }
                    return r;
                }
                Err(p) => match p.downcast::<ErrorUnwind>() {
                    Ok(e) => panic::resume_unwind(e),
                    Err(p) => {
                        let message = p
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| p.downcast_ref::<String>().cloned())
                            .unwrap_or_default();
                        Err(QueryError::Panicked {
                            query: Q::NAME,
                            key: format!("{key:?}"),
                            message,
                        })
                    }
                },
            },
        };
        self.with_table::<Q, _>(|t| t.insert(key.clone(), Slot::Done(result.clone())));
        result
    }

    pub fn join<A, B>(
        &self,
        a: impl FnOnce(&Cx<'_>) -> A + Send,
        b: impl FnOnce(&Cx<'_>) -> B + Send,
    ) -> (A, B)
    where
        A: Send,
        B: Send,
    {
        (a(self), b(self))
    }

    pub fn par_for_each<T: Sync>(&self, items: &[T], f: impl Fn(&Cx<'_>, &T) + Sync) {
        for item in items {
            f(self, item);
        }
    }

    pub fn par_map<T: Sync, U: Send>(
        &self,
        items: &[T],
        f: impl Fn(&Cx<'_>, &T) -> U + Sync,
    ) -> Vec<U> {
        items.iter().map(|item| f(self, item)).collect()
    }
}
