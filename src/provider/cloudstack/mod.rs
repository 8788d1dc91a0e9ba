//! The CloudStack provider: machines as VMs on an Apache CloudStack cloud.
//!
//! `prepare` does the once-per-run work before any machine is touched:
//! names to ids, the project's key pair, security group and public IP, the
//! rules already on that IP, and this environment's VMs found by tag. Then
//! `up` runs per machine, in parallel, and records every resource and every
//! pending job in `.box/` before waiting on it, so a killed run resumes with
//! no duplicate and no orphan.
//!
//! VMs are named `<project>-<machine>-<env>` and tagged `box:project`,
//! `box:machine`, `box:owner` and `box:env`, where `env` is stable for one
//! user, workstation and project folder: teammates sharing an account never
//! collide, and a lost `.box/` is rebuilt from the cloud.

mod api;
mod data;
mod keypair;
mod ledger;
mod names;
pub mod publish;
mod reach;
mod scope;
mod shared;
mod snapshot;
mod team;
mod template_lock;
mod vm;
mod vpc;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use anyhow::Context as _;
use cloudstack::{Params, PublicIpAddress, VirtualMachine};

use crate::boxfile::Machine;
use crate::provider::{Context, ProviderKind, SnapshotInfo, SnapshotOp};
use crate::state::{MachineState, ProjectState, StateStore, Status};

use api::{convert, Api};
use names::{IpChoice, Plan, Reach};
use scope::Scope;

pub use data::{CloudStackData, CloudStackProjectData, Deploy, ProjectIp, SecurityGroup};
pub use template_lock::lock_machines;

/// Who and where this environment is: the names and tags of its resources.
#[derive(Clone)]
pub struct Env {
    pub project: String,
    /// The short environment id (user, workstation, project folder).
    pub id: String,
    pub owner: String,
    store: StateStore,
}

impl Env {
    fn new(ctx: &Context) -> Env {
        Env {
            project: ctx.project.name.clone(),
            id: crate::project::environment_id(&ctx.project.root),
            owner: crate::project::local_user(),
            store: ctx.store.clone(),
        }
    }

    pub fn keypair_name(&self) -> String {
        format!("box-{}-{}", hostname_part(&self.project), self.id)
    }

    pub fn group_name(&self) -> String {
        self.keypair_name()
    }

    /// The VM's host name: the Boxfile's pattern or `<project>-<machine>-<env>`,
    /// made a valid host name.
    pub fn vm_name(&self, machine: &Machine) -> String {
        let pattern = machine
            .cloudstack
            .name_pattern
            .as_deref()
            .unwrap_or("{project}-{machine}-{env}");
        let raw = pattern
            .replace("{project}", &self.project)
            .replace("{machine}", &machine.name)
            .replace("{env}", &self.id);
        let mut name = hostname_part(&raw);
        if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
            name.insert_str(0, "box-");
        }
        name.truncate(63);
        name.trim_end_matches('-').to_string()
    }

    /// The tags that mark a VM as this environment's.
    pub fn tags<'a>(&'a self, machine: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![
            ("box:project", self.project.as_str()),
            ("box:machine", machine),
            ("box:owner", self.owner.as_str()),
            ("box:env", self.id.as_str()),
        ]
    }
}

