//! The context word every job carries: what a job works for.
//!
//! Each job records the *context* of the code that created it: a pointer to a
//! `ContextNode`, or none. A stolen job runs with its creator's context and the thief's
//! own context is restored afterwards, so the query engine always knows which query a
//! job works for (rustc calls this the TLV).
//!
//! Contexts form a tree: a node's parent is the context that was current when the node
//! was entered. The query engine tags the node of each running query, so a nested
//! `Engine::run` finds the query it runs for (`innermost_tagged`). (Waits need no
//! restriction by context: a waiting frame never has other work run on top of it, see
//! `fiber.rs`.)
//!
//! Lifetime rule: a node lives until every job created under it has finished. This holds
//! by construction: nodes live on the stack of [`with_new_context`] (or inside a query
//! job that outlives its compute), `join` and `scope` finish their jobs before returning,
//! and detached `spawn` strips the context.

use std::cell::Cell;
use std::ptr;

use crate::sync::weft_thread_local;

/// A node in the tree of contexts; the query engine embeds one in each running query.
#[derive(Debug)]
pub(crate) struct ContextNode {
    parent: Context,
    depth: u32,
    /// Who embeds the node: 0 for a plain context, else an address its owner chose
    /// (the query engine uses the engine's), so [`innermost_tagged`] can find it again.
    tag: usize,
}

impl ContextNode {
    /// A node whose parent is `parent`.
    pub(crate) fn child_of(parent: Context) -> Self {
        Self::tagged_child_of(parent, 0)
    }

    /// A node whose parent is `parent`, tagged with `tag` (non-zero).
    #[inline]
    pub(crate) fn tagged_child_of(parent: Context, tag: usize) -> Self {
        // SAFETY: a non-null `Context` points to a live node (module lifetime rule).
        let depth = unsafe { parent.node() }.map_or(1, |p| p.depth + 1);
        ContextNode { parent, depth, tag }
    }
}

/// The innermost node of the current context chain tagged `tag`, if any.
pub(crate) fn innermost_tagged(tag: usize) -> Option<*const ContextNode> {
    innermost_tagged_any(&[tag]).map(|(node, _)| node)
}

/// The innermost node of the current context chain tagged with one of `tags`, if any,
/// and its tag.
pub(crate) fn innermost_tagged_any(tags: &[usize]) -> Option<(*const ContextNode, usize)> {
    let mut cursor = current();
    // SAFETY: the current context and its ancestors are alive (module lifetime rule).
    while let Some(node) = unsafe { cursor.node() } {
        if tags.contains(&node.tag) {
            return Some((node, node.tag));
        }
        cursor = node.parent;
    }
    None
}

/// The context word: a pointer to a live [`ContextNode`], or none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Context(*const ContextNode);

// SAFETY: a `Context` is only dereferenced while the node is alive (module lifetime
// rule), and a `ContextNode` is immutable once created, so sharing the pointer between
// threads is sound.
unsafe impl Send for Context {}
// SAFETY: as above.
unsafe impl Sync for Context {}

impl Context {
    /// No context.
    pub(crate) const NONE: Context = Context(ptr::null());

    pub(crate) fn of(node: &ContextNode) -> Context {
        Context(node)
    }

    pub(crate) fn is_none(self) -> bool {
        self.0.is_null()
    }

    /// The node this word points to.
    ///
    /// # Safety
    /// The node must still be alive (see the module's lifetime rule).
    pub(crate) unsafe fn node<'a>(self) -> Option<&'a ContextNode> {
        // SAFETY: the caller guarantees the node is alive; nodes are never mutated.
        unsafe { self.0.as_ref() }
    }

    /// An opaque number identifying the context (its address), 0 for none.
    pub(crate) fn id(self) -> usize {
        self.0 as usize
    }
}

weft_thread_local! {
    /// The context of the code running on this thread.
    static CURRENT: Cell<Context> = Cell::new(Context::NONE);
}

/// The current thread's context.
#[inline]
pub(crate) fn current() -> Context {
    CURRENT.with(|c| c.get())
}

/// Makes `ctx` the current context (a fiber switch restores the switching code's own).
#[inline]
pub(crate) fn set(ctx: Context) {
    CURRENT.with(|c| c.set(ctx));
}

/// Runs `f` with `ctx` as the current context, restoring the previous one afterwards
/// (also when `f` unwinds).
#[inline]
pub(crate) fn enter<R>(ctx: Context, f: impl FnOnce() -> R) -> R {
    struct Restore(Context);
    impl Drop for Restore {
        fn drop(&mut self) {
            CURRENT.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(CURRENT.with(|c| c.replace(ctx)));
    f()
}

/// An opaque identifier of a context, for tests and diagnostics: equal ids mean the
/// same live context.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ContextId(usize);

/// Runs `f` in a fresh context whose parent is the current one.
///
/// Every job created inside `f` (directly or by jobs it started) runs with this context,
/// on whatever worker it is stolen by, so code can tell what it works for. The query
/// engine enters one such context per running query.
///
/// ```
/// let pool = weft::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
/// pool.install(|| {
///     weft::context::with_new_context(|outer| {
///         let (a, b) = weft::join(weft::context::current_id, weft::context::current_id);
///         // Both halves ran for the new context, even if the second was stolen.
///         assert_eq!((a, b), (Some(outer), Some(outer)));
///     });
/// });
/// ```
pub fn with_new_context<R>(f: impl FnOnce(ContextId) -> R) -> R {
    let node = ContextNode::child_of(current());
    let ctx = Context::of(&node);
    enter(ctx, || f(ContextId(ctx.id())))
}

/// The current thread's context, if any (see [`with_new_context`]).
pub fn current_id() -> Option<ContextId> {
    let ctx = current();
    (!ctx.is_none()).then_some(ContextId(ctx.id()))
}
