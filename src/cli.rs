//! The command line: clap definitions only. Their doc comments are `--help`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use clap_complete::ArgValueCandidates;

use crate::complete;

#[derive(Debug, Parser)]
#[command(
    name = "box",
    version,
    about = "Reproducible development machines from one Boxfile, on QEMU or Apache CloudStack",
    propagate_version = true
)]
pub struct Cli {
    /// Run as if started in this folder (where the Boxfile is looked up).
    #[arg(short = 'C', long = "dir", global = true, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Print only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// More detail: -v for steps, -vv for every API call and SSH command.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Local machines reach nothing outside the host (QEMU `restrict=on`);
    /// forwarded ports still work. Also `BOX_ISOLATED=1`.
    #[arg(long, global = true, env = "BOX_ISOLATED", value_parser = clap::builder::FalseyValueParser::new())]
    pub isolated: bool,

    /// Run the Boxfile's host triggers (`[[trigger]]` with `run`) without
    /// asking, this once, even if they are not trusted (for CI).
    #[arg(long, global = true)]
    pub trust: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a starter Boxfile in the current folder.
    Init(InitArgs),
    /// Check the Boxfile (and Boxfile.local) and report every problem found.
    Validate(ValidateArgs),
    /// Create and start machines, sync folders and run provisioners.
    Up(UpArgs),
    /// Write Boxfile.lock, or move machines to the newest image or template (--update).
    Lock(LockArgs),
    /// Show the machines and their state (from local state, no network).
    Status(StatusArgs),
    /// List your environments on this host and on every configured cloud, from any folder.
    Ls(LsArgs),
    /// Open a shell on a machine, or run a command there.
    Ssh(SshArgs),
    /// Let a teammate in: add their public key to a machine's login user.
    Share(ShareArgs),
    /// Take a teammate's key (added by `box share`) off a machine.
    Unshare(UnshareArgs),
    /// Run a command on several machines in parallel.
    Exec(ExecArgs),
    /// Print OpenSSH configuration for the machines.
    SshConfig(MachinesArgs),
    /// Print the environment that points the host's `docker` CLI at a
    /// machine's Docker over SSH, with box's pinned host key.
    DockerEnv(DockerEnvArgs),
    /// Print an Ansible inventory of the project's machines (groups from
    /// `groups`, box's key, pinned host keys).
    AnsibleInventory,
    /// Stop machines (gracefully, or at once with --force).
    Halt(HaltArgs),
    /// Save machines' memory to .box/ and stop them; `box up` or `box resume`
    /// brings them back where they were (CloudStack: stops them instead).
    Suspend(MachinesArgs),
    /// Resume suspended machines and wait for SSH (`box up --no-provision`).
    Resume(MachinesArgs),
    /// Restart machines, then sync and provision.
    Reload(UpArgs),
    /// Delete machines and every resource box created for them.
    Destroy(DestroyArgs),
    /// Run the provisioners again.
    Provision(ProvisionArgs),
    /// Copy the synced folders to the machines (once, or continuously with --watch).
    Sync(SyncArgs),
    /// Copy a file or folder to a machine.
    Upload(CopyArgs),
    /// Copy a file or folder from a machine.
    Download(CopyArgs),
    /// Save, restore, list and delete machine snapshots.
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// Show a machine's console log.
    Logs(LogsArgs),
    /// Manage the local store of boxes (machine images).
    #[command(name = "box", subcommand)]
    Box(BoxCommand),
    /// Call the CloudStack API directly, like CloudMonkey.
    Api(ApiArgs),
    /// Print a shell completion script (it completes machine names too).
    Completions(CompletionsArgs),
    /// Write the manual pages (box.1 and one per command), or print box.1.
    Man(ManArgs),
    /// Print the Boxfile's JSON Schema, for editors (see docs/boxfile.md).
    Schema,
    /// Show the Boxfile's host triggers and trust them: `up`, `halt`,
    /// `destroy` and `provision` then run them without asking, until they
    /// change.
    Trust,
    /// The SSH connection holder: box starts it itself (README: SSH
    /// connection reuse).
    #[command(name = "ssh-holder", hide = true)]
    SshHolder(SshHolderArgs),
}

