//! The parallel engine's request path: hit -> claim -> execute -> complete, or wait.
//!
//! 1. **Hit**: the entry exists and is done: borrow the value. No lock, no shared write.
//! 2. **Claim**: no entry: publish a slot owned by a new [`QueryJob`] (shard lock only).
//!    From here on other threads may wait on the entry, so a [`ClaimGuard`] on the
//!    claiming frame owns the obligation to complete it: if anything unwinds before
//!    the entry is complete, the guard stores a poison and completes it, waking every
//!    waiter (salsa's `ClaimGuard`, rustc's `JobOwner`).
//! 3. **Execute**: run `compute` in the job's context, catching any unwind; [`settle`]
//!    what to store (running `recover` for a cycle participant); store it; complete the
//!    entry (waking waiters if any). Only then does the caller clone the value (if it
//!    asked for a clone): a `Clone` that panics hurts the caller, never the entry.
//! 4. **Wait**: the entry is in progress elsewhere: go through the wait graph, which
//!    either finds a cycle (unwind) or parks this worker as blocked (a spare keeps the
//!    pool's parallelism), until the owner completes. A [`Registration`] guard takes the
//!    wait back if the waiter unwinds before the owner released it.
//!
//! 5. **Refresh** (incremental engines): the entry is from an older revision. If all its
//!    dependencies are current and unchanged, make it current with one CAS (no claim);
//!    else claim it with one CAS on its state word (losers wait as in step 4), check
//!    its dependencies in order, then either complete it unchanged (green) or execute
//!    as in step 3 (red) and store the result, keeping the old one if it is the same
//!    (see `revision.rs`).
//!    A check that finds the query in a cycle unwinds into the same settling as a
//!    compute that did. Every request also records what it read in its requester's job.
//!
//! A requester that has been marked as a cycle participant unwinds at its next claim or
//! wait, and after any wait ("learns it at its next request").

use super::engine::ParallelEngine;
use super::error::{PanicPayload, QueryError};
use super::graph::{BlockOn, WaitOutcome, WaitSlot};
use super::job::{key_text, QueryJob};
use super::revision::{check_deps, Dep, Event, Revision, Verdict, CHANGED_NOW};
use super::table::{state, Claim, Memo, MemoTable, Miss, Record, Slot, Stored};
use super::tables::{Greening, Refresher};
use super::unwind::{settle, unwind_cycle, CycleUnwind};
use super::{Cx, Query};
use crate::pool::context::{self, Context, ContextNode};
use crate::pool::WorkerThread;
use crate::sync::atomic::Ordering;
use crate::sync::Arc;
use crate::trace::{self, BlockedOn, SpanKind};

impl ParallelEngine {
    /// `(Q, key)` requested in the context of `requester`. `INCREMENTAL` is the
    /// engine's kind (a batch engine's requests compile without revisions or
    /// recording). Always inlined: a hit then costs the requesting query no call (the
    /// rest is out of line).
    #[inline(always)]
    pub(crate) fn fetch<Q: Query, const INCREMENTAL: bool>(
        &self,
        requester: Option<&QueryJob>,
        key: &Q::Key,
    ) -> Result<&Q::Value, QueryError> {
        debug_assert_eq!(INCREMENTAL, self.revisions.incremental);
        let table = self.table::<Q>();
        let hash = MemoTable::<Q>::hash(key);
        match table.lookup(hash, key) {
            Ok(slot) => match table.current_value::<INCREMENTAL>(slot, self.revisions.now) {
                Some(value) => {
                    if INCREMENTAL {
                        self.record(requester, table.index, slot.id());
                    }
                    crate::trace::memo_hit(&self.trace);
                    Ok(value)
                }
                None => {
                    let id = slot.id();
                    self.record(requester, table.index, id);
                    self.not_current(requester, table, id, slot)
                }
            },
            Err(miss) => self.claim::<Q>(requester, table, hash, key, miss),
        }
    }

    /// [`ParallelEngine::fetch`] for an incremental engine, out of line: the batch
    /// path stays small enough to inline into the requesting query.
    #[inline(never)]
    pub(crate) fn fetch_incremental<Q: Query>(
        &self,
        requester: Option<&QueryJob>,
        key: &Q::Key,
    ) -> Result<&Q::Value, QueryError> {
        self.fetch::<Q, true>(requester, key)
    }

