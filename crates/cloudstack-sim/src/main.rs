//! The `cloudstack-sim` binary: parses the command line and runs the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let options = cloudstack_sim::options::Options::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cloudstack-sim: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(cloudstack_sim::run(options));
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cloudstack-sim: {e:#}");
            ExitCode::FAILURE
        }
    }
}
