//! The `switchyard` binary: parses the command line and calls the library.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use switchyard::logging::{self, LogFormat};

/// An HTTP reverse proxy and load balancer.
#[derive(Parser)]
#[command(name = "switchyard", version, about)]
struct Cli {
    /// Log line format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the router.
    Run {
        /// Config file.
        #[arg(long, default_value = "switchyard.toml")]
        config: PathBuf,
        /// Write the process id here while running (for `switchyard reload`).
        #[arg(long)]
        pid_file: Option<PathBuf>,
    },
    /// Validate a config file and exit (every error names file, line and key).
    Check {
        /// Config file.
        #[arg(long, default_value = "switchyard.toml")]
        config: PathBuf,
        /// Also open and close each listener (port in use, no permission).
        #[arg(long)]
        bind: bool,
    },
    /// Ask a running router to reload its routes (SIGHUP to the process in the pid file).
    Reload {
        /// The pid file given to `run --pid-file`.
        #[arg(long)]
        pid_file: PathBuf,
    },
    /// Start built-in backends and the router in front of them, and print what to try.
    Demo {
        /// HTTP port of the router (the admin API listens on this port + 2).
        #[arg(long, default_value_t = 8080)]
        port: u16,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    match cli.command {
        Command::Run { config, pid_file } => switchyard::cli::run(&config, pid_file.as_deref()),
        Command::Check { config, bind } => switchyard::cli::check(&config, bind),
        Command::Reload { pid_file } => switchyard::cli::reload(&pid_file),
        Command::Demo { port } => switchyard::demo::run(port),
    }
}

/// mimalloc: measured fewer instructions per request than glibc malloc (see README, Performance).
#[global_allocator]
static ALLOCATOR: switchyard::memory::Allocator = switchyard::memory::Allocator;
