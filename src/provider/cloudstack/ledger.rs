//! The resources box made on the cloud, as recorded in `.box/`: a machine's
//! VM, rules (port forwards, firewall or VPC network ACL rules), static NAT
//! and IP, and the project's key pair, security group, IP and VPC ACL list.
//! Each is recorded the moment its id is known (before box waits on it),
//! forgotten once removed, and removed in reverse dependency order, so a
//! killed run leaves nothing the next `box destroy` does not know of.

use std::future::Future;

use cloudstack::{Error, Params};

use crate::state::{MachineState, ProjectState, Resource, ResourceKind};

use super::api::{not_found, with_retries, Api};

/// The order removal must follow: what needs another resource goes before
/// it (a rule before its VM, IP and ACL list, a VM before its security
/// group).
const REMOVAL_ORDER: [ResourceKind; 9] = [
    ResourceKind::FirewallRule,
    ResourceKind::NetworkAclRule,
    ResourceKind::PortForwardingRule,
    ResourceKind::StaticNat,
    ResourceKind::VirtualMachine,
    ResourceKind::PublicIp,
    ResourceKind::NetworkAclList,
    ResourceKind::SecurityGroup,
    ResourceKind::SshKeyPair,
];

/// A state that records resources: a machine's or the project's.
pub trait Ledger {
    fn resources(&mut self) -> &mut Vec<Resource>;

    /// Records a resource, once.
    fn record(&mut self, kind: ResourceKind, id: &str, note: impl Into<String>) {
        let resources = self.resources();
        if !resources.iter().any(|r| r.kind == kind && r.id == id) {
            resources.push(Resource {
                kind,
                id: id.into(),
                note: note.into(),
            });
        }
    }

    /// Forgets a resource that is gone.
    fn forget(&mut self, kind: ResourceKind, id: &str) {
        self.resources().retain(|r| !(r.kind == kind && r.id == id));
    }
}

impl Ledger for MachineState {
    fn resources(&mut self) -> &mut Vec<Resource> {
        &mut self.resources
    }
}

impl Ledger for ProjectState {
    fn resources(&mut self) -> &mut Vec<Resource> {
        &mut self.resources
    }
}

/// Removes every resource `state` records, in [`REMOVAL_ORDER`], with
/// `remove`. Each removal (or a resource already gone) is forgotten and
/// passed to `removed`, which saves the state; what could not be removed
/// stays recorded and is returned with the cloud's error.
pub async fn destroy<S, F, Fut>(
    state: &mut S,
    remove: F,
    mut removed: impl FnMut(&mut S, &Resource) -> anyhow::Result<()>,
) -> anyhow::Result<Vec<(Resource, Error)>>
where
    S: Ledger,
    F: Fn(Resource) -> Fut,
    Fut: Future<Output = Result<(), Error>>,
{
    let mut failures = Vec::new();
    for kind in REMOVAL_ORDER {
        let mine: Vec<Resource> = state
            .resources()
            .iter()
            .filter(|r| r.kind == kind)
            .cloned()
            .collect();
        for r in mine {
            match remove(r.clone()).await {
                Ok(()) => {}
                Err(e) if not_found(&e) => {}
                Err(e) => {
                    failures.push((r, e));
                    continue;
                }
            }
            state.forget(r.kind, &r.id);
            removed(state, &r)?;
        }
    }
    Ok(failures)
}

/// Removes a resource that one API call removes, with retries. A VM is
/// only destroyed here; the machine's own destroy decides about expunging.
pub async fn remove(api: &Api, r: &Resource) -> Result<(), Error> {
    let c = &api.client;
    let id = Params::new().set("id", &r.id);
    with_retries(|| async {
        match r.kind {
            ResourceKind::FirewallRule => c.delete_firewall_rule(&id).await.map(|_| ()),
            ResourceKind::PortForwardingRule => {
                c.delete_port_forwarding_rule(&id).await.map(|_| ())
            }
            ResourceKind::StaticNat => c
                .disable_static_nat(&Params::new().set("ipaddressid", &r.id))
                .await
                .map(|_| ()),
            ResourceKind::VirtualMachine => c.destroy_virtual_machine(&id).await.map(|_| ()),
            ResourceKind::PublicIp => c.disassociate_ip_address(&id).await.map(|_| ()),
            ResourceKind::SecurityGroup => c.delete_security_group(&id).await.map(|_| ()),
            ResourceKind::SshKeyPair => c
                .delete_ssh_key_pair(&Params::new().set("name", &r.id))
                .await
                .map(|_| ()),
            ResourceKind::NetworkAclRule => c.delete_network_acl(&id).await.map(|_| ()),
            // Shared with teammates: put back only once empty.
            ResourceKind::NetworkAclList => super::vpc::release(api, &r.id).await,
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::provider::ProviderKind;

    fn api_error(code: u16, text: &str) -> Error {
        Error::Api(cloudstack::ApiError {
            command: "test".into(),
            status: code,
            errorcode: code,
            cserrorcode: None,
            errortext: text.into(),
            expires_used: false,
        })
    }

    #[test]
    fn a_resource_is_recorded_once_and_forgotten() {
        let mut st = MachineState::new("web", ProviderKind::CloudStack);
        st.record(ResourceKind::PublicIp, "ip-1", "public IP");
        st.record(ResourceKind::PublicIp, "ip-1", "public IP again");
        assert_eq!(st.resources.len(), 1);
        st.forget(ResourceKind::PublicIp, "ip-1");
        assert!(st.resources.is_empty());
    }

    #[tokio::test]
    async fn destroy_goes_in_reverse_dependency_order_and_keeps_what_failed() {
        let mut st = MachineState::new("web", ProviderKind::CloudStack);
        st.record(ResourceKind::PublicIp, "ip", "public IP");
        st.record(ResourceKind::VirtualMachine, "vm", "VM");
        st.record(ResourceKind::PortForwardingRule, "pf", "forward");
        st.record(ResourceKind::FirewallRule, "fw", "firewall");
        st.record(ResourceKind::StaticNat, "nat", "static NAT");
        let calls = Mutex::new(Vec::new());
        let mut saved = Vec::new();
        let failures = destroy(
            &mut st,
            |r| {
                calls.lock().unwrap().push(r.id.clone());
                async move {
                    match r.id.as_str() {
                        "nat" => Err(api_error(530, "internal error")),
                        "pf" => Err(api_error(431, "entity does not exist")),
                        _ => Ok(()),
                    }
                }
            },
            |st, r| {
                saved.push((r.id.clone(), st.resources.len()));
                Ok(())
            },
        )
        .await
        .unwrap();
        assert_eq!(calls.into_inner().unwrap(), ["fw", "pf", "nat", "vm", "ip"]);
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].0.id, "nat");
        // Each removal is forgotten before the state is saved.
        assert_eq!(
            saved,
            [
                ("fw".to_string(), 4),
                ("pf".to_string(), 3),
                ("vm".to_string(), 2),
                ("ip".to_string(), 1)
            ]
        );
        assert_eq!(st.resources.len(), 1);
        assert_eq!(st.resources[0].id, "nat");
    }
}
