//! Typed commands: one method per API command box uses. Each takes the
//! command's parameters by their API names (see `listApis`) and returns the
//! typed answer, waiting for async jobs.

use serde_json::Value;

use crate::client::Client;
use crate::error::Error;
use crate::params::Params;
use crate::response;
use crate::types::*;

macro_rules! lists {
    ($($(#[$doc:meta])* $method:ident => $command:literal, $t:ty;)*) => {
        impl Client {
            $(
                $(#[$doc])*
                pub async fn $method(&self, params: &Params) -> Result<Vec<$t>, Error> {
                    self.list_of::<$t>($command, params).await
                }
            )*
        }
    };
}

macro_rules! objects {
    ($($(#[$doc:meta])* $method:ident => $command:literal, $t:ty;)*) => {
        impl Client {
            $(
                $(#[$doc])*
                pub async fn $method(&self, params: &Params) -> Result<$t, Error> {
                    self.object_of::<$t>($command, params).await
                }
            )*
        }
    };
}

macro_rules! successes {
    ($($(#[$doc:meta])* $method:ident => $command:literal;)*) => {
        impl Client {
            $(
                $(#[$doc])*
                pub async fn $method(&self, params: &Params) -> Result<Success, Error> {
                    self.success_of($command, params).await
                }
            )*
        }
    };
}

lists! {
    list_zones => "listZones", Zone;
    list_templates => "listTemplates", Template;
    list_service_offerings => "listServiceOfferings", ServiceOffering;
    list_disk_offerings => "listDiskOfferings", DiskOffering;
    list_networks => "listNetworks", Network;
    list_affinity_groups => "listAffinityGroups", AffinityGroup;
    list_virtual_machines => "listVirtualMachines", VirtualMachine;
    list_ssh_key_pairs => "listSSHKeyPairs", SshKeyPair;
    list_tags => "listTags", Tag;
    list_public_ip_addresses => "listPublicIpAddresses", PublicIpAddress;
    list_port_forwarding_rules => "listPortForwardingRules", PortForwardingRule;
    list_firewall_rules => "listFirewallRules", FirewallRule;
    list_security_groups => "listSecurityGroups", SecurityGroup;
    list_network_acl_lists => "listNetworkACLLists", NetworkAclList;
    list_network_acls => "listNetworkACLs", NetworkAcl;
    list_vm_snapshots => "listVMSnapshot", VmSnapshot;
    list_apis => "listApis", Api;
    /// `registerTemplate` answers like a list (`{"count": 1, "template": [...]}`).
    register_template => "registerTemplate", Template;
}

objects! {
    /// Deploys and waits until the job ends; the VM as the job returns it
    /// (with `password` when the template is password-enabled).
    deploy_virtual_machine => "deployVirtualMachine", VirtualMachine;
    start_virtual_machine => "startVirtualMachine", VirtualMachine;
    stop_virtual_machine => "stopVirtualMachine", VirtualMachine;
    reboot_virtual_machine => "rebootVirtualMachine", VirtualMachine;
    /// The key pair with its `privatekey` (only this answer has it).
    create_ssh_key_pair => "createSSHKeyPair", SshKeyPair;
    register_ssh_key_pair => "registerSSHKeyPair", SshKeyPair;
    associate_ip_address => "associateIpAddress", PublicIpAddress;
    create_port_forwarding_rule => "createPortForwardingRule", PortForwardingRule;
    create_firewall_rule => "createFirewallRule", FirewallRule;
    create_security_group => "createSecurityGroup", SecurityGroup;
    authorize_security_group_ingress => "authorizeSecurityGroupIngress", SecurityGroup;
    create_vm_snapshot => "createVMSnapshot", VmSnapshot;
    list_capabilities => "listCapabilities", Capability;
}

successes! {
    expunge_virtual_machine => "expungeVirtualMachine";
    delete_ssh_key_pair => "deleteSSHKeyPair";
    create_tags => "createTags";
    delete_tags => "deleteTags";
    disassociate_ip_address => "disassociateIpAddress";
    delete_port_forwarding_rule => "deletePortForwardingRule";
    delete_firewall_rule => "deleteFirewallRule";
    enable_static_nat => "enableStaticNat";
    disable_static_nat => "disableStaticNat";
    delete_security_group => "deleteSecurityGroup";
    delete_vm_snapshot => "deleteVMSnapshot";
    delete_network_acl => "deleteNetworkACL";
    delete_network_acl_list => "deleteNetworkACLList";
    replace_network_acl_list => "replaceNetworkACLList";
}

impl Client {
    /// Destroys a VM; with `expunge=true` some versions return no VM.
    pub async fn destroy_virtual_machine(
        &self,
        params: &Params,
    ) -> Result<Option<VirtualMachine>, Error> {
        let command = "destroyVirtualMachine";
        let result = self.call_and_wait(command, params).await?;
        optional_object(command, &result)
    }

    /// Reverts to a VM snapshot; newer versions return the VM.
    pub async fn revert_to_vm_snapshot(
        &self,
        params: &Params,
    ) -> Result<Option<VirtualMachine>, Error> {
        let command = "revertToVMSnapshot";
        let result = self.call_and_wait(command, params).await?;
        optional_object(command, &result)
    }

    /// Any list command, typed by its resource.
    pub async fn list_of<T: Resource>(
        &self,
        command: &str,
        params: &Params,
    ) -> Result<Vec<T>, Error> {
        self.list(command, params, T::LIST_KEY).await
    }

    /// Any command answering one object, sync or async.
    pub async fn object_of<T: Resource>(&self, command: &str, params: &Params) -> Result<T, Error> {
        let result = self.call_and_wait(command, params).await?;
        response::object(command, &result, T::OBJECT_KEY)
    }

    /// Any command answering only an outcome, sync or async. `success:
    /// false` becomes an error.
    pub async fn success_of(&self, command: &str, params: &Params) -> Result<Success, Error> {
        let result = self.call_and_wait(command, params).await?;
        let outcome: Success = response::typed(command, &result)?;
        if !outcome.success && result.get("success").is_some() {
            return Err(response::parse_error(
                command,
                &format!(
                    "the cloud reported no success{}",
                    outcome
                        .displaytext
                        .as_deref()
                        .map(|t| format!(": {t}"))
                        .unwrap_or_default()
                ),
            ));
        }
        Ok(outcome)
    }
}

fn optional_object(command: &str, result: &Value) -> Result<Option<VirtualMachine>, Error> {
    match response::find_key(result, VirtualMachine::OBJECT_KEY) {
        Some(vm) => response::typed(command, vm).map(Some),
        None => Ok(None),
    }
}
