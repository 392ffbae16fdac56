//! The serial reference engine: the query semantics with nothing concurrent in them.
//!
//! One thread, a stack of the queries in progress, and `RefCell` tables: no pool, no
//! atomics, no locks. A request for a key that is on the stack closes a cycle whose
//! participants are the stack from that key up: exactly the chain the parallel engine's
//! wait-graph walk finds, so both engines mark the same participants, rotate the report
//! the same way, and store the same results (through the shared `settle`). Differential
//! tests compare the two.

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::collections::HashMap;

use rustc_hash::FxBuildHasher;

use crate::sync::Mutex;

use crate::query::{canonical_cmp, settle, unwind_cycle, Cx, Cycle, ErasedKey, Query, QueryError};

/// A query in progress on the serial engine's stack.
struct Frame {
    name: &'static str,
    key: Box<dyn ErasedKey>,
    cycle: Option<Cycle>,
}

enum Slot<V> {
    InProgress(usize),
    Done(Result<V, QueryError>),
}

type Table<Q> = HashMap<<Q as Query>::Key, Slot<<Q as Query>::Value>, FxBuildHasher>;

/// [`crate::query::Engine::serial`]: its state behind one mutex, taken once per `run`
/// (so the engine can be shared like the parallel one) and never on the query path.
pub(crate) struct SerialEngine {
    state: Mutex<SerialState>,
}

impl SerialEngine {
    pub(crate) fn new() -> Self {
        SerialEngine {
            state: Mutex::new(SerialState {
                tables: RefCell::new(HashMap::default()),
                stack: RefCell::new(Vec::new()),
            }),
        }
    }

    /// Runs `f` with exclusive use of the state for the whole run.
    pub(crate) fn with_state<R>(&self, f: impl FnOnce(&SerialState) -> R) -> R {
        f(&self.state.lock())
    }

    pub(crate) fn set_input<Q: Query>(&self, key: Q::Key, value: Q::Value) {
        self.with_state(|state| state.set_input::<Q>(key, value))
    }
}

/// The tables and the stack of queries in progress.
pub(crate) struct SerialState {
    tables: RefCell<HashMap<TypeId, Box<dyn Any + Send>, FxBuildHasher>>,
    stack: RefCell<Vec<Frame>>,
}

impl SerialState {
    fn with_table<Q: Query, R>(&self, f: impl FnOnce(&mut Table<Q>) -> R) -> R {
        let mut tables = self.tables.borrow_mut();
        let table = tables
            .entry(TypeId::of::<Table<Q>>())
            .or_insert_with(|| Box::new(Table::<Q>::default()))
            .downcast_mut::<Table<Q>>()
            .expect("tables are keyed by their own TypeId");
        f(table)
    }

    pub(crate) fn set_input<Q: Query>(&self, key: Q::Key, value: Q::Value) {
        self.with_table::<Q, _>(|t| t.insert(key, Slot::Done(Ok(value))));
    }

    fn top_in_cycle(&self) -> bool {
        self.stack
            .borrow()
            .last()
            .is_some_and(|f| f.cycle.is_some())
    }

    pub(crate) fn fetch<Q: Query>(
        &self,
        cx: &Cx<'_>,
        key: &Q::Key,
    ) -> Result<Q::Value, QueryError> {
        let found = self.with_table::<Q, _>(|t| match t.get(key) {
            Some(Slot::Done(result)) => Some(Ok(result.clone())),
            Some(Slot::InProgress(index)) => Some(Err(*index)),
            None => None,
        });
        match found {
            Some(Ok(result)) => return result,
            Some(Err(index)) => {
                self.mark_cycle(index);
                unwind_cycle();
            }
            None => {}
        }
        if self.top_in_cycle() {
            unwind_cycle();
        }
        let depth = {
            let mut stack = self.stack.borrow_mut();
            stack.push(Frame {
                name: Q::NAME,
                key: Box::new(key.clone()),
                cycle: None,
            });
            stack.len() - 1
        };
        self.with_table::<Q, _>(|t| t.insert(key.clone(), Slot::InProgress(depth)));
        let computed = crate::pool::catch(|| Q::compute(cx, key));
        let frame = self
            .stack
            .borrow_mut()
            .pop()
            .expect("the frame pushed above");
        let stored = settle::<Q>(cx, key, frame.cycle, computed);
        self.with_table::<Q, _>(|t| t.insert(key.clone(), Slot::Done(stored.clone())));
        if self.top_in_cycle() {
            unwind_cycle();
        }
        stored
    }

    /// Marks the frames from `from` to the top as the participants of one cycle.
    fn mark_cycle(&self, from: usize) {
        let mut stack = self.stack.borrow_mut();
        let frames = &stack[from..];
        let least = (0..frames.len())
            .min_by(|&a, &b| {
                canonical_cmp(
                    (frames[a].name, &*frames[a].key),
                    (frames[b].name, &*frames[b].key),
                )
            })
            .unwrap_or(0);
        let cycle = Cycle::new(
            frames
                .iter()
                .map(|f| (f.name, f.key.debug_text()))
                .collect(),
            least,
        );
        for frame in &mut stack[from..] {
            frame.cycle = Some(cycle.clone());
        }
    }
}
