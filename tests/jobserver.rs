//! Jobserver cooperation: running workers never exceed the tokens held plus the
//! implicit one, no token leaks, and a real `make -j3` is respected across processes.

use std::io::Write;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use weft::query::{Cx, Engine, Query};
use weft::ThreadPoolBuilder;

fn busy(micros: u64) -> u64 {
    let start = std::time::Instant::now();
    let mut x = 0u64;
    while start.elapsed() < Duration::from_micros(micros) {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
    }
    x
}

/// Queries that block on each other: `Chain(n)` needs `Chain(n - 1)` and does some work
/// in parallel, so requests for shared keys wait on in-progress entries.
struct Chain;
impl Query for Chain {
    type Key = u32;
    type Value = u64;
    const NAME: &'static str = "chain";
    fn compute(cx: &Cx<'_>, n: &u32) -> u64 {
        let below = if *n == 0 {
            0
        } else {
            cx.get::<Chain>(&(n - 1))
        };
        let parts = cx.par_map(&[1u64, 2, 3, 4], |_, x| {
            busy(200);
            *x
        });
        below + parts.iter().sum::<u64>()
    }
}

#[test]
fn running_workers_never_exceed_tokens_plus_one_and_no_token_leaks() {
    for k in [0usize, 1, 3] {
        let client = jobserver::Client::new(k).unwrap();
        let pool = ThreadPoolBuilder::new()
            .num_threads(8)
            .jobserver(client.clone())
            .build()
            .unwrap();
        let engine = Engine::new();
        let keys: Vec<u32> = (0..40).rev().collect();
        let values = pool
            .install(|| {
                engine.run(|cx| {
                    // Many requests race for the same chain: most of them block.
                    cx.par_map(&keys, |cx, k| cx.get::<Chain>(k))
                })
            })
            .unwrap();
        assert_eq!(values[0], 400, "chain(39) = 10 per level");
        pool.install(|| {
            weft::par_for_each(&[0u8; 64], |_| {
                weft::blocking(|| std::thread::sleep(Duration::from_micros(300)));
                busy(100);
            })
        });
        let stats = pool.stats();
        assert!(
            stats.peak_running <= k + 1,
            "k = {k}: {} workers ran at once: {stats:?}",
            stats.peak_running
        );
        assert!(stats.peak_tokens_held <= k, "{stats:?}");
        if k == 3 {
            assert!(
                stats.peak_running >= 2,
                "tokens were used for parallelism: {stats:?}"
            );
        }
        pool.shutdown();
        // Every token is back in the jobserver's pipe, and no extra one.
        assert_eq!(
            client.available().unwrap(),
            k,
            "k = {k}: tokens leaked or appeared"
        );
    }
}

#[test]
fn no_token_leaks_after_panics_in_jobs() {
    let client = jobserver::Client::new(2).unwrap();
    let pool = ThreadPoolBuilder::new()
        .num_threads(4)
        .jobserver(client.clone())
        .panic_handler(|_| {})
        .build()
        .unwrap();
    for _ in 0..20 {
        pool.spawn(|| panic!("job failure"));
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pool.install(|| weft::join(|| busy(100), || -> u64 { panic!("half failure") }))
        }));
    }
    pool.install(|| {
        weft::par_for_each(&[0u8; 32], |_| {
            busy(200);
        })
    });
    pool.shutdown();
    assert_eq!(client.available().unwrap(), 2, "every token is back");
}

/// Threads of this process.
fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

/// Entry point of the child process of the test below (ignored otherwise): builds a
/// jobserver pool whose only worker is the adopted building thread, drops it, and
/// checks that no thread of the pool's (the token helper) outlives it.
#[test]
#[ignore = "run by an_adopted_only_pool_stops_its_token_helper_when_dropped"]
fn adopted_pool_child() {
    if std::env::var_os("WEFT_ADOPTED_CHILD").is_none() {
        return;
    }
    let client = jobserver::Client::new(2).unwrap();
    let before = thread_count();
    let (dropped_tx, dropped_rx) = std::sync::mpsc::channel();
    let (exit_tx, exit_rx) = std::sync::mpsc::channel::<()>();
    let builder = std::thread::spawn(move || {
        let pool = ThreadPoolBuilder::new()
            .num_threads(1)
            .use_current_thread()
            .jobserver(client.clone())
            .build()
            .unwrap();
        let sum: u64 = pool.install(|| weft::par_map(&[1u64, 2, 3], |x| *x).iter().sum());
        assert_eq!(sum, 6);
        drop(pool);
        dropped_tx.send(()).unwrap();
        // The adopted thread stays alive while the parent counts.
        let _ = exit_rx.recv();
        assert_eq!(client.available().unwrap(), 2, "every token is back");
    });
    dropped_rx.recv().unwrap();
    // Only the building thread itself is left of the pool.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while thread_count() > before + 1 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let after = thread_count();
    exit_tx.send(()).unwrap();
    builder.join().unwrap();
    assert_eq!(
        after,
        before + 1,
        "a thread of the dropped pool is still running"
    );
}

#[test]
fn an_adopted_only_pool_stops_its_token_helper_when_dropped() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "adopted_pool_child",
            "--ignored",
            "--test-threads=1",
        ])
        .env("WEFT_ADOPTED_CHILD", "1")
        .output()
        .unwrap();
    let log =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("1 passed"), "the child ran: {log}");
}

