//! `box api COMMAND [key=value ...]`: a raw, signed CloudStack call, like
//! CloudMonkey's, for debugging a cloud with the same client box uses.
//!
//! Lists are fetched across all pages unless `page=` is given; async jobs
//! are waited for unless `--no-wait`. `--dry-run` prints the string to sign
//! and the signed URL without sending anything. `BOX_SIGNATURE_VERSION=2`
//! signs without `signatureVersion`/`expires`, as very old clouds (and the
//! published signing vectors) expect.

use std::io::Write;
use std::time::Duration;

use anyhow::Context as _;
use cloudstack::{CallRecord, Client, Params};

use crate::boxfile;
use crate::config::{self, Paths};
use crate::error::{ExitStatus, Hinted};
use crate::output::{Level, Printer};
use crate::project;

use super::Globals;

pub(crate) async fn run(g: &Globals, args: crate::cli::ApiArgs) -> anyhow::Result<ExitStatus> {
    let params = parse_params(&args.params)?;
    let profile = match args.profile {
        Some(p) => p,
        None => boxfile_profile(g).unwrap_or_else(|| "default".to_string()),
    };
    let mut warnings = Vec::new();
    let creds = config::credentials(&Paths::from_env(), &profile, &mut warnings);
    for w in &warnings {
        g.printer.warn(w);
    }
    let creds = creds.map_err(|e| {
        let hint = match e {
            config::ConfigError::NoCredentials { .. } | config::ConfigError::Incomplete { .. } => {
                format!(
                    "set CLOUDSTACK_API_URL, CLOUDSTACK_API_KEY and CLOUDSTACK_SECRET_KEY, or add [profiles.{profile}] with endpoint, api_key and secret_key to {}",
                    Paths::from_env().config_file.display()
                )
            }
            config::ConfigError::InvalidSetting { .. } => {
                "unset the variable, or fix the key in the configuration file".to_string()
            }
            _ => "fix the configuration file named above".to_string(),
        };
        anyhow::Error::new(Hinted::new(e.to_string(), hint))
    })?;
    if creds.insecure {
        g.printer.warn(&format!(
            "TLS certificate verification is off for profile `{profile}` (insecure = true)"
        ));
    }
    let mut cfg = creds.client_config();
    cfg.signature_version = signature_version()?;
    let client = Client::new(cfg).map_err(client_error)?;

    if args.dry_run {
        let dry = client
            .dry_run(&args.command, &params)
            .map_err(client_error)?;
        g.printer
            .data(&format!("string to sign: {}", dry.string_to_sign));
        g.printer.data(&format!("{} {}", dry.method, dry.url));
        return Ok(ExitStatus::Success);
    }

    let client = if g.printer.level() >= Level::Debug {
        client.with_observer(observer(&g.printer))
    } else {
        client
    };
    let answer = client
        .call_raw(&args.command, &params, !args.no_wait)
        .await
        .map_err(client_error)?;
    // Written as it is formatted: a large list is never a second time in memory as text.
    let mut out = DataWriter::new(&g.printer);
    serde_json::to_writer_pretty(&mut out, &answer).context("cannot format the response")?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(ExitStatus::Success)
}

/// Data on stdout through the Printer, in blocks.
struct DataWriter<'a> {
    printer: &'a Printer,
    buf: Vec<u8>,
}

impl<'a> DataWriter<'a> {
    const BLOCK: usize = 64 * 1024;

    fn new(printer: &'a Printer) -> Self {
        DataWriter {
            printer,
            buf: Vec::with_capacity(Self::BLOCK),
        }
    }
}

impl Write for DataWriter<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= Self::BLOCK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            self.printer.data_bytes(&self.buf);
            self.buf.clear();
        }
        Ok(())
    }
}

/// `key=value` arguments, split at the first `=` (values may contain `=`).
fn parse_params(raw: &[String]) -> anyhow::Result<Params> {
    let mut params = Params::new();
    for arg in raw {
        let Some((name, value)) = arg.split_once('=') else {
            return Err(Hinted::new(
                format!("`{arg}` is not a parameter"),
                "write parameters as key=value, e.g. `box api listZones available=true`",
            )
            .into());
        };
        if name.is_empty() {
            return Err(Hinted::new(
                format!("`{arg}` has no parameter name"),
                "write parameters as key=value",
            )
            .into());
        }
        params.push(name, value);
    }
    Ok(params)
}

/// The Boxfile's `[cloudstack] profile`, when a valid Boxfile is found.
fn boxfile_profile(g: &Globals) -> Option<String> {
    let root = project::find_root(&g.cwd)?;
    match boxfile::load(&root) {
        Ok(project) => project.cloudstack.profile.clone(),
        Err(_) => {
            // A raw call should still work in a project whose Boxfile is broken.
            g.printer.warn(
                "the Boxfile is invalid, so its CloudStack profile is ignored; using `default` (see `box validate`)",
            );
            None
        }
    }
}

fn signature_version() -> anyhow::Result<u8> {
    match std::env::var("BOX_SIGNATURE_VERSION") {
        Err(_) => Ok(3),
        Ok(v) => match v.trim() {
            "" | "3" => Ok(3),
            "2" => Ok(2),
            other => Err(Hinted::new(
                format!("BOX_SIGNATURE_VERSION is `{other}`"),
                "use 3 (the default, with expiring requests) or 2 (no expiry, for very old clouds)",
            )
            .into()),
        },
    }
}

/// The `-vv` log line of one API call. Parameters arrive redacted.
pub(crate) fn observer(printer: &Printer) -> impl Fn(&CallRecord) + Send + Sync + 'static {
    let printer = printer.clone();
    move |r: &CallRecord| printer.debug(&describe_call(r))
}

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

/// A client error with its hint where the printer finds it, and the cause
/// chain (e.g. "connection refused") kept in the message.
pub(crate) fn client_error(e: cloudstack::Error) -> anyhow::Error {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    match e.hint() {
        Some(hint) => Hinted::new(message, hint).into(),
        None => anyhow::Error::new(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_split_at_the_first_equals_sign() {
        let p = parse_params(&["userdata=YQ==".into(), "name=web".into()]).unwrap();
        assert_eq!(p.get("userdata"), Some("YQ=="));
        assert_eq!(p.get("name"), Some("web"));
        assert!(parse_params(&["novalue".into()]).is_err());
        assert!(parse_params(&["=x".into()]).is_err());
    }

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
}
