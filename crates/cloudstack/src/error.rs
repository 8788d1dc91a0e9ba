//! The client's typed errors, each with a next step a user can act on.
//!
//! Nothing here holds a request's parameters, URL or signature: errors end
//! up in terminals and logs, and the signature is a replayable credential
//! until it expires.

use std::time::Duration;

/// An error answered by the CloudStack API itself (`errorcode` in the body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub command: String,
    /// The HTTP status; CloudStack makes it equal to `errorcode`.
    pub status: u16,
    pub errorcode: u16,
    pub cserrorcode: Option<u32>,
    pub errortext: String,
    /// Whether the request carried `expires` (so a 401 may be clock skew).
    pub expires_used: bool,
}

/// A failed async job (`jobstatus` 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobError {
    pub command: String,
    pub jobid: String,
    pub errorcode: Option<u16>,
    pub cserrorcode: Option<u32>,
    pub errortext: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("CloudStack refused `{}` ({}): {}", .0.command, .0.errorcode, .0.errortext)]
    Api(ApiError),

    #[error("CloudStack job {} of `{}` failed{}: {}", .0.jobid, .0.command,
        .0.errorcode.map(|c| format!(" ({c})")).unwrap_or_default(), .0.errortext)]
    Job(JobError),

    /// Names the configured limit, not the time measured: the poll that
    /// notices may come a little late on a loaded machine.
    #[error("CloudStack job {jobid} of `{command}` did not finish within {}s", limit.as_secs())]
    JobTimeout {
        command: String,
        jobid: String,
        limit: Duration,
    },

    /// The request never got a whole HTTP answer (connection, TLS, timeout).
    #[error("{}", transport_message(command, source, *timeout))]
    Transport {
        command: String,
        /// Stripped of its URL: the URL of a GET carries the signature.
        #[source]
        source: reqwest::Error,
        /// The client's timeout for one request, to say how long it waited.
        timeout: Duration,
    },

    /// An answer larger than the client reads (a runaway or hostile server).
    #[error("the answer to `{command}` is over the limit of {}{}", size(*limit),
        announced.map(|n| format!(" (the server announced {})", size(n))).unwrap_or_default())]
    TooLarge {
        command: String,
        limit: u64,
        /// The size in the answer's Content-Length, when it gave one.
        announced: Option<u64>,
    },

    /// An HTTP answer that is not a CloudStack API body (a proxy page, a 404).
    #[error("the endpoint answered `{command}` with HTTP {status} and no CloudStack response: {excerpt}")]
    Http {
        command: String,
        status: u16,
        excerpt: String,
    },

    /// A CloudStack body box cannot read as the expected shape.
    #[error("unexpected CloudStack response to `{command}`: {message}")]
    Parse { command: String, message: String },

    /// A request that would be wrong to send (duplicate or reserved parameter).
    #[error("invalid request: {0}")]
    Request(String),

    #[error("invalid client configuration: {0}")]
    Config(String),
}

impl Error {
    /// What the user can do about it, when there is something specific.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Api(e) => api_hint(e),
            Error::Job(e) => e.errorcode.and_then(|code| {
                code_hint(code, &e.command, &e.errortext)
            }),
            Error::JobTimeout { jobid, .. } => Some(format!(
                "the job may still finish; check it with `box api queryAsyncJobResult jobid={jobid}`; `job_timeout_secs` in the profile or BOX_CLOUDSTACK_JOB_TIMEOUT sets the wait"
            )),
            Error::Transport { source, .. } if source.is_timeout() => Some(
                "check the endpoint; if the cloud is just slow, raise `timeout_secs` in the profile or BOX_CLOUDSTACK_TIMEOUT (seconds)".into(),
            ),
            Error::TooLarge { command, .. } => {
                let mut hint = "if the answer is meant to be this large, raise `max_response_mb` in the profile or BOX_CLOUDSTACK_MAX_RESPONSE_MB".to_string();
                if command.starts_with("list") {
                    hint.push_str("; a list can also be read one page at a time (`page=1 pagesize=500`)");
                }
                Some(hint)
            }
            Error::Transport { .. } => Some(
                "check the endpoint URL of the profile and that the cloud is reachable; for a private CA set `ca_file`".into(),
            ),
            Error::Http { status: 404, .. } => Some(
                "the endpoint URL usually ends in /client/api".into(),
            ),
            Error::Http { status, .. } if (500..600).contains(status) => Some(
                "the cloud's API server is failing; try again later, or ask the cloud's administrators".into(),
            ),
            _ => None,
        }
    }

    /// The CloudStack error code, if the API or a job gave one.
    pub fn errorcode(&self) -> Option<u16> {
        match self {
            Error::Api(e) => Some(e.errorcode),
            Error::Job(e) => e.errorcode,
            _ => None,
        }
    }

    /// Whether a read may be sent again after this error. Not after a
    /// timeout: that request already took the whole time the user allows.
    /// The cloud's API throttling (429) refused the request before acting
    /// on it, so even a write may be sent again.
    pub fn is_throttled(&self) -> bool {
        match self {
            Error::Api(e) => e.status == 429 || e.errorcode == 429,
            Error::Http { status, .. } => *status == 429,
            _ => false,
        }
    }

    pub(crate) fn is_retryable_read(&self) -> bool {
        match self {
            Error::Transport { source, .. } => !source.is_timeout(),
            Error::Api(e) => retryable_status(e.status),
            Error::Http { status, .. } => retryable_status(*status),
            _ => false,
        }
    }
}

