//! Integration tests: real backends, the real router and real clients on loopback.

mod support;

mod access_log;
mod admin;
mod apps;
mod balancers;
mod cli;
mod conformance;
mod faulty;
mod fleet;
mod h2_conformance;
mod hostile;
mod http1_server;
mod http2_server;
mod limits;
mod process;
mod protocols;
mod raw_h2;
mod recovery;
mod registry;
mod resilience;
mod route_services;
mod routing;
mod shared_servers;
mod status_page;
mod tls;
