//! The project's shared resources on the cloud: the SSH key pair, the
//! security group of Basic/SG zones and the public IP acquired with
//! `public_ip = "auto"`. Made once per `up` (in `prepare`), recorded in
//! `.box/project.json`, and removed when the project's last machine goes.
//!
//! Each is found by its deterministic name or by tag before it is made, so
//! a run killed half-way, or a lost `.box/`, never leaves a second copy.

use std::collections::BTreeSet;

use cloudstack::{Params, PublicIpAddress, SecurityGroup};

use crate::state::{ProjectState, ResourceKind};

use super::api::{convert, with_retries, Api};
use super::ledger::{self, Ledger};
use super::{Env, ProjectIp, SecurityGroup as GroupRecord};

/// The project's security group with ingress for SSH and every port from
/// `allow_from`. Returns its id.
pub async fn ensure_security_group(
    api: &Api,
    env: &Env,
    ports: &BTreeSet<(String, u16)>,
    cidrs: &[String],
    ps: &mut ProjectState,
) -> anyhow::Result<String> {
    let name = env.group_name();
    let find = || async {
        api.client
            .list_security_groups(&Params::new().set("securitygroupname", &name))
            .await
            .map(|l| {
                l.into_iter()
                    .find(|g| g.name.as_deref() == Some(name.as_str()))
            })
    };
    let group: SecurityGroup = with_retries(|| async {
        if let Some(g) = find().await? {
            return Ok(g);
        }
        match api
            .client
            .create_security_group(&Params::new().set("name", &name).set(
                "description",
                format!("box project {} ({})", env.project, env.id),
            ))
            .await
        {
            Ok(g) => Ok(g),
            Err(e) => match find().await {
                Ok(Some(g)) => Ok(g),
                _ => Err(e),
            },
        }
    })
    .await
    .map_err(|e| convert(e, &format!("cannot create the security group `{name}`")))?;
    ps.record(
        ResourceKind::SecurityGroup,
        &group.id,
        format!("security group {name}"),
    );
    ps.providers.cloudstack.security_group = Some(GroupRecord {
        id: group.id.clone(),
        name: name.clone(),
    });

    for (protocol, port) in ports {
        for cidr in cidrs {
            let present = group.ingressrule.iter().any(|r| {
                r.protocol
                    .as_deref()
                    .is_some_and(|p| p.eq_ignore_ascii_case(protocol))
                    && r.startport == Some(*port)
                    && r.endport.unwrap_or(*port) == *port
                    && r.cidr.as_deref() == Some(cidr.as_str())
            });
            if present {
                continue;
            }
            let params = Params::new()
                .set("securitygroupid", &group.id)
                .set("protocol", protocol)
                .set("startport", port.to_string())
                .set("endport", port.to_string())
                .set("cidrlist", cidr);
            with_retries(|| async {
                match api.client.authorize_security_group_ingress(&params).await {
                    Ok(_) => Ok(()),
                    Err(e) => {
                        // The rule may have been added by the attempt whose answer was lost.
                        if let Ok(Some(g)) = find().await {
                            if g.ingressrule.iter().any(|r| {
                                r.startport == Some(*port)
                                    && r.cidr.as_deref() == Some(cidr.as_str())
                            }) {
                                return Ok(());
                            }
                        }
                        Err(e)
                    }
                }
            })
            .await
            .map_err(|e| {
                convert(
                    e,
                    &format!("cannot allow {protocol}/{port} from {cidr} in `{name}`"),
                )
            })?;
        }
    }
    Ok(group.id)
}

/// Where a public IP is acquired: on an isolated network, or in the VPC of
/// a tier (CloudStack takes the VPC's id, and ties the IP to the tier with
/// its first rule).
pub struct IpHome<'a> {
    pub network: &'a str,
    pub vpc: Option<&'a str>,
}

impl IpHome<'_> {
    /// Whether `ip` serves this network: tied to it, or a VPC address not
    /// tied to another tier yet.
    fn holds(&self, ip: &PublicIpAddress) -> bool {
        let tied = ip
            .associatednetworkid
            .as_deref()
            .or(ip.networkid.as_deref());
        tied == Some(self.network)
            || (self.vpc.is_some() && ip.vpcid.as_deref() == self.vpc && tied.is_none())
    }

    fn params(&self) -> Params {
        // The project (Scope) rides on the client: associateIpAddress is scoped.
        match self.vpc {
            Some(vpc) => Params::new().set("vpcid", vpc),
            None => Params::new().set("networkid", self.network),
        }
    }
}

/// Whose public IP: the project's (the port forwards of its machines) or
/// one machine's (static NAT); its tags say which.
#[derive(Clone, Copy)]
pub enum IpOwner<'a> {
    Project,
    Machine(&'a str),
}

impl IpOwner<'_> {
    fn tagged_on(&self, ip: &PublicIpAddress) -> bool {
        ip.tags.iter().any(|t| match self {
            IpOwner::Project => t.key == "box:role" && t.value == "project",
            IpOwner::Machine(m) => t.key == "box:machine" && t.value == *m,
        })
    }

    fn note(&self, address: Option<&str>) -> String {
        let address = address.map(|a| format!(" {a}")).unwrap_or_default();
        match self {
            IpOwner::Project => format!("the project's public IP{address}"),
            IpOwner::Machine(m) => format!("public IP{address} of {m}"),
        }
    }
}

