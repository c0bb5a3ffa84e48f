//! Real NATS and etcd servers for the fleet tests, on free loopback ports, stopped (by PID)
//! when dropped. `scripts/test.sh` installs Debian's `nats-server`, `etcd-server` and
//! `etcd-client`.

use crate::process::free_port;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn spawn(program: &str, args: &[String]) -> Child {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program} (scripts/test.sh installs it): {e}"))
}

fn stop(child: &mut Option<Child>) {
    if let Some(mut child) = child.take() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Waits until `address` accepts connections.
fn wait_listening(address: SocketAddr, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not start on {address}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `nats-server` process.
pub struct NatsServer {
    pub port: u16,
    options: Vec<String>,
    child: Option<Child>,
}

impl NatsServer {
    /// Starts a server on a free port.
    pub fn start() -> NatsServer {
        Self::start_with(&[])
    }

    /// Starts a server on a free port with extra command-line `options`.
    pub fn start_with(options: &[&str]) -> NatsServer {
        let mut server = NatsServer {
            port: free_port(),
            options: options.iter().map(|o| o.to_string()).collect(),
            child: None,
        };
        server.restart();
        server
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Stops the server (the port stays reserved for [`Self::restart`]).
    pub fn kill(&mut self) {
        stop(&mut self.child);
    }

    /// Starts the server again on the same port.
    pub fn restart(&mut self) {
        stop(&mut self.child);
        let mut args = ["-a", "127.0.0.1", "-p", &self.port.to_string()]
            .map(String::from)
            .to_vec();
        args.extend(self.options.iter().cloned());
        self.child = Some(spawn("nats-server", &args));
        wait_listening(([127, 0, 0, 1], self.port).into(), "nats-server");
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A one-member etcd cluster with its data in a temp folder (kept across restarts).
pub struct EtcdServer {
    pub port: u16,
    peer_port: u16,
    data: PathBuf,
    child: Option<Child>,
}

impl EtcdServer {
    /// Starts a server on free ports.
    pub fn start() -> EtcdServer {
        let mut server = EtcdServer {
            port: free_port(),
            peer_port: free_port(),
            data: crate::support::temp_dir("etcd"),
            child: None,
        };
        server.restart();
        server
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops the server; its data stays.
    pub fn kill(&mut self) {
        stop(&mut self.child);
    }

    /// Starts the server again on the same ports and data.
    pub fn restart(&mut self) {
        stop(&mut self.child);
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let args = [
            "--name",
            "t",
            "--data-dir",
            &self.data.display().to_string(),
            "--listen-client-urls",
            &self.url(),
            "--advertise-client-urls",
            &self.url(),
            "--listen-peer-urls",
            &peer,
            "--initial-advertise-peer-urls",
            &peer,
            "--initial-cluster",
            &format!("t={peer}"),
        ]
        .map(String::from);
        self.child = Some(spawn("etcd", &args));
        wait_listening(([127, 0, 0, 1], self.port).into(), "etcd");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.etcdctl(&["endpoint", "health"]).0 {
            assert!(Instant::now() < deadline, "etcd did not become healthy");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs `etcdctl` against this server: (success, stdout).
    pub fn etcdctl(&self, args: &[&str]) -> (bool, String) {
        let output = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.url()))
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run etcdctl (scripts/test.sh installs it): {e}"));
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    }

    /// `etcdctl lease grant <seconds>`: the lease id.
    pub fn grant(&self, seconds: u64) -> String {
        let (ok, out) = self.etcdctl(&["lease", "grant", &seconds.to_string()]);
        assert!(ok, "lease grant failed: {out}");
        // "lease 694d8b5a1a3b2c04 granted with TTL(5s)"
        out.split_whitespace().nth(1).unwrap().to_string()
    }

    /// `etcdctl put [--lease=<lease>] <key> <value>`.
    pub fn put(&self, key: &str, value: &str, lease: Option<&str>) {
        let lease = lease.map(|id| format!("--lease={id}"));
        let mut args = vec!["put"];
        args.extend(lease.as_deref());
        args.extend([key, value]);
        let (ok, out) = self.etcdctl(&args);
        assert!(ok, "put {key} failed: {out}");
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}
