//! One module per verb. `dispatch` routes the parsed command line.

mod ansible_inventory;
mod api;
mod boxes;
mod completions;
mod copy;
mod destroy;
mod destroy_env;
mod docker_env;
mod environments;
mod exec;
mod halt;
mod hooks;
mod init;
mod lock;
mod logs;
mod ls;
mod man;
mod progress;
mod providers;
mod provision;
mod publish;
mod schedule;
mod schema;
mod settings;
mod share;
mod snapshot;
mod ssh;
mod ssh_config;
pub(crate) mod ssh_holder;
mod status;
mod suspend;
mod sync;
mod target;
mod trust;
mod up;
mod validate;
pub mod workspace;

use crate::cli::{Cli, Command};
use crate::error::ExitStatus;
use crate::output::Printer;

pub use settings::Settings;

pub(crate) async fn dispatch(cli: Cli, printer: Printer) -> anyhow::Result<ExitStatus> {
    let mut g = Settings::resolve(cli.dir, cli.isolated, printer)?;
    g.trust = cli.trust;
    match cli.command {
        Command::Init(a) => init::run(&g, a),
        Command::Validate(a) => validate::run(&g, a),
        Command::Up(a) => up::run(&g, a, up::Mode::Up).await,
        Command::Reload(a) => up::run(&g, a, up::Mode::Reload).await,
        Command::Lock(a) => lock::run(&g, a).await,
        Command::Status(a) => status::run(&g, a).await,
        Command::Ls(a) => ls::run(&g, a).await,
        Command::Ssh(a) => ssh::run(&g, a).await,
        Command::Share(a) => share::share(&g, a).await,
        Command::Unshare(a) => share::unshare(&g, a).await,
        Command::Exec(a) => exec::run(&g, a).await,
        Command::SshConfig(a) => ssh_config::run(&g, a),
        Command::DockerEnv(a) => docker_env::run(&g, a),
        Command::AnsibleInventory => ansible_inventory::run(&g),
        Command::Halt(a) => halt::run(&g, a).await,
        Command::Suspend(a) => suspend::run(&g, a).await,
        Command::Resume(a) => {
            let up = crate::cli::UpArgs {
                machines: a.machines,
                parallel: None,
                no_provision: true,
                no_connect: false,
                json: false,
                locked: false,
            };
            up::run(&g, up, up::Mode::Up).await
        }
        Command::Destroy(a) => destroy::run(&g, a).await,
        Command::Provision(a) => provision::run(&g, a).await,
        Command::Sync(a) => sync::run(&g, a).await,
        Command::Upload(a) => copy::upload(&g, a).await,
        Command::Download(a) => copy::download(&g, a).await,
        Command::Snapshot(a) => snapshot::run(&g, a).await,
        Command::Logs(a) => logs::run(&g, a).await,
        Command::Box(a) => boxes::run(&g, a).await,
        Command::Api(a) => api::run(&g, a).await,
        Command::Completions(a) => completions::run(&g, a),
        Command::Man(a) => man::run(&g, a),
        Command::Schema => schema::run(&g),
        Command::Trust => trust::run(&g),
        Command::SshHolder(a) => ssh_holder::serve(a),
    }
}
