//! `check DIR --watch` through the binary: it checks, then re-checks after each change
//! to a file (printing the diagnostics or `no errors`, and what the re-check cost),
//! reports a program it cannot load and keeps watching, and exits with 0 on Ctrl-C.

mod common;

use common::{cleanup, demo_with_timeout, scratch};

#[test]
fn watch_with_timings_or_trace_is_a_usage_error() {
    let hello = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/hello");
    for flag in ["--timings", "--trace"] {
        let out = demo_with_timeout(&["check", hello, "--watch", flag, "out.file"], 60);
        assert_eq!(out.status.code(), Some(2), "{flag}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("cannot be used with"), "{stderr}");
    }
}

#[cfg(unix)]
mod session {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
    use std::time::{Duration, Instant};

    /// How long any one step may take: generous, for a loaded machine.
    const PATIENCE: Duration = Duration::from_secs(120);

    /// `compiler-demo check DIR --watch` running, its stderr read line by line.
    struct Watching {
        child: Child,
        lines: Receiver<String>,
        /// Every line so far, for failure messages.
        seen: Vec<String>,
    }

    impl Watching {
        fn start(dir: &Path) -> Watching {
            Watching::start_with(dir, "2", None)
        }

        /// [`Watching::start`] on `threads` threads, under `jobserver` if given.
        fn start_with(
            dir: &Path,
            threads: &str,
            jobserver: Option<&jobserver::Client>,
        ) -> Watching {
            let mut command = Command::new(env!("CARGO_BIN_EXE_compiler-demo"));
            command
                .arg("check")
                .arg(dir)
                .args(["--watch", "--threads", threads])
                .env_remove("MAKEFLAGS")
                .env_remove("MFLAGS")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            if let Some(client) = jobserver {
                client.configure(&mut command);
            }
            let mut child = command.spawn().expect("the binary runs");
            let stderr = child.stderr.take().expect("stderr is piped");
            let (send, lines) = mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if send.send(line).is_err() {
                        break;
                    }
                }
            });
            Watching {
                child,
                lines,
                seen: Vec::new(),
            }
        }

        /// The lines up to and including the first one that `ends` accepts.
        fn until(&mut self, ends: impl Fn(&str) -> bool) -> Vec<String> {
            let deadline = Instant::now() + PATIENCE;
            let mut block = Vec::new();
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match self.lines.recv_timeout(left) {
                    Ok(line) => {
                        self.seen.push(line.clone());
                        block.push(line);
                        if ends(block.last().map_or("", String::as_str)) {
                            return block;
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {
                        panic!(
                            "waited {PATIENCE:?}; output so far:\n{}",
                            self.seen.join("\n")
                        )
                    }
                    Err(RecvTimeoutError::Disconnected) => {
                        panic!("the watcher ended; its output:\n{}", self.seen.join("\n"))
                    }
                }
            }
        }

        /// The output of the next re-check, up to its summary line.
        fn recheck(&mut self) -> String {
            self.until(|l| l.starts_with("re-checked in ")).join("\n")
        }

        /// Sends Ctrl-C and returns the exit code.
        fn interrupt(mut self) -> Option<i32> {
            let pid = self.child.id() as libc::pid_t;
            // SAFETY: `kill` with a valid signal number has no memory effects; the pid
            // is our own child, not yet reaped (`Drop` reaps it).
            let sent = unsafe { libc::kill(pid, libc::SIGINT) };
            assert_eq!(sent, 0, "kill: {}", std::io::Error::last_os_error());
            let deadline = Instant::now() + PATIENCE;
            loop {
                if let Some(status) = self.child.try_wait().expect("wait works") {
                    return status.code();
                }
                assert!(
                    Instant::now() < deadline,
                    "no exit {PATIENCE:?} after Ctrl-C"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    impl Drop for Watching {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// Replaces `path` at once (a rename), as editors save: the watcher never reads a
    /// half-written file. The temporary name is hidden, so it is no module.
    fn save(path: &Path, bytes: &[u8]) {
        let name = path.file_name().expect("a file name").to_string_lossy();
        let temp = path.with_file_name(format!(".{name}.saving"));
        std::fs::write(&temp, bytes).expect("write");
        std::fs::rename(&temp, path).expect("rename");
    }

    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).expect("create");
        for entry in std::fs::read_dir(from).expect("read dir") {
            let path = entry.expect("entry").path();
            let target = to.join(path.file_name().expect("a name"));
            if path.is_dir() {
                copy_dir(&path, &target);
            } else {
                std::fs::copy(&path, &target).expect("copy");
            }
        }
    }

    #[test]
    fn watch_under_a_jobserver_gives_every_token_back_on_ctrl_c() {
        let dir: PathBuf = scratch("watch-jobserver");
        copy_dir(
            Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/hello")),
            &dir,
        );
        const TOKENS: usize = 3;
        let client = jobserver::Client::new(TOKENS).expect("a jobserver");
        let mut watching = Watching::start_with(&dir, "4", Some(&client));
        let first = watching.until(|l| l.starts_with("watching ")).join("\n");
        assert!(first.contains("no errors"), "{first}");
        assert_eq!(watching.interrupt(), Some(0));
        assert_eq!(
            client.available().expect("the jobserver can be read"),
            TOKENS,
            "check --watch exited holding jobserver tokens"
        );
        cleanup(&dir);
    }

    #[test]
    fn watch_rechecks_each_change_and_exits_cleanly_on_ctrl_c() {
        let dir: PathBuf = scratch("watch");
        copy_dir(
            Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/hello")),
            &dir,
        );
        let math = dir.join("math.wd");
        let main = dir.join("main.wd");
        let math_text = std::fs::read(&math).expect("math.wd");
        let main_text = std::fs::read(&main).expect("main.wd");

        let mut watching = Watching::start(&dir);
        let first = watching.until(|l| l.starts_with("watching ")).join("\n");
        assert!(first.contains("no errors"), "{first}");
        assert!(first.contains("checked in "), "{first}");

        let mut broken = math_text.clone();
        broken.extend_from_slice(b"\nfn broken() -> i64 {\n    true\n}\n");
        save(&math, &broken);
        let report = watching.recheck();
        assert!(
            report.contains("error[E0308]: mismatched types"),
            "{report}"
        );
        assert!(report.contains("queries executed, "), "{report}");
        assert!(report.contains(" cut off early"), "{report}");

        save(&math, &math_text);
        let report = watching.recheck();
        assert!(report.contains("no errors"), "{report}");

        let mut not_utf8 = math_text.clone();
        not_utf8.extend_from_slice(b"\xff\xfe");
        save(&math, &not_utf8);
        let report = watching.recheck();
        assert!(
            report.contains("stream did not contain valid UTF-8"),
            "{report}"
        );

        // A program that cannot be loaded is reported, and the watching goes on.
        std::fs::remove_file(&main).expect("remove main.wd");
        let error = watching.until(|l| l.starts_with("error: "));
        assert!(
            error
                .last()
                .is_some_and(|l| l.contains("no crate root `main.wd`")),
            "{error:?}"
        );
        save(&main, &main_text);
        save(&math, &math_text);
        let report = watching.recheck();
        assert!(report.contains("no errors"), "{report}");

        assert_eq!(watching.interrupt(), Some(0));
        cleanup(&dir);
    }
}
