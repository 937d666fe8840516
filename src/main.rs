//! The `vitals` binary: commands and signals.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use tokio::sync::mpsc;

use vitals::check::BuildContext;
use vitals::cli::{Cli, Command, Format, OutboxCommand};
use vitals::config::{self, Diagnostics};
use vitals::daemon::{Control, Daemon};
use vitals::registry::{self, Registry};
use vitals::resources::Resources;
use vitals::runner::Instance;
use vitals::{reference, report};

/// The log filter when neither VITALS_LOG nor RUST_LOG is set: vitals at info, its
/// dependencies at warn. The Delta kernel's snapshot builder is silenced: it logs an
/// ERROR for a table that has no commit yet (every new alerts table, at its creation),
/// and every error it meets also comes back to vitals as a result, which vitals reports
/// in its own words. deltalake's "table updated during transaction" warning is how a
/// commit that lost a race to another writer (two vitals appending to one alerts table)
/// starts its retry: normal, and the retry's outcome comes back to vitals. The `ibapi`
/// client's transport logs an ERROR for every dropped gateway connection ("Connection
/// error detected, attempting to reconnect", "Failed to reconnect"): vitals owns
/// reconnecting, and says each drop and each attempt in its own status-change line. Its
/// gateway notices (a data farm broken or back, 2103/2104) it logs at WARN: vitals shows
/// each farm's state on the IB card and in its status line.
const DEFAULT_LOG: &str = "warn,vitals=info,buoyant_kernel::snapshot::builder=off,\
     deltalake_core::kernel::transaction=error,ibapi::transport=off,ibapi::messages::notice=error";

/// EX_CONFIG from sysexits.h: the configuration is invalid.
const EXIT_CONFIG: u8 = 78;
/// EX_USAGE from sysexits.h.
const EXIT_USAGE: u8 = 64;
/// EX_DATAERR from sysexits.h: the input data is wrong.
const EXIT_DATA: u8 = 65;
/// EX_NOINPUT from sysexits.h: an input file cannot be read.
const EXIT_NOINPUT: u8 = 66;
/// EX_UNAVAILABLE from sysexits.h: a service vitals needs is not available (its listen
/// address is taken).
const EXIT_UNAVAILABLE: u8 = 69;

/// Two glibc malloc settings, each unless its environment variable is set:
/// - `M_ARENA_MAX` 2: glibc gives each thread that contends for the heap an arena of its
///   own (up to 8 per core) and keeps what is freed in each; with a blocking pool of
///   short-lived threads reading tables, that is freed memory held in many places. Two
///   arenas measured the smallest and flat, below mimalloc and jemalloc.
/// - `M_MMAP_THRESHOLD` 128 KiB, fixed: by default glibc raises the threshold to the
///   size of any large block freed, so later page renders and table reads of that size
///   come from the heap and fragment it; fixed, they are mapped and given back whole.
///
/// (docs/performance.md, "Footprint".)
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    for (variable, option, value) in [
        ("MALLOC_ARENA_MAX", libc::M_ARENA_MAX, 2),
        ("MALLOC_MMAP_THRESHOLD_", libc::M_MMAP_THRESHOLD, 128 * 1024),
    ] {
        if std::env::var_os(variable).is_none() {
            // SAFETY: mallopt only sets one of the allocator's tunables; it is called
            // before any other thread exists.
            unsafe {
                libc::mallopt(option, value);
            }
        }
    }
}

