//! The costs of the newer paths, each against a baseline measured in the same run:
//!
//! 1. `sync_process`: 20 checks each looking for their writer once a second, for
//!    `--seconds`, with the shared process table (`vitals::procs::table`: one `/proc`
//!    scan a second whoever asks) against each check scanning `/proc` itself (what
//!    shipped first). CPU of this process from `getrusage`.
//! 2. A remediation attempt: `actions::perform` of `force_sync` (a `/bin/true`
//!    command) by a rule, on a `delta_freshness` check of a Python-written table, as
//!    `vitals run` does it (the command, the check read again, the result published and
//!    recorded) — against its parts alone: spawning the command, and one run of the
//!    check.
//! 3. The demo's writers: the release binary's `vitals demo` (three tables committed
//!    every 1-2 s, the gateway stand-in, the incidents) for `--seconds`, against
//!    `vitals run` on the same folder's config once the demo has stopped (the same
//!    checks on the same tables, nothing writing). CPU and RSS from /proc.
//!
//! `cargo bench --bench paths -- --seconds 30`

mod common;

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vitals::actions::{Actor, perform};
use vitals::alerting::Alerting;
use vitals::board::Board;
use vitals::check::BuildContext;
use vitals::runner::Instance;

/// CPU seconds (user + system) this process has used.
fn own_cpu() -> f64 {
    let mut u = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, u.as_mut_ptr()) };
    // SAFETY: filled above (zeroed if the call failed).
    let u = unsafe { u.assume_init() };
    let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    s(u.ru_utime) + s(u.ru_stime)
}

/// utime + stime of `pid` in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some(end) = stat.rfind(')') else { return 0 };
    let f: Vec<&str> = stat[end + 2..].split_whitespace().collect();
    f[11].parse::<u64>().unwrap_or(0) + f[12].parse::<u64>().unwrap_or(0)
}

/// Resident and anonymous memory of `pid`, in MB.
fn rss(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1000.0
    };
    (kb("VmRSS:"), kb("RssAnon:"))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// 20 checks, each at its own offset in the second, look for a writer once a second
