//! The `vitals` command line (clap): every command and its arguments. `main.rs` runs
//! them; the docs test parses every `vitals …` line of the docs with [`Cli`], so a
//! documented command line cannot drift from the real one.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// The `vitals` command line.
#[derive(Parser)]
#[command(
    name = "vitals",
    version,
    about = "Health checks for an IB + Delta Lake trading system"
)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// `-c FILE`: the config file.
#[derive(clap::Args)]
pub struct ConfigArg {
    /// The config file.
    #[arg(short, long, env = "VITALS_CONFIG", default_value = crate::config::DEFAULT_PATH)]
    pub config: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people.
    Text,
    /// For programs.
    Json,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the daemon: checks on their schedules, status changes logged; SIGHUP or a
    /// changed file reloads the config, SIGTERM stops cleanly.
    Run {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Run the daemon on a simulated desk (Delta writers, an IB Gateway simulator, a
    /// strategy registry, a position queue, incidents on a cycle): everything vitals
    /// shows, on any machine, in one command. Prints the page's address and the token
    /// first; SIGTERM or Ctrl-C stops it and removes its folder.
    Demo {
        /// The page's address.
        #[arg(long, default_value = "127.0.0.1:8686")]
        listen: String,
        /// Keep everything in this folder (default: a temporary one, removed at exit).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// How many times faster incidents come (1 to 30; the freshness thresholds
        /// shrink with them).
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
    },
    /// Run checks once and print them. Exit 2 if any is critical, else 3 if any is
    /// unknown, else 1 if any is warning, else 0.
    Check {
        #[command(flatten)]
        config: ConfigArg,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// The checks to run (all when none are named).
        ids: Vec<String>,
    },
    /// Check the config file without touching anything outside it. Exit 0 if valid,
    /// 78 if not, with every error printed as FILE:LINE:COL: [section] key `KEY`: message.
    Validate {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Feed recorded observations (one JSON object a line, as in /api/status, in time
    /// order) through the config's rules, depends_on, maintenance windows, market hours
    /// and check_unknown, on virtual time. Every alert event goes to stdout as a JSON
    /// line, a summary to stderr; nothing else is touched. Exit 65 on a bad line.
    Replay {
        #[command(flatten)]
        config: ConfigArg,
        /// The observations file (`-` for standard input).
        #[arg(required_unless_present = "history", conflicts_with = "history")]
        observations: Option<PathBuf>,
        /// Replay the history table instead (one observation per check and bucket: its
        /// worst status and last value).
        #[arg(long)]
        history: Option<String>,
        /// With --history: from this time (RFC 3339; default: a week before --to).
        #[arg(long, requires = "history")]
        from: Option<chrono::DateTime<chrono::Utc>>,
        /// With --history: to this time (RFC 3339; default: now).
        #[arg(long, requires = "history")]
        to: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// Run rule tests (observation series and the alerts expected of them, see
    /// docs/market-hours.md). Exit 0 if all pass, 1 if one fails.
    Test {
        /// Test files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// A sink's outbox: `vitals outbox retry SINK` sends its dead letters (events it
    /// refused for good) again.
    Outbox {
        /// What to do.
        #[command(subcommand)]
        what: OutboxCommand,
    },
    /// List the registered check kinds with their keys and defaults.
    Plugins {
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
}

/// `vitals outbox …`.
#[derive(Subcommand)]
pub enum OutboxCommand {
    /// Sends sink SINK's dead letters again: through the running daemon (with the
    /// action token, `[server] token_env`), or, when none runs, back into the outbox
    /// for the next start. Exit 0 when done, 1 when refused, 78 on a bad config.
    Retry {
        #[command(flatten)]
        config: ConfigArg,
        /// The sink's id (`[sinks.<id>]`).
        sink: String,
    },
}
