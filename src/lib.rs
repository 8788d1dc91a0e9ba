//! box: reproducible development machines from one `Boxfile`, on the local
//! QEMU provider or an Apache CloudStack cloud.
//!
//! The binary is a thin shim over [`run`]; everything lives in this library
//! so that tests can reach it.

pub mod boxes;
pub mod boxfile;
pub mod cli;
pub mod clock;
pub mod cloud_client;
pub mod commands;
pub mod complete;
pub mod config;
pub mod error;
pub mod fsutil;
pub mod guest_clock;
pub mod idle;
pub mod index;
pub mod keys;
pub mod lock;
pub mod lockfile;
pub mod output;
pub mod project;
pub mod provider;
pub mod provision;
pub mod share;
pub mod ssh;
pub mod state;
pub mod suggest;
pub mod sync;
pub mod templates;
pub mod triggers;
pub mod trust;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

/// Parses the arguments, runs the command and turns the outcome into the
/// documented exit code (see `error::ExitStatus`).
pub fn run<I: IntoIterator<Item = OsString>>(args: I) -> ExitCode {
    let args: Vec<OsString> = args.into_iter().collect();
    if let Some(code) = complete::respond(&args) {
        return code;
    }
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout and usage errors to stderr itself.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(error::ExitStatus::Usage as u8)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let printer = output::Printer::from_cli(&cli);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            printer.error(&anyhow::Error::new(e).context("cannot start the async runtime"));
            return ExitCode::from(error::ExitStatus::Failure as u8);
        }
    };
    let result = runtime.block_on(commands::dispatch(cli, printer.clone()));
    // A stray request or blocked SSH read must not keep the process alive.
    runtime.shutdown_background();
    match result {
        Ok(status) => ExitCode::from(status as u8),
        Err(e) => {
            if let Some(remote) = e.downcast_ref::<error::RemoteExit>() {
                return ExitCode::from(remote.0);
            }
            printer.error(&e);
            ExitCode::from(error::exit_status_of(&e) as u8)
        }
    }
}
