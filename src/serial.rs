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
//! result is stored. An incremental serial engine refreshes a memo from an older
//! revision as the parallel one does (see `query/revision.rs`): claim it, check its
//! dependencies in order, reuse it or re-execute; its frame records what it reads.

use std::cell::{Cell, RefCell};

use crate::pool::context::{self, Context, ContextNode};
use crate::query::{
    canonical_cmp, check_deps, finish_run, key_text, settle, state, unwind_cycle, Claim, Cx, Cycle,
    Dep, DepBuf, ErasedKey, Event, Greening, Input, Memo, MemoTable, Miss, PanicPayload, Query,
    QueryError, Record, Refresher, Revision, Revisions, Stored, TableMap, Verdict,
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
    /// What the query read, in order (incremental engines only).
    deps: RefCell<DepBuf>,
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
    /// Outside the mutex: read (for stats) while a run holds the state.
    revisions: Revisions,
    state: Mutex<SerialState>,
}

impl SerialEngine {
    pub(crate) fn new() -> Self {
        SerialEngine {
            revisions: Revisions::new(),
            state: Mutex::new(SerialState {
                tables: TableMap::new(),
                top: Cell::new(std::ptr::null()),
                revisions: std::ptr::null(),
                now: 0,
                incremental: false,
            }),
        }
    }

    pub(crate) fn revisions(&self) -> &Revisions {
        &self.revisions
    }

    /// The context tag of this engine's runs (its address).
    fn tag(&self) -> usize {
        self as *const Self as usize
    }

    pub(crate) fn revisions_mut(&mut self) -> &mut Revisions {
        &mut self.revisions
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
            let cx = Cx::serial(state).for_nested_run(state as *const SerialState as usize);
            return finish_run(crate::pool::catch(|| f(&cx)));
        }
        // Reached from inside a run of this engine, but on another thread (a `weft::join`
        // half, an `install`): that run holds the state and waits for this thread, so
        // waiting for the state would hang. Say so instead.
        if context::innermost_tagged(self.tag()).is_some() {
            panic!(
                "weft: `Engine::serial()` was run again from another thread inside one of its \
                 own runs (through `weft::join`, `install` or `scope`); the serial engine runs \
                 on one thread at a time and would wait for itself forever: run it on the \
                 thread of the enclosing run (`cx.join` and friends stay there), or use \
                 `Engine::new()`"
            );
        }
        self.revisions.run_started();
        let body = || {
            let mut state = self.state.lock();
            state.revisions = &self.revisions;
            state.now = self.revisions.now;
            state.incremental = self.revisions.incremental;
            let previous = RUNNING.with(|r| r.replace((self, &*state)));
            // Jobs this run starts carry the node, so a run of this engine they make on
            // another thread is known for what it is (above).
            let node = ContextNode::tagged_child_of(context::current(), self.tag());
            let outcome = context::enter(Context::of(&node), || {
                finish_run(crate::pool::catch(|| f(&Cx::serial(&state))))
            });
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

    pub(crate) fn set_input<I: Input>(&mut self, key: I::Key, value: I::Value) {
        let mut state = self.state.lock();
        state.tables.set_input::<I>(&mut self.revisions, key, value);
    }
}

/// The memo tables (the parallel engine's, used from one thread) and the innermost
/// query in progress.
pub(crate) struct SerialState {
    tables: TableMap,
    top: Cell<*const Frame>,
    /// The engine's revisions, set by each run before it uses the state (the engine
    /// outlives its runs).
    revisions: *const Revisions,
    /// Copies of the revisions' `now` and `incremental`, set with the pointer: the hot
    /// path reads them without the indirection.
    now: Revision,
    pub(crate) incremental: bool,
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

    #[inline]
    fn revisions(&self) -> &Revisions {
        // SAFETY: set by the run that holds this state, whose engine outlives it.
        unsafe { &*self.revisions }
    }

    /// Records that the innermost query read slot `id` of table `table` (incremental
    /// engines).
    #[inline]
    fn record(&self, table: u32, id: u32) {
        if self.incremental {
            self.record_in_top(Dep { table, id });
        }
    }

    /// [`SerialState::record`]'s work, out of line (the hit path stays small).
    #[inline(never)]
    fn record_in_top(&self, dep: Dep) {
        // SAFETY: `top` is null or a live frame of the current request stack.
        if let Some(frame) = unsafe { self.top.get().as_ref() } {
            frame.deps.borrow_mut().push(dep);
        }
    }