fn main() -> anyhow::Result<ExitCode> {
    tune_malloc();
    let cli = Cli::parse();
    init_logging();
    let registry =
        registry::registry().context("the check kinds linked into this binary are inconsistent")?;
    match cli.command {
        Command::Validate { config } => Ok(validate(&config.config, registry)),
        Command::Plugins { format } => {
            match format {
                Format::Text => print!("{}", reference::plugins_text(registry)),
                Format::Json => println!("{}", reference::plugins_json(registry)),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Replay {
            config,
            observations,
            history,
            from,
            to,
        } => match (observations, history) {
            (Some(observations), _) => Ok(replay(&config.config, &observations, registry)),
            (None, Some(table)) => block_on(replay_history(&config.config, &table, from, to, registry)),
            (None, None) => Ok(ExitCode::from(EXIT_USAGE)),
        },
        Command::Test { files } => Ok(rule_tests(&files, registry)),
        Command::Outbox {
            what: OutboxCommand::Retry { config, sink },
        } => block_on(retry_dead(&config.config, &sink, registry)),
        Command::Check { config, format, ids } => block_on(check(&config.config, registry, format, ids)),
        Command::Run { config } => block_on(run(&config.config, registry, None)),
        Command::Demo { listen, dir, speed } => {
            block_on(demo(vitals::demo::DemoOptions { dir, listen, speed }, registry))
        }
    }
}

fn init_logging() {
    // vitals' own lines at info, its dependencies' at warn (their info lines are
    // internals: snapshot builds, scans); VITALS_LOG (or RUST_LOG) overrides.
    let filter = tracing_subscriber::EnvFilter::try_from_env("VITALS_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG));
    let log = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("VITALS_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        // One JSON object a line, for journald, Loki and the like.
        log.json().init();
    } else {
        // Colour only for a terminal: a log file or journald gets plain text.
        log.with_ansi(std::io::stderr().is_terminal()).init();
    }
}

/// How long the runtime waits at exit for reads still stuck on a hung target (a
/// blocked thread cannot be cancelled): then the process exits without them.
const EXIT_GRACE: std::time::Duration = std::time::Duration::from_millis(250);

/// How long an idle thread of the blocking pool (file and table reads) is kept. Longer
/// than tokio's 10 s, so the pool stays at the size the checks' reads need instead of
/// ending and re-creating threads between runs 5–30 s apart.
const BLOCKING_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs `main` on a multi-threaded runtime, then shuts it down without waiting more than
/// [`EXIT_GRACE`] for blocking tasks: a read stuck on a hung NFS mount never keeps
/// `vitals check` or a stopping daemon alive.
fn block_on<T>(main: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_keep_alive(BLOCKING_KEEP_ALIVE)
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(main);
    runtime.shutdown_timeout(EXIT_GRACE);
    result
}

fn print_diagnostics(diags: &Diagnostics) {
    eprintln!("{diags}");
    let n = diags.errors().count();
    eprintln!("{n} error{} in the config", if n == 1 { "" } else { "s" });
}

/// Loads the config, or prints every problem and gives the exit code (78): the one way
/// every command reads its config.
fn load_or_exit(path: &Path, registry: &'static Registry) -> Result<config::Config, ExitCode> {
    config::load(path, registry).map_err(|diags| {
        print_diagnostics(&diags);
        ExitCode::from(EXIT_CONFIG)
    })
}

fn replay(path: &Path, observations: &Path, registry: &'static Registry) -> ExitCode {
    use std::io::{BufRead, BufReader, BufWriter};
    let config = match load_or_exit(path, registry) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let input: Box<dyn BufRead> = if observations == Path::new("-") {
        Box::new(std::io::stdin().lock())
    } else {
        match std::fs::File::open(observations) {
            Ok(f) => Box::new(BufReader::with_capacity(1 << 20, f)),
            Err(e) => {
                eprintln!("vitals replay: cannot read {}: {e}", observations.display());
                return ExitCode::from(EXIT_NOINPUT);
            }
        }
    };
    let started = std::time::Instant::now();
    let mut out = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    match vitals::replay::replay(config, input, &mut out) {
        Ok(summary) => {
            eprint!("{summary}");
            eprintln!("in {:.2} s", started.elapsed().as_secs_f64());
            ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = std::io::Write::flush(&mut out);
            eprintln!("vitals replay: {}: {e}", observations.display());
            replay_exit(&e)
        }
    }
}

/// `vitals replay --history TABLE`: the history table's rows as observations.
async fn replay_history(
    path: &Path,
    table: &str,
    from: Option<chrono::DateTime<chrono::Utc>>,
    to: Option<chrono::DateTime<chrono::Utc>>,
    registry: &'static Registry,
) -> anyhow::Result<ExitCode> {
    let config = match load_or_exit(path, registry) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let to = to.unwrap_or_else(chrono::Utc::now);
    let from = from.unwrap_or(to - chrono::Duration::days(7));
    let table = vitals::delta::TableRef {
        location: vitals::delta::location(table, &std::env::current_dir().unwrap_or_default()),
        options: Default::default(),
    };
    let started = std::time::Instant::now();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match vitals::replay::replay_history(config, &table, from, to, &mut out).await {
        Ok(summary) => {
            eprint!("{summary}");
            eprintln!("in {:.2} s", started.elapsed().as_secs_f64());
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            let _ = std::io::Write::flush(&mut out);
            eprintln!("vitals replay: {e}");
            Ok(replay_exit(&e))
        }
    }
}

/// The exit code of a replay that stopped.
fn replay_exit(e: &vitals::replay::ReplayError) -> ExitCode {
    use vitals::replay::ReplayError;
    ExitCode::from(match e {
        ReplayError::Input { .. } => EXIT_DATA,
        ReplayError::Io(_) | ReplayError::Table { .. } => EXIT_NOINPUT,
    })
}

/// `vitals outbox retry SINK`: through the running daemon when one listens, else
/// straight into the outbox for the next start.
async fn retry_dead(path: &Path, sink: &str, registry: &'static Registry) -> anyhow::Result<ExitCode> {
    let config = match load_or_exit(path, registry) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    if !config.sinks.iter().any(|s| s.id == sink) {
        let known: Vec<&str> = config.sinks.iter().map(|s| s.id.as_str()).collect();
        eprintln!(
            "{}: no sink `{sink}`{}; configured sinks: {}",
            path.display(),
            vitals::plugin::suggest(sink, known.iter().copied()),
            known.join(", ")
        );
        return Ok(ExitCode::from(EXIT_USAGE));
    }
    let url = format!("http://{}/api/sinks/{sink}/retry", config.server.listen);
    let token = std::env::var(&config.server.token_env).unwrap_or_default();
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .context("cannot set up an HTTP client")?;
    match client.post(&url).bearer_auth(&token).send().await {
        Ok(r) if r.status().is_success() => {
            let body: serde_json::Value = r.json().await.unwrap_or_default();
            println!(
                "{} dead-lettered events of `{sink}` sent again by the running vitals",
                body["requeued"]
            );
            Ok(ExitCode::SUCCESS)
        }
        Ok(r) => {
            let status = r.status();
            let body: serde_json::Value = r.json().await.unwrap_or_default();
            let why = body["error"].as_str().unwrap_or_default().to_owned();
            let hint =
                if status == reqwest::StatusCode::FORBIDDEN || status == reqwest::StatusCode::UNAUTHORIZED {
                    format!(" (set ${} to the action token)", config.server.token_env)
                } else {
                    String::new()
                };
            eprintln!("the running vitals refused: {status}: {why}{hint}");
            Ok(ExitCode::FAILURE)
        }
        // No vitals listens: the outbox is ours to change.
        Err(e) if e.is_connect() => {
            let n = vitals::dispatch::revive_offline(&config.state_dir(), sink)
                .with_context(|| format!("cannot move the dead letters of `{sink}` back"))?;
            println!(
                "{n} dead-lettered events of `{sink}` moved back into its outbox (no vitals is running on {}): the next start delivers them",
                config.server.listen
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!(
                "cannot reach the running vitals at {}: {}",
                config.server.listen,
                e.without_url()
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

fn rule_tests(files: &[PathBuf], registry: &'static Registry) -> ExitCode {
    let mut failed = 0;
    let mut passed = 0;
    for file in files {
        match vitals::ruletest::run_file(file, registry) {
            Ok(outcomes) => {
                for o in outcomes {
                    if o.diff.is_empty() {
                        passed += 1;
                        println!("ok    {}: {}", file.display(), o.name);
                    } else {
                        failed += 1;
                        println!("FAIL  {}: {}", file.display(), o.name);
                        for line in o.diff {
                            println!("{line}");
                        }
                    }
                }
            }
            Err(vitals::ruletest::TestFileError::Config(d)) => {
                print_diagnostics(&d);
                return ExitCode::from(EXIT_CONFIG);
            }
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(EXIT_DATA);
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn validate(path: &Path, registry: &'static Registry) -> ExitCode {
    let config = match load_or_exit(path, registry) {
        Ok(c) => c,
        Err(code) => return code,
    };
    for note in &config.notes {
        eprintln!("{note}");
    }
    for warning in config.warnings() {
        eprintln!("{}", vitals::text::visible(&warning));
    }
    println!("{}: valid ({} checks)", path.display(), config.checks.len());
    ExitCode::SUCCESS
}

async fn check(
    path: &Path,
    registry: &'static Registry,
    format: Format,
    ids: Vec<String>,
) -> anyhow::Result<ExitCode> {
    let config = match load_or_exit(path, registry) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let known: Vec<&str> = config.checks.iter().map(|c| c.id.as_str()).collect();
    for id in &ids {
        if !known.contains(&id.as_str()) {
            let hint = vitals::plugin::suggest(id, known.iter().copied());
            eprintln!(
                "{}: no check `{id}`{hint}; configured checks: {}",
                path.display(),
                known.join(", ")
            );
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    }
    let dir = config.dir();
    let resources = Arc::new(Resources::default());
    let instances: Vec<Instance> = config
        .checks
        .into_iter()
        .filter(|c| ids.is_empty() || ids.contains(&c.id))
        .map(|spec| {
            let mut cx = BuildContext::standalone(&spec.id, spec.kind, &dir);
            cx.resources = resources.clone();
            Instance::from_spec(spec, cx)
        })
        .collect();
    let now = tokio::time::Instant::now();
    let observations = futures::future::join_all(instances.iter().map(|i| i.run_once(now))).await;
    match format {
        Format::Text => print!("{}", report::text(&observations)),
        Format::Json => println!("{}", report::json(&observations)),
    }
    let code = report::exit_code(&observations);
    Ok(ExitCode::from(code as u8))
}

/// `vitals demo`: the simulated desk, then `vitals run` on it with a token (from
/// `$VITALS_TOKEN`, else made up and printed).
async fn demo(options: vitals::demo::DemoOptions, registry: &'static Registry) -> anyhow::Result<ExitCode> {
    let token = std::env::var("VITALS_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| {
            use rand::Rng;
            let bytes: [u8; 16] = rand::rng().random();
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        });
    let desk = match vitals::demo::Desk::start(&options).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("vitals demo did not start: {e}");
            return Ok(ExitCode::from(EXIT_UNAVAILABLE));
        }
    };
    println!(
        "vitals demo: a simulated desk in {}\n  page:  http://{}/\n  token: {token}   (the buttons ask for it)\n  stop:  Ctrl-C",
        desk.dir().display(),
        options.listen
    );
    let code = run(desk.config(), registry, Some(token)).await;
    desk.stop().await;
    code
}

async fn run(path: &Path, registry: &'static Registry, token: Option<String>) -> anyhow::Result<ExitCode> {
    // Listen for signals before anything starts: a SIGHUP that arrived during start-up
    // would otherwise end the process (its default action).
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let daemon = match Daemon::start(path, registry).await {
        Ok(d) => d,
        Err(diags) => {
            print_diagnostics(&diags);
            eprintln!("vitals did not start: fix the config and run again");
            return Ok(ExitCode::from(EXIT_CONFIG));
        }
    };
    let server = daemon.server();
    let limits = vitals::web::Limits {
        max_connections: server.max_connections.max(1),
        header_timeout: *server.header_timeout,
        write_timeout: *server.write_timeout,
    };
    let web = match token {
        Some(t) => daemon.web_with_token(Some(t)),
        None => daemon.web(),
    };
    let web = match vitals::web::spawn_with(&server.listen, limits, web) {
        Ok(web) => web,
        Err(e) => {
            // The page is how the desk sees vitals: without it, do not pretend to run.
            tracing::error!("{e}");
            eprintln!("vitals did not start: {e}");
            daemon.shutdown().await;
            return Ok(ExitCode::from(EXIT_UNAVAILABLE));
        }
    };
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        loop {
            let control = tokio::select! {
                _ = hup.recv() => Control::Reload,
                _ = term.recv() => Control::Shutdown,
                _ = int.recv() => Control::Shutdown,
            };
            if tx.send(control).await.is_err() || control == Control::Shutdown {
                break;
            }
        }
    });
    daemon.serve(rx).await;
    tokio::task::spawn_blocking(move || web.stop(std::time::Duration::from_secs(5)))
        .await
        .ok();
    Ok(ExitCode::SUCCESS)
}
