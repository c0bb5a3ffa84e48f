//! The subcommands behind the binary: `run`, `check` and `demo`. Each returns the process exit
//! code; errors are printed as one clear line per problem.

use crate::RunningRouter;
use crate::config::{self, Config};
use std::path::Path;
use std::process::ExitCode;
use tokio::signal::unix::{SignalKind, signal};

/// `switchyard check`: validates the config, prints every problem with file, line and key.
pub fn check(path: &Path) -> ExitCode {
    match config::load_file(path) {
        Ok(config) => {
            println!("{}: ok ({} routes)", path.display(), config.routes.len());
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            ExitCode::from(2)
        }
    }
}

/// `switchyard run`: serves until SIGTERM/SIGINT (graceful stop) or SIGUSR1 (drain then stop);
/// SIGHUP re-reads the config file's routes.
pub fn run(path: &Path) -> ExitCode {
    let config = match config::load_file(path) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(2);
        }
    };
    serve_until_signalled(config, Some(path))
}

/// Starts `config` and handles signals until the router has stopped.
pub fn serve_until_signalled(config: Config, path: Option<&Path>) -> ExitCode {
    let router = match RunningRouter::start(config) {
        Ok(router) => router,
        Err(error) => {
            eprintln!("switchyard: {error}");
            return ExitCode::from(1);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("switchyard: cannot start signal runtime: {error}");
            return ExitCode::from(1);
        }
    };
    if let Err(error) = runtime.block_on(handle_signals(&router, path)) {
        eprintln!("switchyard: cannot install signal handlers: {error}");
        router.stop();
    }
    router.wait();
    tracing::info!("switchyard stopped");
    ExitCode::SUCCESS
}

async fn handle_signals(router: &RunningRouter, path: Option<&Path>) -> std::io::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut usr2 = signal(SignalKind::user_defined2())?;
    let mut poll = tokio::time::interval(std::time::Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM: stopping"); router.stop(); }
            _ = int.recv() => { tracing::info!("SIGINT: stopping"); router.stop(); }
            _ = usr1.recv() => { tracing::info!("SIGUSR1: draining"); router.drain(); }
            _ = hup.recv() => { router.reopen_logs(); reload(router, path) }
            _ = usr2.recv() => { tracing::info!("SIGUSR2: reopening the access log"); router.reopen_logs(); }
            _ = poll.tick() => if router.is_finished() { return Ok(()) },
        }
    }
}

fn reload(router: &RunningRouter, path: Option<&Path>) {
    if let Some(path) = path {
        router.reload(path);
    }
}
