//! What a request can get instead of a value: [`QueryError`] and the [`Cycle`] report.

use std::fmt;
use std::sync::Arc;

/// A closed chain of waits among in-progress queries.
///
/// The participants are listed in canonical order: the chain is rotated to start at the
/// least `(query name, key)`, so every thread count and schedule prints the same report.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Cycle {
    participants: Arc<[(&'static str, String)]>,
}

impl Cycle {
    /// Builds a cycle from participants in wait order (each waits for the next, the last
    /// for the first), rotating it to canonical order. `least` is the index of the least
    /// participant, as decided by the caller (which can compare keys by `Ord`).
    pub(crate) fn new(mut participants: Vec<(&'static str, String)>, least: usize) -> Self {
        participants.rotate_left(least);
        Cycle {
            participants: participants.into(),
        }
    }

    /// `(query name, key as Debug text)` of every participant, in canonical order:
    /// each requires the next, and the last requires the first.
    pub fn participants(&self) -> &[(&'static str, String)] {
        &self.participants
    }
}

impl fmt::Debug for Cycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.participants.iter().map(|(q, k)| format!("{q}({k})")))
            .finish()
    }
}

/// The report rustc users know (E0391's shape), one line per participant.
impl fmt::Display for Cycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [(first_q, first_k), rest @ ..] = &*self.participants else {
            return f.write_str("empty cycle");
        };
        write!(f, "cycle detected when computing `{first_q}({first_k})`")?;
        if rest.is_empty() {
            return write!(
                f,
                "\n  ...which immediately requires computing `{first_q}({first_k})` again"
            );
        }
        for (q, k) in rest {
            write!(f, "\n  ...which requires computing `{q}({k})`...")?;
        }
        write!(
            f,
            "\n  ...which again requires computing `{first_q}({first_k})`, completing the cycle"
        )
    }
}

/// Why a query has no value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueryError {
    /// The query took part in a cycle (or depends on a participant that had no
    /// `recover` value).
    Cycle(Cycle),
    /// The query (or one it depends on) panicked; the entry is poisoned.
    Panicked {
        /// `Query::NAME` of the query that panicked.
        query: &'static str,
        /// Its key, as `Debug` text.
        key: String,
        /// The original panic message.
        message: String,
    },
    /// The pool could run nothing while queries were blocked, and no cycle explains
    /// it. This indicates a bug (or `max_threads` set too low); the text describes the
    /// wait graph.
    Deadlock(String),
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryError::Cycle(cycle) => cycle.fmt(f),
            QueryError::Panicked {
                query,
                key,
                message,
            } => write!(f, "query `{query}({key})` panicked: {message}"),
            QueryError::Deadlock(graph) => write!(f, "deadlock among queries:\n{graph}"),
        }
    }
}

impl std::error::Error for QueryError {}

/// The message of a panic payload (`&str` or `String`), else a placeholder.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cycle(parts: &[(&'static str, &str)], least: usize) -> Cycle {
        Cycle::new(
            parts.iter().map(|(q, k)| (*q, k.to_string())).collect(),
            least,
        )
    }

    #[test]
    fn report_starts_at_the_least_participant() {
        let c = cycle(&[("type_of", "B"), ("type_of", "A")], 1);
        assert_eq!(
            c.to_string(),
            "cycle detected when computing `type_of(A)`\n  \
             ...which requires computing `type_of(B)`...\n  \
             ...which again requires computing `type_of(A)`, completing the cycle"
        );
    }

    #[test]
    fn self_cycle_report() {
        let c = cycle(&[("q", "K")], 0);
        assert_eq!(
            c.to_string(),
            "cycle detected when computing `q(K)`\n  ...which immediately requires computing `q(K)` again"
        );
    }
}
