//! The one way box makes a CloudStack client, for `box api` and the
//! CloudStack provider alike: pick the profile, read its credentials (with
//! the same warnings and `hint:` for both), warn when TLS verification is
//! off, and log every call at `-vv` through the Printer.
//!
//! The client redacts the API key, the signature and the user data in what
//! it reports, so the log line prints parameters as they arrive.

use std::time::Duration;

use cloudstack::{CallRecord, Client, ClientConfig};

use crate::config::{self, ConfigError, Paths};
use crate::error::Hinted;
use crate::output::{Level, Printer};

/// The profile in force: the one asked for (`--profile`, `BOX_PROFILE`),
/// else the Boxfile's, else `default`.
pub fn profile(asked: Option<String>, boxfile: Option<String>) -> String {
    asked
        .filter(|p| !p.is_empty())
        .or(boxfile)
        .unwrap_or_else(|| "default".to_string())
}

/// The client configuration of `profile`, its warnings printed; an error
/// says how to give credentials.
pub fn client_config(
    printer: &Printer,
    paths: &Paths,
    profile: &str,
) -> anyhow::Result<ClientConfig> {
    let mut warnings = Vec::new();
    let creds = config::credentials(paths, profile, &mut warnings);
    for w in &warnings {
        printer.warn(w);
    }
    let creds = creds.map_err(|e| credentials_error(e, paths, profile))?;
    if creds.insecure {
        printer.warn(&format!(
            "TLS certificate verification is off for profile `{profile}` (insecure = true)"
        ));
    }
    Ok(creds.client_config())
}

/// A client for `config` that logs its calls at `-vv`.
pub fn build(printer: &Printer, config: ClientConfig) -> anyhow::Result<Client> {
    let client = Client::new(config).map_err(client_error)?;
    Ok(if printer.level() >= Level::Debug {
        let printer = printer.clone();
        client.with_observer(move |r: &CallRecord| printer.debug(&describe_call(r)))
    } else {
        client
    })
}

/// [`client_config`] then [`build`]: the client of `profile`.
pub fn connect(printer: &Printer, paths: &Paths, profile: &str) -> anyhow::Result<Client> {
    build(printer, client_config(printer, paths, profile)?)
}

fn credentials_error(e: ConfigError, paths: &Paths, profile: &str) -> anyhow::Error {
    let hint = match e {
        ConfigError::NoCredentials { .. } | ConfigError::Incomplete { .. } => format!(
            "set CLOUDSTACK_API_URL, CLOUDSTACK_API_KEY and CLOUDSTACK_SECRET_KEY, or add [profiles.{profile}] with endpoint, api_key and secret_key to {}",
            paths.config_file.display()
        ),
        ConfigError::InvalidSetting { .. } => {
            "unset the variable, or fix the key in the configuration file".to_string()
        }
        _ => "fix the configuration file named above".to_string(),
    };
    anyhow::Error::new(Hinted::new(with_causes(&e), hint))
}

/// A client error with its hint where the printer finds it, and the cause
/// chain (e.g. "connection refused") kept in the message.
pub fn client_error(e: cloudstack::Error) -> anyhow::Error {
    match e.hint() {
        Some(hint) => Hinted::new(with_causes(&e), hint).into(),
        None => anyhow::Error::new(e),
    }
}

/// The error's message followed by those of its causes it does not
/// already contain.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

/// The `-vv` log line of one API call. Parameters arrive redacted.
fn describe_call(r: &CallRecord) -> String {
    let params: Vec<String> = r
        .params
        .iter()
        .filter(|(n, _)| !matches!(n.as_str(), "command" | "response"))
        .map(|(n, v)| format!("{n}={v}"))
        .collect();
    let status = r
        .status
        .map(|s| s.to_string())
        .unwrap_or_else(|| "no answer".into());
    let retry = if r.attempt > 1 {
        format!(" (attempt {})", r.attempt)
    } else {
        String::new()
    };
    format!(
        "api: {} {} {} -> {} in {}{}",
        r.method,
        r.command,
        params.join(" "),
        status,
        format_latency(r.latency),
        retry
    )
}

fn format_latency(d: Duration) -> String {
    if d < Duration::from_millis(10) {
        format!("{:.1} ms", d.as_secs_f64() * 1000.0)
    } else {
        format!("{} ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_log_line_shows_method_status_and_latency() {
        let r = CallRecord {
            command: "listZones".into(),
            method: "GET",
            params: vec![
                ("apiKey".into(), "<redacted>".into()),
                ("command".into(), "listZones".into()),
                ("available".into(), "true".into()),
            ],
            status: Some(200),
            latency: Duration::from_millis(42),
            attempt: 2,
        };
        assert_eq!(
            describe_call(&r),
            "api: GET listZones apiKey=<redacted> available=true -> 200 in 42 ms (attempt 2)"
        );
    }

    #[test]
    fn profile_asked_for_wins_over_the_boxfile_then_default() {
        assert_eq!(profile(Some("a".into()), Some("b".into())), "a");
        assert_eq!(profile(Some(String::new()), Some("b".into())), "b");
        assert_eq!(profile(None, None), "default");
    }
}
