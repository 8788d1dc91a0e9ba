//! Typed CloudStack objects: the fields box uses, read leniently (old
//! servers send numeric ids and string ports). Unknown fields are ignored,
//! so newer servers do not break parsing.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::lenient;
use secret::Secret;

/// An object type and the keys CloudStack puts it under.
pub trait Resource: serde::de::DeserializeOwned {
    /// The key of the array in a list response (`zone`, `vmSnapshot`).
    const LIST_KEY: &'static str;
    /// The key of the single object in a job result or a create answer.
    const OBJECT_KEY: &'static str;
}

macro_rules! resource {
    ($t:ty, $list:literal, $object:literal) => {
        impl Resource for $t {
            const LIST_KEY: &'static str = $list;
            const OBJECT_KEY: &'static str = $object;
        }
    };
}

#[derive(Debug, Clone, Deserialize)]
pub struct Zone {
    #[serde(deserialize_with = "lenient::string")]
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// `Basic` or `Advanced`.
    #[serde(default)]
    pub networktype: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub securitygroupsenabled: Option<bool>,
    #[serde(default)]
    pub allocationstate: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub localstorageenabled: Option<bool>,
}
resource!(Zone, "zone", "zone");

#[derive(Debug, Clone, Deserialize)]
pub struct Template {
    #[serde(deserialize_with = "lenient::string")]
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub displaytext: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub ostypeid: Option<String>,
    #[serde(default)]
    pub ostypename: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub isready: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub zoneid: Option<String>,
    #[serde(default)]
    pub zonename: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub format: Option<String>,
    #[serde(default)]
    pub hypervisor: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub size: Option<u64>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub passwordenabled: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub sshkeyenabled: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub ispublic: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub isfeatured: Option<bool>,
    #[serde(default)]
    pub templatetype: Option<String>,
    #[serde(default)]
    pub created: Option<String>,
    /// The image's checksum as registered (an MD5, or `{SHA-256}hex`);
    /// absent when the cloud has none.
    #[serde(default)]
    pub checksum: Option<String>,
    #[serde(default, deserialize_with = "lenient::vec")]
    pub tags: Vec<Tag>,
}
resource!(Template, "template", "template");

#[derive(Debug, Clone, Deserialize)]
pub struct ServiceOffering {
    #[serde(deserialize_with = "lenient::string")]
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub displaytext: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub cpunumber: Option<u64>,
    /// MHz.
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub cpuspeed: Option<u64>,
    /// MiB.
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub memory: Option<u64>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub iscustomized: Option<bool>,
    #[serde(default)]
    pub storagetype: Option<String>,
}
resource!(ServiceOffering, "serviceoffering", "serviceoffering");

#[derive(Debug, Clone, Deserialize)]
pub struct DiskOffering {
    #[serde(deserialize_with = "lenient::string")]
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub displaytext: Option<String>,
    /// GiB; 0 for custom-size offerings.
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub disksize: Option<u64>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub iscustomized: Option<bool>,
    #[serde(default)]
    pub storagetype: Option<String>,
}
resource!(DiskOffering, "diskoffering", "diskoffering");

#[derive(Debug, Clone, Deserialize)]
pub struct Network {
    #[serde(deserialize_with = "lenient::string")]
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub displaytext: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub zoneid: Option<String>,
    #[serde(default)]
    pub zonename: Option<String>,
    /// `Isolated`, `Shared`, `L2`.
    #[serde(default, rename = "type")]
    pub network_type: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub cidr: Option<String>,
    #[serde(default)]
    pub gateway: Option<String>,
    #[serde(default)]
    pub netmask: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub isdefault: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub canusefordeploy: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub vpcid: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub networkofferingid: Option<String>,
    /// A VPC tier's network ACL list.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub aclid: Option<String>,
}
resource!(Network, "network", "network");

#[derive(Debug, Clone, Deserialize)]
pub struct AffinityGroup {
    #[serde(deserialize_with = "lenient::string")]
    pub id: String,
    pub name: String,
    #[serde(default, rename = "type")]
    pub group_type: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(
        default,
        rename = "virtualmachineIds",
        deserialize_with = "lenient::string_list"
    )]
    pub virtualmachine_ids: Vec<String>,
}
resource!(AffinityGroup, "affinitygroup", "affinitygroup");