    #[inline(always)]
    pub(crate) fn fetch<'e, Q: Query, const INCREMENTAL: bool>(
        &'e self,
        key: &Q::Key,
    ) -> Result<&'e Q::Value, QueryError> {
        let table = self.tables.get::<Q>();
        let hash = MemoTable::<Q>::hash(key);
        let found = table.lookup(hash, key);
        if let Ok(slot) = found {
            if INCREMENTAL {
                self.record(table.index, slot.id());
            }
            if let Some(value) = table.current_value::<INCREMENTAL>(slot, self.now) {
                return Ok(value);
            }
        }
        self.fetch_cold(table, hash, key, found)
    }

    /// [`SerialState::fetch`] for an incremental engine, out of line (see the parallel
    /// engine's `fetch_incremental`).
    #[inline(never)]
    pub(crate) fn fetch_incremental<'e, Q: Query>(
        &'e self,
        key: &Q::Key,
    ) -> Result<&'e Q::Value, QueryError> {
        self.fetch::<Q, true>(key)
    }

    /// A read from `recover`: `(Q, key)` if it is an input, recorded as read by the
    /// participant (the frame on top).
    #[cold]
    pub(crate) fn fetch_input<Q: Query>(&self, key: &Q::Key) -> Option<&Q::Value> {
        let table = self.tables.get::<Q>();
        let slot = table.find(MemoTable::<Q>::hash(key), key)?;
        let id = slot.id();
        let value = table.input_value(slot)?;
        self.record(table.index, id);
        Some(value)
    }

    /// Everything but a plain hit: a failed, running (a cycle) or stale entry, or a
    /// claim.
    #[cold]
    #[inline(never)]
    fn fetch_cold<'e, Q: Query>(
        &'e self,
        table: &'e MemoTable<Q>,
        hash: u64,
        key: &Q::Key,
        found: Result<&'e crate::query::Slot<Q>, Miss>,
    ) -> Result<&'e Q::Value, QueryError> {
        let miss = match found {
            Ok(slot) => return self.current(table, slot.id(), slot, true),
            Err(miss) => miss,
        };
        if self.top_in_cycle() {
            unwind_cycle();
        }
        // SAFETY: the serial engine's tables are used by the one thread running it (the
        // state is behind the engine's mutex for the whole run). The slot's owner, its
        // frame, is stored by `execute`; until then (no user code) it is `CLAIMING`,
        // which a dense table does not take for vacant.
        let claimed = unsafe { table.claim_exclusive(hash, key, state::CLAIMING, miss) };
        let Claim::Claimed(slot) = claimed else {
            unreachable!("one thread: the key was absent just above")
        };
        let id = slot.id();
        self.record(table.index, id);
        self.execute(table, id, slot, state::VACANT)
    }

    /// The result of an existing slot in the current revision: as stored, a cycle if it
    /// is in progress (on this thread, it is on the stack), or refreshed if stale
    /// (`deep` as for the parallel engine's `refresh`).
    fn current<'e, Q: Query>(
        &'e self,
        table: &'e MemoTable<Q>,
        id: u32,
        slot: &'e crate::query::Slot<Q>,
        deep: bool,
    ) -> Result<&'e Q::Value, QueryError> {
        match table.read(slot, self.now) {
            Memo::Ready(result) => result,
            Memo::Running(owner) => {
                self.mark_cycle(state::owner(owner) as *const Frame);
                unwind_cycle();
            }
            Memo::Stale(previous) => {
                if self.top_in_cycle() {
                    unwind_cycle();
                }
                // As in the parallel engine: green without a frame when every
                // dependency is already current and unchanged.
                let green = Greening::new(self.now, self.revisions(), 0, deep);
                if self.tables.try_green(table, id, previous, green) {
                    return table.completed(slot, self.now);
                }
                self.execute(table, id, slot, previous)
            }
        }
    }

    /// Brings slot `id` of `table` up to date and returns the revision its result last
    /// changed in: a dependency check of the innermost frame.
    pub(crate) fn changed_at<Q: Query>(&self, table: &MemoTable<Q>, id: u32) -> Revision {
        let slot = table.slot(id);
        if !state::is_current(slot.state.load(Ordering::Acquire), self.now) {
            // Only the state word matters here; an error stays in the memo.
            // Not deep: this check's own descent brings the rest up to date in order.
            let _ = self.current(table, id, slot, false).is_ok();
        }
        state::changed_at(slot.state.load(Ordering::Acquire))
    }

    /// Runs slot `id`, claimed from state `previous` (`VACANT` for a new key, else a
    /// stale memo, whose dependencies are checked first).
    fn execute<'e, Q: Query>(
        &'e self,
        table: &'e MemoTable<Q>,
        id: u32,
        slot: &'e crate::query::Slot<Q>,
        previous: usize,
    ) -> Result<&'e Q::Value, QueryError> {
        let key = slot.key();
        let erased: *const (dyn ErasedKey + '_) = key;
        let frame = Frame {
            parent: self.top.get(),
            name: Q::NAME,
            type_name: std::any::type_name::<Q>(),
            // SAFETY: only the lifetime is erased; the key (in the table) outlives the
            // frame.
            key: unsafe {
                std::mem::transmute::<*const (dyn ErasedKey + '_), *const dyn ErasedKey>(erased)
            },
            cycle: RefCell::new(None),
            deps: RefCell::new(DepBuf::default()),
        };
        slot.state
            .store(&frame as *const Frame as usize, Ordering::Relaxed);
        self.top.set(&frame);
        let claim = SerialClaim::<Q> {
            state: self,
            table,
            id,
            slot,
            frame: &frame,
            previous,
        };
        let cx = Cx::serial(self);
        let verdict = if previous == state::VACANT {
            Ok(Verdict::Red)
        } else {
            crate::pool::catch(|| self.check(table, id, previous, &frame))
        };
        let computed = match verdict {
            Ok(Verdict::Green) => {
                self.revisions().count(Event::Verified, || 0);
                self.top.set(frame.parent);
                claim.complete_green();
                return self.after_completion(table, slot);
            }
            Ok(Verdict::Red) => {
                frame.deps.borrow_mut().clear();
                if self.incremental {
                    self.revisions().count(Event::Executed, || 0);
                }
                crate::pool::catch(|| Q::compute(&cx, key))
            }
            // The check unwound: it found this query in a cycle.
            Err(payload) => Err(payload),
        };
        match computed {
            Ok(value) if frame.cycle.borrow().is_none() => {
                self.top.set(frame.parent);
                claim.complete_value(value)
            }
            computed => {
                let participant = (frame.name, frame.key().debug_text());
                let cycle = frame.cycle.borrow_mut().take();
                // The frame stays on top while `recover` runs: the inputs it reads are
                // the participant's dependencies.
                let settled = settle::<Q>(&cx.recovering(&participant), key, cycle, computed);
                self.top.set(frame.parent);
                claim.complete(settled)
            }
        }
        self.after_completion(table, slot)
    }

    fn after_completion<'e, Q: Query>(
        &'e self,
        table: &'e MemoTable<Q>,
        slot: &'e crate::query::Slot<Q>,
    ) -> Result<&'e Q::Value, QueryError> {
        if self.top_in_cycle() {
            unwind_cycle();
        }
        table.completed(slot, self.now)
    }

    /// Checks the dependencies of the stale memo `frame` claimed from state `previous`,
    /// recording each as checked (as the parallel engine does).
    fn check<Q: Query>(
        &self,
        table: &MemoTable<Q>,
        id: u32,
        previous: usize,
        frame: &Frame,
    ) -> Verdict {
        // SAFETY: `frame` owns the slot; nothing writes its dependencies before it
        // completes.
        let deps = unsafe { table.deps(id) };
        check_deps(deps, state::verified_at(previous), |dep| {
            frame.deps.borrow_mut().push(dep);
            let changed = self.tables.changed_at(dep, Refresher::Serial(self));
            if frame.cycle.borrow().is_some() {
                unwind_cycle();
            }
            changed
        })
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
    id: u32,
    slot: &'e crate::query::Slot<Q>,
    frame: &'a Frame,
    /// The state the slot was claimed from: `VACANT`, or a stale memo's.
    previous: usize,
}

