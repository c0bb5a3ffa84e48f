//! The route model: routes and their endpoints (`route`), endpoint leases (`lease`), the
//! Maglev table of hash-balanced pools (`maglev`), request hosts (`host`) and the immutable
//! table the request path reads (`table`), and where an endpoint came from (`source`). Route URIs are parsed by the config
//! ([`RouteUri`]); the registry builds tables from its sources.

mod host;
mod lease;
mod maglev;
mod route;
mod route_stats;
mod source;
mod table;

pub use crate::config::{HostPattern, RouteUri};
pub use host::request_host;
pub use lease::Lease;
pub use maglev::Maglev;
pub use route::{
    Endpoint, EndpointSpec, EndpointStats, InstanceHeaders, Pool, Route, RouteOptions, or_address,
};
pub use route_stats::{ResponseCounts, RouteStats, STATUS_CLASSES, SeriesSlots, status_class};
pub use source::Source;
pub use table::{PathRoutes, RouteTable};