#[test]
fn no_jobserver_runs_every_worker() {
    let pool = ThreadPoolBuilder::new()
        .num_threads(3)
        .no_jobserver()
        .build()
        .unwrap();
    pool.install(|| {
        weft::par_for_each(&[0u8; 60], |_| {
            busy(500);
        })
    });
    assert!(pool.stats().tokens_held == 0);
    pool.shutdown();
}

/// Wall-clock nanoseconds, comparable between the processes `make` starts.
fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// Entry point for the processes `make` starts in the test below (ignored otherwise):
/// a pool that inherits make's jobserver records when each job runs.
#[test]
#[ignore = "run by jobserver_limits_workers_across_make_recipes"]
fn jobserver_probe_child() {
    let Ok(log) = std::env::var("WEFT_PROBE_LOG") else {
        return;
    };
    let pool = ThreadPoolBuilder::new().num_threads(4).build().unwrap();
    let intervals: Vec<(u64, u64)> = pool.install(|| {
        weft::par_map(&[0u8; 48], |_| {
            let start = now_ns();
            busy(2_000);
            (start, now_ns())
        })
    });
    let mut file = std::fs::File::create(&log).unwrap();
    for (start, end) in intervals {
        writeln!(file, "{start} {end}").unwrap();
    }
    pool.shutdown();
}

/// Like `jobserver_probe_child`, with nested `weft::blocking` around every item: the
/// blocked time is not counted as running, the busy time is.
#[test]
#[ignore = "run by nested_blocking_keeps_make_s_limit"]
fn jobserver_nested_blocking_child() {
    let Ok(log) = std::env::var("WEFT_PROBE_LOG") else {
        return;
    };
    let pool = ThreadPoolBuilder::new().num_threads(4).build().unwrap();
    let intervals: Vec<(u64, u64)> = pool.install(|| {
        weft::par_map(&[0u8; 24], |_| {
            weft::blocking(|| weft::blocking(|| std::thread::sleep(Duration::from_micros(500))));
            let start = now_ns();
            busy(1_500);
            (start, now_ns())
        })
    });
    let stats = pool.stats();
    let mut file = std::fs::File::create(&log).unwrap();
    for (start, end) in intervals {
        writeln!(file, "{start} {end}").unwrap();
    }
    pool.shutdown();
    assert_eq!(stats.blocked, 0, "{stats:?}");
}

/// Runs `recipes` copies of a child test under `make -jJOBS`; returns the most busy
/// intervals that overlapped across all of them (each child logs its intervals).
fn peak_under_make(child: &str, jobs: usize, recipes: usize, per_recipe: usize) -> Option<i32> {
    if Command::new("make").arg("--version").output().is_err() {
        eprintln!("SKIPPED: `make` is not installed; the cross-process jobserver test needs it");
        return None;
    }
    let dir = std::env::temp_dir().join(format!("weft-make-{child}-{jobs}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let exe = std::env::current_exe().unwrap();
    let names: Vec<String> = (0..recipes).map(|i| format!("p{i}")).collect();
    let makefile = format!(
        "all: {all}\n{rules}",
        all = names.join(" "),
        rules = names
            .iter()
            .map(|r| format!(
                "{r}:\n\t+WEFT_PROBE_LOG={dir}/{r}.log {exe} --exact {child} --include-ignored --quiet >/dev/null\n",
                dir = dir.display(),
                exe = exe.display()
            ))
            .collect::<String>()
    );
    std::fs::write(dir.join("Makefile"), makefile).unwrap();
    let status = Command::new("make")
        .args([format!("-j{jobs}"), "-s".to_string(), "-C".to_string()])
        .arg(&dir)
        .env_remove("MAKEFLAGS")
        .env_remove("CARGO_MAKEFLAGS")
        .env_remove("MFLAGS")
        .status()
        .unwrap();
    assert!(
        status.success(),
        "make -j{jobs} failed (a child failed or was killed)"
    );
    let mut events = Vec::new();
    for r in &names {
        let log = std::fs::read_to_string(dir.join(format!("{r}.log"))).unwrap();
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len(), per_recipe, "{r} ran every item");
        for line in lines {
            let (s, e) = line.split_once(' ').unwrap();
            events.push((s.parse::<u64>().unwrap(), 1i32));
            events.push((e.parse::<u64>().unwrap(), -1i32));
        }
    }
    std::fs::remove_dir_all(&dir).ok();
    // Ends sort before starts at the same instant.
    events.sort();
    let (mut now, mut peak) = (0i32, 0i32);
    for (_, delta) in events {
        now += delta;
        peak = peak.max(now);
    }
    Some(peak)
}

#[test]
fn nested_blocking_keeps_make_s_limit() {
    for jobs in [1usize, 2] {
        let Some(peak) = peak_under_make("jobserver_nested_blocking_child", jobs, 3, 24) else {
            return;
        };
        assert!(
            peak as usize <= jobs,
            "{peak} items ran at once under make -j{jobs}, with nested blocking"
        );
    }
}

#[test]
fn jobserver_limits_workers_across_make_recipes() {
    let Some(peak) = peak_under_make("jobserver_probe_child", 3, 6, 48) else {
        return;
    };
    assert!(
        peak <= 3,
        "{peak} jobs ran at once across make's recipes with -j3"
    );
    assert!(peak >= 2, "the recipes did run in parallel ({peak})");
}