/// Lowercase letters, digits and single dashes.
fn hostname_part(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

pub(crate) fn save_project(env: &Env, ps: &ProjectState) -> anyhow::Result<()> {
    env.store
        .save_project(ps)
        .context("cannot record the project's cloud resources in .box/")
}

/// What `prepare` learnt, shared by the machines coming up in parallel.
#[derive(Default)]
struct Prepared {
    plans: BTreeMap<String, Plan>,
    /// Each machine's key pair and login key, by machine name.
    logins: BTreeMap<String, keypair::Login>,
    /// The project's security group (SG zones).
    group: Option<String>,
    /// The public IP each network's port forwards go to.
    ips: BTreeMap<String, PublicIpAddress>,
    /// This environment's VMs by `box:machine`, found by tag.
    found: BTreeMap<String, VirtualMachine>,
    /// This environment's tagged public IPs (static NAT ones included).
    tagged_ips: Vec<PublicIpAddress>,
    /// The network ACL list of each VPC tier box opens ports on, by tier id.
    acls: BTreeMap<String, vpc::TierAcl>,
}

pub struct CloudStack {
    ctx: Context,
    api: Api,
    env: Env,
    prepared: Prepared,
    rules: Arc<reach::Rules>,
}

impl CloudStack {
    pub async fn prepare(ctx: &Context, machines: &[&Machine]) -> anyhow::Result<Self> {
        let base = Api::connect(ctx)?;
        let tenancy = machines
            .first()
            .map_or(&ctx.project.cloudstack, |m| &m.cloudstack);
        let scope = Scope::resolve(&base.client, tenancy).await?;
        let mut me = Self::with_api(ctx, base.scoped(scope.clone()));
        let api = me.api.clone();
        let env = me.env.clone();
        let mut plans = names::resolve(&api, machines).await?;
        // Boxfile.lock: locked templates, checked before anything is created.
        template_lock::apply(ctx, &api, machines, &mut plans).await?;

        let open_world = machines
            .iter()
            .filter(|m| m.cloudstack.allow_from.is_empty())
            .filter(|m| {
                plans
                    .get(&m.name)
                    .is_some_and(|p| p.reach != Reach::Private)
            })
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>();
        if !open_world.is_empty() {
            ctx.printer.warn(&format!(
                "`allow_from` is not set: SSH{} of {} will be open to the whole Internet (0.0.0.0/0)",
                if machines.iter().any(|m| !m.ports.is_empty()) { " and the forwarded ports" } else { "" },
                open_world.join(", ")
            ));
        }

        let mut ps = ctx
            .store
            .load_project()
            .context("cannot read .box/project.json")?;
        // The IPs that are only looked up go before anything is created, so
        // a wrong address fails with nothing made.
        let mut ips = BTreeMap::new();
        choose_ips(&me, &plans, &[], &mut ps, false, &mut ips).await?;
        // A VPC tier on a system ACL list stops here too, with nothing made.
        let decisions = vpc::check(&api, &plans, machines).await?;

        record_scope(ctx, &scope, &mut ps)?;
        save_project(&env, &ps)?;
        let logins =
            keypair::prepare(&api, &env, &ctx.printer, ctx.store.dir(), machines, &mut ps).await?;
        let replaced = logins.replaced;

        let tagged = |p: Params| {
            p.tags([
                ("box:project", env.project.as_str()),
                ("box:env", env.id.as_str()),
            ])
        };
        let found: BTreeMap<String, VirtualMachine> = api
            .client
            .list_virtual_machines(&tagged(Params::new().set("listall", "true")))
            .await
            .map_err(|e| convert(e, "cannot list this environment's VMs"))?
            .into_iter()
            .filter(|vm| vm.tag("box:env") == Some(env.id.as_str()))
            .filter(|vm| !vm::gone(vm))
            .filter_map(|vm| vm.tag("box:machine").map(|m| (m.to_string(), vm.clone())))
            .collect();

        if replaced && !found.is_empty() {
            let names: Vec<&str> = found.keys().map(String::as_str).collect();
            ctx.printer.warn(&format!(
                "the project's SSH key in .box/keys was lost and a new one was registered; the VMs of {} still trust the old key, so SSH logins to them will fail until they are recreated (`box destroy` then `box up`)",
                names.join(", ")
            ));
        }

        let needs_ips = plans.values().any(|p| {
            matches!(
                p.reach,
                Reach::StaticNat | Reach::PortForward { ip: IpChoice::Auto }
            )
        });
        let tagged_ips = if needs_ips {
            api.client
                .list_public_ip_addresses(&tagged(Params::new().set("listall", "true")))
                .await
                .map_err(|e| convert(e, "cannot list this environment's public IPs"))?
        } else {
            Vec::new()
        };

        let mut group = None;
        if plans.values().any(|p| p.reach == Reach::SecurityGroup) {
            let mut ports = BTreeSet::new();
            let mut cidrs = BTreeSet::new();
            for m in machines.iter().filter(|m| {
                plans
                    .get(&m.name)
                    .is_some_and(|p| p.reach == Reach::SecurityGroup)
            }) {
                ports.insert(("tcp".to_string(), 22));
                for p in &m.ports {
                    ports.insert((p.protocol.to_lowercase(), p.guest));
                }
                cidrs.extend(allow_from(m));
            }
            let cidrs: Vec<String> = cidrs.into_iter().collect();
            group = Some(shared::ensure_security_group(&api, &env, &ports, &cidrs, &mut ps).await?);
            save_project(&env, &ps)?;
        }

        let acls = vpc::ensure(&me, decisions, &mut ps).await?;

        // Acquired last, once every read-only check has passed.
        choose_ips(&me, &plans, &tagged_ips, &mut ps, true, &mut ips).await?;

        me.prepared = Prepared {
            plans,
            logins: logins.by_machine,
            group,
            ips,
            found,
            tagged_ips,
            acls,
        };
        Ok(me)
    }

    /// The provider for commands that act on what exists (halt, destroy,
    /// status): in the scope recorded at `up`, else the Boxfile's.
    pub async fn open(ctx: &Context) -> anyhow::Result<Self> {
        let base = Api::connect(ctx)?;
        let recorded = ctx
            .store
            .load_project()
            .context("cannot read .box/project.json")?
            .providers
            .cloudstack
            .scope;
        let scope = match recorded {
            Some(s) => s,
            None => Scope::resolve(&base.client, tenancy(&ctx.project)).await?,
        };
        Ok(Self::with_api(ctx, base.scoped(scope)))
    }

    fn with_api(ctx: &Context, api: Api) -> Self {
        CloudStack {
            ctx: ctx.clone(),
            api,
            env: Env::new(ctx),
            prepared: Prepared::default(),
            rules: Arc::new(reach::Rules::default()),
        }
    }

    pub async fn up(&self, machine: &Machine, state: MachineState) -> anyhow::Result<MachineState> {
        vm::up(self, machine, state).await
    }

    /// Whether the machine's VM is running now: one lookup, nothing changed.
    pub async fn is_running(&self, state: &MachineState) -> anyhow::Result<bool> {
        let Some(id) = state.id.as_deref() else {
            return Ok(false);
        };
        let vms = self
            .api
            .client
            .list_virtual_machines(&Params::new().set("id", id).set("listall", "true"))
            .await?;
        Ok(vms
            .iter()
            .any(|vm| vm.id == id && vm.state.as_deref() == Some("Running")))
    }

    pub async fn halt(&self, state: MachineState, force: bool) -> anyhow::Result<MachineState> {
        vm::halt(self, state, force).await
    }

    pub async fn destroy(&self, state: MachineState) -> anyhow::Result<()> {
        vm::destroy(self, state).await
    }

    pub async fn destroy_project(&self) -> anyhow::Result<()> {
        let mut ps = self
            .ctx
            .store
            .load_project()
            .context("cannot read .box/project.json")?;
        shared::destroy(&self.api, &self.env, &mut ps).await
    }

    /// One `listVirtualMachines` call for all machines, by this
    /// environment's tags; VMs found with no state are adopted.
    pub async fn refresh(&self, states: Vec<MachineState>) -> anyhow::Result<Vec<MachineState>> {
        let vms = self
            .api
            .client
            .list_virtual_machines(&Params::new().set("listall", "true").tags([
                ("box:project", self.env.project.as_str()),
                ("box:env", self.env.id.as_str()),
            ]))
            .await
            .map_err(|e| convert(e, "cannot list this environment's VMs"))?;
        let ours: Vec<&VirtualMachine> = vms
            .iter()
            .filter(|vm| vm.tag("box:env") == Some(self.env.id.as_str()))
            .collect();
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        for mut s in states {
            if s.provider.kind() != ProviderKind::CloudStack {
                out.push(s);
                continue;
            }
            let vm = ours
                .iter()
                .find(|vm| Some(vm.id.as_str()) == s.id.as_deref())
                .or_else(|| {
                    ours.iter().find(|vm| {
                        s.id.is_none()
                            && vm.tag("box:machine") == Some(s.name.as_str())
                            && !vm::gone(vm)
                    })
                });
            match vm {
                Some(vm) => {
                    seen.insert(vm.id.clone());
                    vm::absorb(&mut s, vm);
                }
                // Untagged yet (killed before tagging) or gone.
                None if s.id.is_some() => s.status = Status::Dead,
                None => {}
            }
            out.push(s);
        }
        for vm in ours {
            if seen.contains(&vm.id) || vm::gone(vm) {
                continue;
            }
            let Some(name) = vm.tag("box:machine") else {
                continue;
            };
            if out.iter().any(|s| s.name == name) {
                continue;
            }
            let mut s = MachineState::new(name, ProviderKind::CloudStack);
            vm::absorb(&mut s, vm);
            self.ctx.printer.info(&format!(
                "{name}: adopted VM {} found by its tags (state was lost)",
                vm.name.as_deref().unwrap_or(&vm.id)
            ));
            out.push(s);
        }
        Ok(out)
    }

    pub async fn snapshot(
        &self,
        state: &MachineState,
        op: SnapshotOp,
    ) -> anyhow::Result<Vec<SnapshotInfo>> {
        snapshot::run(&self.api, state, op).await
    }

    fn save(&self, state: &MachineState) -> anyhow::Result<()> {
        self.ctx
            .store
            .save_machine(state)
            .with_context(|| format!("cannot record the progress of `{}` in .box/", state.name))
    }
}

/// The public IP each network's port forwards use: the source NAT IP or a
/// given address (looked up, `auto == false`), or the project's acquired
/// IP (`auto == true`); and the rules already on it.
async fn choose_ips(
    cs: &CloudStack,
    plans: &BTreeMap<String, Plan>,
    tagged_ips: &[PublicIpAddress],
    ps: &mut ProjectState,
    auto: bool,
    ips: &mut BTreeMap<String, PublicIpAddress>,
) -> anyhow::Result<()> {
    let (api, env, rules) = (&cs.api, &cs.env, &*cs.rules);
    for plan in plans.values() {
        let Reach::PortForward { ip } = &plan.reach else {
            continue;
        };
        let Some(network) = plan.network_id.clone() else {
            continue;
        };
        if ips.contains_key(&network) || matches!(ip, IpChoice::Auto) != auto {
            continue;
        }
        let home = shared::IpHome {
            network: &network,
            vpc: plan.vpc_id.as_deref(),
        };
        let chosen = match ip {
            // A VPC's source NAT address belongs to the VPC, not a tier.
            IpChoice::SourceNat => api
                .client
                .list_public_ip_addresses(
                    &match home.vpc {
                        Some(vpc) => Params::new().set("vpcid", vpc),
                        None => Params::new().set("associatednetworkid", &network),
                    }
                    .set("issourcenat", "true")
                    .set("listall", "true"),
                )
                .await
                .map_err(|e| convert(e, "cannot list public IP addresses"))?
                .into_iter()
                .find(|ip| ip.issourcenat == Some(true))
                .ok_or_else(|| {
                    crate::error::Hinted::new(
                        format!("the network of zone `{}` has no source NAT IP", plan.zone_name),
                        "set `public_ip = \"auto\"` to acquire one, or `private = true` to reach the VMs directly",
                    )
                })?,
            IpChoice::Auto => {
                let ip = shared::ensure_project_ip(api, env, &home, tagged_ips, ps).await?;
                save_project(env, ps)?;
                ip
            }
            IpChoice::Address(addr) => api
                .client
                .list_public_ip_addresses(&Params::new().set("ipaddress", addr).set("listall", "true"))
                .await
                .map_err(|e| convert(e, "cannot list public IP addresses"))?
                .into_iter()
                .find(|ip| &ip.ipaddress == addr)
                .ok_or_else(|| {
                    crate::error::Hinted::new(
                        format!("the public IP {addr} is not allocated to this account"),
                        "acquire it first, or set `public_ip = \"auto\"`",
                    )
                })?,
        };
        rules.load(api, &chosen.id).await?;
        ips.insert(network, chosen);
    }
    Ok(())
}

/// The Boxfile's `project`, `domain` and `account`: the same for every
/// CloudStack machine (validation checks it), else `[cloudstack]`'s.
fn tenancy(project: &crate::boxfile::Project) -> &crate::boxfile::CloudStackSettings {
    project
        .machines
        .iter()
        .find(|m| m.provider == ProviderKind::CloudStack)
        .map_or(&project.cloudstack, |m| &m.cloudstack)
}

/// Records where the environment lives, before anything is made there. A
/// Boxfile that moves an environment with machines or resources to another
/// place stops: they would be left behind, unseen by `destroy`.
fn record_scope(ctx: &Context, scope: &Scope, ps: &mut ProjectState) -> anyhow::Result<()> {
    if let Some(recorded) = &ps.providers.cloudstack.scope {
        let lives = !ps.resources.is_empty()
            || ctx
                .store
                .machines()
                .context("cannot read the machines' state in .box/")?
                .iter()
                .any(|m| {
                    m.provider.kind() == ProviderKind::CloudStack
                        && (m.id.is_some() || !m.resources.is_empty())
                });
        if !recorded.same_place(scope) && lives {
            return Err(crate::error::Hinted::new(
                format!(
                    "this environment's machines live in {}, but the Boxfile now says {}",
                    recorded.describe(),
                    scope.describe()
                ),
                "run `box destroy` first (it removes them from where they are), or set `project`, `domain` and `account` back",
            )
            .into());
        }
    }
    ps.providers.cloudstack.scope = Some(scope.clone());
    Ok(())
}

/// `allow_from`, or the whole Internet.
fn allow_from(m: &Machine) -> Vec<String> {
    if m.cloudstack.allow_from.is_empty() {
        vec!["0.0.0.0/0".to_string()]
    } else {
        m.cloudstack.allow_from.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_are_valid_and_bounded() {
        assert_eq!(hostname_part("My_Project.web"), "my-project-web");
        assert_eq!(hostname_part("--a--b--"), "a-b");
    }

    fn env(dir: &std::path::Path) -> Env {
        Env {
            project: "My_App".into(),
            id: "1abcde".into(),
            owner: "dev".into(),
            store: StateStore::open(dir).unwrap(),
        }
    }

    fn machine(name: &str, pattern: Option<&str>) -> Machine {
        let cs = crate::boxfile::CloudStackSettings {
            name_pattern: pattern.map(str::to_string),
            ..Default::default()
        };
        Machine {
            name: name.into(),
            provider: ProviderKind::CloudStack,
            box_name: "debian-12".into(),
            box_version: None,
            cpus: 1,
            memory: 512,
            user: "box".into(),
            primary: false,
            autostart: true,
            depends_on: vec![],
            groups: vec![],
            ports: vec![],
            sync: vec![],
            provision: vec![],
            user_data: None,
            accel: Default::default(),
            disk_size: None,
            idle_stop: None,
            expires: None,
            forward_agent: false,
            cloudstack: cs,
        }
    }

    #[test]
    fn vm_names_carry_project_machine_and_environment() {
        let tmp = tempfile::tempdir().unwrap();
        let e = env(tmp.path());
        assert_eq!(e.vm_name(&machine("web", None)), "my-app-web-1abcde");
        assert_eq!(
            e.vm_name(&machine("db", Some("{env}-{machine}"))),
            "box-1abcde-db"
        );
        let long = "x".repeat(80);
        assert!(e.vm_name(&machine(&long, None)).len() <= 63);
    }
}
