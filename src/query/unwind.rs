//! How errors and cycle resolution travel up the stack, and what a finished query
//! stores.
//!
//! `get` has no error in its signature, so an error travels by unwinding, with payloads
//! the engine recognises (raised with `resume_unwind`, so the panic hook prints
//! nothing):
//!
//! - [`CycleUnwind`]: unwinds a cycle participant up to its own `get` frame, which
//!   stores its `recover` value or the cycle error, then keeps unwinding into its caller
//!   if that caller is a participant too.
//! - [`Propagated`]: an error a `get` received; the enclosing query stores the same
//!   error and passes it on, up to the nearest `try_get` or `Engine::run`.
//!
//! Any other payload is a real panic, which poisons the query's entry.

use std::any::Any;
use std::panic::resume_unwind;

use super::error::{panic_message, Cycle, QueryError};
use super::{Cx, Query};

/// Unwinds a cycle participant (see the module docs).
pub(crate) struct CycleUnwind;

/// Carries an error from `get` to the nearest `try_get` or `run` (module docs).
pub(crate) struct Propagated(pub(crate) QueryError);

pub(crate) fn unwind_cycle() -> ! {
    resume_unwind(Box::new(CycleUnwind))
}

pub(crate) fn propagate(error: QueryError) -> ! {
    resume_unwind(Box::new(Propagated(error)))
}

/// What a query stores once its compute is over: the `recover` value or the cycle
/// error for a cycle participant, the propagated error, a poison for a panic, or the
/// computed value. Both engines use this one rule, so they store the same things.
pub(crate) fn settle<Q: Query>(
    recover_cx: &Cx<'_>,
    key: &Q::Key,
    cycle: Option<Cycle>,
    computed: Result<Q::Value, Box<dyn Any + Send>>,
) -> Result<Q::Value, QueryError> {
    if let Some(cycle) = cycle {
        return match Q::recover(recover_cx, key, &cycle) {
            Some(value) => Ok(value),
            None => Err(QueryError::Cycle(cycle)),
        };
    }
    match computed {
        Ok(value) => Ok(value),
        Err(payload) => Err(error_of_payload::<Q>(key, payload)),
    }
}

fn error_of_payload<Q: Query>(key: &Q::Key, payload: Box<dyn Any + Send>) -> QueryError {
    if let Some(Propagated(error)) = payload.downcast_ref::<Propagated>() {
        return error.clone();
    }
    if payload.is::<CycleUnwind>() {
        return QueryError::Deadlock(format!(
            "internal error: a cycle unwind reached `{}({key:?})`, which is not in the cycle",
            Q::NAME
        ));
    }
    QueryError::Panicked {
        query: Q::NAME,
        key: format!("{key:?}"),
        message: panic_message(&*payload),
    }
}

/// What `Engine::run` makes of its closure's outcome.
pub(crate) fn finish_run<R>(outcome: Result<R, Box<dyn Any + Send>>) -> Result<R, QueryError> {
    match outcome {
        Ok(value) => Ok(value),
        Err(payload) => match payload.downcast::<Propagated>() {
            Ok(propagated) => Err(propagated.0),
            // A panic in the run closure itself (outside any query) is the caller's.
            Err(payload) => resume_unwind(payload),
        },
    }
}
