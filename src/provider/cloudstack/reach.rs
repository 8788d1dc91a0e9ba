//! Making a machine reachable in an Advanced zone: port forwarding from a
//! free public port to 22 and to each of the Boxfile's ports, or a public
//! IP of its own with static NAT; and a [`Gate`] per port limited to
//! `allow_from`: a firewall rule on an isolated network, a rule of the
//! tier's network ACL list in a VPC.
//!
//! The rules already on an IP are read once per run (in `prepare`), so a
//! rule made by a killed run is found and adopted instead of made twice, and
//! free public ports are chosen without asking the cloud per machine.

use std::collections::{BTreeMap, BTreeSet};

use cloudstack::{Error, FirewallRule, NetworkAcl, Params, PortForwardingRule, PublicIpAddress};
use std::sync::Mutex as StdMutex;

use tokio::sync::Mutex;

use crate::state::{MachineState, Resource, ResourceKind};

use super::api::{convert, not_found, transient, with_retries, Api, ATTEMPTS};
use super::ledger::{self, Ledger as _};
use super::names::Plan;
use super::vpc::{self, TierAcl};
use super::CloudStack;

/// Where the search for a free public port for SSH starts.
const FIRST_SSH_PORT: u16 = 2222;

/// What is known of one public IP's rules.
#[derive(Default)]
pub struct IpRules {
    pub pf: Vec<PortForwardingRule>,
    pub fw: Vec<FirewallRule>,
    /// Public ports (with protocol) taken by anyone's rule or promised to a
    /// machine of this run.
    pub taken: BTreeSet<(String, u16)>,
}

/// Rules per public IP id, shared by the machines coming up in parallel.
#[derive(Default)]
pub struct Rules {
    by_ip: Mutex<BTreeMap<String, IpRules>>,
    /// The rules of each VPC tier's ACL list, read once.
    by_list: Mutex<BTreeMap<String, Vec<NetworkAcl>>>,
}

impl Rules {
    /// Notes a rule this run made on `ip_id`.
    async fn made(&self, ip_id: &str, note: impl FnOnce(&mut IpRules)) {
        note(
            self.by_ip
                .lock()
                .await
                .entry(ip_id.to_string())
                .or_default(),
        );
    }

    /// Reads the rules on `ip_id` (once per run).
    pub async fn load(&self, api: &Api, ip_id: &str) -> anyhow::Result<()> {
        if self.by_ip.lock().await.contains_key(ip_id) {
            return Ok(());
        }
        let loaded = read(api, ip_id).await?;
        self.by_ip
            .lock()
            .await
            .entry(ip_id.to_string())
            .or_insert(loaded);
        Ok(())
    }
}

async fn read(api: &Api, ip_id: &str) -> anyhow::Result<IpRules> {
    let p = Params::new()
        .set("ipaddressid", ip_id)
        .set("listall", "true");
    let pf = api
        .client
        .list_port_forwarding_rules(&p)
        .await
        .map_err(|e| convert(e, "cannot list port forwarding rules"))?;
    let fw = api
        .client
        .list_firewall_rules(&p)
        .await
        .map_err(|e| convert(e, "cannot list firewall rules"))?;
    let mut taken = BTreeSet::new();
    for r in &pf {
        if let (Some(proto), Some(start)) = (&r.protocol, r.publicport) {
            for port in start..=r.publicendport.unwrap_or(start).max(start) {
                taken.insert((proto.to_lowercase(), port));
            }
        }
    }
    Ok(IpRules { pf, fw, taken })
}

/// Records a resource in the machine's state and saves it at once; the
/// machine's rules are made concurrently, so the state is shared.
fn keep(
    p: &CloudStack,
    state: &StdMutex<MachineState>,
    kind: ResourceKind,
    id: &str,
    note: String,
) -> anyhow::Result<()> {
    let mut s = state
        .lock()
        .map_err(|_| anyhow::anyhow!("the machine's state lock is poisoned"))?;
    s.record(kind, id, note);
    p.save(&s)
}

