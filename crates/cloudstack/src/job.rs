//! Async jobs: what `queryAsyncJobResult` answers, and when to ask again.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, JobError};
use crate::lenient;
use crate::response::as_u64;

/// One answer of `queryAsyncJobResult`.
#[derive(Debug, Clone, Deserialize)]
pub struct AsyncJob {
    /// Empty when a (hand-edited or very old) answer leaves it out.
    #[serde(default, deserialize_with = "lenient::string")]
    pub jobid: String,
    /// 0 pending, 1 succeeded, 2 failed.
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub jobstatus: Option<u64>,
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub jobprocstatus: Option<u64>,
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub jobresultcode: Option<u64>,
    /// `object`, or `text` on very old servers.
    #[serde(default)]
    pub jobresulttype: Option<String>,
    #[serde(default)]
    pub jobresult: Option<Value>,
    /// The Java command class, e.g. `...DeployVMCmdByAdmin`.
    #[serde(default)]
    pub cmd: Option<String>,
    #[serde(default)]
    pub jobinstancetype: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub jobinstanceid: Option<String>,
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub completed: Option<String>,
}

/// How a job ended, or that it has not yet.
#[derive(Debug, Clone, PartialEq)]
pub enum JobState {
    Pending,
    /// The `jobresult` as sent (e.g. `{"virtualmachine": {...}}`).
    Succeeded(Value),
}

impl AsyncJob {
    /// The state, or the job's failure as a typed error naming `command`.
    pub fn state(&self, command: &str) -> Result<JobState, Error> {
        match self.jobstatus.unwrap_or(0) {
            0 => Ok(JobState::Pending),
            1 => Ok(JobState::Succeeded(
                self.jobresult
                    .clone()
                    .unwrap_or(Value::Object(Default::default())),
            )),
            _ => Err(Error::Job(self.failure(command))),
        }
    }

    fn failure(&self, command: &str) -> JobError {
        let (errorcode, cserrorcode, errortext) = match &self.jobresult {
            // The legacy `jobresulttype: "text"` form.
            Some(Value::String(text)) => (None, None, text.clone()),
            Some(obj @ Value::Object(_)) => (
                obj.get("errorcode").and_then(as_u64).map(|c| c as u16),
                obj.get("cserrorcode").and_then(as_u64).map(|c| c as u32),
                obj.get("errortext")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| "the job failed without an error text".into()),
            ),
            _ => (None, None, "the job failed without an error text".into()),
        };
        JobError {
            command: command.to_string(),
            jobid: self.jobid.clone(),
            errorcode,
            cserrorcode,
            errortext,
        }
    }
}

/// The job id of a first answer (`{"jobid": ..., "id": ...}`), if the
/// command was asynchronous.
pub fn jobid_of(response: &Value) -> Option<String> {
    match response.get("jobid")? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// How often and how long to poll a job.
#[derive(Debug, Clone)]
pub struct JobPollPolicy {
    /// The first wait; jobs such as tagging finish in well under a second.
    pub initial: Duration,
    pub factor: f64,
    /// The longest wait between two polls.
    pub max: Duration,
    /// Give up after this long (the job may still finish on the server).
    pub timeout: Duration,
}

impl Default for JobPollPolicy {
    fn default() -> Self {
        JobPollPolicy {
            initial: Duration::from_millis(200),
            factor: 1.5,
            max: Duration::from_secs(2),
            timeout: Duration::from_secs(30 * 60),
        }
    }
}

impl JobPollPolicy {
    /// The wait before poll number `n` (0-based).
    pub fn delay(&self, n: u32) -> Duration {
        let scaled = self.initial.as_secs_f64() * self.factor.powi(n.min(64) as i32);
        Duration::from_secs_f64(scaled.min(self.max.as_secs_f64()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(json: &str) -> AsyncJob {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn failed_job_carries_code_and_text() {
        let j = job(
            r#"{"jobid":"j","jobstatus":2,"jobresultcode":530,"jobresulttype":"object","jobresult":{"errorcode":533,"errortext":"Insufficient capacity"}}"#,
        );
        match j.state("deployVirtualMachine") {
            Err(Error::Job(e)) => {
                assert_eq!(e.errorcode, Some(533));
                assert_eq!(e.errortext, "Insufficient capacity");
                assert_eq!(e.jobid, "j");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn legacy_text_result_is_the_error_text() {
        let j = job(
            r#"{"jobid":7,"jobstatus":2,"jobresulttype":"text","jobresult":"Failed to start VM"}"#,
        );
        match j.state("startVirtualMachine") {
            Err(Error::Job(e)) => assert_eq!(e.errortext, "Failed to start VM"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn poll_delay_grows_to_the_cap() {
        let p = JobPollPolicy::default();
        assert_eq!(p.delay(0), Duration::from_millis(200));
        assert!(p.delay(1) > p.delay(0));
        assert_eq!(p.delay(40), Duration::from_secs(2));
    }
}
