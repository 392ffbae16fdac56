//! The `compiler-demo` command line.

mod cli;

fn main() {
    let code = cli::main();
    std::process::exit(code);
}