/// One port to open: the guest port, the public port wanted (if any) and
/// the protocol.
#[derive(Debug, Clone)]
pub struct Want {
    pub guest: u16,
    pub public: Option<u16>,
    pub protocol: String,
}

/// A forward from `ip` to `vm_id`'s `want.guest`, adopted or made. Returns
/// the public port.
pub async fn forward(
    p: &CloudStack,
    ip: &PublicIpAddress,
    network_id: &str,
    vm_id: &str,
    want: &Want,
    state: &StdMutex<MachineState>,
) -> anyhow::Result<u16> {
    let (api, rules) = (&p.api, &*p.rules);
    let proto = want.protocol.to_lowercase();
    for attempt in 1..=ATTEMPTS {
        let port = {
            let mut map = rules.by_ip.lock().await;
            let on_ip = map.entry(ip.id.clone()).or_default();
            if let Some(r) = on_ip.pf.iter().find(|r| {
                r.virtualmachineid.as_deref() == Some(vm_id)
                    && r.privateport == Some(want.guest)
                    && r.protocol
                        .as_deref()
                        .is_some_and(|p| p.eq_ignore_ascii_case(&proto))
            }) {
                let public = r.publicport.unwrap_or(0);
                keep(
                    p,
                    state,
                    ResourceKind::PortForwardingRule,
                    &r.id,
                    format!("{}:{public} -> {}", ip.ipaddress, want.guest),
                )?;
                return Ok(public);
            }
            let port = free_port(&on_ip.taken, &proto, want);
            on_ip.taken.insert((proto.clone(), port));
            port
        };
        let params = Params::new()
            .set("ipaddressid", &ip.id)
            .set("privateport", want.guest.to_string())
            .set("publicport", port.to_string())
            .set("protocol", &proto)
            .set("virtualmachineid", vm_id)
            .set("networkid", network_id)
            .set("openfirewall", "false");
        let made: Result<PortForwardingRule, Error> =
            match api.start("createPortForwardingRule", &params).await {
                Ok((job, first)) => {
                    // Recorded before the wait, so a kill cannot orphan it.
                    if let Some(id) = job.as_ref().and_then(|j| j.id.clone()) {
                        keep(
                            p,
                            state,
                            ResourceKind::PortForwardingRule,
                            &id,
                            format!("{}:{port} -> {}", ip.ipaddress, want.guest),
                        )?;
                    }
                    api.finish("createPortForwardingRule", &job, &first).await
                }
                Err(e) => Err(e),
            };
        match made {
            Ok(rule) => {
                keep(
                    p,
                    state,
                    ResourceKind::PortForwardingRule,
                    &rule.id,
                    format!("{}:{port} -> {}", ip.ipaddress, want.guest),
                )?;
                rules.made(&ip.id, |on_ip| on_ip.pf.push(rule)).await;
                return Ok(port);
            }
            Err(e) if attempt < ATTEMPTS && (transient(&e) || e.errorcode() == Some(537)) => {
                // Someone took the port, or the answer was lost: read the
                // IP's rules again (ours included) and go round.
                tokio::time::sleep(super::api::backoff(attempt)).await;
                let fresh = read(api, &ip.id).await?;
                let mut map = rules.by_ip.lock().await;
                let on_ip = map.entry(ip.id.clone()).or_default();
                let mut taken = fresh.taken;
                taken.extend(on_ip.taken.iter().cloned());
                if e.errorcode() != Some(537) {
                    taken.remove(&(proto.clone(), port));
                }
                on_ip.taken = taken;
                on_ip.pf = fresh.pf;
                on_ip.fw = fresh.fw;
            }
            Err(e) => {
                return Err(convert(
                    e,
                    &format!(
                        "cannot forward {}:{port} to port {} of the machine",
                        ip.ipaddress, want.guest
                    ),
                ))
            }
        }
    }
    unreachable!("the loop returns on its last attempt")
}

