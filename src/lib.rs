//! switchyard: an HTTP reverse proxy and load balancer.
//!
//! The request path, in the order a request meets it: [`server`] (accept, TLS, HTTP/1.1
//! (hand-written for plain requests, hyper for the rest) + HTTP/2 (hand-written)) -> [`proxy`]
//! (one stage per file on a per-request context: trace context, request rules, instance
//! routing, route lookup, route services, sticky sessions, headers, round trip with retries,
//! response) -> [`balance`] (endpoint choice) -> [`upstream`] (pooled backend connections, the
//! hand-written HTTP/1.1 client).
//!
//! Modules depend one way, from the bottom up:
//! - helpers: [`clock`], [`config`] (the TOML file and the values it names: durations, route
//!   URIs, hash keys), [`target`] (what names a backend), [`tls`], [`deadline`],
//!   [`conn_state`], [`lifecycle`], [`log_limit`], [`runtime_thread`], [`memory`], [`http1`] and [`http2`] (wire helpers),
//!   [`route_service`] (signatures), [`body`];
//! - [`health`] (per-backend state and pure decisions) -> [`routing`] (the route model and
//!   table) -> [`access_log`] -> [`balance`] -> [`registry`] (sources feeding the table) -> [`metrics`] ->
//!   [`upstream`] -> [`checker`] (active health checks), [`proxy`] -> [`server`] -> [`admin`],
//!   [`router`] (ties it together).
//!
//! [`body`] is a helper too: the one body type that crosses the layers (client bodies into the
//! upstream client, backend bodies out through the server) holds the others' streamed bodies as
//! trait objects, so it names neither.
//!
//! Embedding: build a [`config::Config`] (for example with [`config::Config::from_toml`]) and
//! call [`RunningRouter::start`], or [`RunningRouter::builder`] to plug in your own
//! [`registry::Registry`] or [`proxy::RouteExtractor`].

pub mod access_log;
pub mod admin;
pub mod balance;
pub mod body;
pub mod checker;
pub mod cli;
pub mod clock;
pub mod config;
pub mod conn_state;
pub mod deadline;
pub mod demo;
pub mod health;
pub mod histogram;
pub mod http1;
pub mod http2;
pub mod lifecycle;
pub mod log_limit;
pub mod logging;
pub mod memory;
pub mod metrics;
pub mod proxy;
pub mod registry;
pub mod route_service;
pub mod router;
pub mod routing;
pub mod runtime_thread;
pub mod server;
pub mod target;
pub mod tls;
pub mod upstream;

pub use router::{RunningRouter, StartError};
