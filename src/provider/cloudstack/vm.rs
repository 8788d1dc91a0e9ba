//! One machine's VM: found (by id, by tag, or by its deterministic name) or
//! deployed, started, tagged and made reachable; stopped; destroyed with
//! every resource recorded for it.
//!
//! Each step writes what it is about to do, and then the ids the cloud
//! gives back, to `.box/` before it waits, so the next `box up` after a
//! kill picks the job up again instead of starting a second VM.

use std::sync::Mutex as StdMutex;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use base64::Engine as _;
use cloudstack::{Error, Params, PublicIpAddress, VirtualMachine};
use guest::cloudinit::Seed;
use serde_json::json;

use crate::boxfile::Machine;
use crate::error::Hinted;
use crate::state::{ForwardedPort, MachineState, ResourceKind, SshTarget, Status};

use super::api::{convert, not_found, transient, with_retries, Api, ATTEMPTS};
use super::ledger::{self, Ledger as _};
use super::names::{Plan, Reach};
use super::reach::{self, Want};
use super::shared::{find_or_acquire, IpHome, IpOwner};
use super::{allow_from, CloudStack, CloudStackData, Deploy};

/// CloudStack accepts at most this much base64 user data over POST.
const MAX_USER_DATA: usize = 32 * 1024;

/// How long a VM may stay in a transitional state (Starting, Stopping).
const VM_WAIT: Duration = Duration::from_secs(15 * 60);

/// The machine's CloudStack data: the provider's methods make a machine a
/// CloudStack one.
fn data(st: &mut MachineState) -> &mut CloudStackData {
    st.provider.cloudstack_mut()
}

/// A VM that no longer counts: destroyed or on its way out.
pub fn gone(vm: &VirtualMachine) -> bool {
    matches!(
        vm.state.as_deref(),
        Some("Destroyed" | "Expunging" | "Expunged")
    )
}

/// Takes what the cloud says about a VM into the machine's state (status
/// and id); used by `refresh`.
pub fn absorb(s: &mut MachineState, vm: &VirtualMachine) {
    if s.id.is_none() {
        if let Some(k) = vm.tag("box:hostkey") {
            data(s).host_key = Some(k.to_string());
        }
        s.id = Some(vm.id.clone());
        s.record(
            ResourceKind::VirtualMachine,
            &vm.id,
            format!("VM {}", vm.name.as_deref().unwrap_or("")),
        );
    }
    s.status = status_of(vm);
}

fn status_of(vm: &VirtualMachine) -> Status {
    match vm.state.as_deref() {
        Some("Running") => Status::Running,
        Some("Stopped") => Status::Stopped,
        Some("Starting" | "Stopping" | "Migrating") => Status::Creating,
        Some("Error") => Status::Error,
        _ => Status::Dead,
    }
}