    /// Records that `requester` read slot `id` of table `table` (incremental engines).
    #[inline]
    pub(crate) fn record(&self, requester: Option<&QueryJob>, table: u32, id: u32) {
        if self.revisions.incremental {
            if let Some(job) = requester {
                job.deps.record(Dep { table, id });
            }
        }
    }

    /// A found entry that is not a plain hit: failed, in progress (wait for it), or
    /// from an older revision (refresh it).
    #[cold]
    #[inline(never)]
    fn not_current<'e, Q: Query>(
        &'e self,
        requester: Option<&QueryJob>,
        table: &'e MemoTable<Q>,
        id: u32,
        slot: &'e Slot<Q>,
    ) -> Result<&'e Q::Value, QueryError> {
        match table.read(slot, self.revisions.now) {
            Memo::Ready(result) => {
                crate::trace::memo_hit(&self.trace);
                result
            }
            Memo::Running(_) => self.wait(requester, table, slot),
            Memo::Stale(previous) => self.refresh(requester, table, id, slot, previous, true),
        }
    }

    /// `(Q, key)` if it is an input (set with `Engine::set_input`), else `None`: all a
    /// `recover` may read. The read is recorded for `requester` (the participant).
    #[cold]
    pub(crate) fn fetch_input<Q: Query>(
        &self,
        requester: Option<&QueryJob>,
        key: &Q::Key,
    ) -> Option<&Q::Value> {
        let table = self.table::<Q>();
        let slot = table.find(MemoTable::<Q>::hash(key), key)?;
        let id = slot.id();
        let value = table.input_value(slot)?;
        self.record(requester, table.index, id);
        Some(value)
    }

    /// Brings slot `id` of `table` up to date for `job` (which depends on it) and
    /// returns the revision its result last changed in: a dependency check.
    pub(crate) fn changed_at<Q: Query>(
        &self,
        job: &QueryJob,
        table: &MemoTable<Q>,
        id: u32,
    ) -> Revision {
        let slot = table.slot(id);
        let now = self.revisions.now;
        let mut word = slot.state.load(Ordering::Acquire);
        if !state::is_current(word, now) {
            self.bring_up_to_date(job, table, id, slot, word);
            word = slot.state.load(Ordering::Acquire);
            if !state::is_current(word, now) {
                // Released by the deadlock backstop: not brought up to date.
                return CHANGED_NOW;
            }
        }
        state::changed_at(word)
    }

    /// A dependency that is in progress (wait for it) or stale (refresh it).
    #[cold]
    #[inline(never)]
    fn bring_up_to_date<Q: Query>(
        &self,
        job: &QueryJob,
        table: &MemoTable<Q>,
        id: u32,
        slot: &Slot<Q>,
        word: usize,
    ) {
        let done = if state::is_running(word) {
            self.wait(Some(job), table, slot).is_ok()
        } else {
            // Not deep: this check's own descent brings the rest up to date in order.
            self.refresh(Some(job), table, id, slot, word, false)
                .is_ok()
        };
        // Only the state word matters to the caller; an error stays in the memo.
        let _ = done;
    }

    #[cold]
    #[inline(never)]
    fn claim<'e, Q: Query>(
        &'e self,
        requester: Option<&QueryJob>,
        table: &'e MemoTable<Q>,
        hash: u64,
        key: &Q::Key,
        miss: Miss,
    ) -> Result<&'e Q::Value, QueryError> {
        if requester.is_some_and(QueryJob::in_cycle) {
            unwind_cycle();
        }
        let worker = current_worker();
        // Starting a computation is a moment to let idle workers have what this worker
        // kept private (a query may run long without another `join`).
        worker.expose_if_hungry();
        let job = QueryJob::new(
            ContextNode::tagged_child_of(context::current(), self.tag()),
            requester,
            (Q::NAME, std::any::type_name::<Q>()),
            key,
            &worker.registry,
        );
        match table.claim(
            hash,
            key,
            &job as *const QueryJob as usize,
            worker.index,
            miss,
        ) {
            Claim::Existing(slot) => {
                let id = slot.id();
                self.record(requester, table.index, id);
                self.not_current(requester, table, id, slot)
            }
            Claim::Claimed(slot) => {
                let id = slot.id();
                self.record(requester, table.index, id);
                let claim = ClaimGuard {
                    engine: self,
                    table,
                    job: &job,
                    id,
                    slot,
                    previous: state::VACANT,
                };
                self.execute(requester, claim)
            }
        }
    }

    /// A memo from an older revision: claim it (or find that another requester did),
    /// then check its dependencies and reuse it or re-execute (see `revision.rs`).
    #[cold]
    #[inline(never)]
    fn refresh<'e, Q: Query>(
        &'e self,
        requester: Option<&QueryJob>,
        table: &'e MemoTable<Q>,
        id: u32,
        slot: &'e Slot<Q>,
        mut previous: usize,
        deep: bool,
    ) -> Result<&'e Q::Value, QueryError> {
        if requester.is_some_and(QueryJob::in_cycle) {
            unwind_cycle();
        }
        // The common case first: every dependency is already current and unchanged
        // (brought up to date by earlier requests), or stale with the same true of
        // its own (`deep`: followed up to `GREEN_DEPTH`), so the memo is green without
        // a claim, a job, or user code: a load per dependency and a CAS per memo.
        let worker = current_worker();
        let now = self.revisions.now;
        let green = Greening::new(now, &self.revisions, worker.index, deep);
        if self.tables.try_green(table, id, previous, green) {
            return table.completed(slot, now);
        }
        let job = QueryJob::new(
            ContextNode::tagged_child_of(context::current(), self.tag()),
            requester,
            (Q::NAME, std::any::type_name::<Q>()),
            slot.key(),
            &worker.registry,
        );
        while !table.claim_stale(slot, previous, &job as *const QueryJob as usize) {
            match table.read(slot, self.revisions.now) {
                Memo::Ready(result) => return result,
                Memo::Running(_) => return self.wait(requester, table, slot),
                Memo::Stale(now) => previous = now,
            }
        }
        let claim = ClaimGuard {
            engine: self,
            table,
            job: &job,
            id,
            slot,
            previous,
        };
        self.execute(requester, claim)
    }

    /// Runs a claimed query: computes a new key's value, or refreshes a stale memo.
    fn execute<'e, Q: Query>(
        &'e self,
        requester: Option<&QueryJob>,
        claim: ClaimGuard<'_, 'e, Q>,
    ) -> Result<&'e Q::Value, QueryError> {
        if crate::sync::fault("owner_unwinds_after_claim") {
            // Loom models only: an unwind nothing catches, for the claim guard to handle.
            std::panic::resume_unwind(Box::new("injected fault after a claim"));
        }
        let (table, slot) = (claim.table, claim.slot);
        if claim.previous == state::VACANT {
            self.compute(claim, Ok(()));
        } else {
            self.refresh_claimed(claim);
        }
        self.after_completion(requester, table, slot)
    }

    /// Checks the dependencies of a stale memo (its claim's `previous` state), then
    /// completes it unchanged if none changed, or computes it again.
    #[cold]
    #[inline(never)]
    fn refresh_claimed<Q: Query>(&self, claim: ClaimGuard<'_, '_, Q>) {
        let job = claim.job;
        let started = std::cell::Cell::new(0);
        let verdict = context::enter(Context::of(&job.ctx), || {
            crate::pool::catch(|| {
                let _span = trace::query_span(&self.trace, || SpanKind::Verify {
                    name: Q::NAME,
                    key: key_text(claim.slot.key()),
                });
                self.check(job, claim.table, claim.id, claim.previous, &started)
            })
        });
        match verdict {
            // (A job is marked in a cycle only while it waits, and a wait that returns
            // to a marked job unwinds: a finished check cannot have been marked. The
            // guard costs a load.)
            Ok(Verdict::Green) if !job.in_cycle() => {
                self.revisions.count(Event::Verified, worker_index);
                claim.complete_green();
            }
            Ok(Verdict::Red) => self.compute(claim, Ok(())),
            // Found in a cycle while checking: settled as a compute that requested the
            // dependencies checked so far, which are what it depends on.
            verdict => {
                // SAFETY: `job` owns the slot; its dependencies are written only when it
                // completes, below.
                let old = unsafe { claim.table.deps(claim.id) };
                for dep in old.prefix(started.get()).iter() {
                    job.deps.record(dep);
                }
                let payload = verdict.err().unwrap_or_else(|| Box::new(CycleUnwind));
                self.compute(claim, Err(payload));
            }
        }
    }

    /// Runs `compute` for a claimed slot (unless `checked` carries the unwind of a
    /// dependency check), then stores and completes.
    #[inline]
    fn compute<Q: Query>(
        &self,
        claim: ClaimGuard<'_, '_, Q>,
        checked: Result<(), Box<dyn std::any::Any + Send>>,
    ) {
        let job = claim.job;
        let key = claim.slot.key();
        let computed = checked.and_then(|()| {
            self.revisions.count(Event::Executed, worker_index);
            context::enter(Context::of(&job.ctx), || {
                crate::pool::catch(|| {
                    let _span = trace::query_span(&self.trace, || SpanKind::Query {
                        name: Q::NAME,
                        key: key_text(key),
                    });
                    Q::compute(&Cx::parallel(self, Some(job)), key)
                })
            })
        });
        match computed {
            Ok(value) if !job.in_cycle() => claim.complete_value(value),
            computed => claim.complete(self.settle_cold::<Q>(job, key, computed)),
        }
    }

    /// The result of a slot this request completed (unwinding first if the requester
    /// was found in a cycle meanwhile).
    #[inline]
    fn after_completion<'e, Q: Query>(
        &'e self,
        requester: Option<&QueryJob>,
        table: &'e MemoTable<Q>,
        slot: &'e Slot<Q>,
    ) -> Result<&'e Q::Value, QueryError> {
        if requester.is_some_and(QueryJob::in_cycle) {
            unwind_cycle();
        }
        table.completed(slot, self.revisions.now)
    }

    /// Checks the dependencies of a stale memo that `job` claimed from state `previous`,
    /// counting in `started` those it began to check (a check that unwinds leaves the
    /// memo depending on them: what a fresh execution would have read up to there).
    fn check<Q: Query>(
        &self,
        job: &QueryJob,
        table: &MemoTable<Q>,
        id: u32,
        previous: usize,
        started: &std::cell::Cell<usize>,
    ) -> Verdict {
        // SAFETY: `job` owns the slot; nothing writes its dependencies before it
        // completes.
        let deps = unsafe { table.deps(id) };
        check_deps(deps, state::verified_at(previous), |dep| {
            started.set(started.get() + 1);
            let changed = self.tables.changed_at(dep, Refresher::Parallel(self, job));
            if job.in_cycle() {
                unwind_cycle();
            }
            changed
        })
    }

    /// What a query that failed or was found in a cycle stores.
    #[cold]
    fn settle_cold<Q: Query>(
        &self,
        job: &QueryJob,
        key: &Q::Key,
        computed: Result<Q::Value, Box<dyn std::any::Any + Send>>,
    ) -> Result<Q::Value, QueryError> {
        let cycle = job.in_cycle().then(|| self.graph.cycle_of(job));
        let participant = job.describe();
        let root = Cx::parallel(self, Some(job));
        settle::<Q>(&root.recovering(&participant), key, cycle, computed)
    }

    #[cold]
    fn wait<'e, Q: Query>(
        &'e self,
        requester: Option<&QueryJob>,
        table: &'e MemoTable<Q>,
        slot: &'e Slot<Q>,
    ) -> Result<&'e Q::Value, QueryError> {
        let worker = current_worker();
        match (self.graph).block_on(requester, &slot.state, &worker.registry, worker.index) {
            BlockOn::Done => {}
            BlockOn::Cycle => {
                trace::cycle_found(&self.trace, || requester.map(|r| self.graph.cycle_of(r)));
                unwind_cycle()
            }
            BlockOn::Wait(wait) => {
                let registration = Registration {
                    engine: self,
                    slot: &wait,
                };
                worker.registry.listen_for_stalls(&self.stall_listener());
                {
                    let _span = trace::query_span(&self.trace, || {
                        SpanKind::Blocked(BlockedOn::Query {
                            query: Q::NAME,
                            key: key_text(slot.key()),
                            waiter: requester.map(QueryJob::describe),
                        })
                    });
                    worker.wait_until(&wait.latch);
                }
                registration.released();
                if let WaitOutcome::Deadlock(report) = wait.outcome() {
                    return Err(QueryError::Deadlock(report));
                }
            }
        }
        // A waiter is released only once the entry is done.
        self.after_completion(requester, table, slot)
    }

    /// The tag of this engine's query jobs in the context chain (its address).
    pub(crate) fn tag(&self) -> usize {
        self as *const Self as usize
    }
}

