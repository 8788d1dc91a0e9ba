//! A client for the Apache CloudStack HTTP API.
//!
//! No terminal I/O lives here: callers (the `box` CLI, the simulator's tests)
//! decide what to print. Errors are typed so callers can map them to hints.
//!
//! ```no_run
//! # async fn demo() -> Result<(), cloudstack::Error> {
//! use cloudstack::{Client, ClientConfig, Params, Secret};
//! let client = Client::new(ClientConfig::new(
//!     "https://cloud.invalid/client/api",
//!     "API-KEY",
//!     Secret::new("SECRET"),
//! ))?;
//! let zones = client.list_zones(&Params::new()).await?;
//! # Ok(()) }
//! ```

pub mod client;
mod commands;
pub mod config;
pub mod error;
pub mod job;
pub mod lenient;
pub mod params;
mod poller;
pub mod raw;
pub mod response;
pub mod signing;
mod throttle;
pub mod types;
pub mod upload;

pub use client::{is_read, CallRecord, Client, DryRun, Observer};
pub use config::{ClientConfig, RetryPolicy, DEFAULT_MAX_RESPONSE_BYTES};
pub use error::{ApiError, Error, JobError};
pub use job::{AsyncJob, JobPollPolicy, JobState};
pub use params::Params;
pub use raw::RawAnswer;
pub use secret::Secret;
pub use types::*;
pub use upload::{UploadError, UploadParams};
