//! `box destroy --env ID`: destroy a forgotten environment from any folder.
//!
//! - If this host's index knows the environment and its project folder
//!   still has machine state in `.box/`, that state drives an ordinary
//!   `box destroy` of the project (with the Boxfile if it is still there,
//!   else from the state alone): every recorded resource goes.
//! - Otherwise its resources are found on every configured CloudStack
//!   profile and project by the tag `box:env=ID`, and removed: port
//!   forwarding and firewall rules to its VMs, static NAT, its VMs
//!   (expunged where the account may), its tagged public IPs, then its key
//!   pair and security group (named `box-<project>-<ID>`).
//!
//! A teammate's environment (another `box:owner`) also needs `--others`
//! and a `yes` typed on a terminal: `--force` never skips that question,
//! and without a terminal it is refused, so no script destroys someone
//! else's work by accident.

use std::collections::BTreeSet;
use std::io::IsTerminal;

use cloudstack::{Params, VirtualMachine};

use crate::cli::DestroyArgs;
use crate::cloud_client::client_error;
use crate::error::{ExitStatus, Hinted};
use crate::index::Index;
use crate::project;

use super::environments::{self, Account, Scope};
use super::workspace::Workspace;
use super::Settings;

pub(crate) async fn run(g: &Settings, args: DestroyArgs) -> anyhow::Result<ExitStatus> {
    let id = args.env.clone().unwrap_or_default();
    check_id(&id)?;
    let index = Index::new(&g.paths);
    let locals = environments::local_envs(&index)?;
    let local = locals.iter().find(|e| e.entry.env == id);

    if let Some(local) = local.filter(|l| !l.stale) {
        let root = local.root();
        g.printer.info(&format!(
            "environment {id} is the project in {}",
            root.display()
        ));
        let settings = Settings {
            cwd: root.to_path_buf(),
            printer: g.printer.clone(),
            isolated: g.isolated,
            paths: g.paths.clone(),
            profile: g.profile.clone(),
            trust: g.trust,
        };
        let ws = match Workspace::load(&settings) {
            Ok(ws) if ws.root() == root => ws,
            _ => Workspace::from_state(&settings, root, &local.entry.project)?,
        };
        let args = DestroyArgs {
            env: None,
            others: false,
            machines: Vec::new(),
            ..args
        };
        return Box::pin(super::destroy::destroy(&settings, ws, args)).await;
    }

    let me = project::local_user();
    let mut found: Vec<(Account, Scope, Vec<VirtualMachine>)> = Vec::new();
    // A VM seen through two accounts (members of one project) goes once.
    let mut seen = BTreeSet::new();
    // A cloud that cannot be listed is named; the others are still searched.
    let mut unlisted = Vec::new();
    for account in environments::accounts(g) {
        let scopes = match environments::scopes(&account).await {
            Ok(s) => s,
            Err(e) => {
                unlisted.push(format!("profile `{}`: {e:#}", account.profile));
                continue;
            }
        };
        for scope in scopes {
            match find(&account, &scope, &id).await {
                Ok((mut vms, leftovers)) => {
                    vms.retain(|vm| seen.insert((account.endpoint.clone(), vm.id.clone())));
                    if !vms.is_empty() || leftovers {
                        found.push((account.clone(), scope, vms));
                    }
                }
                Err(e) => unlisted.push(format!("profile `{}`: {e:#}", account.profile)),
            }
        }
    }
    if !unlisted.is_empty() {
        if found.is_empty() {
            return Err(Hinted::new(
                format!(
                    "environment `{id}` was not found, and some clouds could not be searched:\n  {}",
                    unlisted.join("\n  ")
                ),
                "run the command again once those clouds answer",
            )
            .into());
        }
        for u in &unlisted {
            g.printer.warn(&format!(
                "not searched for environment {id} (anything of it there stays): {u}"
            ));
        }
    }
    let anywhere = !found.is_empty();
    if !anywhere {
        if let Some(l) = local {
            index.forget(std::slice::from_ref(&l.entry.root))?;
            g.printer.info(&format!(
                "environment {id} had no state left in {} and nothing on the clouds; forgot it",
                l.entry.root.display()
            ));
            return Ok(ExitStatus::Success);
        }
        return Err(Hinted::new(
            format!("no environment `{id}` on this host or on any configured cloud"),
            "run `box ls --all` to see the environment ids",
        )
        .into());
    }

    let owners: BTreeSet<String> = found
        .iter()
        .flat_map(|(_, _, vms)| vms.iter().filter_map(|vm| vm.tag("box:owner")))
        .map(str::to_string)
        .collect();
    let others: Vec<&String> = owners.iter().filter(|o| **o != me).collect();
    let names: Vec<String> = found
        .iter()
        .flat_map(|(_, _, vms)| vms.iter())
        .map(|vm| vm.name.clone().unwrap_or_else(|| vm.id.clone()))
        .collect();
    let what = if names.is_empty() {
        format!("the leftovers of environment {id}")
    } else {
        format!("environment {id} ({})", names.join(", "))
    };
    if !others.is_empty() {
        let whose = others
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        if !args.others {
            return Err(Hinted::new(
                format!("{what} belongs to {whose}, not to you ({me})"),
                "add `--others` to destroy a teammate's environment; you will be asked to confirm on a terminal",
            )
            .into());
        }
        if !std::io::stdin().is_terminal() {
            return Err(Hinted::new(
                format!("refusing to destroy {whose}'s {what} without a confirmation typed on a terminal"),
                "run the command from a terminal; --force does not skip this question for a teammate's environment",
            )
            .into());
        }
        let answer = g.printer.prompt(&format!(
            "{what} belongs to {whose}. Type `yes` to destroy it and everything box made for it:"
        ))?;
        if answer.trim() != "yes" {
            g.printer.info("nothing destroyed");
            return Ok(ExitStatus::Failure);
        }
    } else if !args.force {
        if !std::io::stdin().is_terminal() {
            return Err(Hinted::new(
                format!("refusing to destroy {what} without confirmation"),
                format!("run `box destroy --env {id} --force` to destroy without asking"),
            )
            .into());
        }
        let answer = g.printer.prompt(&format!(
            "Destroy {what} and everything box made for it? [y/N]"
        ))?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            g.printer.info("nothing destroyed");
            return Ok(ExitStatus::Failure);
        }
    }

    for (account, scope, vms) in &found {
        sweep(g, account, scope, &id, vms).await?;
    }
    if let Some(l) = local {
        index.forget(std::slice::from_ref(&l.entry.root))?;
    }
    g.printer.info(&format!("destroyed {what}"));
    Ok(ExitStatus::Success)
}

