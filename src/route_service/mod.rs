//! Route services (gorouter's): a route bound to a route service sends each request there first,
//! signed ([`signature`]), and forwards it to the app when it comes back with a valid
//! signature. This module holds what that needs below the proxy: the signature, its clock, and
//! the route service's address ([`resolve`]).

pub mod clock;
pub mod resolve;
pub mod signature;

pub use resolve::Resolver;
pub use signature::{SignatureError, Signed, Signer};