#[derive(Debug, Args)]
pub struct SshHolderArgs {
    /// The project's `.box` folder.
    #[arg(long, value_name = "DIR")]
    pub box_dir: std::path::PathBuf,
    /// A machine to connect to at once.
    #[arg(long, value_name = "MACHINE")]
    pub warm: Option<String>,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The project name (default: the folder name).
    #[arg(long)]
    pub name: Option<String>,
    /// Write a ready-made stack (a Boxfile and the files it needs) instead
    /// of the starter Boxfile; `--list` shows them.
    #[arg(long, value_name = "NAME")]
    pub template: Option<String>,
    /// List the ready-made stacks `--template` takes.
    #[arg(long, conflicts_with_all = ["template", "name"])]
    pub list: bool,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Print findings as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DockerEnvArgs {
    /// The machine (default: the primary machine).
    #[arg(add = ArgValueCandidates::new(complete::machines))]
    pub machine: Option<String>,
    /// The shell syntax to print (default: fish when $SHELL is fish, else bash).
    #[arg(long, value_enum)]
    pub shell: Option<DockerShell>,
    /// Print what takes the environment back out.
    #[arg(long)]
    pub unset: bool,
}

/// The shells `box docker-env` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DockerShell {
    /// bash, zsh and other POSIX shells.
    Bash,
    Fish,
    Powershell,
}

#[derive(Debug, Args)]
pub struct MachinesArgs {
    /// Machine names (default: all machines).
    #[arg(add = ArgValueCandidates::new(complete::machines))]
    pub machines: Vec<String>,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Machine names (default: all machines).
    #[arg(add = ArgValueCandidates::new(complete::machines))]
    pub machines: Vec<String>,
    /// How many machines to bring up at once (default: 16, or every
    /// machine at once when all are cloud machines: the cloud client sizes
    /// its requests to what the cloud accepts).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub parallel: Option<u32>,
    /// Skip the provisioners.
    #[arg(long)]
    pub no_provision: bool,
    /// Only create and start the machines: no SSH connection, so no sync
    /// and no provisioning (useful when SSH is not reachable from here).
    #[arg(long)]
    pub no_connect: bool,
    /// Print progress as NDJSON events on stdout.
    #[arg(long)]
    pub json: bool,
    /// Use Boxfile.lock as it is: fail instead of writing or changing it (for CI).
    #[arg(long)]
    pub locked: bool,
}

#[derive(Debug, Args)]
pub struct LockArgs {
    /// Resolve the named machines (default: all) afresh, to what the store
    /// and the cloud offer now, instead of keeping what is locked.
    #[arg(long)]
    pub update: bool,
    /// Machine names, with --update (default: all machines).
    #[arg(requires = "update", add = ArgValueCandidates::new(complete::machines))]
    pub machines: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Machine names (default: all machines).
    #[arg(add = ArgValueCandidates::new(complete::machines))]
    pub machines: Vec<String>,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
    /// Ask the provider instead of reading local state.
    #[arg(long)]
    pub refresh: bool,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Also list teammates' environments (other `box:owner`s) in the same
    /// accounts and projects.
    #[arg(long)]
    pub all: bool,
    /// Print as JSON (an array of machines; see the README for the fields).
    #[arg(long)]
    pub json: bool,
    /// Forget the index entries whose project folder or state is gone.
    #[arg(long, conflicts_with_all = ["all", "json"])]
    pub prune: bool,
}

#[derive(Debug, Args)]
pub struct SshArgs {
    /// The machine (default: the primary machine).
    #[arg(add = ArgValueCandidates::new(complete::machines))]
    pub machine: Option<String>,
    /// Run this command instead of a login shell.
    #[arg(short = 'c', long = "command", conflicts_with = "argv")]
    pub command: Option<String>,
    /// The command to run, after `--`.
    #[arg(last = true)]
    pub argv: Vec<String>,
    /// A teammate's environment (its id, from their `box ls`): find the
    /// machine on the cloud by its tags and connect with the host key
    /// pinned there, with your own key.
    #[arg(long, value_name = "ID")]
    pub env: Option<String>,
    /// With --env: your private key (default ~/.ssh/id_ed25519).
    #[arg(long, value_name = "FILE", requires = "env")]
    pub identity: Option<std::path::PathBuf>,
    /// Forward your SSH agent (SSH_AUTH_SOCK) into the session, as
    /// `forward_agent = true` in the Boxfile does; runs OpenSSH's `ssh`.
    #[arg(short = 'A', long = "forward-agent")]
    pub forward_agent: bool,
}