/// An environment id as `box ls` shows it. Anything else is refused: the
/// id ends the names of the key pair and group box deletes, so an empty
/// or odd one must never match other environments' resources.
fn check_id(id: &str) -> anyhow::Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 32
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(Hinted::new(
            format!(
                "`{id}` is not an environment id (lowercase letters and digits, like `q81mzt`)"
            ),
            "run `box ls --all` to see the environment ids",
        )
        .into())
    }
}

/// Environment `id`'s VMs in one scope, and whether other resources of it
/// (tagged IPs, its key pair or group) are there.
async fn find(
    account: &Account,
    scope: &Scope,
    id: &str,
) -> anyhow::Result<(Vec<VirtualMachine>, bool)> {
    let vms = environments::cloud_vms(account, scope, None, Some(id)).await?;
    let leftovers = !tagged_ips(account, scope, id).await?.is_empty()
        || !named(account, scope, id).await?.is_empty();
    Ok((vms, leftovers))
}

/// The public IPs box tagged for this environment (never a source NAT IP).
async fn tagged_ips(
    account: &Account,
    scope: &Scope,
    id: &str,
) -> anyhow::Result<Vec<cloudstack::PublicIpAddress>> {
    Ok(account
        .client
        .list_public_ip_addresses(&scope.params().tags([("box:env", id)]))
        .await
        .map_err(client_error)?
        .into_iter()
        .filter(|ip| ip.tags.iter().any(|t| t.key == "box:env" && t.value == id))
        .filter(|ip| ip.issourcenat != Some(true))
        .collect())
}

/// The key pairs and security groups named for this environment
/// (`box-<project>-<ID>`): (kind, id or name).
async fn named(account: &Account, scope: &Scope, id: &str) -> anyhow::Result<Vec<Named>> {
    let ours = |name: &str| name.starts_with("box-") && name.ends_with(&format!("-{id}"));
    let mut out = Vec::new();
    for k in account
        .client
        .list_ssh_key_pairs(&scope.params())
        .await
        .map_err(client_error)?
    {
        if ours(&k.name) {
            out.push(Named::KeyPair(k.name));
        }
    }
    // A cloud without security groups (Advanced zones only) may refuse the list.
    if let Ok(groups) = account.client.list_security_groups(&scope.params()).await {
        for sg in groups {
            if sg.name.as_deref().is_some_and(ours) {
                out.push(Named::Group(sg.id, sg.name.unwrap_or_default()));
            }
        }
    }
    Ok(out)
}

enum Named {
    KeyPair(String),
    /// Id and name.
    Group(String, String),
}