fn free_port(taken: &BTreeSet<(String, u16)>, proto: &str, want: &Want) -> u16 {
    let is_free = |p: u16| !taken.contains(&(proto.to_string(), p));
    if let Some(p) = want.public.filter(|p| is_free(*p)) {
        return p;
    }
    let start = if want.guest == 22 {
        FIRST_SSH_PORT
    } else {
        want.public.unwrap_or(want.guest).max(1024)
    };
    (start..=u16::MAX)
        .chain(1024..start)
        .find(|p| is_free(*p))
        .unwrap_or(start)
}

/// What lets a forwarded port in, limited to `allow_from`: a firewall rule
/// on the public IP (isolated networks), or a rule of the tier's network ACL
/// list (VPC tiers, where CloudStack refuses firewall rules). Chosen from
/// the plan alone by [`gate`], so a VPC machine cannot reach the firewall.
pub enum Gate<'a> {
    Firewall(&'a PublicIpAddress),
    /// The tier's list, and the machine's rules this run found or made.
    Acl(&'a TierAcl, StdMutex<BTreeSet<String>>),
}

/// The gate of a machine on `plan`'s network: the tier's ACL list in a VPC
/// (none for a private machine that names no `allow_from`), else the
/// firewall of `ip` when there is one.
pub fn gate<'a>(
    p: &'a CloudStack,
    plan: &Plan,
    ip: Option<&'a PublicIpAddress>,
) -> anyhow::Result<Option<Gate<'a>>> {
    match (&plan.vpc_id, &plan.network_id) {
        (Some(_), Some(tier)) => match p.prepared.acls.get(tier) {
            Some(acl) => Ok(Some(Gate::Acl(acl, StdMutex::default()))),
            None if ip.is_none() => Ok(None),
            None => anyhow::bail!("no network ACL list was prepared for VPC tier {tier}"),
        },
        _ => Ok(ip.map(Gate::Firewall)),
    }
}

impl Gate<'_> {
    /// Opens the machine's `guest` port, published as `public`, to `cidrs`:
    /// the firewall sees the public port, the tier's ACL the guest's.
    pub async fn open(
        &self,
        p: &CloudStack,
        public: u16,
        guest: u16,
        protocol: &str,
        cidrs: &[String],
        st: &StdMutex<MachineState>,
    ) -> anyhow::Result<()> {
        match self {
            Gate::Firewall(ip) => firewall(p, ip, public, protocol, cidrs, st).await,
            Gate::Acl(acl, kept) => {
                let id = acl_rule(p, acl, guest, protocol, cidrs, st).await?;
                kept.lock()
                    .map_err(|_| anyhow::anyhow!("the gate's lock is poisoned"))?
                    .insert(id);
                Ok(())
            }
        }
    }

    /// Once every port is open: removes the machine's ACL rules that this
    /// run did not want (an `allow_from` or port taken out of the Boxfile),
    /// so narrowing `allow_from` narrows the tier's list too.
    pub async fn prune(&self, p: &CloudStack, st: &StdMutex<MachineState>) -> anyhow::Result<()> {
        let Gate::Acl(_, kept) = self else {
            return Ok(());
        };
        let kept = kept
            .lock()
            .map_err(|_| anyhow::anyhow!("the gate's lock is poisoned"))?
            .clone();
        let stale: Vec<Resource> = {
            let s = st
                .lock()
                .map_err(|_| anyhow::anyhow!("the machine's state lock is poisoned"))?;
            (s.resources.iter())
                .filter(|r| r.kind == ResourceKind::NetworkAclRule && !kept.contains(&r.id))
                .cloned()
                .collect()
        };
        for r in stale {
            match ledger::remove(&p.api, &r).await {
                Ok(()) => {}
                Err(e) if not_found(&e) => {}
                Err(e) => return Err(convert(e, &format!("cannot remove {}", r.note))),
            }
            let mut s = st
                .lock()
                .map_err(|_| anyhow::anyhow!("the machine's state lock is poisoned"))?;
            s.forget(r.kind, &r.id);
            p.save(&s)?;
        }
        Ok(())
    }
}