#[derive(Debug, Args)]
pub struct ShareArgs {
    /// The machine.
    #[arg(add = ArgValueCandidates::new(complete::machines))]
    pub machine: String,
    /// The teammate's public key file (e.g. alice.pub).
    #[arg(long, value_name = "FILE.pub")]
    pub key: std::path::PathBuf,
    /// The name to share under (default: the key comment's user, as in `alice@laptop`).
    #[arg(long)]
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct UnshareArgs {
    /// The machine.
    #[arg(add = ArgValueCandidates::new(complete::machines))]
    pub machine: String,
    /// The name given to `box share`.
    pub name: String,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Run on every machine.
    #[arg(long, conflicts_with = "machines")]
    pub all: bool,
    /// Machine names.
    #[arg(add = ArgValueCandidates::new(complete::machines))]
    pub machines: Vec<String>,
    /// Forward your SSH agent (SSH_AUTH_SOCK) to the command, as
    /// `forward_agent = true` in the Boxfile does; runs OpenSSH's `ssh`.
    #[arg(short = 'A', long = "forward-agent")]
    pub forward_agent: bool,
    /// The command to run, after `--`.
    #[arg(last = true, required = true)]
    pub argv: Vec<String>,
}

#[derive(Debug, Args)]
pub struct HaltArgs {
    /// Machine names (default: all machines).
    #[arg(add = ArgValueCandidates::new(complete::machines))]
    pub machines: Vec<String>,
    /// Power off at once instead of a clean shutdown; discard a suspended
    /// machine's saved state without asking.
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct DestroyArgs {
    /// Machine names (default: all machines).
    #[arg(add = ArgValueCandidates::new(complete::machines))]
    pub machines: Vec<String>,
    /// Do not ask for confirmation (never enough for a teammate's environment).
    #[arg(short, long)]
    pub force: bool,
    /// Destroy the environment with this id (see `box ls`), from any folder:
    /// through its project's state if this host has it, else found on the
    /// clouds by its tags.
    #[arg(long, value_name = "ID", conflicts_with = "machines")]
    pub env: Option<String>,
    /// Allow `--env` to destroy a teammate's environment (asks on a terminal,
    /// even with --force).
    #[arg(long, requires = "env")]
    pub others: bool,
    /// Print progress as NDJSON events on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ProvisionArgs {
    /// Machine names (default: all machines).
    #[arg(add = ArgValueCandidates::new(complete::machines))]
    pub machines: Vec<String>,
    /// Run only the provisioners with these names (repeatable).
    #[arg(long = "with", value_name = "NAME")]
    pub with: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Machine names (default: all machines). With `--pull`, the names may
    /// be followed by paths to bring back: host paths inside a sync folder
    /// (relative to the current folder) or guest paths inside its `to`.
    #[arg(add = ArgValueCandidates::new(complete::machines), value_name = "MACHINE|PATH")]
    pub machines: Vec<String>,
    /// Keep watching the folders and sync each change.
    #[arg(short, long, conflicts_with = "pull")]
    pub watch: bool,
    /// Copy what changed in the guest folders back to the host (all of a
    /// folder that a push would send, or the paths given). A path changed
    /// on both sides since the last sync is a conflict: listed, left alone.
    #[arg(long)]
    pub pull: bool,
    /// On a conflict, the side this command copies from wins: the guest's
    /// version with `--pull`, the host's without.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// The machine.
    #[arg(add = ArgValueCandidates::new(complete::machines))]
    pub machine: String,
    /// The source path.
    pub source: PathBuf,
    /// The destination path.
    pub destination: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Save a snapshot of a machine.
    Save(SnapshotArgs),
    /// Return a machine to a snapshot.
    Restore(SnapshotArgs),
    /// List a machine's snapshots.
    List(SnapshotListArgs),
    /// Delete a snapshot.
    Delete(SnapshotArgs),
}

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// `[MACHINE] NAME`; the machine defaults to the primary one.
    #[arg(
        num_args = 1..=2,
        required = true,
        value_name = "MACHINE] [NAME",
        // Machine names at either place: clap_complete 4.6 reports both as the
        // first value, so the snapshot name cannot be told apart.
        add = ArgValueCandidates::new(complete::machines)
    )]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SnapshotListArgs {
    /// The machine (default: the primary machine).
    #[arg(add = ArgValueCandidates::new(complete::machines))]
    pub machine: Option<String>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The machine (default: the primary machine).
    #[arg(add = ArgValueCandidates::new(complete::machines))]
    pub machine: Option<String>,
    /// Keep printing as the log grows.
    #[arg(short, long)]
    pub follow: bool,
}

