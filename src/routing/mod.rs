//! The route model: routes and their endpoints (`route`), endpoint leases (`lease`), route
//! URIs (`uri`), request hosts (`host`) and the immutable table the request path reads
//! (`table`). The registry (`crate::registry`) builds tables from its sources.

mod host;
mod lease;
mod route;
mod table;
mod uri;

pub use host::request_host;
pub use lease::{Lease, now_ms};
pub use route::{
    Endpoint, EndpointSpec, EndpointStats, InstanceHeaders, Pool, Route, RouteOptions, or_address,
};
pub use table::{PathRoutes, RouteTable};
pub use uri::{HostPattern, RouteUri};
