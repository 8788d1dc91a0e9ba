//! Every command the simulator knows, with its parameters. One table drives
//! the parameter checks (missing, malformed, unknown ids), dispatch and
//! `listApis`, so they cannot disagree.

use super::{
    acl, address, affinity, infra, inspect, jobq, keypair, rules, secgroup, snapshot, static_nat,
    tags, template, tenancy, tier, upload, vm, vpc, Ctx, Reply,
};
use crate::error::ApiError;
use crate::params::Params;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Str,
    Int,
    Bool,
    /// An object id: must name something the cloud has (or had).
    Uuid,
    UuidList,
    List,
    Map,
}

impl Kind {
    pub fn api_type(self) -> &'static str {
        match self {
            Kind::Str => "string",
            Kind::Int => "integer",
            Kind::Bool => "boolean",
            Kind::Uuid => "uuid",
            Kind::UuidList | Kind::List => "list",
            Kind::Map => "map",
        }
    }
}

#[derive(Debug)]
pub struct Param {
    pub name: &'static str,
    pub kind: Kind,
    pub required: bool,
    pub description: &'static str,
}

pub type Handler = fn(&mut Ctx, &Params) -> Result<Reply, ApiError>;

pub struct Command {
    pub name: &'static str,
    pub is_async: bool,
    pub description: &'static str,
    pub params: &'static [Param],
    /// List commands also take `keyword`, `page`, `pagesize` and `listall`.
    pub list: bool,
    pub handler: Handler,
}

impl Command {
    pub fn all_params(&self) -> impl Iterator<Item = &'static Param> {
        let common: &'static [Param] = if self.list { LIST_COMMON } else { &[] };
        self.params.iter().chain(common.iter())
    }
}

pub fn find(name: &str) -> Option<&'static Command> {
    COMMANDS.iter().find(|c| c.name == name)
}

const fn req(name: &'static str, kind: Kind) -> Param {
    Param {
        name,
        kind,
        required: true,
        description: "",
    }
}

const fn opt(name: &'static str, kind: Kind) -> Param {
    Param {
        name,
        kind,
        required: false,
        description: "",
    }
}

use Kind::*;

const LIST_COMMON: &[Param] = &[
    Param {
        name: "keyword",
        kind: Str,
        required: false,
        description: "List by keyword",
    },
    Param {
        name: "page",
        kind: Int,
        required: false,
        description: "",
    },
    Param {
        name: "pagesize",
        kind: Int,
        required: false,
        description: "",
    },
    Param {
        name: "listall",
        kind: Bool,
        required: false,
        description: "If set to true, list resources that the caller is authorized to see",
    },
];

const fn list(
    name: &'static str,
    description: &'static str,
    params: &'static [Param],
    handler: Handler,
) -> Command {
    Command {
        name,
        is_async: false,
        description,
        params,
        list: true,
        handler,
    }
}

const fn sync(
    name: &'static str,
    description: &'static str,
    params: &'static [Param],
    handler: Handler,
) -> Command {
    Command {
        name,
        is_async: false,
        description,
        params,
        list: false,
        handler,
    }
}

const fn job(
    name: &'static str,
    description: &'static str,
    params: &'static [Param],
    handler: Handler,
) -> Command {
    Command {
        name,
        is_async: true,
        description,
        params,
        list: false,
        handler,
    }
}

