//! A locked queue with a flag its owner can check without taking the lock.

use std::collections::VecDeque;

use crate::sync::atomic::{AtomicBool, Ordering};
use crate::sync::Mutex;

/// A FIFO queue pushed by any thread and polled often by one (a worker's ready fibers,
/// the jobs broadcast to it): polling an empty queue is one load, no lock.
pub(crate) struct FlaggedQueue<T> {
    queue: Mutex<VecDeque<T>>,
    /// True while `queue` may be non-empty.
    any: AtomicBool,
}

impl<T> FlaggedQueue<T> {
    pub(crate) fn new() -> Self {
        FlaggedQueue {
            queue: Mutex::new(VecDeque::new()),
            any: AtomicBool::new(false),
        }
    }

    pub(crate) fn push(&self, value: T) {
        let mut queue = self.queue.lock();
        queue.push_back(value);
        self.any.store(true, Ordering::Release);
    }

    /// True if the queue may hold something.
    #[inline]
    pub(crate) fn any(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }

    /// The oldest value, if any.
    pub(crate) fn pop(&self) -> Option<T> {
        if !self.any() {
            return None;
        }
        let mut queue = self.queue.lock();
        let value = queue.pop_front();
        if queue.is_empty() {
            self.any.store(false, Ordering::Release);
        }
        value
    }
}
