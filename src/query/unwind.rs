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

use super::error::{Cycle, PanicPayload, QueryError};
use super::job::key_text;
use super::{Cx, Query};
use crate::pool::{catch, drop_payload, panic_text};

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
///
/// `recover` runs with `recover_cx`, a context that may read inputs only (see
/// [`Query::recover`]); if it panics, the participant stores that panic as its poison.
pub(crate) fn settle<Q: Query>(
    recover_cx: &Cx<'_>,
    key: &Q::Key,
    cycle: Option<Cycle>,
    computed: Result<Q::Value, Box<dyn Any + Send>>,
) -> Result<Q::Value, QueryError> {
    let Some(cycle) = cycle else {
        return computed.map_err(|payload| error_of_payload::<Q>(key, payload));
    };
    if let Err(payload) = computed {
        // The unwind that brought us here (normally a `CycleUnwind`) is over.
        drop_payload(payload);
    }
    match catch(|| recover_cx.in_recover(|| Q::recover(recover_cx, key, &cycle))) {
        Ok(Some(value)) => Ok(value),
        Ok(None) => Err(QueryError::Cycle(cycle)),
        Err(payload) => Err(error_of_payload::<Q>(key, payload)),
    }
}

/// The error a query stores for the unwind `payload` that ended its compute (or its
/// `recover`).
pub(crate) fn error_of_payload<Q: Query>(key: &Q::Key, payload: Box<dyn Any + Send>) -> QueryError {
    if let Some(Propagated(error)) = payload.downcast_ref::<Propagated>() {
        let error = error.clone();
        drop_payload(payload);
        return error;
    }
    let message = if payload.is::<CycleUnwind>() {
        format!(
            "internal error: a cycle unwind reached `{}({})`, which is not in the cycle",
            Q::NAME,
            key_text(key)
        )
    } else {
        panic_text(&*payload)
    };
    QueryError::Panicked {
        query: Q::NAME,
        key: key_text(key),
        message,
        payload: PanicPayload::new(payload),
    }
}

/// The error for a request that a `recover` may not make (anything but an input).
pub(crate) fn request_in_recover(
    recovering: (&'static str, String),
    requested: (&'static str, String),
) -> QueryError {
    QueryError::RequestInRecover {
        recovering: format!("{}({})", recovering.0, recovering.1),
        requested: format!("{}({})", requested.0, requested.1),
    }
}

/// The error for a request from `recover` that did not find an input: the input was
/// never set, or the query is not an input.
pub(crate) fn refused_in_recover<Q: Query>(
    recovering: &(&'static str, String),
    key: &Q::Key,
) -> QueryError {
    if Q::IS_INPUT {
        QueryError::InputNotSet {
            input: Q::NAME,
            key: key_text(key),
        }
    } else {
        request_in_recover(recovering.clone(), (Q::NAME, key_text(key)))
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
