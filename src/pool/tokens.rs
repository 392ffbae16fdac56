//! Jobserver tokens: how many workers may run at once under Cargo or make.
//!
//! The process owns one implicit token and never gives it away. Every other running
//! worker holds a token acquired from the jobserver. A worker holds a [`Permit`] (the
//! implicit token or an acquired one) while it runs: it releases the permit before it
//! parks (idle sleep, a blocking wait, a parked spare) and acquires one before it runs
//! again. So at every instant
//!
//! ```text
//!     running workers = permits in use <= acquired tokens + 1
//! ```
//!
//! Waiting for a token burns no CPU: the jobserver crate's helper thread does the
//! blocking read and hands tokens over through [`TokenPool::deliver`]; a waiting worker
//! sleeps on a condition variable. Tokens nobody waits for go straight back to the
//! jobserver, so none is kept idle and none leaks: after the work ends (and after the
//! pool shuts down) every acquired token is back.
//!
//! Without a jobserver the pool only counts: every worker may run.

use crate::sync::{Arc, Condvar, Mutex};

/// What a running worker holds.
pub(crate) enum Permit {
    /// The process's implicit token.
    Implicit,
    /// A token acquired from the jobserver (returned when dropped).
    Token(Token),
    /// No jobserver: running is not limited.
    Unlimited,
}

/// An acquired jobserver token.
#[cfg(not(loom))]
pub(crate) type Token = jobserver::Acquired;
/// Loom builds model the jobserver as a counter (see `TokenPool::with_model_limit`).
#[cfg(loom)]
pub(crate) type Token = ModelToken;

#[derive(Default)]
struct TokenState {
    limited: bool,
    implicit_free: bool,
    /// Acquired tokens handed over for waiting workers but not taken yet.
    spare: Vec<Token>,
    waiting: usize,
    requested: usize,
    running: usize,
    held: usize,
    peak_running: usize,
    peak_held: usize,
}

impl TokenState {
    /// Tokens no one waits for go back at once (dropped after the lock is released).
    fn surplus(&mut self) -> Vec<Token> {
        if self.waiting >= self.spare.len() {
            return Vec::new();
        }
        let surplus: Vec<Token> = self.spare.drain(self.waiting..).collect();
        self.held -= surplus.len();
        surplus
    }

    fn start_running(&mut self) {
        self.running += 1;
        self.peak_running = self.peak_running.max(self.running);
    }
}

struct Shared {
    state: Mutex<TokenState>,
    granted: Condvar,
}

/// A snapshot of the token counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TokenStats {
    pub(crate) running: usize,
    pub(crate) held: usize,
    pub(crate) peak_running: usize,
    pub(crate) peak_held: usize,
}

/// The pool's side of the jobserver.
pub(crate) struct TokenPool {
    shared: Arc<Shared>,
    source: Mutex<Option<Source>>,
}

enum Source {
    #[cfg(not(loom))]
    Jobserver(jobserver::HelperThread),
    #[cfg(loom)]
    Model(Arc<ModelJobserver>),
}

impl TokenPool {
    /// No jobserver: running is not limited.
    pub(crate) fn unlimited() -> Self {
        TokenPool {
            shared: Arc::new(Shared {
                state: Mutex::new(TokenState::default()),
                granted: Condvar::new(),
            }),
            source: Mutex::new(None),
        }
    }

    /// Takes tokens from `client` (through the crate's helper thread).
    #[cfg(not(loom))]
    pub(crate) fn with_jobserver(client: jobserver::Client) -> std::io::Result<Self> {
        let pool = TokenPool::unlimited();
        {
            let mut state = pool.shared.state.lock();
            state.limited = true;
            state.implicit_free = true;
        }
        let shared = Arc::clone(&pool.shared);
        let helper = client.into_helper_thread(move |token| match token {
            Ok(token) => TokenPool::deliver(&shared, token),
            Err(_) => TokenPool::give_up(&shared),
        })?;
        *pool.source.lock() = Some(Source::Jobserver(helper));
        Ok(pool)
    }

    /// A token arrived for a waiting worker.
    fn deliver(shared: &Shared, token: Token) {
        let mut state = shared.state.lock();
        state.requested = state.requested.saturating_sub(1);
        state.held += 1;
        state.peak_held = state.peak_held.max(state.held);
        state.spare.push(token);
        let surplus = state.surplus();
        shared.granted.notify_one();
        drop(state);
        drop(surplus);
    }

    /// The jobserver failed: stop limiting rather than leave workers waiting forever.
    #[cfg(not(loom))]
    fn give_up(shared: &Shared) {
        let mut state = shared.state.lock();
        state.requested = state.requested.saturating_sub(1);
        state.limited = false;
        shared.granted.notify_all();
    }

    fn request_token(&self) {
        match &*self.source.lock() {
            #[cfg(not(loom))]
            Some(Source::Jobserver(helper)) => helper.request_token(),
            #[cfg(loom)]
            Some(Source::Model(model)) => ModelJobserver::request(model, &self.shared),
            None => {}
        }
    }

