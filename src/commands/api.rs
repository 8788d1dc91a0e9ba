//! `box api COMMAND [key=value ...]`: a raw, signed CloudStack call, like
//! CloudMonkey's, for debugging a cloud with the same client box uses.
//!
//! Lists are fetched across all pages unless `page=` is given; async jobs
//! are waited for unless `--no-wait`. `--dry-run` prints the string to sign
//! and the signed URL without sending anything. `BOX_SIGNATURE_VERSION=2`
//! signs without `signatureVersion`/`expires`, as very old clouds (and the
//! published signing vectors) expect.

use std::io::Write;

use anyhow::Context as _;
use cloudstack::Params;

use crate::boxfile;
use crate::cloud_client::{self, client_error};
use crate::error::{ExitStatus, Hinted};
use crate::output::Printer;
use crate::project;

use super::Settings;

pub(crate) async fn run(g: &Settings, args: crate::cli::ApiArgs) -> anyhow::Result<ExitStatus> {
    let params = parse_params(&args.params)?;
    let asked = args.profile.or_else(|| g.profile.clone());
    let profile = cloud_client::profile(asked, boxfile_profile(g));
    let mut cfg = cloud_client::client_config(&g.printer, &g.paths, &profile)?;
    cfg.signature_version = signature_version()?;
    let client = cloud_client::build(&g.printer, cfg)?;

    if args.dry_run {
        let dry = client
            .dry_run(&args.command, &params)
            .map_err(client_error)?;
        g.printer
            .data(&format!("string to sign: {}", dry.string_to_sign));
        g.printer.data(&format!("{} {}", dry.method, dry.url));
        return Ok(ExitStatus::Success);
    }

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
fn boxfile_profile(g: &Settings) -> Option<String> {
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
}