/// A rule of the tier's ACL list letting `cidrs` in to `port`: this
/// machine's own (recorded, or marked with its `reason`), adopted, else made
/// and recorded before box waits on it. A teammate's rule is never adopted,
/// so their destroy and ours never remove each other's.
async fn acl_rule(
    p: &CloudStack,
    acl: &TierAcl,
    port: u16,
    protocol: &str,
    cidrs: &[String],
    st: &StdMutex<MachineState>,
) -> anyhow::Result<String> {
    let (api, rules) = (&p.api, &*p.rules);
    let proto = protocol.to_lowercase();
    let (machine, recorded) = {
        let s = st
            .lock()
            .map_err(|_| anyhow::anyhow!("the machine's state lock is poisoned"))?;
        let ids: BTreeSet<String> = (s.resources.iter())
            .filter(|r| r.kind == ResourceKind::NetworkAclRule)
            .map(|r| r.id.clone())
            .collect();
        (s.name.clone(), ids)
    };
    let reason = vpc::reason(p, &machine);
    let ours = |r: &NetworkAcl| {
        r.startport == Some(port)
            && r.protocol
                .as_deref()
                .is_some_and(|p| p.eq_ignore_ascii_case(&proto))
            && r.traffictype
                .as_deref()
                .is_none_or(|t| t.eq_ignore_ascii_case("ingress"))
            && same_cidrs(&r.cidrlist, cidrs)
            && (recorded.contains(&r.id) || r.reason.as_deref() == Some(reason.as_str()))
    };
    let note = format!("ACL rule {proto}/{port} of `{machine}`");
    if !rules.by_list.lock().await.contains_key(&acl.list_id) {
        let loaded = vpc::rules_of(api, &acl.list_id).await?;
        rules
            .by_list
            .lock()
            .await
            .entry(acl.list_id.clone())
            .or_insert(loaded);
    }
    let existing = (rules.by_list.lock().await)
        .get(&acl.list_id)
        .and_then(|l| l.iter().find(|r| ours(r)).map(|r| r.id.clone()));
    if let Some(id) = existing {
        keep(p, st, ResourceKind::NetworkAclRule, &id, note)?;
        return Ok(id);
    }
    // No projectid: a rule belongs to its list, and the list to its VPC.
    let params = Params::new()
        .set("aclid", &acl.list_id)
        .set("protocol", &proto)
        .set("startport", port.to_string())
        .set("endport", port.to_string())
        .set("cidrlist", cidrs.join(","))
        .set("traffictype", "ingress")
        .set("action", "allow")
        .set("reason", &reason);
    let mut attempt = 1;
    let rule: NetworkAcl = loop {
        let made = match api.start("createNetworkACL", &params).await {
            Ok((job, first)) => {
                // Recorded before the wait, so a kill cannot orphan it.
                if let Some(id) = job.as_ref().and_then(|j| j.id.clone()) {
                    keep(p, st, ResourceKind::NetworkAclRule, &id, note.clone())?;
                }
                api.finish("createNetworkACL", &job, &first).await
            }
            Err(e) => Err(e),
        };
        match made {
            Ok(rule) => break rule,
            Err(e) if attempt < ATTEMPTS && transient(&e) => {
                // The lost answer may have made the rule: look before retrying.
                tokio::time::sleep(super::api::backoff(attempt)).await;
                attempt += 1;
                let recorded_now: BTreeSet<String> = {
                    let s = st
                        .lock()
                        .map_err(|_| anyhow::anyhow!("the machine's state lock is poisoned"))?;
                    (s.resources.iter())
                        .filter(|r| r.kind == ResourceKind::NetworkAclRule)
                        .map(|r| r.id.clone())
                        .collect()
                };
                if let Some(r) = vpc::rules_of(api, &acl.list_id)
                    .await?
                    .into_iter()
                    .find(|r| {
                        ours(r) || (recorded_now.contains(&r.id) && r.startport == Some(port))
                    })
                {
                    break r;
                }
            }
            Err(e) => {
                return Err(convert(
                    e,
                    &format!("cannot open {proto}/{port} in the VPC tier's network ACL list"),
                ))
            }
        }
    };
    keep(p, st, ResourceKind::NetworkAclRule, &rule.id, note)?;
    let id = rule.id.clone();
    rules
        .by_list
        .lock()
        .await
        .entry(acl.list_id.clone())
        .or_default()
        .push(rule);
    Ok(id)
}

