//! Scaling report (issue 7): `cargo bench --bench report`.
//!
//! Builds `compiler-demo` in release, generates two workloads into
//! `target/weft-report/`, runs `compiler-demo check` in separate processes for the serial
//! engine and 1, 2, 4 and 8 threads (several rounds, interleaved across configurations),
//! and measures each child's wall time, CPU time and peak RSS (`wait4`'s rusage). On two
//! or more cores it also times two 1-thread checks in two processes at once: the
//! throughput this machine gives a second core's worth of the same work when nothing is
//! shared, which bounds what 2 threads can reach. Writes
//! `target/weft-report/report.md` and `target/weft-report/speedup.svg` and prints the
//! tables. It then runs the demo's edit benchmark (`cargo bench -p compiler-demo --bench
//! edits`: re-checks on one incremental engine after an edit, against a check from
//! scratch) and appends its table. When valgrind is on PATH it also runs
//! `benches/callgrind_join.sh` and appends its per-join instruction counts.
//!
//! Environment:
//! - `WEFT_REPORT_ROUNDS=N`: rounds per configuration (default 3).
//! - `WEFT_REPORT_SMOKE=1`: tiny workloads, one round, no callgrind (seconds; for CI).

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One workload: a generated program.
struct Workload {
    name: &'static str,
    modules: u32,
    items: u32,
    seed: u64,
}

/// One engine configuration of `compiler-demo check`.
#[derive(Clone, Copy, PartialEq)]
enum Config {
    Serial,
    Threads(usize),
    /// Two 1-thread checks in two processes at once: how much this machine gives a
    /// second core's worth of the same work when nothing at all is shared (the memory
    /// system and the other tenants are), the ceiling for the 2-thread speedup.
    TwoProcesses,
}

impl Config {
    fn label(self) -> String {
        match self {
            Config::Serial => "serial".to_string(),
            Config::Threads(n) => format!("{n} thread{}", if n == 1 { "" } else { "s" }),
            Config::TwoProcesses => "2 processes x 1 thread, at once".to_string(),
        }
    }

    fn args(self) -> Vec<String> {
        match self {
            Config::Serial => vec!["--serial".to_string()],
            Config::Threads(n) => vec!["--threads".to_string(), n.to_string()],
            // Each of the two processes.
            Config::TwoProcesses => vec!["--threads".to_string(), "1".to_string()],
        }
    }
}

/// What one child run cost.
#[derive(Clone, Copy)]
struct Sample {
    wall: Duration,
    cpu: Duration,
    max_rss_kib: u64,
}

/// Median figures of one configuration.
struct Summary {
    config: Config,
    wall: Duration,
    cpu: Duration,
    max_rss_kib: u64,
    walls: Vec<Duration>,
    /// Pool utilization from a separate, untimed `--timings` run (parallel only).
    utilization: Option<f64>,
}

const THREADS: [usize; 4] = [1, 2, 4, 8];

