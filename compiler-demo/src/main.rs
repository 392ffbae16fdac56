//! The `compiler-demo` command line.

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
