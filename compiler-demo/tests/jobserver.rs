//! The command-line tool under a jobserver, as `make -jN` runs it: every token its pool
//! took is back when the process exits (a token kept by an exiting process is lost to
//! the whole build, which then runs with one job fewer).

mod common;

use common::*;
use std::process::{Command, Stdio};

#[test]
fn check_gives_every_jobserver_token_back_before_it_exits() {
    let dir = scratch("jobserver");
    let path = dir.to_str().expect("a UTF-8 temp path").to_string();
    let generated = demo_with_timeout(
        &[
            "gen",
            "--modules",
            "60",
            "--items",
            "30",
            "--seed",
            "5",
            &path,
        ],
        60,
    );
    assert!(generated.status.success(), "gen failed: {generated:?}");
    const TOKENS: usize = 4;
    let client = jobserver::Client::new(TOKENS).expect("a jobserver");
    // 1: the pool adopts the main thread (`pool::adopt_calling_thread_when_alone`).
    for threads in ["1", "2", "4", "8"] {
        for round in 0..3 {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_compiler-demo"));
            cmd.args(["check", "--threads", threads, &path])
                .env_remove("MAKEFLAGS")
                .env_remove("MFLAGS")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            client.configure(&mut cmd);
            let status = cmd.status().expect("the binary runs");
            assert!(
                status.success(),
                "check --threads {threads} failed: {status}"
            );
            assert_eq!(
                client.available().expect("the jobserver can be read"),
                TOKENS,
                "check --threads {threads} (round {round}) exited holding jobserver tokens"
            );
        }
    }
    cleanup(&dir);
}
