//! The serial reference engine: the query semantics with nothing concurrent in them.
//!
//! One thread, a stack of the queries in progress, and the parallel engine's memo
//! tables used from that one thread: no pool, no waits, no wait graph. A request for a key that is on the stack closes a cycle
//! whose participants are the stack from that key up: exactly the chain the parallel
//! engine's wait-graph walk finds, so both engines mark the same participants, rotate
//! the report the same way, and store the same results (through the shared `settle`).
//! Differential tests compare the two.
//!
//! A run executes on a stack as deep as a worker's ([`crate::DEFAULT_STACK_SIZE`]), so a
//! chain of queries as deep as the parallel engine handles does not overflow the
//! caller's stack: on the calling thread (a fresh stack, switched to and back), or, from
//! a pool worker, on a thread of its own. A run nested in a query of the same
//! engine continues on that thread, charged to the enclosing query (a request for a
//! query on the stack is a cycle, as in the parallel engine).
//!
//! A claim is a stack frame plus a running slot whose state word is the frame's address;
//! [`SerialClaim`] takes both back (storing a poison) if anything unwinds before the
//! result is stored.

use std::cell::{Cell, RefCell};

use crate::query::{
    canonical_cmp, finish_run, hash_key, key_text, request_in_recover, settle, state, unwind_cycle,
    Claim, Cx, Cycle, ErasedKey, Memo, MemoTable, PanicPayload, Query, QueryError, Recovering,
    TableMap,
};
use crate::sync::atomic::Ordering;
use crate::sync::{weft_thread_local, Mutex};

/// A query in progress, on the stack of the request that claimed it. Frames form the
/// stack of queries in progress through `parent`; a running slot's state word is its
/// frame's address.
struct Frame {
    parent: *const Frame,
    name: &'static str,
    type_name: &'static str,
    /// The request's key, which outlives the frame.
    key: *const dyn ErasedKey,
    cycle: RefCell<Option<Cycle>>,
}

// A running slot's state word is its frame's address (see `table::state`).
const _: () = assert!(std::mem::align_of::<Frame>() >= 4);

impl Frame {
    fn key(&self) -> &dyn ErasedKey {
        // SAFETY: the key outlives the frame (see the field).
        unsafe { &*self.key }
    }
}

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
                tables: TableMap::new(),
                top: Cell::new(std::ptr::null()),
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
        let body = || {
            let state = self.state.lock();
            let previous = RUNNING.with(|r| r.replace((self, &*state)));
            let outcome = finish_run(crate::pool::catch(|| f(&Cx::serial(&state))));
            RUNNING.with(|r| r.set(previous));
            outcome
        };
        // A pool worker may run other jobs while code inside this run waits on the pool,
        // and one of them could run this engine too: give the run a thread of its own.
        // Any other thread runs it itself, on a deep stack.
        let outcome = if crate::pool::current_thread_index().is_some() {
            crate::sync::thread::run_on_new_stack(
                "weft-serial-engine",
                crate::DEFAULT_STACK_SIZE,
                body,
            )
        } else {
            crate::sync::thread::run_on_fresh_stack(crate::DEFAULT_STACK_SIZE, body)
        };
        outcome
            .unwrap_or_else(|err| panic!("weft: failed to start the serial engine's stack: {err}"))
    }

    pub(crate) fn set_input<Q: Query>(&self, key: Q::Key, value: Q::Value) {
        let mut state = self.state.lock();
        state.tables.get_mut::<Q>().set(hash_key(&key), key, value);
    }
}

/// The memo tables (the parallel engine's, used from one thread) and the innermost
/// query in progress.
pub(crate) struct SerialState {
    tables: TableMap,
    top: Cell<*const Frame>,
}

// SAFETY: `top` points into the stack of the thread running the engine and is only
// used by it; the state moves between threads only behind the engine's mutex, between
// runs, when `top` is null.
unsafe impl Send for SerialState {}

impl SerialState {
    fn top_in_cycle(&self) -> bool {
        // SAFETY: `top` is null or a live frame of the current request stack.
        unsafe { self.top.get().as_ref() }.is_some_and(|f| f.cycle.borrow().is_some())
    }