#[derive(Debug, Clone, Deserialize)]
pub struct Nic {
    #[serde(deserialize_with = "lenient::string")]
    pub id: String,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub networkid: Option<String>,
    #[serde(default)]
    pub networkname: Option<String>,
    #[serde(default)]
    pub ipaddress: Option<String>,
    #[serde(default)]
    pub ip6address: Option<String>,
    #[serde(default)]
    pub gateway: Option<String>,
    #[serde(default)]
    pub netmask: Option<String>,
    #[serde(default)]
    pub macaddress: Option<String>,
    #[serde(default, deserialize_with = "lenient::bool")]
    pub isdefault: bool,
    #[serde(default)]
    pub traffictype: Option<String>,
    #[serde(default, rename = "type")]
    pub nic_type: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Tag {
    pub key: String,
    #[serde(default)]
    pub value: String,
    #[serde(default)]
    pub resourcetype: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub resourceid: Option<String>,
    #[serde(default)]
    pub account: Option<String>,
    #[serde(default)]
    pub domain: Option<String>,
}
resource!(Tag, "tag", "tag");

#[derive(Debug, Clone, Deserialize)]
pub struct VirtualMachine {
    #[serde(deserialize_with = "lenient::string")]
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub displayname: Option<String>,
    /// `Starting`, `Running`, `Stopping`, `Stopped`, `Destroyed`, `Expunging`, `Error`...
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub zoneid: Option<String>,
    #[serde(default)]
    pub zonename: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub templateid: Option<String>,
    #[serde(default)]
    pub templatename: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub serviceofferingid: Option<String>,
    #[serde(default)]
    pub serviceofferingname: Option<String>,
    #[serde(default)]
    pub hypervisor: Option<String>,
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub cpunumber: Option<u64>,
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub memory: Option<u64>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub passwordenabled: Option<bool>,
    /// Only in the answer that created or reset it.
    #[serde(default)]
    pub password: Option<Secret>,
    /// The SSH key pair name (older servers).
    #[serde(default)]
    pub keypair: Option<String>,
    /// The SSH key pair names, comma-separated (4.17+).
    #[serde(default)]
    pub keypairs: Option<String>,
    #[serde(default, deserialize_with = "lenient::vec")]
    pub nic: Vec<Nic>,
    #[serde(default, deserialize_with = "lenient::vec")]
    pub securitygroup: Vec<SecurityGroup>,
    #[serde(default, deserialize_with = "lenient::vec")]
    pub affinitygroup: Vec<AffinityGroup>,
    #[serde(default, deserialize_with = "lenient::vec")]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub publicip: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub publicipid: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub account: Option<String>,
    #[serde(default)]
    pub domain: Option<String>,
    #[serde(default)]
    pub instancename: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub haenable: Option<bool>,
}
resource!(VirtualMachine, "virtualmachine", "virtualmachine");

impl VirtualMachine {
    /// The default NIC's address.
    pub fn default_ip(&self) -> Option<&str> {
        self.nic
            .iter()
            .find(|n| n.isdefault)
            .or_else(|| self.nic.first())
            .and_then(|n| n.ipaddress.as_deref())
    }

    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|t| t.key == key)
            .map(|t| t.value.as_str())
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct SshKeyPair {
    pub name: String,
    #[serde(default)]
    pub fingerprint: Option<String>,
    /// Only from `createSSHKeyPair`.
    #[serde(default)]
    pub privatekey: Option<Secret>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub id: Option<String>,
    #[serde(default)]
    pub account: Option<String>,
    #[serde(default)]
    pub domain: Option<String>,
}
resource!(SshKeyPair, "sshkeypair", "keypair");

#[derive(Debug, Clone, Deserialize)]
pub struct PublicIpAddress {
    #[serde(deserialize_with = "lenient::string")]
    pub id: String,
    pub ipaddress: String,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub zoneid: Option<String>,
    #[serde(default)]
    pub zonename: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub issourcenat: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub isstaticnat: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub virtualmachineid: Option<String>,
    #[serde(default)]
    pub virtualmachinename: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub associatednetworkid: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub networkid: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub vpcid: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub allocated: Option<String>,
    #[serde(default, deserialize_with = "lenient::vec")]
    pub tags: Vec<Tag>,
}
resource!(PublicIpAddress, "publicipaddress", "ipaddress");

#[derive(Debug, Clone, Deserialize)]
pub struct PortForwardingRule {
    #[serde(deserialize_with = "lenient::string")]
    pub id: String,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub ipaddressid: Option<String>,
    #[serde(default)]
    pub ipaddress: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_u16")]
    pub privateport: Option<u16>,
    #[serde(default, deserialize_with = "lenient::opt_u16")]
    pub privateendport: Option<u16>,
    #[serde(default, deserialize_with = "lenient::opt_u16")]
    pub publicport: Option<u16>,
    #[serde(default, deserialize_with = "lenient::opt_u16")]
    pub publicendport: Option<u16>,
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub virtualmachineid: Option<String>,
    #[serde(default)]
    pub virtualmachinename: Option<String>,
    #[serde(default)]
    pub vmguestip: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default, deserialize_with = "lenient::string_list")]
    pub cidrlist: Vec<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub networkid: Option<String>,
    #[serde(default, deserialize_with = "lenient::vec")]
    pub tags: Vec<Tag>,
}
resource!(
    PortForwardingRule,
    "portforwardingrule",
    "portforwardingrule"
);