/// The worker this query code runs on: every request of the parallel engine does, since
/// `Engine::run` runs its closure on a worker and a `Cx` never leaves its thread.
#[inline]
fn current_worker<'a>() -> &'a WorkerThread {
    // SAFETY: null or this thread's live WorkerThread.
    unsafe { WorkerThread::current().as_ref() }
        .expect("the parallel engine's requests run on pool workers")
}

/// The index of the worker this query code runs on (see [`current_worker`]).
fn worker_index() -> usize {
    current_worker().index
}

/// The claiming frame's obligation to complete its entry (module docs, step 2).
struct ClaimGuard<'a, 'e, Q: Query> {
    engine: &'e ParallelEngine,
    table: &'e MemoTable<Q>,
    job: &'a QueryJob,
    id: u32,
    slot: &'e Slot<Q>,
    /// The state the slot was claimed from: `VACANT`, or a stale memo's.
    previous: usize,
}

impl<Q: Query> ClaimGuard<'_, '_, Q> {
    /// Stores `result` and completes the entry, waking its waiters.
    fn complete(self, result: Result<Q::Value, QueryError>) {
        self.publish(result);
        std::mem::forget(self);
    }

    /// [`ClaimGuard::complete`] with a value.
    #[inline]
    fn complete_value(self, value: Q::Value) {
        if self.engine.revisions.incremental {
            return self.complete(Ok(value));
        }
        // SAFETY: as in `publish` (a batch engine claims only new slots).
        unsafe { MemoTable::store_value(self.slot, value) };
        (self.engine.graph).complete(&self.slot.state, state::done(0, 0), self.job);
        std::mem::forget(self);
    }

