//! A client for the Apache CloudStack HTTP API.
//!
//! No terminal I/O lives here: callers (the `box` CLI, the simulator's tests)
//! decide what to print. Errors are typed so callers can map them to hints.

pub mod signing;