#[derive(Debug, Clone, Deserialize)]
pub struct FirewallRule {
    #[serde(deserialize_with = "lenient::string")]
    pub id: String,
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_u16")]
    pub startport: Option<u16>,
    #[serde(default, deserialize_with = "lenient::opt_u16")]
    pub endport: Option<u16>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub ipaddressid: Option<String>,
    #[serde(default)]
    pub ipaddress: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default, deserialize_with = "lenient::string_list")]
    pub cidrlist: Vec<String>,
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub icmptype: Option<u64>,
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub icmpcode: Option<u64>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub networkid: Option<String>,
    #[serde(default, deserialize_with = "lenient::vec")]
    pub tags: Vec<Tag>,
}
resource!(FirewallRule, "firewallrule", "firewallrule");

#[derive(Debug, Clone, Deserialize)]
pub struct SecurityGroup {
    #[serde(deserialize_with = "lenient::string")]
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub account: Option<String>,
    #[serde(default)]
    pub domain: Option<String>,
    #[serde(default, deserialize_with = "lenient::vec")]
    pub ingressrule: Vec<SecurityGroupRule>,
    #[serde(default, deserialize_with = "lenient::vec")]
    pub egressrule: Vec<SecurityGroupRule>,
    #[serde(default, deserialize_with = "lenient::vec")]
    pub tags: Vec<Tag>,
}
resource!(SecurityGroup, "securitygroup", "securitygroup");

#[derive(Debug, Clone, Deserialize)]
pub struct SecurityGroupRule {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub ruleid: Option<String>,
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_u16")]
    pub startport: Option<u16>,
    #[serde(default, deserialize_with = "lenient::opt_u16")]
    pub endport: Option<u16>,
    #[serde(default)]
    pub cidr: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub icmptype: Option<u64>,
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub icmpcode: Option<u64>,
    #[serde(default)]
    pub securitygroupname: Option<String>,
    #[serde(default)]
    pub account: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct VmSnapshot {
    #[serde(deserialize_with = "lenient::string")]
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub displayname: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// `Ready`, `Creating`, `Reverting`, `Error`...
    #[serde(default)]
    pub state: Option<String>,
    /// `Disk` or `DiskAndMemory`.
    #[serde(default, rename = "type")]
    pub snapshot_type: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub current: Option<bool>,
    #[serde(default, rename = "parentName")]
    pub parent_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub virtualmachineid: Option<String>,
    #[serde(default)]
    pub created: Option<String>,
}
resource!(VmSnapshot, "vmSnapshot", "vmsnapshot");

/// `listCapabilities`: the few fields box reads, the rest kept raw.
#[derive(Debug, Clone, Deserialize)]
pub struct Capability {
    #[serde(default)]
    pub cloudstackversion: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub securitygroupsenabled: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub kvmsnapshotenabled: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub customdiskofferingminsize: Option<u64>,
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub customdiskofferingmaxsize: Option<u64>,
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub apilimitmax: Option<u64>,
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub apilimitinterval: Option<u64>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}
resource!(Capability, "capability", "capability");

/// One entry of `listApis`.
#[derive(Debug, Clone, Deserialize)]
pub struct Api {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub isasync: Option<bool>,
    #[serde(default)]
    pub since: Option<String>,
    #[serde(default, deserialize_with = "lenient::vec")]
    pub params: Vec<ApiParam>,
}
resource!(Api, "api", "api");

#[derive(Debug, Clone, Deserialize)]
pub struct ApiParam {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub required: Option<bool>,
    #[serde(default, rename = "type")]
    pub param_type: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub length: Option<u64>,
}

/// A network ACL list of a VPC (`listNetworkACLLists`); `default_allow` and
/// `default_deny` are the system's, with no VPC.
#[derive(Debug, Clone, Deserialize)]
pub struct NetworkAclList {
    #[serde(deserialize_with = "lenient::string")]
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub vpcid: Option<String>,
}
resource!(NetworkAclList, "networkacllist", "networkacllist");

/// A rule of a network ACL list (`listNetworkACLs`).
#[derive(Debug, Clone, Deserialize)]
pub struct NetworkAcl {
    #[serde(deserialize_with = "lenient::string")]
    pub id: String,
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_u16")]
    pub startport: Option<u16>,
    #[serde(default, deserialize_with = "lenient::opt_u16")]
    pub endport: Option<u16>,
    #[serde(default)]
    pub traffictype: Option<String>,
    #[serde(default, deserialize_with = "lenient::string_list")]
    pub cidrlist: Vec<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub aclid: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_u64")]
    pub number: Option<u64>,
    #[serde(default)]
    pub action: Option<String>,
    /// Why the rule exists (CloudStack 4.12 and later).
    #[serde(default)]
    pub reason: Option<String>,
}
resource!(NetworkAcl, "networkacl", "networkacl");

/// The answer of deletes and other commands that return only an outcome.
#[derive(Debug, Clone, Deserialize)]
pub struct Success {
    #[serde(default, deserialize_with = "lenient::bool")]
    pub success: bool,
    #[serde(default)]
    pub displaytext: Option<String>,
}

/// The first answer of an async command.
#[derive(Debug, Clone, Deserialize)]
pub struct JobRef {
    #[serde(deserialize_with = "lenient::string")]
    pub jobid: String,
    /// The id of the object the job works on, when the server says.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub id: Option<String>,
}
