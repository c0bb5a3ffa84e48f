//! The real binary as a child process: started from config text, signalled, and measured
//! (resident memory and CPU time from `/proc`).

use crate::support::temp_dir;
use std::process::Stdio;
use std::time::Duration;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

/// Writes `text` to a fresh `switchyard.toml`; its path.
pub fn write_config(text: &str) -> std::path::PathBuf {
    let path = temp_dir("cli").join("switchyard.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A loopback port free at the time of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `switchyard` process (killed when dropped).
pub struct Process(pub tokio::process::Child);

impl Process {
    /// Sends signal `name` (`HUP`, `TERM`, ...).
    pub fn signal(&self, name: &str) {
        let pid = self.pid().to_string();
        let status = std::process::Command::new("kill")
            .args(["-s", name, &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.0.id().unwrap()
    }

    /// Waits (up to 10 s) for the process to exit; its exit code.
    pub async fn exit_code(&mut self) -> Option<i32> {
        let status = tokio::time::timeout(Duration::from_secs(10), self.0.wait())
            .await
            .expect("the process exits within 10 s")
            .unwrap();
        status.code()
    }

    /// Resident memory, in MiB.
    pub fn rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        let kib: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kib / 1024.0
    }

    /// CPU time used so far (user + system), in seconds.
    pub fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        // Fields after the command name, which is in parentheses and may hold spaces.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
        ticks / 100.0
    }
}

/// Starts the binary on `config` (its output discarded).
pub async fn start_binary(config: &str) -> Process {
    spawn(config, Stdio::null(), &[])
}

/// Starts the binary on `config` with its log as JSON lines, at the default level, into
/// the file `log`.
pub async fn start_binary_logging(config: &str, log: &std::path::Path) -> Process {
    let file = std::fs::File::create(log).unwrap();
    spawn(config, Stdio::from(file), &["--log-format", "json"])
}

fn spawn(config: &str, stderr: Stdio, extra: &[&str]) -> Process {
    let path = write_config(config);
    let child = tokio::process::Command::new(BIN)
        .args(["run", "--config", path.to_str().unwrap()])
        .args(extra)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    Process(child)
}

/// Waits (up to 5 s) until something listens on `port`.
pub async fn wait_for_port(port: u16) {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("port {port} never opened");
}

/// The binary with one worker, default limits but for `server_extra` (lines of `[server]`), and
/// `routes`; its HTTP and admin addresses.
pub async fn start_router(
    server_extra: &str,
    routes: &str,
) -> (Process, std::net::SocketAddr, std::net::SocketAddr) {
    let (http, admin) = (free_port(), free_port());
    let process = start_binary(&format!(
        "[listen]\nhttp = \"127.0.0.1:{http}\"\nadmin = \"127.0.0.1:{admin}\"\n\
         [server]\nworkers = 1\n{server_extra}\n{routes}"
    ))
    .await;
    wait_for_port(http).await;
    let addr = |port: u16| std::net::SocketAddr::from(([127, 0, 0, 1], port));
    (process, addr(http), addr(admin))
}
