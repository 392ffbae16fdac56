//! The parallel engine's request path: hit -> claim -> execute -> complete, or wait.
//!
//! 1. **Hit**: the entry exists and is done: clone the value. No lock, no shared write.
//! 2. **Claim**: no entry: insert one owned by a new [`QueryJob`] (shard lock only).
//! 3. **Execute**: run `compute` in the job's context, catching any unwind; [`settle`]
//!    what to store; store it; complete the entry (waking waiters if any).
//! 4. **Wait**: the entry is in progress elsewhere: go through the wait graph, which
//!    either finds a cycle (unwind) or parks this worker as blocked (a spare keeps the
//!    pool's parallelism), until the owner completes.
//!
//! A requester that has been marked as a cycle participant unwinds at its next claim or
//! wait, and after any wait ("learns it at its next request").

use super::engine::ParallelEngine;
use super::error::QueryError;
use super::graph::{BlockOn, WaitOutcome};
use super::job::QueryJob;
use super::table::{hash_key, Claim, Entry};
use super::unwind::{settle, unwind_cycle};
use super::{Cx, Query};
use crate::pool::context::{self, Context, ContextNode};
use crate::pool::WorkerThread;
use crate::trace::{self, BlockedOn, SpanKind};

impl ParallelEngine {
    /// `(Q, key)` requested in the context of `requester`.
    #[inline]
    pub(crate) fn fetch<Q: Query>(
        &self,
        requester: Option<&QueryJob>,
        key: &Q::Key,
    ) -> Result<Q::Value, QueryError> {
        let table = self.table::<Q>();
        let hash = hash_key(key);
        if let Some(entry) = table.get(hash, key) {
            if let Some(result) = entry.result() {
                crate::trace::memo_hit(&self.trace);
                return result.clone();
            }
            return self.wait(requester, entry);
        }
        self.claim::<Q>(requester, hash, key)
    }

    #[cold]
    fn claim<Q: Query>(
        &self,
        requester: Option<&QueryJob>,
        hash: u64,
        key: &Q::Key,
    ) -> Result<Q::Value, QueryError> {
        if requester.is_some_and(QueryJob::in_cycle) {
            unwind_cycle();
        }
        // Starting a computation is a moment to let idle workers have what this worker
        // kept private (a query may run long without another `join`).
        crate::pool::expose_if_hungry();
        let job = QueryJob::new(
            ContextNode::child_of(context::current()),
            requester,
            Q::NAME,
            key,
        );
        match self.table::<Q>().get_or_claim(hash, key, &job) {
            Claim::Existing(entry) => match entry.result() {
                Some(result) => result.clone(),
                None => self.wait(requester, entry),
            },
            Claim::Claimed(entry) => self.execute(requester, &job, entry),
        }
    }

    fn execute<Q: Query>(
        &self,
        requester: Option<&QueryJob>,
        job: &QueryJob,
        entry: &Entry<Q>,
    ) -> Result<Q::Value, QueryError> {
        let cx = Cx::parallel(self, Some(job));
        let span = trace::query_span(&self.trace, || SpanKind::Query {
            name: Q::NAME,
            key: format!("{:?}", entry.key),
        });
        let computed = context::enter(Context::of(&job.ctx), || {
            crate::pool::catch(|| Q::compute(&cx, &entry.key))
        });
        drop(span);
        let cycle = job.in_cycle().then(|| self.graph.cycle_of(job));
        let stored = settle::<Q>(&Cx::parallel(self, requester), &entry.key, cycle, computed);
        // SAFETY: this job owns the entry and stores its result once.
        unsafe { entry.store(stored.clone()) };
        self.graph.complete(&entry.sync, job);
        if requester.is_some_and(QueryJob::in_cycle) {
            unwind_cycle();
        }
        stored
    }

    #[cold]
    fn wait<Q: Query>(
        &self,
        requester: Option<&QueryJob>,
        entry: &Entry<Q>,
    ) -> Result<Q::Value, QueryError> {
        match self.graph.block_on(requester, &entry.sync) {
            BlockOn::Done => {}
            BlockOn::Cycle => {
                trace::cycle_found(&self.trace, || requester.map(|r| self.graph.cycle_of(r)));
                unwind_cycle()
            }
            BlockOn::Wait(slot) => {
                // SAFETY: null or this thread's live WorkerThread.
                let worker = unsafe { WorkerThread::current().as_ref() };
                let mut last_epoch = None;
                let mut stalled = || match worker {
                    Some(worker) => {
                        let (runnable, epoch) = worker.registry.stall_probe();
                        let stalled = runnable == 0 && last_epoch == Some(epoch);
                        last_epoch = Some(epoch);
                        stalled
                    }
                    None => false,
                };
                let span = trace::query_span(&self.trace, || {
                    SpanKind::Blocked(BlockedOn::Query {
                        query: Q::NAME,
                        key: format!("{:?}", entry.key),
                        waiter: requester.map(QueryJob::describe),
                    })
                });
                let outcome = match worker {
                    Some(worker) => worker.blocked(|| self.graph.wait(&slot, &mut stalled)),
                    None => self.graph.wait(&slot, &mut stalled),
                };
                drop(span);
                if let WaitOutcome::Deadlock(report) = outcome {
                    return Err(QueryError::Deadlock(report));
                }
            }
        }
        if requester.is_some_and(QueryJob::in_cycle) {
            unwind_cycle();
        }
        entry
            .result()
            .expect("a waiter is released only once the entry is done")
            .clone()
    }
}