    /// Blocks (without spinning) until this worker may run.
    pub(crate) fn acquire(&self) -> Permit {
        let mut state = self.shared.state.lock();
        loop {
            if !state.limited {
                state.start_running();
                return Permit::Unlimited;
            }
            // The mutant (loom builds only) hands the implicit token out twice.
            if state.implicit_free || crate::sync::mutant("implicit_twice") {
                state.implicit_free = false;
                state.start_running();
                let surplus = state.surplus();
                drop(state);
                drop(surplus);
                return Permit::Implicit;
            }
            if let Some(token) = state.spare.pop() {
                state.start_running();
                return Permit::Token(token);
            }
            // Count ourselves as waiting *before* asking, so that a token delivered at
            // once is kept for us rather than returned as surplus.
            state.waiting += 1;
            if state.requested < state.waiting {
                state.requested += 1;
                drop(state);
                self.request_token();
                state = self.shared.state.lock();
            }
            while state.limited && !state.implicit_free && state.spare.is_empty() {
                state = self.shared.granted.wait(state);
            }
            state.waiting -= 1;
        }
    }

    /// The worker stops running (it is about to park, or exits).
    pub(crate) fn release(&self, permit: Permit) {
        let mut state = self.shared.state.lock();
        state.running -= 1;
        let mut returned = None;
        match permit {
            Permit::Unlimited => {}
            Permit::Implicit => {
                state.implicit_free = true;
                self.shared.granted.notify_one();
            }
            Permit::Token(token) => {
                if state.waiting > state.spare.len() {
                    state.spare.push(token);
                    self.shared.granted.notify_one();
                } else if crate::sync::mutant("token_leak") {
                    // Deliberately broken (loom builds only): the token is never returned.
                    std::mem::forget(token);
                } else {
                    state.held -= 1;
                    returned = Some(token);
                }
            }
        }
        drop(state);
        drop(returned);
    }

    pub(crate) fn stats(&self) -> TokenStats {
        let state = self.shared.state.lock();
        TokenStats {
            running: state.running,
            held: state.held,
            peak_running: state.peak_running,
            peak_held: state.peak_held,
        }
    }

    /// Stops the helper thread (returning any token it acquires from now on).
    pub(crate) fn shut_down(&self) {
        let source = self.source.lock().take();
        #[cfg(loom)]
        if let Some(Source::Model(model)) = &source {
            model.state.lock().pool = None;
        }
        drop(source);
        let surplus = {
            let mut state = self.shared.state.lock();
            state.held -= state.spare.len();
            std::mem::take(&mut state.spare)
        };
        // Returned to the jobserver outside the lock.
        drop(surplus);
    }
}

/// Loom builds: a jobserver modelled as a counter of free tokens. Like a real one, a
/// request with no token free stays pending until a token is returned.
#[doc(hidden)]
#[cfg(loom)]
pub struct ModelJobserver {
    state: Mutex<ModelState>,
}

#[cfg(loom)]
struct ModelState {
    free: usize,
    pending: usize,
    /// The pool to deliver to; cleared at shutdown (it refers back to us).
    pool: Option<Arc<Shared>>,
}

/// A token of the modelled jobserver; returns itself when dropped.
#[cfg(loom)]
pub(crate) struct ModelToken {
    jobserver: Arc<ModelJobserver>,
}

#[cfg(loom)]
impl Drop for ModelToken {
    fn drop(&mut self) {
        let mut state = self.jobserver.state.lock();
        match state.pool.clone().filter(|_| state.pending > 0) {
            Some(pool) => {
                state.pending -= 1;
                drop(state);
                let token = ModelToken {
                    jobserver: Arc::clone(&self.jobserver),
                };
                TokenPool::deliver(&pool, token);
            }
            None => state.free += 1,
        }
    }
}

#[cfg(loom)]
impl ModelJobserver {
    fn request(this: &Arc<Self>, shared: &Arc<Shared>) {
        let mut state = this.state.lock();
        if state.free == 0 {
            state.pending += 1;
            return;
        }
        state.free -= 1;
        drop(state);
        TokenPool::deliver(
            shared,
            ModelToken {
                jobserver: Arc::clone(this),
            },
        );
    }

    /// Tokens in the modelled jobserver now.
    pub fn free_tokens(&self) -> usize {
        self.state.lock().free
    }
}

#[cfg(loom)]
impl TokenPool {
    /// A pool limited by a modelled jobserver with `limit` tokens (loom models only).
    pub(crate) fn with_model_limit(limit: usize) -> (Self, Arc<ModelJobserver>) {
        let pool = TokenPool::unlimited();
        {
            let mut state = pool.shared.state.lock();
            state.limited = true;
            state.implicit_free = true;
        }
        let model = Arc::new(ModelJobserver {
            state: Mutex::new(ModelState {
                free: limit,
                pending: 0,
                pool: Some(Arc::clone(&pool.shared)),
            }),
        });
        *pool.source.lock() = Some(Source::Model(Arc::clone(&model)));
        (pool, model)
    }
}
