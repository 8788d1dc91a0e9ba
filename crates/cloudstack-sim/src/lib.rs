//! cloudstack-sim: an Apache CloudStack API server on loopback, strict
//! enough that a client which works against it works against a real cloud.
//!
//! Everything lives in this library so tests and benchmarks can start a
//! simulator in-process; the binary only parses the command line.

pub mod api;
pub mod auth;
pub mod backing;
pub mod clock;
pub mod error;
pub mod faults;
pub mod ids;
pub mod jobs;
pub mod model;
pub mod options;
pub mod params;
pub mod seed;
pub mod server;
pub mod store;
pub mod tenancy;
pub mod upload;

use std::io::Write;

pub use server::{Bound, Config, ServerError};

/// Runs the simulator the command line describes until SIGINT or SIGTERM.
pub async fn run(options: options::Options) -> anyhow::Result<()> {
    use anyhow::Context;

    let secret = options.secret()?;
    api::keypair::accept_only(&options.keypair_types);
    seed::use_address_octet(options.address_octet);
    if options.secret_key.is_some() {
        eprintln!(
            "cloudstack-sim: warning: --secret-key is visible to every user in the process list; use --secret-key-file or CLOUDSTACK_SIM_SECRET_KEY"
        );
    }
    let backing = match options.backing {
        options::Backing::None => None,
        options::Backing::Qemu => {
            let Some(boxes) = &options.boxes_dir else {
                anyhow::bail!("--backing qemu needs --boxes-dir DIR (or BOX_BOXES_DIR): the box store holding the templates' boxes");
            };
            let b = backing::QemuBacking::new(boxes, options.state.as_deref())?;
            Some(std::sync::Arc::new(b))
        }
    };
    let config = Config {
        listen: options.listen,
        credentials: auth::Credentials::new(options.api_key.clone(), secret),
        state_dir: options.state.clone(),
        job_duration: options.job_duration,
        faults: faults::Faults::new(
            options.latency,
            options.fail.clone(),
            options.fail_jobs,
            options.throttle,
            options.drop,
            options.seed,
        ),
        verbose: options.verbose,
        backing,
        layout: options.layout(),
        vpcs: options.vpcs.clone(),
        upload_ttl: options.upload_ttl,
    };
    let bound = Bound::new(config).await?;
    // Handlers go in before the line is printed: whoever reads it may
    // signal at once, and the default action would kill us uncleanly.
    let shutdown = shutdown_signal()?;
    let addr = bound
        .local_addr()
        .context("cannot read the listening address")?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on http://{addr}/client/api").context("cannot write to stdout")?;
    out.flush().context("cannot write to stdout")?;
    drop(out);
    bound.serve(shutdown).await?;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM; the handlers are installed on return.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use anyhow::Context;
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    })
}
