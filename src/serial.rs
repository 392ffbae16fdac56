//! The serial reference engine: the query semantics with nothing concurrent in them.
//!
//! One thread, a stack of the queries in progress, and `RefCell` tables: no pool, no
//! atomics on the query path. A request for a key that is on the stack closes a cycle
//! whose participants are the stack from that key up: exactly the chain the parallel
//! engine's wait-graph walk finds, so both engines mark the same participants, rotate
//! the report the same way, and store the same results (through the shared `settle`).
//! Differential tests compare the two.
//!
//! A run executes on a thread of its own with a worker's stack size
//! ([`crate::DEFAULT_STACK_SIZE`]), so a chain of queries as deep as the parallel engine
//! handles does not overflow the caller's stack. A run nested in a query of the same
//! engine continues on that thread, charged to the enclosing query (a request for a
//! query on the stack is a cycle, as in the parallel engine).
//!
//! A claim is a stack frame plus an `InProgress` slot; [`SerialClaim`] takes both back
//! (storing a poison) if anything unwinds before the result is stored.

use std::any::{Any, TypeId};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use rustc_hash::FxBuildHasher;

use crate::query::{
    canonical_cmp, finish_run, key_text, request_in_recover, settle, unwind_cycle, Cx, Cycle,
    ErasedKey, PanicPayload, Query, QueryError, Recovering,
};
use crate::sync::{weft_thread_local, Mutex};

/// A query in progress on the serial engine's stack.
struct Frame {
    name: &'static str,
    type_name: &'static str,
    key: Box<dyn ErasedKey>,
    cycle: Option<Cycle>,
}

enum Slot<V> {
    InProgress(usize),
    Done(Result<V, QueryError>),
    Input(V),
}

type Table<Q> = HashMap<<Q as Query>::Key, Slot<<Q as Query>::Value>, FxBuildHasher>;

weft_thread_local! {
    /// The serial engine running on this thread (and its state), if any.
    static RUNNING: Cell<(*const SerialEngine, *const SerialState)> =
        Cell::new((std::ptr::null(), std::ptr::null()));
}

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

    /// Runs `f` with a query context (see the module docs for the thread it runs on).
    pub(crate) fn run<R: Send>(
        &self,
        f: impl FnOnce(&Cx<'_>) -> R + Send,
    ) -> Result<R, QueryError> {
        let (running, state) = RUNNING.with(Cell::get);
        if std::ptr::eq(running, self) {
            // SAFETY: the outer run of this engine on this thread holds the lock and
            // keeps the state alive until it returns, after this nested run.
            let state = unsafe { &*state };
            return finish_run(crate::pool::catch(|| f(&Cx::serial(state))));
        }
        let outcome = crate::sync::thread::run_on_new_stack(
            "weft-serial-engine",
            crate::DEFAULT_STACK_SIZE,
            || {
                let state = self.state.lock();
                let previous = RUNNING.with(|r| r.replace((self, &*state)));
                let outcome = finish_run(crate::pool::catch(|| f(&Cx::serial(&state))));
                RUNNING.with(|r| r.set(previous));
                outcome
            },
        );
        outcome
            .unwrap_or_else(|err| panic!("weft: failed to start the serial engine's thread: {err}"))
    }

    pub(crate) fn set_input<Q: Query>(&self, key: Q::Key, value: Q::Value) {
        let state = self.state.lock();
        state.with_table::<Q, _>(|t| t.insert(key, Slot::Input(value)));
    }
}

/// The tables and the stack of queries in progress.
pub(crate) struct SerialState {
    tables: RefCell<HashMap<TypeId, Box<dyn Any + Send>, FxBuildHasher>>,
    stack: RefCell<Vec<Frame>>,
}

