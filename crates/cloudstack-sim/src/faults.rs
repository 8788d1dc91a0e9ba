//! Fault injection, for box's reliability tests: slow calls, failing calls
//! and jobs, API-limit answers and dropped connections.

use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::ApiError;

/// `--fail COMMAND:SHARE[:CODE]`: that share of calls to the command fail
/// with the code (default 530).
#[derive(Debug, Clone, PartialEq)]
pub struct FailSpec {
    pub command: String,
    pub share: f64,
    pub code: u16,
}

impl FromStr for FailSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut parts = s.split(':');
        let command = parts
            .next()
            .filter(|c| !c.is_empty())
            .ok_or("expected COMMAND:SHARE[:CODE]")?;
        let share = parse_share(parts.next().ok_or("expected COMMAND:SHARE[:CODE]")?)?;
        let code = match parts.next() {
            None => 530,
            Some(c) => c
                .parse()
                .map_err(|_| format!("`{c}` is not an error code"))?,
        };
        if !(400..=599).contains(&code) {
            return Err(format!("{code} is not an HTTP error code (400-599)"));
        }
        if parts.next().is_some() {
            return Err("expected COMMAND:SHARE[:CODE]".into());
        }
        Ok(FailSpec {
            command: command.to_string(),
            share,
            code,
        })
    }
}

/// A share of calls: `0.25` or `25%`.
pub fn parse_share(s: &str) -> Result<f64, String> {
    let v = match s.strip_suffix('%') {
        Some(p) => p.parse::<f64>().map(|x| x / 100.0),
        None => s.parse::<f64>(),
    }
    .map_err(|_| format!("`{s}` is not a share (0..1 or a percentage)"))?;
    if !(0.0..=1.0).contains(&v) {
        return Err(format!("`{s}` is not between 0 and 1"));
    }
    Ok(v)
}

/// `250ms`, `2s`, `1.5s`, `0`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("`{s}` is not a duration (e.g. 250ms, 2s)");
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else if s == "0" {
        ("0", 1.0)
    } else {
        return Err(bad());
    };
    let v: f64 = num.parse().map_err(|_| bad())?;
    if !(v >= 0.0 && v.is_finite()) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(v * scale))
}

#[derive(Debug)]
pub struct Faults {
    pub latency: Duration,
    pub fail: Vec<FailSpec>,
    pub fail_jobs: f64,
    pub throttle: f64,
    pub drop: f64,
    rng: Mutex<StdRng>,
}

impl Faults {
    pub fn new(
        latency: Duration,
        fail: Vec<FailSpec>,
        fail_jobs: f64,
        throttle: f64,
        drop: f64,
        seed: Option<u64>,
    ) -> Self {
        let rng = match seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => StdRng::from_entropy(),
        };
        Faults {
            latency,
            fail,
            fail_jobs,
            throttle,
            drop,
            rng: Mutex::new(rng),
        }
    }

    pub fn none() -> Self {
        Faults::new(Duration::ZERO, vec![], 0.0, 0.0, 0.0, Some(0))
    }

    fn roll(&self, share: f64) -> bool {
        if share <= 0.0 {
            return false;
        }
        if share >= 1.0 {
            return true;
        }
        match self.rng.lock() {
            Ok(mut r) => r.gen::<f64>() < share,
            Err(_) => false,
        }
    }

    pub fn drop_connection(&self) -> bool {
        self.roll(self.drop)
    }

    pub fn throttled(&self) -> bool {
        self.roll(self.throttle)
    }

    /// The injected error for this call to `command`, if any.
    pub fn call_failure(&self, command: &str) -> Option<ApiError> {
        let spec = self.fail.iter().find(|f| f.command == command)?;
        self.roll(spec.share).then(|| {
            ApiError::new(
                spec.code,
                Some(9999),
                format!(
                    "Injected fault: {command} failed with {} (cloudstack-sim --fail)",
                    spec.code
                ),
            )
        })
    }

    pub fn job_failure(&self, command: &str) -> Option<ApiError> {
        self.roll(self.fail_jobs).then(|| {
            ApiError::internal(format!(
                "Injected fault: the {command} job failed (cloudstack-sim --fail-jobs)"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_specs_parse_with_and_without_a_code() {
        assert_eq!(
            "deployVirtualMachine:0.5:533".parse::<FailSpec>().unwrap(),
            FailSpec {
                command: "deployVirtualMachine".into(),
                share: 0.5,
                code: 533
            }
        );
        assert_eq!("listZones:100%".parse::<FailSpec>().unwrap().code, 530);
        assert!("listZones".parse::<FailSpec>().is_err());
        assert!("listZones:2".parse::<FailSpec>().is_err());
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert!(parse_duration("fast").is_err());
    }

    #[test]
    fn shares_of_zero_and_one_are_exact() {
        let f = Faults::new(
            Duration::ZERO,
            vec!["listZones:1".parse().unwrap()],
            0.0,
            1.0,
            0.0,
            None,
        );
        assert!(f.call_failure("listZones").is_some());
        assert!(f.call_failure("listTemplates").is_none());
        assert!(f.throttled());
        assert!(!f.drop_connection());
    }
}