/// A public IP box acquires for `owner`: the one `recorded` in the ledger
/// or tagged for this environment, else a new one, recorded in `ledger`
/// (and passed to `keep`, which saves it) before box waits for it, then
/// tagged. The one path for the project's IP and a machine's.
#[allow(clippy::too_many_arguments)]
pub async fn find_or_acquire<S: Ledger>(
    api: &Api,
    env: &Env,
    home: &IpHome<'_>,
    owner: IpOwner<'_>,
    recorded: Option<String>,
    tagged: &[PublicIpAddress],
    ledger: &mut S,
    mut keep: impl FnMut(&mut S, &str, Option<&str>) -> anyhow::Result<()>,
) -> anyhow::Result<PublicIpAddress> {
    let found = tagged
        .iter()
        .find(|ip| Some(&ip.id) == recorded.as_ref() || (home.holds(ip) && owner.tagged_on(ip)))
        .cloned();
    let found = match (found, &recorded) {
        (Some(ip), _) => Some(ip),
        (None, Some(id)) => api
            .client
            .list_public_ip_addresses(&Params::new().set("id", id).set("listall", "true"))
            .await
            .map_err(|e| convert(e, "cannot list public IP addresses"))?
            .into_iter()
            .find(|ip| &ip.id == id),
        (None, None) => None,
    };
    let ip = match found {
        Some(ip) => ip,
        None => {
            let whose = match owner {
                IpOwner::Project => "a public IP address".to_string(),
                IpOwner::Machine(m) => format!("a public IP for `{m}`"),
            };
            let (job, first) = api
                .start_when_refused("associateIpAddress", &home.params())
                .await
                .map_err(|e| convert(e, &format!("cannot acquire {whose}")))?;
            // Recorded before the wait: a kill now leaves a known IP, not an orphan.
            if let Some(id) = job.as_ref().and_then(|j| j.id.clone()) {
                ledger.record(ResourceKind::PublicIp, &id, owner.note(None));
                keep(ledger, &id, None)?;
            }
            let ip: PublicIpAddress = api
                .finish("associateIpAddress", &job, &first)
                .await
                .map_err(|e| convert(e, &format!("waiting for {whose} to be acquired")))?;
            let machine = match owner {
                IpOwner::Project => None,
                IpOwner::Machine(m) => Some(m),
            };
            tag_ip(api, env, &ip.id, machine).await?;
            ip
        }
    };
    ledger.record(
        ResourceKind::PublicIp,
        &ip.id,
        owner.note(Some(&ip.ipaddress)),
    );
    keep(ledger, &ip.id, Some(&ip.ipaddress))?;
    Ok(ip)
}

/// The project's own public IP on a network (`public_ip = "auto"`): the one
/// recorded or tagged for this environment, else a newly acquired one.
pub async fn ensure_project_ip(
    api: &Api,
    env: &Env,
    home: &IpHome<'_>,
    tagged: &[PublicIpAddress],
    ps: &mut ProjectState,
) -> anyhow::Result<PublicIpAddress> {
    let network = home.network.to_string();
    let recorded = ps
        .providers
        .cloudstack
        .ips
        .get(&network)
        .map(|ip| ip.id.clone());
    find_or_acquire(
        api,
        env,
        home,
        IpOwner::Project,
        recorded,
        tagged,
        ps,
        |ps, id, address| {
            ps.providers.cloudstack.ips.insert(
                network.clone(),
                ProjectIp {
                    id: id.to_string(),
                    address: address.map(str::to_string),
                },
            );
            super::save_project(env, ps)
        },
    )
    .await
}

/// Tags an IP box acquired, so a lost `.box/` finds it again.
pub async fn tag_ip(
    api: &Api,
    env: &Env,
    ip_id: &str,
    machine: Option<&str>,
) -> anyhow::Result<()> {
    let role = if machine.is_some() {
        "machine"
    } else {
        "project"
    };
    let mut tags = vec![
        ("box:project", env.project.as_str()),
        ("box:env", env.id.as_str()),
        ("box:role", role),
    ];
    if let Some(m) = machine {
        tags.push(("box:machine", m));
    }
    let params = Params::new()
        .set("resourceids", ip_id)
        .set("resourcetype", "PublicIpAddress")
        .tags(tags);
    with_retries(|| async { api.client.create_tags(&params).await.map(|_| ()) })
        .await
        .map_err(|e| convert(e, "cannot tag the public IP address"))
}

/// Removes the project's resources. Each removal is recorded at once; what
/// could not be removed is named in the error.
pub async fn destroy(api: &Api, env: &Env, ps: &mut ProjectState) -> anyhow::Result<()> {
    // The key pair and group are found by name even when `.box/` was lost.
    let keypair = env.keypair_name();
    ps.record(ResourceKind::SshKeyPair, &keypair, "the project's SSH key");
    if let Ok(groups) = api
        .client
        .list_security_groups(&Params::new().set("securitygroupname", env.group_name()))
        .await
    {
        for g in groups
            .iter()
            .filter(|g| g.name.as_deref() == Some(env.group_name().as_str()))
        {
            ps.record(
                ResourceKind::SecurityGroup,
                &g.id,
                format!("security group {}", env.group_name()),
            );
        }
    }
    let failures = ledger::destroy(
        ps,
        |r| async move { ledger::remove(api, &r).await },
        |ps, r| {
            ps.providers.cloudstack.forget(&r.id);
            if r.kind == ResourceKind::SshKeyPair {
                ps.providers.cloudstack.keypair_public = None;
            }
            super::save_project(env, ps)
        },
    )
    .await?;
    let failures: Vec<String> = (failures.iter())
        .map(|(r, e)| format!("{} ({}): {e}", r.note, r.id))
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(anyhow::Error::new(crate::error::Hinted::new(
            format!(
                "some project resources are left on the cloud:\n  {}",
                failures.join("\n  ")
            ),
            if failures.iter().any(|f| f.contains("in use")) {
                "the cloud keeps a destroyed VM, and its security group, until it expunges it; run `box destroy --force` again later, or set `expunge = true`"
            } else {
                "run `box destroy --force` again once the cause is fixed"
            },
        )))
    }
}
