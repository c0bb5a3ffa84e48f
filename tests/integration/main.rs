//! Integration tests: real backends, the real router and real clients on loopback.

mod support;

mod conformance;
mod protocols;
mod routing;
