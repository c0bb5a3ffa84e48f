//! Route lookup: the route model (`route`), route URIs (`uri`), request hosts (`host`) and the
//! immutable table the request path reads (`table`).

mod from_config;
mod host;
mod route;
mod table;
mod uri;

pub use host::request_host;
pub use route::{Endpoint, EndpointStats, InstanceHeaders, Pool, Route};
pub use table::RouteTable;
pub use uri::{HostPattern, RouteUri};
