//! Where an endpoint came from: the config file or one of the registration sources.

use std::fmt;

/// A source of routes. Each registered endpoint remembers the source that last wrote it
/// (`/routes` shows it; the registry suspends expiry per source while it is disconnected).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// A `[[route]]` entry of the config file.
    Config,
    /// `POST /routes/register` on the admin API (or the embedding program).
    Admin,
    /// A `router.register` message over NATS.
    Nats,
    /// A key under the etcd prefix.
    Etcd,
}

impl Source {
    /// Every source, in a fixed order (for per-source tables and metrics).
    pub const ALL: [Source; 4] = [Source::Config, Source::Admin, Source::Nats, Source::Etcd];

    /// The source's name in logs, metrics and `/routes`.
    pub fn name(self) -> &'static str {
        match self {
            Source::Config => "config",
            Source::Admin => "admin",
            Source::Nats => "nats",
            Source::Etcd => "etcd",
        }
    }

    /// The source's place in [`Source::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