#[derive(Debug, Subcommand)]
pub enum BoxCommand {
    /// Add a box from a name, a file (.box or .qcow2) or a URL.
    Add(BoxAddArgs),
    /// List the boxes in the local store.
    List(BoxListArgs),
    /// Remove a box from the local store.
    Remove(BoxRemoveArgs),
    /// Remove box versions no machine uses.
    Prune,
    /// Build a box from a recipe folder (e.g. boxes/debian-12) and add it.
    Build(BoxBuildArgs),
    /// List newer versions in the store than the ones Boxfile.lock holds.
    Outdated(BoxOutdatedArgs),
    /// Fetch or build a newer version of boxes and move Boxfile.lock to it.
    Update(BoxUpdateArgs),
    /// Upload a box's disk to a CloudStack zone as a template; machines with
    /// this box in that zone then deploy it.
    Publish(BoxPublishArgs),
}

#[derive(Debug, Args)]
pub struct BoxPublishArgs {
    /// The box name (its newest version unless --box-version).
    pub name: String,
    /// The zone, by name or id.
    #[arg(long)]
    pub zone: String,
    /// The CloudStack profile (default: BOX_PROFILE, else "default").
    #[arg(long)]
    pub profile: Option<String>,
    /// Publish into this CloudStack project (name or id).
    #[arg(long)]
    pub project: Option<String>,
    /// This version of the box.
    #[arg(id = "box_version", long = "box-version", value_name = "VERSION")]
    pub version: Option<String>,
    /// The OS type id for the template (default: the OS type of the
    /// template the box maps to, e.g. `Debian 12`).
    #[arg(long, value_name = "ID")]
    pub os_type_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct BoxOutdatedArgs {
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BoxUpdateArgs {
    /// The box to update (default: every box in Boxfile.lock).
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct BoxAddArgs {
    /// A box name known to the recipes, a path, or a URL.
    pub source: String,
    /// The name to store it under (default: from metadata or the file name).
    #[arg(long)]
    pub name: Option<String>,
    /// Expected checksum, `sha256:HEX`.
    #[arg(long)]
    pub checksum: Option<String>,
    /// Replace a box of the same name and version.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct BoxListArgs {
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BoxRemoveArgs {
    /// The box name.
    pub name: String,
    /// Only this version (Vagrant's spelling, as `--version` prints box's own).
    #[arg(id = "box_version", long = "box-version", value_name = "VERSION")]
    pub version: Option<String>,
}

#[derive(Debug, Args)]
pub struct BoxBuildArgs {
    /// The recipe folder.
    pub recipe: PathBuf,
}

#[derive(Debug, Args)]
pub struct ApiArgs {
    /// The API command, e.g. listZones.
    pub command: String,
    /// Parameters as key=value.
    pub params: Vec<String>,
    /// Return at once with the job id instead of waiting for an async job.
    #[arg(long)]
    pub no_wait: bool,
    /// Print the string to sign and the signed URL; send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The CloudStack profile to use (default: BOX_PROFILE, the Boxfile's, or "default").
    #[arg(long)]
    pub profile: Option<String>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    pub shell: Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write box.1 and a page per command (box-up.1, ...) into this folder,
    /// created if needed, instead of printing box.1.
    #[arg(long, value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
    pub out_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Elvish,
    Powershell,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