impl<Q: Query> SerialClaim<'_, '_, Q> {
    /// Stores the result (the frame is already popped).
    fn complete(self, result: Result<Q::Value, QueryError>) {
        self.store(result);
        std::mem::forget(self);
    }

    /// [`SerialClaim::complete`] with a value.
    fn complete_value(self, value: Q::Value) {
        if self.state.incremental {
            return self.complete(Ok(value));
        }
        // SAFETY: as in `store` (a batch engine claims only new slots).
        unsafe { MemoTable::store_value(self.slot, value) };
        self.slot.state.store(state::done(0, 0), Ordering::Release);
        std::mem::forget(self);
    }

    /// Completes a stale memo whose dependencies were unchanged (see the parallel
    /// engine's `complete_green`).
    fn complete_green(self) {
        let done = state::reverified(self.previous, self.state.now);
        self.slot.state.store(done, Ordering::Release);
        std::mem::forget(self);
    }

    fn store(&self, result: Result<Q::Value, QueryError>) {
        let revisions = self.state.revisions();
        let record = revisions.incremental.then(|| Record {
            now: revisions.now,
            deps: std::mem::take(&mut *self.frame.deps.borrow_mut()),
        });
        // SAFETY: this claim owns the running slot and stores once (`complete` forgets
        // the guard; `Drop` runs only without it).
        let (done, stored) =
            unsafe { (self.table).finish(self.id, self.slot, self.previous, result, record) };
        if stored == Stored::Backdated {
            revisions.count(Event::Backdated, || 0);
        }
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
