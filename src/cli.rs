//! The subcommands behind the binary: `run`, `check`, `reload` and `demo`. Each returns the process exit
//! code; errors are printed as one clear line per problem.

use crate::RunningRouter;
use crate::config::{self, Config};
use std::path::Path;
use std::process::ExitCode;
use tokio::signal::unix::{Signal, SignalKind, signal};

/// `switchyard check`: validates the config, prints every problem with file, line and key;
/// with `bind`, also opens and closes each listener (exit 1 when one cannot be opened).
pub fn check(path: &Path, bind: bool) -> ExitCode {
    let config = match config::load_file(path) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(2);
        }
    };
    if bind {
        let listeners = [
            ("listen.http", config.listen.http),
            (
                "listen.https",
                config.listen.https.as_ref().map(|a| a.get_ref().0),
            ),
            ("listen.admin", config.listen.admin),
        ];
        let mut failed = false;
        for (key, address) in listeners {
            let Some(address) = address else { continue };
            // As the router opens it (one worker's socket), then closed again.
            if let Err(error) = crate::server::bind_shared(key, address, 1) {
                eprintln!("switchyard: {error}");
                failed = true;
            }
        }
        if failed {
            return ExitCode::from(1);
        }
    }
    println!("{}: ok ({} routes)", path.display(), config.routes.len());
    ExitCode::SUCCESS
}

/// `switchyard reload`: sends SIGHUP to the router whose process id is in `pid_file`.
pub fn reload(pid_file: &Path) -> ExitCode {
    let pid = match std::fs::read_to_string(pid_file) {
        Ok(text) => match text.trim().parse::<libc::pid_t>() {
            Ok(pid) if pid > 0 => pid,
            _ => {
                eprintln!(
                    "switchyard: {} does not hold a process id",
                    pid_file.display()
                );
                return ExitCode::from(1);
            }
        },
        Err(error) => {
            eprintln!("switchyard: cannot read {}: {error}", pid_file.display());
            return ExitCode::from(1);
        }
    };
    // SAFETY: kill(2) with a positive process id and a valid signal number has no memory
    // effects; failure is reported through its return value.
    if unsafe { libc::kill(pid, libc::SIGHUP) } != 0 {
        let error = std::io::Error::last_os_error();
        eprintln!("switchyard: cannot signal process {pid}: {error}");
        return ExitCode::from(1);
    }
    println!("switchyard: asked process {pid} to reload");
    ExitCode::SUCCESS
}

/// Removes the pid file when the router ends.
struct PidFile(std::path::PathBuf);

impl PidFile {
    fn write(path: &Path) -> std::io::Result<PidFile> {
        std::fs::write(path, format!("{}\n", std::process::id()))?;
        Ok(PidFile(path.to_path_buf()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `switchyard run`: serves until SIGTERM/SIGINT (graceful stop) or SIGUSR1 (drain then stop);
/// SIGHUP re-reads the config file's routes.
pub fn run(path: &Path, pid_file: Option<&Path>) -> ExitCode {
    let config = match config::load_file(path) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(2);
        }
    };
    let _pid = match pid_file.map(PidFile::write).transpose() {
        Ok(pid) => pid,
        Err(error) => {
            eprintln!("switchyard: cannot write the pid file: {error}");
            return ExitCode::from(1);
        }
    };
    serve_until_signalled(config, Some(path))
}

/// Starts `config` and handles signals until the router has stopped. The handlers are in
/// place before the router starts: a signal sent while it starts (a reload, a stop) waits for
/// it instead of killing the process.
pub fn serve_until_signalled(config: Config, path: Option<&Path>) -> ExitCode {
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
    let signals = match runtime.block_on(async { Signals::install() }) {
        Ok(signals) => signals,
        Err(error) => {
            eprintln!("switchyard: cannot install signal handlers: {error}");
            return ExitCode::from(1);
        }
    };
    let router = match RunningRouter::start(config) {
        Ok(router) => router,
        Err(error) => {
            eprintln!("switchyard: {error}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(signals.handle(&router, path));
    router.wait();
    tracing::info!("switchyard stopped");
    ExitCode::SUCCESS
}

/// The signals the router answers.
struct Signals {
    term: Signal,
    int: Signal,
    usr1: Signal,
    hup: Signal,
    usr2: Signal,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            usr1: signal(SignalKind::user_defined1())?,
            hup: signal(SignalKind::hangup())?,
            usr2: signal(SignalKind::user_defined2())?,
        })
    }

    /// Acts on signals until the router has stopped.
    async fn handle(mut self, router: &RunningRouter, path: Option<&Path>) {
        let mut poll = tokio::time::interval(std::time::Duration::from_millis(200));
        loop {
            tokio::select! {
                _ = self.term.recv() => { tracing::info!("SIGTERM: stopping"); router.stop(); }
                _ = self.int.recv() => { tracing::info!("SIGINT: stopping"); router.stop(); }
                _ = self.usr1.recv() => { tracing::info!("SIGUSR1: draining"); router.drain(); }
                _ = self.hup.recv() => { router.reopen_logs(); reload_routes(router, path) }
                _ = self.usr2.recv() => { tracing::info!("SIGUSR2: reopening the access log"); router.reopen_logs(); }
                _ = poll.tick() => if router.is_finished() { return },
            }
        }
    }
}

fn reload_routes(router: &RunningRouter, path: Option<&Path>) {
    if let Some(path) = path {
        router.reload(path);
    }
}