pub static COMMANDS: &[Command] = &[
    list("listZones", "Lists zones", &[opt("id", Uuid), opt("name", Str), opt("available", Bool), opt("networktype", Str), opt("showcapacities", Bool), opt("tags", Map)], infra::list_zones),
    list("listNetworks", "Lists all available networks.", &[
        opt("id", Uuid), opt("zoneid", Uuid), opt("type", Str), opt("vpcid", Uuid), opt("forvpc", Bool), opt("canusefordeploy", Bool),
        opt("issystem", Bool), opt("acltype", Str), opt("traffictype", Str), opt("restartrequired", Bool), opt("specifyipranges", Bool),
        opt("supportedservices", List), opt("networkofferingid", Str), opt("tags", Map),
        opt("account", Str), opt("domainid", Uuid), opt("projectid", Uuid), opt("isrecursive", Bool),
    ], inspect::list_networks),
    list("listServiceOfferings", "Lists all available service offerings.", &[opt("id", Uuid), opt("name", Str), opt("zoneid", Uuid), opt("virtualmachineid", Uuid)], infra::list_service_offerings),
    list("listDiskOfferings", "Lists all available disk offerings.", &[opt("id", Uuid), opt("name", Str), opt("zoneid", Uuid)], infra::list_disk_offerings),
    list("listTemplates", "List all public, private, and privileged templates.", &[req("templatefilter", Str), opt("id", Uuid), opt("name", Str), opt("zoneid", Uuid), opt("hypervisor", Str), opt("tags", Map), opt("account", Str), opt("domainid", Uuid), opt("projectid", Uuid), opt("isrecursive", Bool)], infra::list_templates),
    sync("registerTemplate", "Registers an existing template into the CloudStack cloud.", &[req("name", Str), req("displaytext", Str), req("url", Str), req("format", Str), req("hypervisor", Str), req("ostypeid", Uuid), opt("zoneid", Uuid), opt("checksum", Str)], template::register),
    sync("getUploadParamsForTemplate", "upload an existing template into the CloudStack cloud.", &[req("name", Str), req("format", Str), req("hypervisor", Str), req("zoneid", Uuid), opt("displaytext", Str), opt("ostypeid", Uuid), opt("checksum", Str), opt("account", Str), opt("domainid", Uuid), opt("projectid", Uuid), opt("isextractable", Bool), opt("ispublic", Bool), opt("isfeatured", Bool), opt("passwordenabled", Bool), opt("sshkeyenabled", Bool), opt("requireshvm", Bool), opt("bits", Int), opt("templatetag", Str), opt("details", Map)], upload::get_upload_params),
    job("deleteTemplate", "Deletes a template from the system.", &[req("id", Uuid), opt("zoneid", Uuid)], template::delete),
    sync("listCapabilities", "Lists capabilities", &[], infra::list_capabilities),
    sync("listApis", "lists all available apis on the server, provided by the Api Discovery plugin", &[opt("name", Str)], infra::list_apis),

    job("deployVirtualMachine", "Creates and automatically starts a virtual machine based on a service offering, disk offering, and template.", &[
        req("serviceofferingid", Uuid), req("templateid", Uuid), req("zoneid", Uuid), opt("name", Str), opt("displayname", Str),
        opt("keypair", Str), opt("keypairs", List), opt("userdata", Str), opt("networkids", UuidList), opt("securitygroupids", UuidList),
        opt("securitygroupnames", List), opt("affinitygroupids", UuidList), opt("diskofferingid", Uuid), opt("startvm", Bool),
        opt("group", Str), opt("rootdisksize", Int), opt("size", Int), opt("hypervisor", Str), opt("details", Map),
        opt("account", Str), opt("domainid", Uuid), opt("projectid", Uuid),
    ], vm::deploy),
    list("listVirtualMachines", "List the virtual machines owned by the account.", &[
        opt("id", Uuid), opt("ids", UuidList), opt("name", Str), opt("state", Str), opt("zoneid", Uuid), opt("templateid", Uuid),
        opt("networkid", Uuid), opt("keypair", Str), opt("group", Str), opt("details", List), opt("tags", Map),
        opt("account", Str), opt("domainid", Uuid), opt("projectid", Uuid), opt("isrecursive", Bool),
    ], vm::list_vms),
    job("startVirtualMachine", "Starts a virtual machine.", &[req("id", Uuid), opt("hostid", Uuid)], vm::start),
    job("stopVirtualMachine", "Stops a virtual machine.", &[req("id", Uuid), opt("forced", Bool)], vm::stop),
    job("rebootVirtualMachine", "Reboots a virtual machine.", &[req("id", Uuid), opt("forced", Bool)], vm::reboot),
    job("destroyVirtualMachine", "Destroys a virtual machine.", &[req("id", Uuid), opt("expunge", Bool), opt("volumeids", UuidList)], vm::destroy),
    job("expungeVirtualMachine", "Expunge a virtual machine. Once expunged, it cannot be recoverd.", &[req("id", Uuid)], vm::expunge),
    sync("recoverVirtualMachine", "Recovers a virtual machine.", &[req("id", Uuid)], vm::recover),
    sync("getVirtualMachineUserData", "Returns user data associated with the VM", &[req("virtualmachineid", Uuid)], vm::user_data),

    sync("createSSHKeyPair", "Create a new keypair and returns the private key", &[req("name", Str), opt("account", Str), opt("domainid", Uuid), opt("projectid", Uuid)], keypair::create),
    sync("registerSSHKeyPair", "Register a public key in a keypair under a certain name", &[req("name", Str), req("publickey", Str), opt("account", Str), opt("domainid", Uuid), opt("projectid", Uuid)], keypair::register),
    list("listSSHKeyPairs", "List registered keypairs", &[opt("id", Uuid), opt("name", Str), opt("fingerprint", Str), opt("account", Str), opt("domainid", Uuid), opt("projectid", Uuid), opt("isrecursive", Bool)], keypair::list_keypairs),
    sync("deleteSSHKeyPair", "Deletes a keypair by name", &[req("name", Str), opt("account", Str), opt("domainid", Uuid), opt("projectid", Uuid)], keypair::delete),

    job("createTags", "Creates resource tag(s)", &[req("resourceids", List), req("resourcetype", Str), req("tags", Map), opt("customer", Str)], tags::create),
    job("deleteTags", "Deleting resource tag(s)", &[req("resourceids", List), req("resourcetype", Str), opt("tags", Map)], tags::delete),
    list("listTags", "List resource tag(s)", &[opt("resourcetype", Str), opt("resourceid", Str), opt("key", Str), opt("value", Str), opt("customer", Str), opt("account", Str), opt("domainid", Uuid), opt("projectid", Uuid), opt("isrecursive", Bool)], tags::list_tags),

    job("associateIpAddress", "Acquires and associates a public IP to an account.", &[opt("zoneid", Uuid), opt("networkid", Uuid), opt("vpcid", Uuid), opt("account", Str), opt("domainid", Uuid), opt("projectid", Uuid)], address::associate),
    job("disassociateIpAddress", "Disassociates an IP address from the account.", &[req("id", Uuid)], address::disassociate),
    list("listPublicIpAddresses", "Lists all public IP addresses", &[
        opt("id", Uuid), opt("zoneid", Uuid), opt("ipaddress", Str), opt("associatednetworkid", Uuid), opt("issourcenat", Bool),
        opt("isstaticnat", Bool), opt("allocatedonly", Bool), opt("state", Str), opt("tags", Map), opt("vpcid", Uuid),
        opt("account", Str), opt("domainid", Uuid), opt("projectid", Uuid), opt("isrecursive", Bool),
    ], address::list_ips),
    sync("enableStaticNat", "Enables static NAT for given IP address", &[req("ipaddressid", Uuid), req("virtualmachineid", Uuid), opt("networkid", Uuid), opt("vmguestip", Str)], address::enable_static_nat),
    job("disableStaticNat", "Disables static rule for given IP address", &[req("ipaddressid", Uuid)], address::disable_static_nat),

    job("createPortForwardingRule", "Creates a port forwarding rule", &[
        req("ipaddressid", Uuid), req("privateport", Int), req("protocol", Str), req("publicport", Int), req("virtualmachineid", Uuid),
        opt("privateendport", Int), opt("publicendport", Int), opt("openfirewall", Bool), opt("cidrlist", List), opt("networkid", Uuid), opt("vmguestip", Str),
    ], rules::create_pf),
    job("deletePortForwardingRule", "Deletes a port forwarding rule", &[req("id", Uuid)], rules::delete_pf),
    list("listPortForwardingRules", "Lists all port forwarding rules for an IP address.", &[opt("id", Uuid), opt("ipaddressid", Uuid), opt("networkid", Uuid), opt("virtualmachineid", Uuid), opt("tags", Map), opt("account", Str), opt("domainid", Uuid), opt("projectid", Uuid), opt("isrecursive", Bool)], rules::list_pf),
    job("createFirewallRule", "Creates a firewall rule for a given IP address", &[
        req("ipaddressid", Uuid), req("protocol", Str), opt("startport", Int), opt("endport", Int), opt("cidrlist", List), opt("icmptype", Int), opt("icmpcode", Int), opt("type", Str),
    ], rules::create_fw),
    job("deleteFirewallRule", "Deletes a firewall rule", &[req("id", Uuid)], rules::delete_fw),
    list("listFirewallRules", "Lists all firewall rules for an IP address.", &[opt("id", Uuid), opt("ipaddressid", Uuid), opt("networkid", Uuid), opt("tags", Map), opt("account", Str), opt("domainid", Uuid), opt("projectid", Uuid), opt("isrecursive", Bool)], rules::list_fw),

    sync("createSecurityGroup", "Creates a security group", &[req("name", Str), opt("description", Str), opt("account", Str), opt("domainid", Uuid), opt("projectid", Uuid)], secgroup::create),
    sync("deleteSecurityGroup", "Deletes security group", &[opt("id", Uuid), opt("name", Str), opt("account", Str), opt("domainid", Uuid), opt("projectid", Uuid)], secgroup::delete),
    list("listSecurityGroups", "Lists security groups", &[opt("id", Uuid), opt("securitygroupname", Str), opt("virtualmachineid", Uuid), opt("tags", Map), opt("account", Str), opt("domainid", Uuid), opt("projectid", Uuid), opt("isrecursive", Bool)], secgroup::list_groups),
    job("authorizeSecurityGroupIngress", "Authorizes a particular ingress rule for this security group", &[
        opt("securitygroupid", Uuid), opt("securitygroupname", Str), opt("protocol", Str), opt("startport", Int), opt("endport", Int),
        opt("cidrlist", List), opt("icmptype", Int), opt("icmpcode", Int), opt("usersecuritygrouplist", Map),
        opt("account", Str), opt("domainid", Uuid), opt("projectid", Uuid),
    ], secgroup::authorize),
    job("revokeSecurityGroupIngress", "Deletes a particular ingress rule from this security group", &[req("id", Uuid)], secgroup::revoke),

    job("createVMSnapshot", "Creates snapshot for a vm.", &[req("virtualmachineid", Uuid), opt("name", Str), opt("description", Str), opt("snapshotmemory", Bool), opt("quiescevm", Bool)], snapshot::create),
    list("listVMSnapshot", "List virtual machine snapshot by conditions", &[opt("vmsnapshotid", Uuid), opt("virtualmachineid", Uuid), opt("name", Str), opt("state", Str), opt("tags", Map), opt("account", Str), opt("domainid", Uuid), opt("projectid", Uuid), opt("isrecursive", Bool)], snapshot::list_snapshots),
    job("revertToVMSnapshot", "Revert VM from a vmsnapshot.", &[req("vmsnapshotid", Uuid)], snapshot::revert),
    job("deleteVMSnapshot", "Deletes a vmsnapshot.", &[req("vmsnapshotid", Uuid)], snapshot::delete),

    list("listAffinityGroups", "Lists affinity groups", &[opt("id", Uuid), opt("name", Str), opt("type", Str), opt("virtualmachineid", Uuid), opt("account", Str), opt("domainid", Uuid), opt("projectid", Uuid), opt("isrecursive", Bool)], affinity::list_groups),
    list("listAffinityGroupTypes", "Lists affinity group types available", &[], affinity::list_types),
    job("createAffinityGroup", "Creates an affinity/anti-affinity group", &[req("name", Str), req("type", Str), opt("description", Str), opt("account", Str), opt("domainid", Uuid), opt("projectid", Uuid)], affinity::create),
    job("deleteAffinityGroup", "Deletes affinity group", &[opt("id", Uuid), opt("name", Str), opt("account", Str), opt("domainid", Uuid), opt("projectid", Uuid)], affinity::delete),

    list("listDomains", "Lists domains and provides detailed information for listed domains", &[opt("id", Uuid), opt("name", Str), opt("level", Int), opt("details", List), opt("showicon", Bool)], tenancy::list_domains),
    list("listAccounts", "Lists accounts and provides detailed account information for listed accounts", &[
        opt("id", Uuid), opt("name", Str), opt("accounttype", Int), opt("domainid", Uuid), opt("isrecursive", Bool), opt("state", Str),
        opt("iscleanuprequired", Bool), opt("details", List), opt("showicon", Bool),
    ], tenancy::list_accounts),
    list("listProjects", "Lists projects and provides detailed information for listed projects", &[
        opt("id", Uuid), opt("name", Str), opt("displaytext", Str), opt("state", Str), opt("account", Str), opt("domainid", Uuid),
        opt("isrecursive", Bool), opt("tags", Map), opt("details", List), opt("showicon", Bool),
    ], tenancy::list_projects),

    sync("queryAsyncJobResult", "Retrieves the current status of asynchronous job.", &[req("jobid", Uuid)], jobq::query),
    list("listAsyncJobs", "Lists all pending asynchronous jobs for the account.", &[opt("startdate", Str)], jobq::list_jobs),

    list("listNics", "list the vm nics  IP to NIC", &[req("virtualmachineid", Uuid), opt("nicid", Uuid), opt("networkid", Uuid)], inspect::list_nics),
    list("listVolumes", "Lists all volumes.", &[
        opt("id", Uuid), opt("ids", UuidList), opt("name", Str), opt("type", Str), opt("virtualmachineid", Uuid), opt("zoneid", Uuid),
        opt("diskofferingid", Uuid), opt("state", Str), opt("tags", Map),
        opt("account", Str), opt("domainid", Uuid), opt("projectid", Uuid), opt("isrecursive", Bool),
    ], inspect::list_volumes),
    job("createIpForwardingRule", "Creates an IP forwarding rule", &[
        req("ipaddressid", Uuid), req("protocol", Str), req("startport", Int), opt("endport", Int), opt("openfirewall", Bool), opt("cidrlist", List),
    ], static_nat::create),
    job("deleteIpForwardingRule", "Deletes an IP forwarding rule", &[req("id", Uuid)], static_nat::delete),
    list("listIpForwardingRules", "List the IP forwarding rules", &[
        opt("id", Uuid), opt("ipaddressid", Uuid), opt("virtualmachineid", Uuid),
        opt("account", Str), opt("domainid", Uuid), opt("projectid", Uuid), opt("isrecursive", Bool),
    ], static_nat::list),
    list("listEvents", "A command to list events.", &[
        opt("id", Uuid), opt("type", Str), opt("level", Str), opt("startid", Uuid), opt("resourceid", Str), opt("resourcetype", Str),
        opt("startdate", Str), opt("enddate", Str), opt("duration", Int), opt("entrytime", Int), opt("archived", Bool),
        opt("account", Str), opt("domainid", Uuid), opt("projectid", Uuid), opt("isrecursive", Bool),
    ], inspect::list_events),

    list("listVPCs", "Lists VPCs", &[
        opt("id", Uuid), opt("name", Str), opt("zoneid", Uuid), opt("displaytext", Str), opt("cidr", Str), opt("vpcofferingid", Uuid),
        opt("state", Str), opt("restartrequired", Bool), opt("supportedservices", List), opt("fordisplay", Bool), opt("tags", Map),
        opt("account", Str), opt("domainid", Uuid), opt("projectid", Uuid), opt("isrecursive", Bool),
    ], vpc::list_vpcs),
    job("createVPC", "Creates a VPC", &[
        req("name", Str), req("zoneid", Uuid), req("cidr", Str), req("vpcofferingid", Uuid), opt("displaytext", Str),
        opt("networkdomain", Str), opt("start", Bool), opt("fordisplay", Bool), opt("account", Str), opt("domainid", Uuid), opt("projectid", Uuid),
    ], vpc::create),
    list("listNetworkOfferings", "Lists all available network offerings.", &[
        opt("id", Uuid), opt("name", Str), opt("forvpc", Bool), opt("guestiptype", Str), opt("zoneid", Uuid), opt("state", Str),
        opt("isdefault", Bool), opt("traffictype", Str), opt("availability", Str), opt("supportedservices", List), opt("networkid", Uuid),
    ], tier::list_offerings),
    sync("createNetwork", "Creates a network", &[
        req("name", Str), req("zoneid", Uuid), req("networkofferingid", Str), opt("displaytext", Str), opt("vpcid", Uuid), opt("aclid", Uuid),
        opt("gateway", Str), opt("netmask", Str), opt("networkdomain", Str), opt("account", Str), opt("domainid", Uuid), opt("projectid", Uuid),
    ], tier::create),
    list("listVPCOfferings", "Lists VPC offerings", &[opt("id", Uuid), opt("name", Str), opt("zoneid", Uuid), opt("state", Str), opt("isdefault", Bool)], vpc::list_offerings),
    list("listNetworkACLLists", "Lists all network ACLs", &[
        opt("id", Uuid), opt("name", Str), opt("networkid", Uuid), opt("vpcid", Uuid), opt("fordisplay", Bool),
        opt("account", Str), opt("domainid", Uuid), opt("projectid", Uuid), opt("isrecursive", Bool),
    ], acl::list_lists),
    job("createNetworkACLList", "Creates a network ACL. If no VPC is given, then it creates a global ACL that can be used by everyone.", &[
        req("name", Str), opt("description", Str), opt("vpcid", Uuid), opt("fordisplay", Bool),
    ], acl::create_list),
    job("deleteNetworkACLList", "Deletes a network ACL", &[req("id", Uuid)], acl::delete_list),
    job("replaceNetworkACLList", "Replaces ACL associated with a network or private gateway", &[req("aclid", Uuid), opt("networkid", Uuid), opt("gatewayid", Uuid)], acl::replace),
    list("listNetworkACLs", "Lists all network ACL items", &[
        opt("id", Uuid), opt("networkid", Uuid), opt("aclid", Uuid), opt("traffictype", Str), opt("protocol", Str), opt("action", Str),
        opt("fordisplay", Bool), opt("tags", Map), opt("account", Str), opt("domainid", Uuid), opt("projectid", Uuid), opt("isrecursive", Bool),
    ], acl::list_rules),
    job("createNetworkACL", "Creates a ACL rule in the given network (the network has to belong to VPC)", &[
        req("protocol", Str), opt("aclid", Uuid), opt("networkid", Uuid), opt("startport", Int), opt("endport", Int), opt("cidrlist", List),
        opt("icmptype", Int), opt("icmpcode", Int), opt("traffictype", Str), opt("number", Int), opt("action", Str), opt("reason", Str), opt("fordisplay", Bool),
    ], acl::create_rule),
    job("deleteNetworkACL", "Deletes a network ACL", &[req("id", Uuid)], acl::delete_rule),
    job("updateNetworkACLItem", "Updates ACL item with specified ID", &[
        req("id", Uuid), opt("protocol", Str), opt("startport", Int), opt("endport", Int), opt("cidrlist", List), opt("icmptype", Int),
        opt("icmpcode", Int), opt("traffictype", Str), opt("number", Int), opt("action", Str), opt("reason", Str), opt("partialupgrade", Bool),
        opt("customid", Str), opt("fordisplay", Bool),
    ], acl::update_rule),
];