fn main() {
    // `cargo bench` passes `--bench`; ignore all arguments.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let target = if target.is_absolute() {
        target
    } else {
        root.join(target)
    };
    let out = target.join("weft-report");
    fs::create_dir_all(&out).expect("create target/weft-report");

    let smoke = std::env::var("WEFT_REPORT_SMOKE").is_ok_and(|v| v == "1");
    let rounds = std::env::var("WEFT_REPORT_ROUNDS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(if smoke { 1 } else { 3 });
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let started = Instant::now();

    let demo = build_compiler_demo(&root, &target);
    println!("compiler-demo: {}", demo.display());

    let workloads = if smoke {
        vec![
            Workload {
                name: "smoke-20x5",
                modules: 20,
                items: 5,
                seed: 7,
            },
            Workload {
                name: "smoke-50x10",
                modules: 50,
                items: 10,
                seed: 11,
            },
        ]
    } else {
        vec![
            Workload {
                name: "large-1000x50",
                modules: 1000,
                items: 50,
                seed: 42,
            },
            Workload {
                name: "small-200x20",
                modules: 200,
                items: 20,
                seed: 7,
            },
        ]
    };

    let mut configs = vec![Config::Serial];
    configs.extend(THREADS.iter().map(|&n| Config::Threads(n)));
    if cores >= 2 {
        configs.push(Config::TwoProcesses);
    }

    let mut report = String::new();
    writeln!(report, "# weft scaling report\n").unwrap();
    writeln!(
        report,
        "`compiler-demo check` in separate processes; {rounds} round(s) per configuration, \
         interleaved across configurations, after one untimed warm-up run per workload. \
         Machine: {cores} core(s) (`available_parallelism`); runs with more threads are \
         marked oversubscribed. Wall and CPU time (user + system) are medians; peak RSS is \
         the median of the child's `ru_maxrss` from `wait4`. Utilization (weft's \
         `Trace::utilization`: running time over threads x wall time) comes from one extra, \
         untimed `--timings` run per thread count.{}\n",
        if smoke {
            " **Smoke mode** (`WEFT_REPORT_SMOKE=1`): tiny workloads, figures meaningless."
        } else {
            ""
        }
    )
    .unwrap();

    let mut curves: Vec<(String, Vec<(usize, f64)>)> = Vec::new();
    for w in &workloads {
        let dir = out.join(w.name);
        generate(&demo, &dir, w);
        // Warm the page cache and the binary; not timed.
        run_check(&demo, &dir, Config::Threads(1));

        let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); configs.len()];
        for round in 0..rounds {
            // Rotate the start so no configuration always runs first.
            for k in 0..configs.len() {
                let i = (k + round) % configs.len();
                samples[i].push(run_check(&demo, &dir, configs[i]));
            }
        }
        let summaries: Vec<Summary> = configs
            .iter()
            .zip(samples)
            .map(|(&config, s)| {
                let mut summary = summarize(config, s);
                if let Config::Threads(n) = config {
                    summary.utilization = utilization(&demo, &dir, n, &out);
                }
                summary
            })
            .collect();
        let table = render_table(w, &summaries, cores, rounds);
        println!("\n{table}");
        report.push_str(&table);
        report.push('\n');

        let one = summaries
            .iter()
            .find(|s| s.config == Config::Threads(1))
            .map(|s| s.wall.as_secs_f64())
            .unwrap_or(f64::NAN);
        let curve = summaries
            .iter()
            .filter_map(|s| match s.config {
                Config::Threads(n) => Some((n, one / s.wall.as_secs_f64())),
                Config::Serial | Config::TwoProcesses => None,
            })
            .collect();
        curves.push((w.name.to_string(), curve));
    }

    let svg = render_svg(&curves, cores);
    fs::write(out.join("speedup.svg"), svg).expect("write speedup.svg");
    writeln!(
        report,
        "Plot: `speedup.svg` (speedup over 1 thread vs threads).\n"
    )
    .unwrap();

    println!("\nrunning the edit benchmark (cargo bench -p compiler-demo --bench edits)...");
    report.push_str(&edits_section(&root, &out));

    if smoke {
        writeln!(
            report,
            "## Per-join instructions\n\nSkipped in smoke mode.\n"
        )
        .unwrap();
    } else if on_path("valgrind") {
        println!("\nrunning benches/callgrind_join.sh (valgrind)...");
        let section = callgrind_section(&root);
        println!("{section}");
        report.push_str(&section);
    } else {
        writeln!(
            report,
            "## Per-join instructions\n\nvalgrind not on PATH; skipped.\n"
        )
        .unwrap();
    }

    writeln!(
        report,
        "Harness runtime: {:.1} s.",
        started.elapsed().as_secs_f64()
    )
    .unwrap();
    fs::write(out.join("report.md"), &report).expect("write report.md");
    println!(
        "\nwrote {} and {} ({:.1} s)",
        out.join("report.md").display(),
        out.join("speedup.svg").display(),
        started.elapsed().as_secs_f64()
    );
}