/// for `seconds`: CPU seconds used and scans' median wall time.
async fn sync_process(seconds: u64, shared: bool) -> (f64, usize) {
    let pattern = regex::Regex::new(r"positions_writer\.py").unwrap();
    let cpu = own_cpu();
    let mut tasks = Vec::new();
    for i in 0..20u64 {
        let pattern = pattern.clone();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(i * 50)).await;
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut found = 0usize;
            for _ in 0..seconds {
                tick.tick().await;
                let fresh = if shared {
                    vitals::procs::SHARED_FOR
                } else {
                    Duration::ZERO
                };
                let t = vitals::procs::table_within(fresh, Duration::from_secs(5))
                    .await
                    .unwrap();
                // The processes looked at (none matches).
                found = t.len() + t.iter().filter(|(_, l)| pattern.is_match(l)).count();
            }
            found
        }));
    }
    let mut processes = 0;
    for t in tasks {
        processes = t.await.unwrap();
    }
    (own_cpu() - cpu, processes)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds: u64 = args
        .iter()
        .position(|a| a == "--seconds")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(30);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();

    // 1. sync_process, on a host with a trading desk's few hundred processes (200
    // sleeping ones added to what runs here).
    let mut sleepers: Vec<_> = (0..200)
        .map(|_| Command::new("sleep").arg("3600").spawn().unwrap())
        .collect();
    let (own, processes) = rt.block_on(sync_process(seconds, false));
    let (shared, _) = rt.block_on(sync_process(seconds, true));
    let scans: Vec<f64> = (0..50)
        .map(|_| {
            let t = Instant::now();
            rt.block_on(vitals::procs::table_within(
                Duration::ZERO,
                Duration::from_secs(5),
            ))
            .unwrap();
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    for c in &mut sleepers {
        let _ = c.kill();
        let _ = c.wait();
    }
    println!("## sync_process: 20 checks at 1 s for {seconds} s, {processes} processes on the host\n");
    println!("| | CPU | per check and run | of one core |");
    println!("|---|---|---|---|");
    let runs = (20 * seconds) as f64;
    for (name, cpu) in [
        ("each check scans /proc (before)", own),
        ("one shared scan a second", shared),
    ] {
        println!(
            "| {name} | {cpu:.3} s | {:.3} ms | {:.2} % |",
            cpu / runs * 1000.0,
            cpu / seconds as f64 * 100.0
        );
    }
    println!(
        "\none scan: median {:.2} ms wall; shared / own CPU = {:.2}\n",
        median(scans),
        shared / own
    );

    // 2. A remediation attempt.
    let dir = common::fresh_dir("paths-remediation");
    let table = dir.join("positions");
    let out = Command::new(common::python())
        .arg(common::root().join("tests/support/make_table.py"))
        .args([table.to_str().unwrap(), "tz", "5"])
        .output()
        .expect(".venv/bin/python (./scripts/test.sh makes it)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let path = dir.join("vitals.toml");
    let mut config = vitals::config::parse(
        &path,
        "[server]\nstate_dir = \"state\"\n\n[checks.positions]\nkind = \"delta_freshness\"\ntable = \"positions\"\n\
         force_sync = [\"/bin/true\"]\ntimeout = \"20s\"\n",
        vitals::registry::registry().unwrap(),
    )
    .unwrap_or_else(|d| panic!("{d}"));
    let spec = config.checks.remove(0);
    let here = config.dir();
    let alerting = Arc::new(Mutex::new(Alerting::start(
        vitals::daemon::split(config).alerting,
    )));
    let cx = BuildContext::standalone(&spec.id, spec.kind, &here);
    let instance = Instance::from_spec(spec, cx);
    let board = Board::new();
    const N: usize = 100;
    let (attempts, commands, checks) = rt.block_on(async {
        let _ = instance.run_once(tokio::time::Instant::now()).await; // opened once
        let mut attempts = Vec::new();
        let mut commands = Vec::new();
        let mut checks = Vec::new();
        for _ in 0..N {
            let t = Instant::now();
            let p = perform(
                &instance,
                "force_sync",
                Actor::Rule("positions_stale", chrono::Utc::now()),
                "attempt 1 of 3: ",
                &board,
                &alerting,
            )
            .await;
            attempts.push(t.elapsed().as_secs_f64() * 1000.0);
            assert!(p.outcome.is_ok(), "{:?}", p.outcome);
            let t = Instant::now();
            vitals::process::run(
                std::path::Path::new("/bin/true"),
                &[],
                &Default::default(),
                &[],
                Duration::from_secs(5),
            )
            .await
            .unwrap();
            commands.push(t.elapsed().as_secs_f64() * 1000.0);
            let t = Instant::now();
            let _ = instance.run_once(tokio::time::Instant::now()).await;
            checks.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        (median(attempts), median(commands), median(checks))
    });
    println!("## A remediation attempt (median of {N})\n");
    println!("| | wall |");
    println!("|---|---|");
    println!("| the attempt: force_sync, check again, publish, record | {attempts:.2} ms |");
    println!("| the command alone (/bin/true) | {commands:.2} ms |");
    println!("| one run of the check alone | {checks:.2} ms |");
    println!(
        "\nattempt / (command + check) = {:.2}\n",
        attempts / (commands + checks)
    );

    // 3. The demo's writers.
    let dir = common::fresh_dir("paths-demo");
    let measure = |mut cmd: Command| {
        let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        std::thread::sleep(Duration::from_secs(10));
        let (t0, c0) = (Instant::now(), cpu_ticks(child.id()));
        let mut rss_samples = Vec::new();
        let mut anon_samples = Vec::new();
        while t0.elapsed() < Duration::from_secs(seconds) {
            std::thread::sleep(Duration::from_secs(1));
            let (r, a) = rss(child.id());
            rss_samples.push(r);
            anon_samples.push(a);
        }
        let cpu = (cpu_ticks(child.id()) - c0) as f64 / 100.0 / t0.elapsed().as_secs_f64() * 100.0;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        child.wait().unwrap();
        (cpu, median(rss_samples), median(anon_samples))
    };
    let port = common::free_port();
    let mut demo = Command::new(env!("CARGO_BIN_EXE_vitals"));
    demo.args(["demo", "--listen", &format!("127.0.0.1:{port}"), "--dir"])
        .arg(&dir);
    let demo = measure(demo);
    // Commits of the three feeds over the demo's whole life (10 s + the window).
    let commits: usize = ["positions", "greeks", "decisions"]
        .iter()
        .map(|t| {
            std::fs::read_dir(dir.join("tables").join(t).join("_delta_log"))
                .map(|d| {
                    d.filter_map(Result::ok)
                        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                        .count()
                })
                .unwrap_or(0)
        })
        .sum();
    let mut run = Command::new(env!("CARGO_BIN_EXE_vitals"));
    run.env("VITALS_TOKEN", "bench-token-0123456789abcdef")
        .args(["run", "-c"])
        .arg(dir.join("vitals.toml"));
    let run = measure(run);
    println!("## The demo's writers ({seconds} s after 10 s)\n");
    println!("| | CPU (of one core) | RSS | anonymous |");
    println!("|---|---|---|---|");
    println!(
        "| `vitals demo` | {:.2} % | {:.1} MB | {:.1} MB |",
        demo.0, demo.1, demo.2
    );
    println!(
        "| `vitals run` on its config, nothing writing | {:.2} % | {:.1} MB | {:.1} MB |",
        run.0, run.1, run.2
    );
    let per_s = commits as f64 / (10 + seconds) as f64;
    println!(
        "\nthe three feeds: {commits} commits ({per_s:.2} a second); the writers, gateway and incidents cost {:.2} % of a core, {:.2} ms of CPU per commit\n",
        demo.0 - run.0,
        (demo.0 - run.0) / 100.0 / per_s * 1000.0
    );
}