fn transport_message(command: &str, source: &reqwest::Error, timeout: Duration) -> String {
    if source.is_timeout() {
        format!(
            "the CloudStack API did not answer `{command}` within {}",
            seconds(timeout)
        )
    } else {
        format!("cannot reach the CloudStack API for `{command}`")
    }
}

fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// A size as the setting is given (MB), or in bytes below one MB.
fn size(bytes: u64) -> String {
    const MB: u64 = 1024 * 1024;
    if bytes.is_multiple_of(MB) {
        format!("{} MB", bytes / MB)
    } else if bytes > MB {
        format!("{:.1} MB", bytes as f64 / MB as f64)
    } else {
        format!("{bytes} bytes")
    }
}

/// 429 and 5xx, except CloudStack's 531-537: those say something about the
/// account or the cloud (limits, capacity, conflicts) that a retry a second
/// later will not change.
pub fn retryable_status(status: u16) -> bool {
    status == 429 || (500..600).contains(&status) && !(531..=537).contains(&status)
}

fn api_hint(e: &ApiError) -> Option<String> {
    if e.errorcode == 401 || e.status == 401 {
        let mut hint = "check the API key and secret key of the profile".to_string();
        if e.expires_used {
            hint.push_str(
                "; if they are right, this machine's clock may be off (signed requests expire): compare `date -u` with the cloud's time",
            );
        }
        return Some(hint);
    }
    code_hint(e.errorcode, &e.command, &e.errortext)
}

fn code_hint(code: u16, command: &str, errortext: &str) -> Option<String> {
    match code {
        405 => Some(format!("`{command}` was sent with an HTTP method the cloud refuses")),
        429 => Some("the cloud is rate-limiting this account's API calls; wait a minute and retry".into()),
        430 | 431 => Some(match parameter_named_in(errortext) {
            Some(p) => format!(
                "check the value of parameter `{p}`; `box api listApis name={command}` lists the parameters `{command}` accepts"
            ),
            None => format!(
                "a parameter of `{command}` was rejected; `box api listApis name={command}` lists the parameters it accepts"
            ),
        }),
        432 => Some(format!(
            "this cloud does not offer `{command}` to this account (disabled, or not allowed by its role)"
        )),
        531 => Some("the account cannot do this; ask the cloud's administrators about its permissions".into()),
        532 => Some("the account reached a resource limit; free some resources or ask for a higher limit".into()),
        533 => Some("the cloud has no capacity for this now; try another zone or service offering, or retry later".into()),
        534 => Some("a resource needed is unavailable; try another zone or retry later".into()),
        535 => Some("the cloud could not allocate the resources; try another zone or service offering".into()),
        536 => Some("the resource is in use; detach or stop what uses it first".into()),
        537 => Some("a network rule conflicts with an existing one (same port or IP)".into()),
        _ => None,
    }
}

/// Finds the parameter an error text names, e.g. "... missing parameter
/// zoneid" or "Unable to find service offering: 104".
fn parameter_named_in(text: &str) -> Option<String> {
    let lower = text.to_lowercase();
    for marker in ["parameter ", "parameter: ", "param "] {
        if let Some(at) = lower.find(marker) {
            let rest = &text[at + marker.len()..];
            let name: String = rest
                .trim_start_matches(['\'', '"', '`', ' '])
                .chars()
                .take_while(|c| {
                    c.is_ascii_alphanumeric() || *c == '_' || *c == '.' || *c == '[' || *c == ']'
                })
                .collect();
            if !name.is_empty() {
                return Some(name);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16, text: &str, expires_used: bool) -> Error {
        Error::Api(ApiError {
            command: "deployVirtualMachine".into(),
            status: code,
            errorcode: code,
            cserrorcode: Some(4350),
            errortext: text.into(),
            expires_used,
        })
    }

    #[test]
    fn unauthorized_hint_mentions_clock_only_when_expires_was_sent() {
        let with = api(401, "unable to verify user credentials", true)
            .hint()
            .unwrap();
        let without = api(401, "unable to verify user credentials", false)
            .hint()
            .unwrap();
        assert!(with.contains("clock"));
        assert!(!without.contains("clock"));
        assert!(with.contains("secret key"));
    }

    #[test]
    fn parameter_error_hint_names_the_parameter() {
        let e = api(
            431,
            "Unable to execute API command deployvirtualmachine due to missing parameter zoneid",
            false,
        );
        assert!(e.hint().unwrap().contains("`zoneid`"), "{:?}", e.hint());
    }

    #[test]
    fn capacity_codes_have_hints_and_are_not_retried() {
        for code in [533, 534, 535] {
            assert!(api(code, "x", false).hint().unwrap().contains("zone"));
            assert!(!api(code, "x", false).is_retryable_read());
        }
        assert!(api(530, "x", false).is_retryable_read());
        assert!(api(429, "x", false).is_retryable_read());
        assert!(!api(431, "x", false).is_retryable_read());
    }
}