/// `cargo build --release -p compiler-demo` and the path of the binary.
fn build_compiler_demo(root: &Path, target: &Path) -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "-p", "compiler-demo"])
        .current_dir(root)
        .status()
        .expect("run cargo build");
    assert!(
        status.success(),
        "cargo build --release -p compiler-demo failed"
    );
    let bin = target
        .join("release")
        .join(format!("compiler-demo{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.exists(), "{} not found", bin.display());
    bin
}

/// Writes the workload's program into `dir`, replacing what was there.
fn generate(demo: &Path, dir: &Path, w: &Workload) {
    if dir.exists() {
        fs::remove_dir_all(dir).expect("remove old workload");
    }
    let output = Command::new(demo)
        .arg("gen")
        .arg(dir)
        .args(["--modules", &w.modules.to_string()])
        .args(["--items", &w.items.to_string()])
        .args(["--seed", &w.seed.to_string()])
        .output()
        .expect("run compiler-demo gen");
    assert!(
        output.status.success(),
        "compiler-demo gen failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// One `compiler-demo check` in a child process, measured with `wait4`.
fn run_check(demo: &Path, dir: &Path, config: Config) -> Sample {
    let start = Instant::now();
    let copies = if config == Config::TwoProcesses { 2 } else { 1 };
    let children: Vec<_> = (0..copies)
        .map(|_| {
            Command::new(demo)
                .arg("check")
                .arg(dir)
                .args(config.args())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn compiler-demo check")
        })
        .collect();
    let mut sample = Sample {
        wall: Duration::ZERO,
        cpu: Duration::ZERO,
        max_rss_kib: 0,
    };
    for child in children {
        let usage = reap(child, dir, config);
        // Wall: until the last process is done; CPU: both; RSS: the larger.
        sample.wall = start.elapsed();
        sample.cpu += usage.cpu;
        sample.max_rss_kib = sample.max_rss_kib.max(usage.max_rss_kib);
    }
    sample
}

/// Waits for a `check` child, asserts it succeeded, and returns its CPU time and peak
/// RSS (the `wall` field is left zero).
fn reap(child: std::process::Child, dir: &Path, config: Config) -> Sample {
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; zeroed is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = loop {
        // SAFETY: `pid` is our own unreaped child; the pointers are to live locals.
        let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if rc == -1 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        break rc;
    };
    // The child is reaped; dropping the handle does not wait or kill.
    drop(child);
    assert_eq!(rc, pid, "wait4 failed: {}", std::io::Error::last_os_error());
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    assert!(
        ok,
        "compiler-demo check {} {:?} failed (status {status:#x})",
        dir.display(),
        config.args()
    );
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Sample {
        wall: Duration::ZERO,
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        // Linux reports kilobytes.
        max_rss_kib: usage.ru_maxrss as u64,
    }
}

fn median<T: Copy + Ord>(mut v: Vec<T>) -> T {
    v.sort_unstable();
    v[v.len() / 2]
}

fn summarize(config: Config, samples: Vec<Sample>) -> Summary {
    Summary {
        config,
        wall: median(samples.iter().map(|s| s.wall).collect()),
        cpu: median(samples.iter().map(|s| s.cpu).collect()),
        max_rss_kib: median(samples.iter().map(|s| s.max_rss_kib).collect()),
        walls: samples.iter().map(|s| s.wall).collect(),
        utilization: None,
    }
}

/// Runs `compiler-demo check --threads N --timings FILE.html` once (untimed: tracing has
/// a cost) and reads the overall utilization that weft's `Trace::utilization` put in the
/// page's summary line ("... · 81.5% utilization of 2 threads").
fn utilization(demo: &Path, dir: &Path, threads: usize, out: &Path) -> Option<f64> {
    let html = out.join(format!(
        "timings-{}-t{threads}.html",
        dir.file_name()?.to_string_lossy()
    ));
    let status = Command::new(demo)
        .arg("check")
        .arg(dir)
        .args(Config::Threads(threads).args())
        .arg("--timings")
        .arg(&html)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    if !status.success() {
        return None;
    }
    let page = fs::read_to_string(&html).ok()?;
    let before = &page[..page.find("% utilization of")?];
    let number = before
        .rsplit(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()?;
    number.parse::<f64>().ok().map(|p| p / 100.0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn render_table(w: &Workload, rows: &[Summary], cores: usize, rounds: usize) -> String {
    let one = rows
        .iter()
        .find(|s| s.config == Config::Threads(1))
        .expect("1-thread row");
    let serial = rows.iter().find(|s| s.config == Config::Serial);
    let mut t = String::new();
    writeln!(
        t,
        "## {} ({} modules x {} items, seed {}, {} round(s))\n",
        w.name, w.modules, w.items, w.seed, rounds
    )
    .unwrap();
    writeln!(
        t,
        "| engine | wall ms (median) | CPU ms (median) | speedup vs 1 thread | wall vs serial | \
         peak RSS MiB | RSS vs 1 thread | utilization | wall ms (all rounds) |"
    )
    .unwrap();
    writeln!(t, "|---|---:|---:|---:|---:|---:|---:|---:|---|").unwrap();
    for s in rows {
        let label = match s.config {
            Config::Threads(n) if n > cores => format!("{} (oversubscribed)", s.config.label()),
            c => c.label(),
        };
        let speedup = match s.config {
            Config::Serial => "-".to_string(),
            Config::Threads(_) => format!("{:.2}x", one.wall.as_secs_f64() / s.wall.as_secs_f64()),
            // Throughput: two checks' work in this wall time.
            Config::TwoProcesses => format!(
                "{:.2}x (throughput)",
                2.0 * one.wall.as_secs_f64() / s.wall.as_secs_f64()
            ),
        };
        let vs_serial = match (s.config, serial) {
            (Config::Threads(_), Some(ser)) => format!(
                "{:+.1}%",
                (s.wall.as_secs_f64() / ser.wall.as_secs_f64() - 1.0) * 100.0
            ),
            _ => "-".to_string(),
        };
        let rss_growth = format!(
            "{:+.1}%",
            (s.max_rss_kib as f64 / one.max_rss_kib as f64 - 1.0) * 100.0
        );
        let util = s
            .utilization
            .map_or("-".to_string(), |u| format!("{:.1}%", u * 100.0));
        let all: Vec<String> = s.walls.iter().map(|&d| format!("{:.0}", ms(d))).collect();
        writeln!(
            t,
            "| {label} | {:.1} | {:.1} | {speedup} | {vs_serial} | {:.1} | {rss_growth} | {util} | {} |",
            ms(s.wall),
            ms(s.cpu),
            s.max_rss_kib as f64 / 1024.0,
            all.join(", ")
        )
        .unwrap();
    }
    if let Some(ser) = serial {
        writeln!(
            t,
            "\nOverhead of 1 thread over serial: {:+.1}% wall, {:+.1}% CPU (goal: within 1%).",
            (one.wall.as_secs_f64() / ser.wall.as_secs_f64() - 1.0) * 100.0,
            (one.cpu.as_secs_f64() / ser.cpu.as_secs_f64() - 1.0) * 100.0
        )
        .unwrap();
    }
    if let Some(two) = rows.iter().find(|s| s.config == Config::Threads(2)) {
        let speedup = one.wall.as_secs_f64() / two.wall.as_secs_f64();
        writeln!(
            t,
            "2 threads: speedup {speedup:.2}x over 1 thread (goal >= 1.9x), peak RSS {:+.1}% over 1 \
             thread (goal <= +10%).",
            (two.max_rss_kib as f64 / one.max_rss_kib as f64 - 1.0) * 100.0
        )
        .unwrap();
        if let Some(pair) = rows.iter().find(|s| s.config == Config::TwoProcesses) {
            let ceiling = 2.0 * one.wall.as_secs_f64() / pair.wall.as_secs_f64();
            writeln!(
                t,
                "Two 1-thread checks in two processes at once did {ceiling:.2}x the work of one \
                 per unit of wall time: what this machine gives a second core's worth of this \
                 work when nothing is shared; the 2-thread check reached {:.0}% of that.",
                speedup / ceiling * 100.0
            )
            .unwrap();
        }
    }
    t
}

/// A hand-written line plot of speedup over 1 thread against thread count.
fn render_svg(curves: &[(String, Vec<(usize, f64)>)], cores: usize) -> String {
    const W: f64 = 560.0;
    const H: f64 = 380.0;
    const L: f64 = 60.0;
    const R: f64 = 170.0;
    const T: f64 = 30.0;
    const B: f64 = 50.0;
    let max_t = *THREADS.last().unwrap() as f64;
    let max_y = curves
        .iter()
        .flat_map(|(_, c)| c.iter().map(|&(_, y)| y))
        .filter(|y| y.is_finite())
        .fold(cores as f64, f64::max)
        .ceil()
        .max(2.0);
    let x = |t: f64| L + (t - 1.0) / (max_t - 1.0) * (W - L - R);
    let y = |v: f64| H - B - v / max_y * (H - T - B);
    let colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];
    let mut s = String::new();
    writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">"#
    )
    .unwrap();
    writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#).unwrap();
    writeln!(
        s,
        r#"<text x="{}" y="18" text-anchor="middle" font-size="14">compiler-demo check: speedup over 1 thread</text>"#,
        (W - R + L) / 2.0
    )
    .unwrap();
    // Axes, grid and ticks.
    writeln!(
        s,
        r#"<line x1="{L}" y1="{}" x2="{}" y2="{}" stroke="black"/><line x1="{L}" y1="{T}" x2="{L}" y2="{}" stroke="black"/>"#,
        H - B,
        W - R,
        H - B,
        H - B
    )
    .unwrap();
    for &t in &THREADS {
        let px = x(t as f64);
        writeln!(
            s,
            r##"<line x1="{px:.1}" y1="{T}" x2="{px:.1}" y2="{}" stroke="#eee"/><text x="{px:.1}" y="{}" text-anchor="middle">{t}</text>"##,
            H - B,
            H - B + 16.0
        )
        .unwrap();
    }
    for v in 0..=(max_y as usize) {
        let py = y(v as f64);
        writeln!(
            s,
            r##"<line x1="{L}" y1="{py:.1}" x2="{}" y2="{py:.1}" stroke="#eee"/><text x="{}" y="{:.1}" text-anchor="end">{v}</text>"##,
            W - R,
            L - 6.0,
            py + 4.0
        )
        .unwrap();
    }
    writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">threads</text>"#,
        (W - R + L) / 2.0,
        H - 12.0
    )
    .unwrap();
    writeln!(
        s,
        r#"<text x="16" y="{}" text-anchor="middle" transform="rotate(-90 16 {})">speedup</text>"#,
        (H - B + T) / 2.0,
        (H - B + T) / 2.0
    )
    .unwrap();
    // Ideal: linear up to the core count, flat after.
    let ideal: Vec<String> = THREADS
        .iter()
        .map(|&t| {
            let v = (t.min(cores)) as f64;
            format!("{:.1},{:.1}", x(t as f64), y(v))
        })
        .collect();
    writeln!(
        s,
        r##"<polyline points="{}" fill="none" stroke="#999" stroke-dasharray="4 3"/>"##,
        ideal.join(" ")
    )
    .unwrap();
    if (cores as f64) < max_t {
        let px = x(cores as f64);
        writeln!(
            s,
            r##"<line x1="{px:.1}" y1="{T}" x2="{px:.1}" y2="{}" stroke="#f90" stroke-dasharray="2 2"/><text x="{:.1}" y="{}" fill="#f90">{cores} cores</text>"##,
            H - B,
            px + 4.0,
            T + 12.0
        )
        .unwrap();
    }
    let mut legend_y = T + 10.0;
    let lx = W - R + 15.0;
    writeln!(
        s,
        r##"<line x1="{lx}" y1="{legend_y}" x2="{}" y2="{legend_y}" stroke="#999" stroke-dasharray="4 3"/><text x="{}" y="{}">ideal</text>"##,
        lx + 20.0,
        lx + 26.0,
        legend_y + 4.0
    )
    .unwrap();
    for (i, (name, curve)) in curves.iter().enumerate() {
        let color = colors[i % colors.len()];
        let points: Vec<(f64, f64)> = curve
            .iter()
            .filter(|(_, v)| v.is_finite())
            .map(|&(t, v)| (x(t as f64), y(v)))
            .collect();
        let list: Vec<String> = points
            .iter()
            .map(|(px, py)| format!("{px:.1},{py:.1}"))
            .collect();
        writeln!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#,
            list.join(" ")
        )
        .unwrap();
        for (&(px, py), &(_, v)) in points.iter().zip(curve) {
            writeln!(
                s,
                r#"<circle cx="{px:.1}" cy="{py:.1}" r="3" fill="{color}"><title>{name}: {v:.2}x</title></circle>"#
            )
            .unwrap();
        }
        legend_y += 18.0;
        writeln!(
            s,
            r#"<line x1="{lx}" y1="{legend_y}" x2="{}" y2="{legend_y}" stroke="{color}" stroke-width="2"/><text x="{}" y="{}">{name}</text>"#,
            lx + 20.0,
            lx + 26.0,
            legend_y + 4.0
        )
        .unwrap();
    }
    s.push_str("</svg>\n");
    s
}

fn on_path(name: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            let p = dir.join(name);
            p.is_file()
        })
    })
}

