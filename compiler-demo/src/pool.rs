//! Choosing how many threads the query engine runs on.

/// Runs `f` on a fresh weft pool of `threads` workers (0: the pool's default size).
/// The engine is created inside `f`, so it runs on that pool.
pub fn install<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> Result<R, String> {
    let mut builder = weft::ThreadPoolBuilder::new();
    if threads > 0 {
        builder = builder.num_threads(threads);
    }
    let pool = builder
        .build()
        .map_err(|e| format!("cannot start a pool of {threads} threads: {e}"))?;
    Ok(pool.install(f))
}