async fn get(api: &Api, id: &str) -> Result<Option<VirtualMachine>, Error> {
    match api
        .client
        .list_virtual_machines(&Params::new().set("id", id).set("listall", "true"))
        .await
    {
        Ok(list) => Ok(list.into_iter().find(|v| v.id == id)),
        Err(e) if not_found(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The VM named `name` that may be this environment's (`env`): never one
/// tagged for another environment, such as a teammate's of the same name in
/// a shared project.
async fn by_name(api: &Api, env: &str, name: &str) -> Result<Option<VirtualMachine>, Error> {
    Ok(api
        .client
        .list_virtual_machines(&Params::new().set("name", name).set("listall", "true"))
        .await?
        .into_iter()
        .find(|v| {
            v.name.as_deref() == Some(name) && !gone(v) && v.tag("box:env").is_none_or(|e| e == env)
        }))
}

pub async fn up(
    p: &CloudStack,
    machine: &Machine,
    state: MachineState,
) -> anyhow::Result<MachineState> {
    let api = &p.api;
    let name = &machine.name;
    let plan = p
        .prepared
        .plans
        .get(name)
        .with_context(|| format!("the CloudStack provider was not prepared for `{name}`"))?;
    let key =
        p.prepared.logins.get(name).ok_or_else(|| {
            anyhow::anyhow!("the CloudStack provider was not prepared for `{name}`")
        })?;
    let mut st = state;
    let vm_name = p.env.vm_name(machine);
    let d = data(&mut st);
    d.env = Some(p.env.id.clone());
    d.vm_name = Some(vm_name.clone());

    // Find the VM this machine already has, if any.
    let mut vm: Option<VirtualMachine> = None;
    if let Some(id) = st.id.clone() {
        vm = get(api, &id)
            .await
            .map_err(|e| convert(e, &format!("cannot look up the VM of `{name}`")))?
            .filter(|v| !gone(v));
        if vm.is_none() && data(&mut st).deploy_job.is_none() {
            p.ctx.printer.warn(&format!(
                "{name}: its VM {id} is gone from the cloud; deploying a new one"
            ));
            forget_vm(&mut st);
        }
    }
    if vm.is_none() {
        if let Some(found) = p.prepared.found.get(name) {
            p.ctx.printer.machine(
                name,
                &format!(
                    "adopting VM {} found by its tags",
                    found.name.as_deref().unwrap_or(&found.id)
                ),
            );
            vm = Some(found.clone());
        }
    }
    if vm.is_none() && data(&mut st).deploy.is_some() {
        // A run was killed while deploying: the name is the VM's identity.
        vm = by_name(api, &p.env.id, &vm_name)
            .await
            .map_err(|e| convert(e, &format!("cannot look up VM `{vm_name}`")))?;
    }
    if let Some(v) = &vm {
        if st.id.as_deref() != Some(v.id.as_str()) {
            st.id = Some(v.id.clone());
        }
        st.record(ResourceKind::VirtualMachine, &v.id, format!("VM {vm_name}"));
        if let Some(k) = v.tag("box:hostkey") {
            data(&mut st).host_key.get_or_insert_with(|| k.to_string());
        }
        p.save(&st)?;
    }

    // A deploy job recorded by an earlier run: its outcome decides.
    if let Some(jobid) = data(&mut st).deploy_job.clone() {
        let job = Some(cloudstack::JobRef {
            jobid: jobid.clone(),
            id: st.id.clone(),
        });
        match api
            .finish::<VirtualMachine>("deployVirtualMachine", &job, &json!({}))
            .await
        {
            Ok(v) => vm = Some(v),
            Err(e @ Error::Job(_)) => return Err(failed_deploy(p, &mut st, e).await),
            Err(e @ Error::JobTimeout { .. }) => {
                return Err(convert(
                    e,
                    &format!("waiting for VM `{vm_name}` of `{name}` to be deployed"),
                ))
            }
            // The job is no longer known (too old): the VM's own state decides.
            Err(_) => {}
        }
        data(&mut st).deploy_job = None;
        p.save(&st)?;
    }

    let vm = match vm {
        Some(v) => v,
        None => deploy(p, machine, plan, &vm_name, key, &mut st).await?,
    };
    let d = data(&mut st);
    d.deploy = None;
    d.deploy_job = None;
    p.save(&st)?;

    let started = vm.state.as_deref() != Some("Running") || st.status != Status::Running;
    let vm = running(p, &mut st, vm).await?;

    let host_key = data(&mut st).host_key.clone().ok_or_else(|| {
            Hinted::new(
                format!("the host key of `{name}` is unknown (its VM was not made by this box)"),
                format!("run `box destroy {name}` and `box up {name}` to make a VM whose host key box knows"),
            )
        })?;

    // Tags and rules do not depend on each other: their jobs overlap.
    let shared = StdMutex::new(st);
    let (tagged, reached) = tokio::join!(
        tag(p, machine, &vm, &host_key),
        reachable(p, machine, plan, &vm, &shared)
    );
    let mut st = shared
        .into_inner()
        .map_err(|_| anyhow::anyhow!("the machine's state lock is poisoned"))?;
    tagged?;
    let (host, port, ports) = reached?;
    st.ssh = Some(SshTarget {
        host,
        port,
        user: machine.user.clone(),
        identity_file: key.private_path.clone(),
        host_key,
    });
    st.ports = ports;
    st.status = Status::Running;
    p.save(&st)?;
    super::team::after_up(p, machine, &vm, &mut st, started).await?;
    Ok(st)
}

fn forget_vm(st: &mut MachineState) {
    if let Some(id) = st.id.take() {
        st.forget(ResourceKind::VirtualMachine, &id);
    }
    // Rules made for the old VM stay recorded, so destroy still removes them.
    st.ssh = None;
    st.status = Status::NotCreated;
}

async fn deploy(
    p: &CloudStack,
    machine: &Machine,
    plan: &Plan,
    vm_name: &str,
    login: &super::keypair::Login,
    st: &mut MachineState,
) -> anyhow::Result<VirtualMachine> {
    let api = &p.api;
    let name = &machine.name;
    let host = crate::keys::generate(&format!("box:{}:{name}", p.env.project))
        .context("cannot generate the machine's SSH host key")?;
    let seed = Seed {
        instance_id: vm_name.to_string(),
        hostname: vm_name.to_string(),
        user: machine.user.clone(),
        authorized_keys: vec![login.public.clone()],
        host_key_private: Some(host.private_openssh.expose().into()),
        host_key_public: Some(host.public.clone()),
        hosts: Vec::new(),
        dhcp_nics: Vec::new(),
        private_nics: Vec::new(),
        extra_user_data: machine.user_data.clone(),
        watcher: crate::idle::watcher(machine),
        mounts: Vec::new(),
    };
    let user_data = base64::engine::general_purpose::STANDARD.encode(seed.user_data().expose());
    if user_data.len() > MAX_USER_DATA {
        return Err(Hinted::new(
            format!(
                "the cloud-init user data of `{name}` is {} bytes in base64, over CloudStack's limit of {MAX_USER_DATA}",
                user_data.len()
            ),
            "shorten `user_data` (move large files to a provisioner)",
        )
        .into());
    }

    let mut params = Params::new()
        .set("zoneid", &plan.zone_id)
        .set("templateid", &plan.template_id)
        .set("serviceofferingid", &plan.service_offering_id)
        .set("name", vm_name)
        .set("displayname", vm_name)
        .set("keypair", &login.keypair)
        .set("userdata", user_data)
        .opt("networkids", plan.network_id.clone())
        .opt("diskofferingid", plan.disk_offering_id.clone())
        .opt(
            "size",
            machine.cloudstack.data_disk_size.map(|s| s.to_string()),
        )
        .opt(
            "rootdisksize",
            machine
                .cloudstack
                .root_disk_size
                .or(machine.disk_size)
                .map(|s| s.to_string()),
        );
    let mut groups = plan.security_group_ids.clone();
    if plan.reach == Reach::SecurityGroup {
        if let Some(g) = &p.prepared.group {
            groups.insert(0, g.clone());
        }
    }
    if !groups.is_empty() {
        params.push("securitygroupids", groups.join(","));
    }
    if !plan.affinity_group_ids.is_empty() {
        params.push("affinitygroupids", plan.affinity_group_ids.join(","));
    }
    for (i, (k, v)) in machine.cloudstack.details.iter().enumerate() {
        params.push(format!("details[{i}].{k}"), v.clone());
    }

    // The intent first: a kill from here on is resumed by the VM's name.
    let d = data(st);
    d.deploy = Some(Deploy {
        name: vm_name.to_string(),
    });
    d.host_key = Some(host.public.clone());
    st.status = Status::Creating;
    p.save(st)?;
    p.ctx.printer.machine(
        name,
        &format!("deploying VM {vm_name} in zone {}", plan.zone_name),
    );

    let mut attempt = 1;
    let mut cleared_name = false;
    let started: anyhow::Result<_> = loop {
        match api.start("deployVirtualMachine", &params).await {
            Ok(x) => break Ok(x),
            // Our own VM, destroyed but not expunged, still holds the name.
            Err(e) if !cleared_name && name_taken(&e) => {
                cleared_name = true;
                match expunge_destroyed(p, vm_name).await {
                    Ok(true) => continue,
                    Ok(false) => {
                        break Err(convert(
                            e,
                            &format!("cannot deploy VM `{vm_name}` for `{name}`"),
                        ))
                    }
                    Err(hinted) => break Err(hinted),
                }
            }
            Err(e) if attempt < ATTEMPTS && transient(&e) => {
                tokio::time::sleep(super::api::backoff(attempt)).await;
                // The lost answer may have started a deploy: adopt it.
                if let Ok(Some(v)) = by_name(api, &p.env.id, vm_name).await {
                    st.id = Some(v.id.clone());
                    st.record(ResourceKind::VirtualMachine, &v.id, format!("VM {vm_name}"));
                    p.save(st)?;
                    return Ok(v);
                }
                attempt += 1;
            }
            Err(e) => {
                break Err(convert(
                    e,
                    &format!("cannot deploy VM `{vm_name}` for `{name}`"),
                ))
            }
        }
    };
    // Nothing was started: the intent goes, so the next `up` deploys afresh.
    let (job, first) = match started {
        Ok(x) => x,
        Err(e) => {
            data(st).deploy = None;
            st.status = Status::NotCreated;
            p.save(st)?;
            return Err(e);
        }
    };
    if let Some(j) = &job {
        if let Some(id) = &j.id {
            st.id = Some(id.clone());
            st.record(ResourceKind::VirtualMachine, id, format!("VM {vm_name}"));
        }
        data(st).deploy_job = Some(j.jobid.clone());
        p.save(st)?;
    }
    match api
        .finish::<VirtualMachine>("deployVirtualMachine", &job, &first)
        .await
    {
        Ok(v) => {
            st.id = Some(v.id.clone());
            st.record(ResourceKind::VirtualMachine, &v.id, format!("VM {vm_name}"));
            Ok(v)
        }
        Err(e @ Error::Job(_)) => Err(failed_deploy(p, st, e).await),
        Err(e) => Err(convert(
            e,
            &format!("waiting for VM `{vm_name}` of `{name}` to be deployed"),
        )),
    }
}

fn name_taken(e: &Error) -> bool {
    matches!(e, Error::Api(a) if a.errortext.to_lowercase().contains("already exists"))
}

/// Expunges this environment's destroyed VM that holds `vm_name`. True when
/// the name is free again; false when no such VM is ours; an error with a
/// hint when the cloud refuses to expunge it.
async fn expunge_destroyed(p: &CloudStack, vm_name: &str) -> anyhow::Result<bool> {
    let list = p
        .api
        .client
        .list_virtual_machines(&Params::new().set("name", vm_name).set("listall", "true"))
        .await
        .map_err(|e| convert(e, &format!("cannot look up VM `{vm_name}`")))?;
    let theirs = list.iter().find(|v| {
        v.name.as_deref() == Some(vm_name)
            && v.tag("box:env").is_some_and(|e| e != p.env.id.as_str())
    });
    if let Some(other) = theirs {
        return Err(anyhow::Error::new(Hinted::new(
            format!(
                "the name `{vm_name}` is taken by VM {} of another environment (a teammate's, in a shared account or project); box never adopts nor touches it",
                other.id
            ),
            "make `name_pattern` contain `{env}` (the default `{project}-{machine}-{env}` does), so each person's VMs have names of their own",
        )));
    }
    let Some(old) = list.iter().find(|v| {
        v.name.as_deref() == Some(vm_name) && gone(v) && v.tag("box:env") == Some(p.env.id.as_str())
    }) else {
        return Ok(false);
    };
    let params = Params::new().set("id", &old.id);
    match with_retries(|| p.api.client.expunge_virtual_machine(&params))
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if not_found(&e) => Ok(true),
        Err(e) => Err(anyhow::Error::new(Hinted::new(
            format!(
                "the name `{vm_name}` is still held by this environment's destroyed VM {}, and the cloud refused to expunge it: {e}",
                old.id
            ),
            "wait for the cloud to expunge it, or set another `name_pattern`; `expunge = true` avoids this next time",
        ))),
    }
}

/// A deploy job that failed may leave a VM in Error: remove it, so nothing
/// is left behind, and report the cloud's own message.
async fn failed_deploy(p: &CloudStack, st: &mut MachineState, e: Error) -> anyhow::Error {
    let name = st.name.clone();
    let mut left = None;
    if let Some(id) = st.id.clone() {
        if let Ok(Some(v)) = get(&p.api, &id).await {
            let removed = match remove_vm(&p.api, &id, true).await {
                Err(e) if refused(&e) => remove_vm(&p.api, &id, false).await,
                other => other,
            };
            if !gone(&v) && removed.is_err() {
                left = Some(id.clone());
            }
        }
    }
    if left.is_none() {
        forget_vm(st);
        st.resources
            .retain(|r| r.kind != ResourceKind::VirtualMachine);
    }
    let d = data(st);
    d.deploy = None;
    d.deploy_job = None;
    st.status = if left.is_some() {
        Status::Error
    } else {
        Status::NotCreated
    };
    let _ = p.save(st);
    let err = convert(e, &format!("deploying `{name}` failed"));
    match left {
        Some(id) => err.context(format!(
            "the failed VM {id} could not be removed; `box destroy {name}` retries"
        )),
        None => err,
    }
}

/// Brings the VM to Running: starts it when stopped, waits out transitions.
async fn running(
    p: &CloudStack,
    st: &mut MachineState,
    mut vm: VirtualMachine,
) -> anyhow::Result<VirtualMachine> {
    let api = &p.api;
    let name = st.name.clone();
    let started = Instant::now();
    loop {
        match vm.state.as_deref() {
            Some("Running") => return Ok(vm),
            Some("Stopped") => {
                p.ctx
                    .printer
                    .verbose(&format!("{name}: starting VM {}", vm.id));
                let params = Params::new().set("id", &vm.id);
                let (job, first) = api
                    .start("startVirtualMachine", &params)
                    .await
                    .map_err(|e| convert(e, &format!("cannot start the VM of `{name}`")))?;
                vm = api
                    .finish("startVirtualMachine", &job, &first)
                    .await
                    .map_err(|e| convert(e, &format!("waiting for the VM of `{name}` to start")))?;
            }
            Some("Error") => {
                return Err(Hinted::new(
                    format!(
                        "the VM of `{name}` ({}) is in state Error on the cloud",
                        vm.id
                    ),
                    format!("run `box destroy {name}` and `box up {name}`"),
                )
                .into())
            }
            other => {
                if started.elapsed() > VM_WAIT {
                    anyhow::bail!(
                        "timed out after {}s waiting for the VM of `{name}` ({}) to be Running; it is {}",
                        VM_WAIT.as_secs(),
                        vm.id,
                        other.unwrap_or("in no state")
                    );
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
                vm = get(api, &vm.id)
                    .await
                    .map_err(|e| convert(e, &format!("cannot look up the VM of `{name}`")))?
                    .ok_or_else(|| {
                        anyhow::anyhow!("the VM of `{name}` disappeared while box waited for it")
                    })?;
                if gone(&vm) {
                    forget_vm(st);
                    p.save(st)?;
                    anyhow::bail!("the VM of `{name}` was destroyed while box waited for it; run `box up {name}` again");
                }
            }
        }
    }
}

/// The tags that find this VM again; the host key rides along so an
/// adopted VM is still pinned.
async fn tag(
    p: &CloudStack,
    machine: &Machine,
    vm: &VirtualMachine,
    host_key: &str,
) -> anyhow::Result<()> {
    let env = &p.env;
    let mut wanted: Vec<(&str, &str)> = env.tags(&machine.name);
    if !host_key.is_empty() {
        wanted.push(("box:hostkey", host_key));
    }
    let missing: Vec<(&str, &str)> = wanted
        .into_iter()
        .filter(|(k, v)| vm.tag(k) != Some(*v))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let params = Params::new()
        .set("resourceids", &vm.id)
        .set("resourcetype", "UserVm")
        .tags(missing);
    with_retries(|| async { p.api.client.create_tags(&params).await.map(|_| ()) })
        .await
        .map_err(|e| convert(e, &format!("cannot tag the VM of `{}`", machine.name)))
}

/// Makes the machine reachable as its zone allows; the SSH host and port
/// and the forwarded ports.
async fn reachable(
    p: &CloudStack,
    machine: &Machine,
    plan: &Plan,
    vm: &VirtualMachine,
    st: &StdMutex<MachineState>,
) -> anyhow::Result<(String, u16, Vec<ForwardedPort>)> {
    let name = &machine.name;
    let nic = vm
        .default_ip()
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("the VM of `{name}` has no IP address"))?;
    let direct = |addr: &str| {
        machine
            .ports
            .iter()
            .map(|pm| ForwardedPort {
                guest: pm.guest,
                host: pm.guest,
                address: addr.to_string(),
                wanted: None,
            })
            .collect::<Vec<_>>()
    };
    let cidrs = allow_from(machine);
    match &plan.reach {
        Reach::SecurityGroup => Ok((nic.clone(), 22, direct(&nic))),
        Reach::Private => {
            // In a VPC the tier's ACL still decides who reaches the NIC.
            if let Some(gate) = reach::gate(p, plan, None)? {
                let mut open = vec![(22u16, "tcp".to_string())];
                open.extend(
                    machine
                        .ports
                        .iter()
                        .map(|pm| (pm.guest, pm.protocol.clone())),
                );
                futures_util::future::try_join_all(
                    open.iter()
                        .map(|(port, proto)| gate.open(p, *port, *port, proto, &cidrs, st)),
                )
                .await?;
                gate.prune(p, st).await?;
            }
            Ok((nic.clone(), 22, direct(&nic)))
        }
        Reach::PortForward { .. } => {
            let network = plan
                .network_id
                .as_deref()
                .ok_or_else(|| anyhow::anyhow!("`{name}` has no network for port forwarding"))?;
            let ip = p
                .prepared
                .ips
                .get(network)
                .ok_or_else(|| anyhow::anyhow!("no public IP was chosen for `{name}`"))?;
            let mut wants = vec![Want {
                guest: 22,
                public: None,
                protocol: "tcp".into(),
            }];
            wants.extend(machine.ports.iter().map(|pm| Want {
                guest: pm.guest,
                public: Some(pm.host),
                protocol: pm.protocol.clone(),
            }));
            let vm_id = vm.id.clone();
            let gate = reach::gate(p, plan, Some(ip))?
                .ok_or_else(|| anyhow::anyhow!("no gate was chosen for `{name}`"))?;
            // Each port's forward and gate rule go at once, all ports
            // concurrently: a machine waits for one rule job, not for all.
            let publics = futures_util::future::try_join_all(wants.iter().map(|w| {
                let (vm_id, cidrs, gate) = (&vm_id, &cidrs, &gate);
                async move {
                    let public = reach::forward(p, ip, network, vm_id, w, st).await?;
                    gate.open(p, public, w.guest, &w.protocol, cidrs, st)
                        .await?;
                    anyhow::Ok(public)
                }
            }))
            .await?;
            gate.prune(p, st).await?;
            let mut ssh_port = 22;
            let mut ports = Vec::new();
            for (w, public) in wants.iter().zip(publics) {
                if w.guest == 22 && w.public.is_none() {
                    ssh_port = public;
                } else {
                    ports.push(ForwardedPort {
                        guest: w.guest,
                        host: public,
                        address: ip.ipaddress.clone(),
                        wanted: None,
                    });
                }
            }
            Ok((ip.ipaddress.clone(), ssh_port, ports))
        }
        Reach::StaticNat => {
            let mut own = lock(st)?.clone();
            let ip = machine_ip(p, plan, vm, &mut own).await;
            *lock(st)? = own;
            let ip = ip?;
            p.rules.load(&p.api, &ip.id).await?;
            let mut open = vec![(22u16, "tcp".to_string())];
            open.extend(
                machine
                    .ports
                    .iter()
                    .map(|pm| (pm.guest, pm.protocol.clone())),
            );
            let gate = reach::gate(p, plan, Some(&ip))?
                .ok_or_else(|| anyhow::anyhow!("no gate was chosen for `{name}`"))?;
            futures_util::future::try_join_all(
                open.iter()
                    .map(|(port, proto)| gate.open(p, *port, *port, proto, &cidrs, st)),
            )
            .await?;
            gate.prune(p, st).await?;
            Ok((ip.ipaddress.clone(), 22, direct(&ip.ipaddress)))
        }
    }
}

fn lock(st: &StdMutex<MachineState>) -> anyhow::Result<std::sync::MutexGuard<'_, MachineState>> {
    st.lock()
        .map_err(|_| anyhow::anyhow!("the machine's state lock is poisoned"))
}

/// The machine's own public IP with static NAT to its VM.
async fn machine_ip(
    p: &CloudStack,
    plan: &Plan,
    vm: &VirtualMachine,
    st: &mut MachineState,
) -> anyhow::Result<PublicIpAddress> {
    let api = &p.api;
    let name = st.name.clone();
    let network = plan.network_id.clone().unwrap_or_default();
    let home = IpHome {
        network: &network,
        vpc: plan.vpc_id.as_deref(),
    };
    let recorded = st
        .resources
        .iter()
        .find(|r| r.kind == ResourceKind::PublicIp)
        .map(|r| r.id.clone());
    let mut ip = find_or_acquire(
        api,
        &p.env,
        &home,
        IpOwner::Machine(&name),
        recorded,
        &p.prepared.tagged_ips,
        st,
        |st, _, _| p.save(st),
    )
    .await?;
    if ip.isstaticnat != Some(true) || ip.virtualmachineid.as_deref() != Some(vm.id.as_str()) {
        // In a VPC the address is tied to no tier yet: CloudStack needs the tier.
        let params = Params::new()
            .set("ipaddressid", &ip.id)
            .set("virtualmachineid", &vm.id)
            .opt("networkid", plan.vpc_id.as_ref().map(|_| network.clone()));
        with_retries(|| api.client.enable_static_nat(&params))
            .await
            .map_err(|e| {
                convert(
                    e,
                    &format!("cannot enable static NAT from {} to `{name}`", ip.ipaddress),
                )
            })?;
        ip.isstaticnat = Some(true);
        ip.virtualmachineid = Some(vm.id.clone());
    }
    st.record(
        ResourceKind::StaticNat,
        &ip.id,
        format!("static NAT {} -> {name}", ip.ipaddress),
    );
    p.save(st)?;
    Ok(ip)
}

pub async fn halt(
    p: &CloudStack,
    mut st: MachineState,
    force: bool,
) -> anyhow::Result<MachineState> {
    let name = st.name.clone();
    let Some(id) = st.id.clone() else {
        st.status = Status::NotCreated;
        return Ok(st);
    };
    let params = Params::new()
        .set("id", &id)
        .set("forced", force.to_string());
    let result = async {
        let (job, first) = p.api.start("stopVirtualMachine", &params).await?;
        if let Some(j) = &job {
            data(&mut st).stop_job = Some(j.jobid.clone());
            let _ = p.save(&st);
        }
        p.api
            .finish_any("stopVirtualMachine", &job)
            .await
            .map(|_| first)
    }
    .await;
    data(&mut st).stop_job = None;
    match result {
        Ok(_) => {
            st.status = Status::Stopped;
            Ok(st)
        }
        Err(e) if not_found(&e) => {
            st.status = Status::Dead;
            Ok(st)
        }
        Err(e) => Err(convert(e, &format!("cannot stop the VM of `{name}`"))),
    }
}

async fn remove_vm(api: &Api, id: &str, expunge: bool) -> Result<(), Error> {
    let params = Params::new()
        .set("id", id)
        .set("expunge", expunge.to_string());
    match with_retries(|| async {
        api.client
            .destroy_virtual_machine(&params)
            .await
            .map(|_| ())
    })
    .await
    {
        Ok(()) => Ok(()),
        Err(e) if not_found(&e) => Ok(()),
        Err(e) => {
            // Destroying a VM already destroyed (without expunge) is done.
            if let Ok(Some(v)) = get(api, id).await {
                if gone(&v) && !expunge {
                    return Ok(());
                }
                if gone(&v) {
                    return with_retries(|| async {
                        api.client
                            .expunge_virtual_machine(&Params::new().set("id", id))
                            .await
                            .map(|_| ())
                    })
                    .await
                    .or_else(|e| if not_found(&e) { Ok(()) } else { Err(e) });
                }
            } else if let Ok(None) = get(api, id).await {
                return Ok(());
            }
            Err(e)
        }
    }
}

/// Removes the machine's rules, static NAT, VM and IP, in that order,
/// recording each removal; names what is left if something fails.
pub async fn destroy(p: &CloudStack, mut st: MachineState) -> anyhow::Result<()> {
    let api = &p.api;
    let name = st.name.clone();
    // Unset means "expunge if the cloud lets this account": a destroyed VM
    // that is kept holds its name and the project's security group.
    let expunge = p
        .ctx
        .project
        .machine(&name)
        .and_then(|m| m.cloudstack.expunge)
        .or(p.ctx.project.cloudstack.expunge);
    // A deploy whose answer never came: find its VM by name.
    if st.id.is_none() {
        let d = data(&mut st);
        let pending = d.deploy.as_ref().and(d.vm_name.clone());
        if let Some(vm_name) = pending {
            if let Ok(Some(v)) = by_name(api, &p.env.id, &vm_name).await {
                st.id = Some(v.id.clone());
                st.record(ResourceKind::VirtualMachine, &v.id, format!("VM {vm_name}"));
            }
        }
    }
    let name = name.as_str();
    let failures = ledger::destroy(
        &mut st,
        |r| async move {
            match r.kind {
                ResourceKind::VirtualMachine => {
                    match remove_vm(api, &r.id, expunge.unwrap_or(true)).await {
                        Err(e) if expunge.is_none() && refused(&e) => {
                            p.ctx.printer.warn(&format!(
                                "{name}: this account may not expunge VMs; the destroyed VM keeps its name until the cloud expunges it"
                            ));
                            remove_vm(api, &r.id, false).await
                        }
                        other => other,
                    }
                }
                ResourceKind::StaticNat => match ledger::remove(api, &r).await {
                    Err(e) if is_not_static_nat(&e) => Ok(()),
                    other => other,
                },
                _ => ledger::remove(api, &r).await,
            }
        },
        |st, r| {
            if r.kind == ResourceKind::VirtualMachine {
                st.id = None;
            }
            p.save(st)
        },
    )
    .await?;
    let failures: Vec<String> = (failures.iter())
        .map(|(r, e)| format!("{} ({} {}): {e}", r.note, r.kind, r.id))
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        st.status = Status::Error;
        p.save(&st)?;
        Err(Hinted::new(
            format!(
                "some resources of `{name}` are left on the cloud:\n  {}",
                failures.join("\n  ")
            ),
            format!("run `box destroy {name}` again; what was removed is no longer recorded"),
        )
        .into())
    }
}

/// The cloud refusing `expunge` to a non-admin account.
fn refused(e: &Error) -> bool {
    match e {
        Error::Api(a) => {
            let t = a.errortext.to_lowercase();
            matches!(a.errorcode, 401 | 431 | 531)
                && (t.contains("expunge") || t.contains("admin") || t.contains("permission"))
        }
        _ => false,
    }
}

fn is_not_static_nat(e: &Error) -> bool {
    matches!(e, Error::Api(a) if a.errortext.to_lowercase().contains("static nat") && a.errortext.to_lowercase().contains("not"))
}
