//! The command line, and how the secret key is found without ever being a
//! process argument in our own tests and docs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::faults::{parse_duration, parse_share, FailSpec};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backing {
    /// State only: fast, for API-level tests and benchmarks.
    None,
    /// Boot each VM as a real local QEMU machine.
    Qemu,
}

#[derive(Debug, Parser)]
#[command(
    name = "cloudstack-sim",
    version,
    about = "A strict Apache CloudStack API simulator on loopback, for tests and CI"
)]
pub struct Options {
    /// Where to listen; port 0 picks a free port (the printed line says which).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR:PORT")]
    pub listen: SocketAddr,

    /// The API key of the cloud's one user.
    #[arg(long, env = "CLOUDSTACK_SIM_API_KEY", value_name = "KEY")]
    pub api_key: String,

    /// The secret key. Prefer --secret-key-file or CLOUDSTACK_SIM_SECRET_KEY:
    /// other users can read process arguments.
    #[arg(long, value_name = "SECRET", hide_env_values = true)]
    pub secret_key: Option<String>,

    /// A file whose first line is the secret key.
    #[arg(long, value_name = "FILE", conflicts_with = "secret_key")]
    pub secret_key_file: Option<PathBuf>,

    /// Keep the cloud's state in this folder, across restarts.
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,

    /// How long async jobs take (e.g. 250ms, 2s).
    #[arg(long, default_value = "500ms", value_parser = parse_duration, value_name = "DURATION")]
    pub job_duration: Duration,

    /// Extra latency added to every call.
    #[arg(long, default_value = "0", value_parser = parse_duration, value_name = "DURATION")]
    pub latency: Duration,

    /// Fail a share of calls to a command: COMMAND:SHARE[:CODE], e.g.
    /// deployVirtualMachine:0.5:533 (code default 530). Repeatable.
    #[arg(long, value_name = "COMMAND:SHARE[:CODE]")]
    pub fail: Vec<FailSpec>,

    /// Share of async jobs that fail (jobstatus 2, error 530).
    #[arg(long, default_value = "0", value_parser = parse_share, value_name = "SHARE")]
    pub fail_jobs: f64,

    /// Share of calls answered with 429 (API limit exceeded).
    #[arg(long, default_value = "0", value_parser = parse_share, value_name = "SHARE")]
    pub throttle: f64,

    /// Share of requests whose connection is closed without an answer.
    #[arg(long, default_value = "0", value_parser = parse_share, value_name = "SHARE")]
    pub drop: f64,

    /// Seed for the fault dice, for reproducible runs.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// What stands behind a deployed VM.
    #[arg(long, value_enum, default_value = "none")]
    pub backing: Backing,

    /// The key types registerSSHKeyPair accepts, e.g. `rsa` (older
    /// CloudStack versions refuse ed25519 keys as "Public key is invalid");
    /// default: every type.
    #[arg(long, value_delimiter = ',', value_name = "TYPE,...")]
    pub keypair_types: Vec<String>,

    /// The second octet of the loopback addresses handed out: public
    /// addresses are 127.N.x.y, basic-zone guests 127.(N+10).x.y. Give
    /// simulators that run side by side different values.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u8).range(1..=245), value_name = "N")]
    pub address_octet: u8,

    /// The box store the templates' boxes come from, for --backing qemu.
    #[arg(long, env = "BOX_BOXES_DIR", value_name = "DIR")]
    pub boxes_dir: Option<PathBuf>,

    /// How long the signed POST of getUploadParamsForTemplate stays valid
    /// (0s: expired at once, for tests of a refused upload).
    #[arg(long, default_value = "3600s", value_parser = parse_duration, value_name = "DURATION")]
    pub upload_ttl: Duration,

    /// Log every call (never parameters, so never secrets) on stderr.
    #[arg(short, long)]
    pub verbose: bool,

    /// A domain to create, by path (parents too), e.g. ROOT/eng. Repeatable.
    /// Like the other layout options, it shapes a fresh cloud only: a
    /// --state folder that has a cloud keeps it.
    #[arg(long = "domain", value_parser = crate::tenancy::parse_domain, value_name = "PATH")]
    pub domains: Vec<String>,

    /// An account to create: DOMAIN-PATH:NAME[:user|domain-admin|admin],
    /// e.g. ROOT/eng:dev (a user). It gets a default security group and an
    /// isolated network. Repeatable.
    #[arg(long = "account", value_name = "PATH:NAME[:ROLE]")]
    pub accounts: Vec<crate::tenancy::AccountSpec>,

    /// A project to create: NAME[:DOMAIN-PATH:OWNER], owned by OWNER (an
    /// --account) or by default by the caller. It gets a default security
    /// group and an isolated network. Repeatable.
    #[arg(long = "project", value_name = "NAME[:PATH:OWNER]")]
    pub projects: Vec<crate::tenancy::ProjectSpec>,

    /// One more member of a project: PROJECT:DOMAIN-PATH:ACCOUNT. Repeatable.
    #[arg(long = "project-member", value_name = "PROJECT:PATH:ACCOUNT")]
    pub project_members: Vec<crate::tenancy::MemberSpec>,

    /// The account the API key acts as (one of --account), e.g.
    /// ROOT/eng:dev; default: the root admin, `admin` in ROOT.
    #[arg(long, value_name = "PATH:NAME")]
    pub caller_account: Option<crate::tenancy::AccountRef>,

    /// A VPC to create in the Advanced zone, owned by --project PROJECT if
    /// given, else by the root admin. It gets a source NAT address and two
    /// tiers: NAME-tier-custom behind its own network ACL list NAME-acl,
    /// which has no rules (nothing gets in until rules are added), and
    /// NAME-tier-deny behind the system list default_deny. Without it the
    /// cloud has no VPC. Shapes a fresh cloud only. Repeatable.
    #[arg(long = "vpc", value_name = "NAME[:PROJECT]")]
    pub vpcs: Vec<crate::api::vpc::VpcSpec>,
}

impl Options {
    /// The domains, accounts and projects a fresh cloud starts with.
    pub fn layout(&self) -> crate::tenancy::Layout {
        crate::tenancy::Layout {
            domains: self.domains.clone(),
            accounts: self.accounts.clone(),
            projects: self.projects.clone(),
            members: self.project_members.clone(),
            caller: self.caller_account.clone(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("no secret key: use --secret-key-file FILE or CLOUDSTACK_SIM_SECRET_KEY")]
    Missing,
    #[error("cannot read the secret key file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the secret key file {0} is empty")]
    Empty(PathBuf),
}

impl Options {
    /// The secret key: the file, then the environment, then the argument.
    pub fn secret(&self) -> Result<String, SecretError> {
        if let Some(path) = &self.secret_key_file {
            let text = std::fs::read_to_string(path).map_err(|source| SecretError::Read {
                path: path.clone(),
                source,
            })?;
            let line = text.lines().next().unwrap_or("").trim().to_string();
            if line.is_empty() {
                return Err(SecretError::Empty(path.clone()));
            }
            return Ok(line);
        }
        if let Ok(v) = std::env::var("CLOUDSTACK_SIM_SECRET_KEY") {
            if !v.is_empty() {
                return Ok(v);
            }
        }
        self.secret_key
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or(SecretError::Missing)
    }
}
