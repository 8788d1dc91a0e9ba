//! Everything a [`crate::Client`] needs to know, resolved by the caller.

use std::path::PathBuf;
use std::time::Duration;

use crate::job::JobPollPolicy;
use secret::Secret;

/// The largest answer read by default: 128 MiB. A `listVirtualMachines`
/// item is 3-5 KB of JSON, so 10,000 VMs in one unpaged answer are about
/// 50 MB; 128 MiB leaves room for VMs with many NICs and tags, while a
/// never-ending answer still stops well below the 300 MB a `box` command
/// may use in all.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 128 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The API URL, e.g. `https://cloud.example/client/api`.
    pub endpoint: String,
    pub api_key: String,
    pub secret_key: Secret,
    /// For one HTTP request, from connecting to the end of the body: a
    /// total deadline, so a server that sends one byte a second is cut off
    /// too. A request that times out is not retried.
    pub timeout: Duration,
    /// The largest body read; a larger answer is an error, never retried.
    pub max_response_bytes: u64,
    /// How long a signed request stays valid (`expires`, signature version 3).
    pub expires: Duration,
    /// 3 sends `signatureVersion=3` and `expires`; anything else sends neither.
    pub signature_version: u8,
    /// A PEM bundle of extra CA certificates to trust.
    pub ca_file: Option<PathBuf>,
    /// Skip TLS verification. The caller should warn whenever this is set.
    pub insecure: bool,
    pub retry: RetryPolicy,
    pub jobs: JobPollPolicy,
    /// Items per page when listing (CloudStack's default cap is 500).
    pub page_size: u32,
}

impl ClientConfig {
    pub fn new(
        endpoint: impl Into<String>,
        api_key: impl Into<String>,
        secret_key: Secret,
    ) -> Self {
        ClientConfig {
            endpoint: endpoint.into(),
            api_key: api_key.into(),
            secret_key,
            timeout: Duration::from_secs(60),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            expires: Duration::from_secs(600),
            signature_version: 3,
            ca_file: None,
            insecure: false,
            retry: RetryPolicy::default(),
            jobs: JobPollPolicy::default(),
            page_size: 500,
        }
    }
}

/// Retries of idempotent reads (never of state-changing calls).
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; 1 disables retries.
    pub attempts: u32,
    pub base: Duration,
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            base: Duration::from_millis(250),
            max: Duration::from_secs(4),
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff with full jitter before retry `n` (1-based), so
    /// many clients retrying a busy server do not arrive in lockstep.
    pub fn delay(&self, n: u32) -> Duration {
        let cap = self
            .base
            .saturating_mul(1u32 << n.saturating_sub(1).min(16))
            .min(self.max);
        let jitter: f64 = rand::random::<f64>();
        // Half fixed, half random: never zero, never above the cap.
        cap.mul_f64(0.5 + 0.5 * jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_debug_does_not_show_the_secret() {
        let c = ClientConfig::new("http://127.0.0.1:1/client/api", "K", Secret::new("s3cr3t"));
        assert!(!format!("{c:?}").contains("s3cr3t"));
    }

    #[test]
    fn retry_delay_is_bounded_and_grows() {
        let p = RetryPolicy::default();
        for n in 1..20 {
            let d = p.delay(n);
            assert!(d <= p.max && d >= p.base / 2, "{n}: {d:?}");
        }
        assert!(p.delay(3) >= p.base * 2);
    }
}