/// Removes everything of environment `id` in one scope, dependents first.
async fn sweep(
    g: &Settings,
    account: &Account,
    scope: &Scope,
    id: &str,
    vms: &[VirtualMachine],
) -> anyhow::Result<()> {
    let c = &account.client;
    let vm_ids: BTreeSet<&str> = vms.iter().map(|vm| vm.id.as_str()).collect();
    let ips = tagged_ips(account, scope, id).await?;
    let ip_ids: BTreeSet<&str> = ips.iter().map(|ip| ip.id.as_str()).collect();

    // Port forwards to its VMs or on its IPs, and the firewall rules that
    // opened those ports.
    let forwards = c
        .list_port_forwarding_rules(&scope.params())
        .await
        .map_err(client_error)?;
    let mut opened = BTreeSet::new();
    for rule in forwards.iter().filter(|r| {
        r.virtualmachineid
            .as_deref()
            .is_some_and(|v| vm_ids.contains(v))
            || r.ipaddressid.as_deref().is_some_and(|i| ip_ids.contains(i))
    }) {
        if let (Some(ip), Some(port)) = (&rule.ipaddressid, rule.publicport) {
            opened.insert((ip.clone(), port));
        }
        g.printer
            .verbose(&format!("deleting port forwarding rule {}", rule.id));
        c.delete_port_forwarding_rule(&Params::new().set("id", &rule.id))
            .await
            .map_err(client_error)?;
    }
    let firewall = c
        .list_firewall_rules(&scope.params())
        .await
        .map_err(client_error)?;
    for rule in firewall.iter().filter(|r| {
        r.ipaddressid.as_deref().is_some_and(|i| {
            ip_ids.contains(i)
                || r.startport
                    .is_some_and(|p| opened.contains(&(i.to_string(), p)))
        })
    }) {
        g.printer
            .verbose(&format!("deleting firewall rule {}", rule.id));
        c.delete_firewall_rule(&Params::new().set("id", &rule.id))
            .await
            .map_err(client_error)?;
    }
    // In a VPC tier: the network ACL rules box marked as this
    // environment's (`reason` = `box <project> <ID> <machine>`). A cloud
    // or zone without VPCs may refuse the list: then there are none.
    if let Ok(acls) = c.list_network_acls(&scope.params()).await {
        for rule in acls.iter().filter(|r| {
            let words: Vec<&str> = r
                .reason
                .as_deref()
                .unwrap_or("")
                .split_whitespace()
                .collect();
            words.first() == Some(&"box") && words.get(2) == Some(&id)
        }) {
            g.printer
                .verbose(&format!("deleting network ACL rule {}", rule.id));
            c.delete_network_acl(&Params::new().set("id", &rule.id))
                .await
                .map_err(client_error)?;
        }
    }
    for ip in ips.iter().filter(|ip| ip.isstaticnat == Some(true)) {
        c.disable_static_nat(&Params::new().set("ipaddressid", &ip.id))
            .await
            .map_err(client_error)?;
    }

    for vm in vms {
        let name = vm.name.as_deref().unwrap_or(&vm.id);
        g.printer.machine(
            vm.tag("box:machine").unwrap_or(name),
            &format!("destroying VM {name}"),
        );
        let expunged = c
            .destroy_virtual_machine(&Params::new().set("id", &vm.id).set("expunge", "true"))
            .await;
        if let Err(e) = expunged {
            // An account that may not expunge still destroys; the cloud
            // expunges later.
            g.printer
                .verbose(&format!("expunge refused ({e}); destroying only"));
            c.destroy_virtual_machine(&Params::new().set("id", &vm.id))
                .await
                .map_err(client_error)?;
        }
    }

    for ip in &ips {
        g.printer
            .verbose(&format!("releasing public IP {}", ip.ipaddress));
        c.disassociate_ip_address(&Params::new().set("id", &ip.id))
            .await
            .map_err(client_error)?;
    }
    for n in named(account, scope, id).await? {
        match n {
            Named::KeyPair(name) => {
                g.printer.verbose(&format!("deleting key pair {name}"));
                let mut p = Params::new().set("name", &name);
                if let Some((pid, _)) = &scope.project {
                    p = p.set("projectid", pid);
                }
                c.delete_ssh_key_pair(&p).await.map_err(client_error)?;
            }
            Named::Group(gid, name) => {
                g.printer
                    .verbose(&format!("deleting security group {name}"));
                c.delete_security_group(&Params::new().set("id", &gid))
                    .await
                    .map_err(|e| {
                        anyhow::Error::new(Hinted::new(
                            format!("cannot delete security group {name}: {e}"),
                            "a destroyed VM that is not expunged yet still holds it; run the command again once the cloud has expunged it",
                        ))
                    })?;
            }
        }
    }
    Ok(())
}