/// A firewall rule opening `port` on `ip` to `cidrs`, adopted or made.
async fn firewall(
    p: &CloudStack,
    ip: &PublicIpAddress,
    port: u16,
    protocol: &str,
    cidrs: &[String],
    state: &StdMutex<MachineState>,
) -> anyhow::Result<()> {
    let (api, rules) = (&p.api, &*p.rules);
    let proto = protocol.to_lowercase();
    let existing = {
        let map = rules.by_ip.lock().await;
        map.get(&ip.id).and_then(|on_ip| {
            on_ip
                .fw
                .iter()
                // Only a rule open to exactly `allow_from` is ours to adopt:
                // a wider one (someone else's) must not become ours.
                .find(|r| {
                    r.startport == Some(port)
                        && r.protocol
                            .as_deref()
                            .is_some_and(|p| p.eq_ignore_ascii_case(&proto))
                        && same_cidrs(&r.cidrlist, cidrs)
                })
                .map(|r| r.id.clone())
        })
    };
    if let Some(id) = existing {
        return keep(
            p,
            state,
            ResourceKind::FirewallRule,
            &id,
            format!("firewall {}:{port}", ip.ipaddress),
        );
    }
    let params = Params::new()
        .set("ipaddressid", &ip.id)
        .set("protocol", &proto)
        .set("startport", port.to_string())
        .set("endport", port.to_string())
        .set("cidrlist", cidrs.join(","));
    let rule: FirewallRule = with_retries(|| async {
        let (job, first) = match api.start("createFirewallRule", &params).await {
            Ok(x) => x,
            Err(e) if transient(&e) => {
                // The lost answer may have made the rule: look before retrying.
                if let Some(r) = find_fw(api, &ip.id, port, &proto, cidrs).await {
                    return Ok(r);
                }
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        api.finish("createFirewallRule", &job, &first).await
    })
    .await
    .map_err(|e| {
        convert(
            e,
            &format!("cannot open {}:{port} in the firewall", ip.ipaddress),
        )
    })?;
    keep(
        p,
        state,
        ResourceKind::FirewallRule,
        &rule.id,
        format!("firewall {}:{port}", ip.ipaddress),
    )?;
    rules.made(&ip.id, |on_ip| on_ip.fw.push(rule)).await;
    Ok(())
}

fn same_cidrs(a: &[String], b: &[String]) -> bool {
    let mut a: Vec<&str> = a.iter().map(|s| s.trim()).collect();
    let mut b: Vec<&str> = b.iter().map(|s| s.trim()).collect();
    a.sort_unstable();
    b.sort_unstable();
    a == b
}

async fn find_fw(
    api: &Api,
    ip_id: &str,
    port: u16,
    proto: &str,
    cidrs: &[String],
) -> Option<FirewallRule> {
    api.client
        .list_firewall_rules(&Params::new().set("ipaddressid", ip_id))
        .await
        .ok()?
        .into_iter()
        .find(|r| {
            r.startport == Some(port)
                && r.protocol
                    .as_deref()
                    .is_some_and(|p| p.eq_ignore_ascii_case(proto))
                && same_cidrs(&r.cidrlist, cidrs)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want(guest: u16, public: Option<u16>) -> Want {
        Want {
            guest,
            public,
            protocol: "tcp".into(),
        }
    }

    #[test]
    fn ssh_gets_the_first_free_port_from_2222() {
        let mut taken = BTreeSet::new();
        taken.insert(("tcp".to_string(), 2222));
        assert_eq!(free_port(&taken, "tcp", &want(22, None)), 2223);
        assert_eq!(free_port(&taken, "udp", &want(22, None)), 2222);
    }

    #[test]
    fn a_wanted_public_port_is_used_when_free() {
        let mut taken = BTreeSet::new();
        assert_eq!(free_port(&taken, "tcp", &want(80, Some(8080))), 8080);
        taken.insert(("tcp".to_string(), 8080));
        assert_eq!(free_port(&taken, "tcp", &want(80, Some(8080))), 8081);
    }
}