/// Runs `benches/callgrind_join.sh` and returns a report section with its table and
/// per-join lines.
fn callgrind_section(root: &Path) -> String {
    let mut section = String::from("## Per-join instructions (callgrind)\n\n");
    let output = Command::new("bash")
        .arg("benches/callgrind_join.sh")
        .current_dir(root)
        .stderr(Stdio::inherit())
        .output();
    match output {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            let lines: Vec<&str> = text
                .lines()
                .filter(|l| !l.trim().is_empty() && !l.starts_with("binary:"))
                .collect();
            section.push_str("Output of `bash benches/callgrind_join.sh`:\n\n```text\n");
            for l in lines {
                section.push_str(l);
                section.push('\n');
            }
            section.push_str("```\n\n");
        }
        Ok(o) => {
            writeln!(
                section,
                "`benches/callgrind_join.sh` failed ({}).\n",
                o.status
            )
            .unwrap();
        }
        Err(e) => {
            writeln!(section, "could not run `benches/callgrind_join.sh`: {e}\n").unwrap();
        }
    }
    section
}

/// Runs the demo's edit benchmark, which writes `edits.md` into `out` (smoke mode
/// passes through the environment), and returns that table as a report section.
fn edits_section(root: &Path, out: &Path) -> String {
    let table = out.join("edits.md");
    let _ = fs::remove_file(&table);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["bench", "-p", "compiler-demo", "--bench", "edits"])
        .current_dir(root)
        .status();
    match (status, fs::read_to_string(&table)) {
        (Ok(s), Ok(text)) if s.success() => format!("{text}\n"),
        (Ok(s), _) => format!("## Re-checks after an edit\n\nThe edit benchmark failed ({s}).\n\n"),
        (Err(e), _) => {
            format!("## Re-checks after an edit\n\nCould not run the edit benchmark: {e}\n\n")
        }
    }
}
