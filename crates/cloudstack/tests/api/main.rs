//! The crate's integration tests: real captured responses, and the client
//! against a mock CloudStack on 127.0.0.1.

mod client;
mod fixtures;
mod hostile;
mod mock;
mod tls;