    /// Completes a stale memo whose dependencies were all unchanged: it is current
    /// again, with its result, dependencies and "changed" revision as they were.
    fn complete_green(self) {
        let done = state::reverified(self.previous, self.engine.revisions.now);
        self.engine.graph.complete(&self.slot.state, done, self.job);
        std::mem::forget(self);
    }

    fn publish(&self, result: Result<Q::Value, QueryError>) {
        let revisions = &self.engine.revisions;
        let record = revisions.incremental.then(|| Record {
            now: revisions.now,
            deps: self.job.deps.take(),
        });
        // SAFETY: this guard's job owns the slot and stores its result once: `complete`
        // consumes the guard (so its `Drop` does not store again), and `Drop` runs only
        // if `complete` did not.
        let (done, stored) =
            unsafe { (self.table).finish(self.id, self.slot, self.previous, result, record) };
        if stored == Stored::Backdated {
            revisions.count(Event::Backdated, worker_index);
        }
        self.engine.graph.complete(&self.slot.state, done, self.job);
    }
}

impl<Q: Query> Drop for ClaimGuard<'_, '_, Q> {
    /// Runs only if the claiming frame unwinds before completing: poison the entry.
    fn drop(&mut self) {
        if crate::sync::mutant("claim_unguarded") {
            // Deliberately broken (loom builds only): the claim is never released.
            return;
        }
        let message = "the query unwound before its result was stored";
        self.publish(Err(QueryError::Panicked {
            query: Q::NAME,
            key: key_text(self.slot.key()),
            message: message.to_string(),
            payload: PanicPayload::new(Box::new(message)),
        }));
    }
}

/// A registered wait, taken back if the waiter unwinds before the owner released it
/// (module docs, step 4).
struct Registration<'a> {
    engine: &'a ParallelEngine,
    slot: &'a Arc<WaitSlot>,
}

impl Registration<'_> {
    /// The owner (or the deadlock backstop) released the wait: nothing to take back.
    fn released(self) {
        std::mem::forget(self);
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.engine.graph.unregister(self.slot);
    }
}