impl SerialState {
    /// The table of query `Q` (keyed by the query's type: two queries with the same key
    /// and value types must not share one).
    fn with_table<Q: Query, R>(&self, f: impl FnOnce(&mut Table<Q>) -> R) -> R {
        let mut tables = self.tables.borrow_mut();
        let table = tables
            .entry(TypeId::of::<Q>())
            .or_insert_with(|| Box::new(Table::<Q>::default()))
            .downcast_mut::<Table<Q>>()
            .expect("tables are keyed by their query's TypeId");
        f(table)
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
        recovering: Recovering<'_>,
        key: &Q::Key,
    ) -> Result<Q::Value, QueryError> {
        if let Some(participant) = recovering {
            let input = self.with_table::<Q, _>(|t| match t.get(key) {
                Some(Slot::Input(value)) => Some(value.clone()),
                _ => None,
            });
            return input
                .ok_or_else(|| request_in_recover(participant.clone(), (Q::NAME, key_text(key))));
        }
        let found = self.with_table::<Q, _>(|t| match t.get(key) {
            Some(Slot::Done(result)) => Some(Ok(result.clone())),
            Some(Slot::Input(value)) => Some(Ok(Ok(value.clone()))),
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
        self.execute::<Q>(cx, key)
    }

    #[cold]
    fn execute<Q: Query>(&self, cx: &Cx<'_>, key: &Q::Key) -> Result<Q::Value, QueryError> {
        let frame_key: Box<dyn ErasedKey> = Box::new(key.clone());
        let depth = self.stack.borrow().len();
        self.with_table::<Q, _>(|t| t.insert(key.clone(), Slot::InProgress(depth)));
        self.stack.borrow_mut().push(Frame {
            name: Q::NAME,
            type_name: std::any::type_name::<Q>(),
            key: frame_key,
            cycle: None,
        });
        let claim = SerialClaim::<Q> {
            state: self,
            key,
            depth,
        };
        let computed = crate::pool::catch(|| Q::compute(cx, key));
        let frame = self
            .stack
            .borrow_mut()
            .pop()
            .expect("the frame pushed above");
        let stored = match computed {
            Ok(value) if frame.cycle.is_none() => Ok(value),
            computed => {
                let participant = (frame.name, frame.key.debug_text());
                settle::<Q>(&cx.recovering(&participant), key, frame.cycle, computed)
            }
        };
        claim.complete(stored);
        if self.top_in_cycle() {
            unwind_cycle();
        }
        self.with_table::<Q, _>(|t| match t.get(key) {
            Some(Slot::Done(result)) => result.clone(),
            _ => unreachable!("the slot was just completed"),
        })
    }

    /// Marks the frames from `from` to the top as the participants of one cycle.
    fn mark_cycle(&self, from: usize) {
        let mut stack = self.stack.borrow_mut();
        let frames = &stack[from..];
        let least = (0..frames.len())
            .min_by(|&a, &b| {
                canonical_cmp(
                    (frames[a].name, frames[a].type_name, &*frames[a].key),
                    (frames[b].name, frames[b].type_name, &*frames[b].key),
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

/// A claim on the serial engine: a frame at `depth` and an `InProgress` slot for `key`.
struct SerialClaim<'a, Q: Query> {
    state: &'a SerialState,
    key: &'a Q::Key,
    depth: usize,
}

impl<Q: Query> SerialClaim<'_, Q> {
    /// Stores the result (the frame is already popped).
    fn complete(self, result: Result<Q::Value, QueryError>) {
        self.store(result);
        std::mem::forget(self);
    }

    fn store(&self, result: Result<Q::Value, QueryError>) {
        self.state.with_table::<Q, _>(|t| {
            if let Some(slot) = t.get_mut(self.key) {
                *slot = Slot::Done(result);
            }
        });
    }
}

impl<Q: Query> Drop for SerialClaim<'_, Q> {
    /// Runs only if the claim unwinds before storing: drop its frame, store a poison.
    fn drop(&mut self) {
        self.state.stack.borrow_mut().truncate(self.depth);
        let message = "the query unwound before its result was stored";
        self.store(Err(QueryError::Panicked {
            query: Q::NAME,
            key: key_text(self.key),
            message: message.to_string(),
            payload: PanicPayload::new(Box::new(message)),
        }));
    }
}
