//! switchyard: an HTTP reverse proxy and load balancer.
//!
//! The request path, in the order a request meets it:
//! [`server`] (accept, TLS, HTTP/1.1 (hand-written for plain requests, hyper for the rest) +
//! HTTP/2 (hand-written)) -> [`proxy`] (request id, hop-by-hop and forwarding headers, route lookup, round trip
//! with retries, response) -> [`balance`] (endpoint choice, skipping unhealthy endpoints) ->
//! [`upstream`] (pooled backend connections, the hand-written HTTP/1.1 client) -> [`body`]
//! (streaming). [`http1`] holds the wire helpers both hand-written HTTP/1.1 sides share,
//! [`http2`] the HTTP/2 server's (frames, HPACK);
//! [`memory`] the allocator glue, [`target`] what names a backend. The route model lives in [`routing`]; the [`registry`] feeds it
//! (config file, admin API, expiry); [`health`] tracks endpoints; [`config`] reads the TOML
//! file; [`router`] ties it together.
//!
//! Embedding: build a [`config::Config`] (for example with [`config::Config::from_toml`]) and
//! call [`RunningRouter::start`], or [`RunningRouter::builder`] to plug in your own
//! [`registry::Registry`] or [`proxy::RouteExtractor`].

pub mod admin;
pub mod balance;
pub mod body;
pub mod cli;
pub mod config;
pub mod demo;
pub mod health;
pub mod http1;
pub mod http2;
pub mod lifecycle;
pub mod logging;
pub mod memory;
pub mod metrics;
pub mod proxy;
pub mod registry;
pub mod route_service;
pub mod router;
pub mod routing;
pub mod server;
pub mod target;
pub mod tls;
pub mod upstream;

pub use router::{RunningRouter, StartError};
