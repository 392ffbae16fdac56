//! The `compiler-demo` command line.

/// The process allocator. With glibc's malloc, a 2-thread check of a 377k-line program
/// (`gen --modules 1000 --items 50`) spent a fifth of its time in the kernel: each worker
/// thread's arena grows by one `mprotect` call per few pages (17,808 calls) and every
/// page is faulted in on its own (57,000 faults). mimalloc maps and reuses larger
/// segments (60 `madvise` calls, 370 faults); the check ran 29% faster at 2 threads and
/// 22% at 1 (medians of 7 interleaved runs), for 12-20% more peak memory.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cli;
mod interrupt;
mod watch;

fn main() {
    // This process ends right after its one compilation (see the function's docs).
    compiler_demo::driver::leak_engine_at_exit();
    // And it runs a 1-thread pool on its main thread (see the function's docs).
    compiler_demo::pool::adopt_calling_thread_when_alone();
    let code = cli::main();
    std::process::exit(code);
}