    pub(crate) fn fetch<'e, Q: Query>(
        &'e self,
        cx: &Cx<'_>,
        recovering: Recovering<'_>,
        key: &Q::Key,
    ) -> Result<&'e Q::Value, QueryError> {
        let table = self.tables.get::<Q>();
        let hash = hash_key(key);
        let found = table.find(hash, key);
        if recovering.is_none() {
            if let Some(value) = found.and_then(|slot| table.done_value(slot)) {
                return Ok(value);
            }
        }
        self.fetch_cold(cx, recovering, table, hash, key, found)
    }

    /// Everything but a plain hit: a read from `recover`, a failed or running entry
    /// (a cycle), or a claim.
    #[cold]
    #[inline(never)]
    fn fetch_cold<'e, Q: Query>(
        &'e self,
        cx: &Cx<'_>,
        recovering: Recovering<'_>,
        table: &'e MemoTable<Q>,
        hash: u64,
        key: &Q::Key,
        found: Option<&'e crate::query::Slot<Q>>,
    ) -> Result<&'e Q::Value, QueryError> {
        if let Some(participant) = recovering {
            return found
                .and_then(|slot| table.input_value(slot))
                .ok_or_else(|| request_in_recover(participant.clone(), (Q::NAME, key_text(key))));
        }
        if let Some(slot) = found {
            match table.read(slot) {
                Memo::Ready(result) => return result,
                Memo::Running(owner) => {
                    self.mark_cycle(state::owner(owner) as *const Frame);
                    unwind_cycle();
                }
            }
        }
        if self.top_in_cycle() {
            unwind_cycle();
        }
        self.execute::<Q>(cx, table, hash, key)
    }

    fn execute<'e, Q: Query>(
        &'e self,
        cx: &Cx<'_>,
        table: &'e MemoTable<Q>,
        hash: u64,
        key: &Q::Key,
    ) -> Result<&'e Q::Value, QueryError> {
        let erased: *const (dyn ErasedKey + '_) = key;
        let frame = Frame {
            parent: self.top.get(),
            name: Q::NAME,
            type_name: std::any::type_name::<Q>(),
            // SAFETY: only the lifetime is erased; the key outlives the frame.
            key: unsafe {
                std::mem::transmute::<*const (dyn ErasedKey + '_), *const dyn ErasedKey>(erased)
            },
            cycle: RefCell::new(None),
        };
        // SAFETY: the serial engine's tables are used by the one thread running it (the
        // state is behind the engine's mutex for the whole run).
        let claimed = unsafe { table.claim_exclusive(hash, key, &frame as *const Frame as usize) };
        let Claim::Claimed(slot) = claimed else {
            unreachable!("one thread: the key was absent just above")
        };
        self.top.set(&frame);
        let claim = SerialClaim::<Q> {
            state: self,
            table,
            slot,
            frame: &frame,
        };
        let computed = crate::pool::catch(|| Q::compute(cx, key));
        self.top.set(frame.parent);
        match computed {
            Ok(value) if frame.cycle.borrow().is_none() => claim.complete_value(value),
            computed => {
                let participant = (frame.name, frame.key().debug_text());
                let cycle = frame.cycle.borrow_mut().take();
                claim.complete(settle::<Q>(
                    &cx.recovering(&participant),
                    key,
                    cycle,
                    computed,
                ))
            }
        }
        if self.top_in_cycle() {
            unwind_cycle();
        }
        table.completed(slot)
    }

    /// Marks the frames from `owner` to the top as the participants of one cycle.
    fn mark_cycle(&self, owner: *const Frame) {
        let mut frames: Vec<&Frame> = Vec::new();
        let mut cursor = self.top.get();
        // SAFETY: the stack's frames are alive (each lives in a request below us), and
        // `owner` is one of them (its slot is running, so its request has not returned).
        while let Some(frame) = unsafe { cursor.as_ref() } {
            frames.push(frame);
            if std::ptr::eq(cursor, owner) {
                break;
            }
            cursor = frame.parent;
        }
        frames.reverse();
        let least = (0..frames.len())
            .min_by(|&a, &b| {
                canonical_cmp(
                    (frames[a].name, frames[a].type_name, frames[a].key()),
                    (frames[b].name, frames[b].type_name, frames[b].key()),
                )
            })
            .unwrap_or(0);
        let cycle = Cycle::new(
            frames
                .iter()
                .map(|f| (f.name, f.key().debug_text()))
                .collect(),
            least,
        );
        for frame in frames {
            *frame.cycle.borrow_mut() = Some(cycle.clone());
        }
    }
}

/// A claim on the serial engine: a frame on the stack and a running slot, both taken
/// back (the slot poisoned) if anything unwinds before the result is stored.
struct SerialClaim<'a, 'e, Q: Query> {
    state: &'a SerialState,
    table: &'e MemoTable<Q>,
    slot: &'e crate::query::Slot<Q>,
    frame: &'a Frame,
}

impl<Q: Query> SerialClaim<'_, '_, Q> {
    /// Stores the result (the frame is already popped).
    fn complete(self, result: Result<Q::Value, QueryError>) {
        self.store(result);
        std::mem::forget(self);
    }

    /// [`SerialClaim::complete`] with a value.
    fn complete_value(self, value: Q::Value) {
        // SAFETY: as in `store`.
        let done = unsafe { MemoTable::store_value(self.slot, value) };
        self.slot.state.store(done, Ordering::Release);
        std::mem::forget(self);
    }

    fn store(&self, result: Result<Q::Value, QueryError>) {
        // SAFETY: this claim owns the running slot and stores once (`complete` forgets
        // the guard; `Drop` runs only without it).
        let done = unsafe { self.table.store(self.slot, result) };
        self.slot.state.store(done, Ordering::Release);
    }
}

impl<Q: Query> Drop for SerialClaim<'_, '_, Q> {
    /// Runs only if the claim unwinds before storing: pop its frame, store a poison.
    fn drop(&mut self) {
        self.state.top.set(self.frame.parent);
        let message = "the query unwound before its result was stored";
        self.store(Err(QueryError::Panicked {
            query: Q::NAME,
            key: key_text(self.slot.key()),
            message: message.to_string(),
            payload: PanicPayload::new(Box::new(message)),
        }));
    }
}
