//! The simulated cloud's objects, kept in a form that serialises to the
//! state file, and how each renders as the server's JSON response.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::clock;
use crate::jobs::Job;
use crate::tenancy::Owner;

pub mod event;
pub mod static_nat;
pub mod volume;
pub mod vpc;

pub use event::Event;
pub use volume::Volume;

pub const ACCOUNT: &str = "admin";
pub const DOMAIN: &str = "ROOT";

/// The account every API call acts as.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Account {
    pub account_id: String,
    pub user_id: String,
    pub domain_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Counters {
    pub vm: u32,
    pub public_ip: u32,
    pub guest_ip: u32,
    pub basic_ip: u32,
    pub mac: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cloud {
    pub account: Account,
    pub zones: Vec<Zone>,
    pub networks: Vec<Network>,
    pub service_offerings: Vec<ServiceOffering>,
    pub disk_offerings: Vec<DiskOffering>,
    pub templates: Vec<Template>,
    pub keypairs: Vec<KeyPair>,
    pub vms: Vec<Vm>,
    pub ips: Vec<PublicIp>,
    pub pf_rules: Vec<PfRule>,
    pub fw_rules: Vec<FwRule>,
    pub security_groups: Vec<SecurityGroup>,
    pub vm_snapshots: Vec<VmSnapshot>,
    pub tags: Vec<Tag>,
    pub affinity_groups: Vec<AffinityGroup>,
    /// Absent from state files written before volumes and events existed.
    #[serde(default)]
    pub volumes: Vec<Volume>,
    #[serde(default)]
    pub events: Vec<Event>,
    #[serde(default)]
    pub static_nat_rules: Vec<static_nat::StaticNatRule>,
    pub jobs: BTreeMap<String, Job>,
    /// Every id ever handed out, removed objects included: the server resolves
    /// UUID parameters against removed rows too, and answers 431 otherwise.
    pub known_ids: BTreeSet<String>,
    pub counters: Counters,
    /// Domains, accounts and projects besides ROOT's admin (`tenancy.rs`).
    #[serde(default)]
    pub tenancy: crate::tenancy::Tenancy,
    /// VPCs, network ACL lists and rules (`model/vpc.rs`).
    #[serde(default)]
    pub vpc: vpc::VpcState,
}

impl Cloud {
    pub fn owner(&self) -> Value {
        json!({"account": ACCOUNT, "domainid": self.account.domain_id, "domain": DOMAIN})
    }

    pub fn zone(&self, id: &str) -> Option<&Zone> {
        self.zones.iter().find(|z| z.id == id)
    }

    pub fn vm(&self, id: &str) -> Option<&Vm> {
        self.vms.iter().find(|v| v.id == id)
    }

    pub fn vm_mut(&mut self, id: &str) -> Option<&mut Vm> {
        self.vms.iter_mut().find(|v| v.id == id)
    }

    pub fn ip(&self, id: &str) -> Option<&PublicIp> {
        self.ips.iter().find(|v| v.id == id)
    }

    pub fn network(&self, id: &str) -> Option<&Network> {
        self.networks.iter().find(|v| v.id == id)
    }

    pub fn tags_of(&self, resource_id: &str) -> Value {
        Value::Array(
            self.tags
                .iter()
                .filter(|t| t.resource_id == resource_id)
                .map(|t| t.render(self))
                .collect(),
        )
    }

    fn zone_name(&self, id: &str) -> String {
        self.zone(id).map(|z| z.name.clone()).unwrap_or_default()
    }
}

fn merge(mut base: Value, extra: Value) -> Value {
    if let (Value::Object(b), Value::Object(e)) = (&mut base, extra) {
        b.extend(e);
    }
    base
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Zone {
    pub id: String,
    pub name: String,
    /// `Basic` or `Advanced`.
    pub network_type: String,
}

impl Zone {
    pub fn basic(&self) -> bool {
        self.network_type == "Basic"
    }

    pub fn render(&self, cloud: &Cloud) -> Value {
        let mut v = json!({
            "id": self.id,
            "name": self.name,
            "description": format!("{} zone of the simulated cloud", self.network_type),
            "dns1": "8.8.8.8",
            "internaldns1": "10.0.0.2",
            "networktype": self.network_type,
            "securitygroupsenabled": self.basic(),
            "allocationstate": "Enabled",
            "zonetoken": format!("{}-token", &self.id[..8]),
            "dhcpprovider": if self.basic() { "DhcpServer" } else { "VirtualRouter" },
            "localstorageenabled": false,
            "tags": cloud.tags_of(&self.id),
            "hasannotations": false,
        });
        if !self.basic() {
            v["guestcidraddress"] = json!("10.1.1.0/24");
        }
        v
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Network {
    pub id: String,
    pub name: String,
    pub zone_id: String,
    /// `Isolated` (Advanced zone, behind a virtual router) or `Shared` (Basic zone).
    pub kind: String,
    pub cidr: String,
    pub gateway: String,
    /// Who owns it (`tenancy.rs`); older state files: the root admin.
    #[serde(default)]
    pub owner: Owner,
    /// The VPC this network is a tier of (`model/vpc.rs`).
    #[serde(default)]
    pub vpc_id: Option<String>,
    /// A tier's network ACL list.
    #[serde(default)]
    pub acl_id: Option<String>,
}

impl Network {
    pub fn render(&self, cloud: &Cloud) -> Value {
        let isolated = self.kind == "Isolated";
        let mut v = json!({
            "id": self.id,
            "name": self.name,
            "displaytext": self.name,
            "broadcastdomaintype": if isolated { "Vlan" } else { "Native" },
            "traffictype": "Guest",
            "gateway": self.gateway,
            "netmask": "255.255.255.0",
            "cidr": self.cidr,
            "zoneid": self.zone_id,
            "zonename": cloud.zone_name(&self.zone_id),
            "networkofferingid": if isolated { ISOLATED_OFFERING_ID } else { SHARED_OFFERING_ID },
            "networkofferingname": if isolated { "DefaultIsolatedNetworkOfferingWithSourceNatService" } else { "DefaultSharedNetworkOfferingWithSGService" },
            "networkofferingdisplaytext": if isolated { "Offering for Isolated networks with Source Nat service enabled" } else { "Offering for Shared Security group enabled networks" },
            "networkofferingavailability": "Optional",
            "issystem": false,
            "state": if isolated { "Implemented" } else { "Setup" },
            "related": self.id,
            "dns1": "8.8.8.8",
            "type": self.kind,
            "acltype": if isolated { "Account" } else { "Domain" },
            "isdefault": true,
            "canusefordeploy": true,
            "specifyipranges": !isolated,
            "restartrequired": false,
            "ispersistent": false,
            "tags": cloud.tags_of(&self.id),
            "service": services(isolated),
        });
        if isolated {
            v = merge(v, cloud.owner_fields(&self.owner));
        }
        vpc::tier_fields(cloud, self, &mut v);
        v
    }
}

/// The built-in network offerings the seeded networks use.
pub const ISOLATED_OFFERING_ID: &str = "3b1f4b0e-6a4c-4d2e-9b8a-1c0d2e3f4a01";
pub const SHARED_OFFERING_ID: &str = "3b1f4b0e-6a4c-4d2e-9b8a-1c0d2e3f4a02";

fn services(isolated: bool) -> Value {
    let names: &[&str] = if isolated {
        &[
            "Dhcp",
            "Dns",
            "Firewall",
            "PortForwarding",
            "SourceNat",
            "StaticNat",
            "UserData",
            "Lb",
        ]
    } else {
        &["Dhcp", "Dns", "SecurityGroup", "UserData"]
    };
    Value::Array(names.iter().map(|n| json!({"name": n})).collect())
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceOffering {
    pub id: String,
    pub name: String,
    pub cpu: u32,
    pub cpu_speed: u32,
    pub memory: u32,
}

impl ServiceOffering {
    pub fn render(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "displaytext": format!("{} ({} vCPU, {} MB)", self.name, self.cpu, self.memory),
            "cpunumber": self.cpu,
            "cpuspeed": self.cpu_speed,
            "memory": self.memory,
            "created": "2024-01-01T00:00:00+0000",
            "storagetype": "shared",
            "provisioningtype": "thin",
            "offerha": false,
            "limitcpuuse": false,
            "isvolatile": false,
            "issystem": false,
            "defaultuse": false,
            "iscustomized": false,
            "cacheMode": "none",
            "rootdisksize": 0,
            "hasannotations": false,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DiskOffering {
    pub id: String,
    pub name: String,
    /// GB; 0 with `customized`.
    pub size: u32,
    pub customized: bool,
}

impl DiskOffering {
    pub fn render(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "displaytext": self.name,
            "disksize": self.size,
            "created": "2024-01-01T00:00:00+0000",
            "iscustomized": self.customized,
            "storagetype": "shared",
            "provisioningtype": "thin",
            "cacheMode": "none",
            "displayoffering": true,
            "hasannotations": false,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Template {
    pub id: String,
    pub name: String,
    pub display_text: String,
    pub os_type: String,
    /// The local box this template boots from under `--backing qemu`.
    pub box_name: String,
    pub size: u64,
    /// As given to registerTemplate; seeded templates report an MD5 of
    /// their id, standing in for their image's.
    #[serde(default)]
    pub checksum: Option<String>,
    /// Set for a template made by `getUploadParamsForTemplate`: it lives in
    /// one zone and is ready once its image is uploaded (`api/upload.rs`).
    #[serde(default)]
    pub upload: Option<Upload>,
}

/// Where a browser-uploaded template's image stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UploadState {
    NotUploaded,
    UploadInProgress,
    Uploaded,
    UploadError,
    /// The signed URL expired before an image came.
    UploadAbandoned,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Upload {
    pub zone_id: String,
    pub state: UploadState,
    /// Why the upload failed, for `status`.
    #[serde(default)]
    pub error: Option<String>,
    /// The image, once uploaded: what `--backing qemu` boots.
    #[serde(default)]
    pub image: Option<std::path::PathBuf>,
    /// The opaque `metadata` and the `expires` (Unix seconds) of the signed POST.
    pub metadata: String,
    pub expires: i64,
}

impl Template {
    /// Whether a VM can be deployed from it.
    pub fn is_ready(&self) -> bool {
        self.upload
            .as_ref()
            .is_none_or(|u| u.state == UploadState::Uploaded)
    }

    /// Whether it is offered in `zone_id`: uploads live in their zone only.
    pub fn in_zone(&self, zone_id: &str) -> bool {
        self.upload.as_ref().is_none_or(|u| u.zone_id == zone_id)
    }

    fn status(&self) -> String {
        match &self.upload {
            None => "Download Complete".into(),
            Some(u) => match u.state {
                UploadState::NotUploaded => "Upload Not Started".into(),
                UploadState::UploadInProgress => "Upload In Progress".into(),
                UploadState::Uploaded => "Download Complete".into(),
                UploadState::UploadError => format!(
                    "Upload Error: {}",
                    u.error.as_deref().unwrap_or("the upload failed")
                ),
                UploadState::UploadAbandoned => "Upload Abandoned".into(),
            },
        }
    }

    fn checksum(&self) -> String {
        use md5::{Digest, Md5};
        self.checksum.clone().unwrap_or_else(|| {
            Md5::digest(self.id.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        })
    }

    pub fn render(&self, cloud: &Cloud, zone: &Zone) -> Value {
        merge(
            json!({
                "id": self.id,
                "name": self.name,
                "displaytext": self.display_text,
                "ispublic": true,
                "created": "2024-01-01T00:00:00+0000",
                "isready": self.is_ready(),
                "passwordenabled": false,
                "format": "QCOW2",
                "isfeatured": true,
                "crossZones": self.upload.is_none(),
                "ostypeid": format!("{}", &self.id),
                "ostypename": self.os_type,
                "zoneid": zone.id,
                "zonename": zone.name,
                "status": self.status(),
                "size": self.size,
                "physicalsize": self.size,
                "templatetype": if self.upload.is_some() { "USER" } else { "BUILTIN" },
                "hypervisor": "KVM",
                "isextractable": false,
                "details": {},
                "bits": 64,
                "sshkeyenabled": false,
                "isdynamicallyscalable": false,
                "directdownload": false,
                "deployasis": false,
                "requireshvm": true,
                "tags": cloud.tags_of(&self.id),
                "hasannotations": false,
                "checksum": self.checksum(),
            }),
            json!({"account": "system", "domainid": cloud.account.domain_id, "domain": DOMAIN}),
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyPair {
    pub id: String,
    pub name: String,
    pub fingerprint: String,
    pub public_key: String,
    /// Who owns it (`tenancy.rs`); older state files: the root admin.
    #[serde(default)]
    pub owner: Owner,
}

impl KeyPair {
    pub fn render(&self, cloud: &Cloud) -> Value {
        merge(
            json!({"id": self.id, "name": self.name, "fingerprint": self.fingerprint, "hasannotations": false}),
            cloud.owner_fields(&self.owner),
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Nic {
    pub id: String,
    pub network_id: String,
    pub ip: String,
    pub mac: String,
}

impl Nic {
    /// As inside a VM's `nic` list; `index` 0 is the default NIC.
    pub fn render(&self, cloud: &Cloud, index: usize) -> Value {
        let net = cloud.network(&self.network_id);
        let isolated = net.map(|x| x.kind == "Isolated").unwrap_or(false);
        let mut v = json!({
            "id": self.id,
            "networkid": self.network_id,
            "networkname": net.map(|x| x.name.clone()).unwrap_or_default(),
            "netmask": "255.255.255.0",
            "gateway": net.map(|x| x.gateway.clone()).unwrap_or_default(),
            "ipaddress": self.ip,
            "traffictype": "Guest",
            "type": if isolated { "Isolated" } else { "Shared" },
            "isdefault": index == 0,
            "macaddress": self.mac,
            "secondaryip": [],
            "extradhcpoption": [],
        });
        if isolated {
            v["isolationuri"] = json!("vlan://1850");
            v["broadcasturi"] = json!("vlan://1850");
        }
        v
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Vm {
    pub id: String,
    pub name: String,
    pub display_name: String,
    pub zone_id: String,
    pub template_id: String,
    pub service_offering_id: String,
    pub disk_offering_id: Option<String>,
    pub keypairs: Vec<String>,
    pub user_data: Option<String>,
    pub group: Option<String>,
    pub state: String,
    pub created: u64,
    pub number: u32,
    pub nics: Vec<Nic>,
    pub security_group_ids: Vec<String>,
    pub affinity_group_ids: Vec<String>,
    /// Who owns it (`tenancy.rs`); older state files: the root admin.
    #[serde(default)]
    pub owner: Owner,
}

impl Vm {
    pub fn render(&self, cloud: &Cloud) -> Value {
        let template = cloud.templates.iter().find(|t| t.id == self.template_id);
        let offering = cloud
            .service_offerings
            .iter()
            .find(|o| o.id == self.service_offering_id);
        let on_host = matches!(
            self.state.as_str(),
            "Running" | "Starting" | "Stopping" | "Migrating"
        );
        let nics: Vec<Value> = self
            .nics
            .iter()
            .enumerate()
            .map(|(i, n)| n.render(cloud, i))
            .collect();
        let sgs: Vec<Value> = self
            .security_group_ids
            .iter()
            .filter_map(|id| cloud.security_groups.iter().find(|g| &g.id == id))
            .map(|g| g.render(cloud))
            .collect();
        let ags: Vec<Value> = self
            .affinity_group_ids
            .iter()
            .filter_map(|id| cloud.affinity_groups.iter().find(|g| &g.id == id))
            .map(|g| json!({"id": g.id, "name": g.name, "description": g.description, "type": g.kind}))
            .collect();
        let mut v = merge(
            json!({
                "id": self.id,
                "name": self.name,
                "displayname": self.display_name,
                "userid": cloud.account.user_id,
                "username": ACCOUNT,
                "created": clock::format_ms(self.created),
                "state": self.state,
                "haenable": false,
                "zoneid": self.zone_id,
                "zonename": cloud.zone_name(&self.zone_id),
                "templateid": self.template_id,
                "templatename": template.map(|t| t.name.clone()).unwrap_or_default(),
                "templatedisplaytext": template.map(|t| t.display_text.clone()).unwrap_or_default(),
                "passwordenabled": false,
                "serviceofferingid": self.service_offering_id,
                "serviceofferingname": offering.map(|o| o.name.clone()).unwrap_or_default(),
                "cpunumber": offering.map(|o| o.cpu).unwrap_or(1),
                "cpuspeed": offering.map(|o| o.cpu_speed).unwrap_or(1000),
                "memory": offering.map(|o| o.memory).unwrap_or(512),
                "guestosid": self.template_id,
                "rootdeviceid": 0,
                "rootdevicetype": "ROOT",
                "securitygroup": sgs,
                "nic": nics,
                "hypervisor": "KVM",
                "instancename": format!("i-2-{}-VM", self.number),
                "details": {},
                "affinitygroup": ags,
                "displayvm": true,
                "isdynamicallyscalable": false,
                "ostypeid": self.template_id,
                "osdisplayname": template.map(|t| t.os_type.clone()).unwrap_or_default(),
                "tags": cloud.tags_of(&self.id),
                "hasannotations": false,
            }),
            cloud.owner_fields(&self.owner),
        );
        if on_host {
            v["hostid"] = json!("6b1a1f1c-7c66-4f73-b5f9-3f0d2b2a9e01");
            v["hostname"] = json!("sim-host-1");
        }
        if let Some(d) = &self.disk_offering_id {
            v["diskofferingid"] = json!(d);
        }
        if let Some(g) = &self.group {
            v["group"] = json!(g);
        }
        if let Some(first) = self.keypairs.first() {
            v["keypair"] = json!(first);
            v["keypairs"] = json!(self.keypairs.join(","));
        }
        if let Some(ip) = cloud
            .ips
            .iter()
            .find(|ip| ip.static_nat_vm.as_deref() == Some(self.id.as_str()))
        {
            v["publicip"] = json!(ip.address);
            v["publicipid"] = json!(ip.id);
        }
        v
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PublicIp {
    pub id: String,
    pub address: String,
    pub zone_id: String,
    pub network_id: Option<String>,
    pub source_nat: bool,
    pub static_nat_vm: Option<String>,
    pub allocated: u64,
    pub state: String,
    /// Who owns it (`tenancy.rs`); older state files: the root admin.
    #[serde(default)]
    pub owner: Owner,
    /// The VPC it was acquired for; `network_id` is then the tier its
    /// first rule tied it to (`model/vpc.rs`).
    #[serde(default)]
    pub vpc_id: Option<String>,
}

impl PublicIp {
    pub fn render(&self, cloud: &Cloud) -> Value {
        let mut v = merge(
            json!({
                "id": self.id,
                "ipaddress": self.address,
                "allocated": clock::format_ms(self.allocated),
                "zoneid": self.zone_id,
                "zonename": cloud.zone_name(&self.zone_id),
                "issourcenat": self.source_nat,
                "forvirtualnetwork": true,
                "vlanid": "2e86e486-b472-4f12-a9b2-bb73701241e0",
                "vlanname": "vlan://untagged",
                "isstaticnat": self.static_nat_vm.is_some(),
                "issystem": false,
                "state": self.state,
                "physicalnetworkid": "0d6c1e76-2d83-459a-bbce-c133fbd732b7",
                "tags": cloud.tags_of(&self.id),
                "isportable": false,
                "fordisplay": true,
                "hasannotations": false,
            }),
            cloud.owner_fields(&self.owner),
        );
        if let Some(net) = self.network_id.as_deref().and_then(|n| cloud.network(n)) {
            v["associatednetworkid"] = json!(net.id);
            v["associatednetworkname"] = json!(net.name);
            v["networkid"] = json!(net.id);
        }
        if let Some(vpc) = self.vpc_id.as_deref().and_then(|id| cloud.vpc.vpc(id)) {
            v["vpcid"] = json!(vpc.id);
            v["vpcname"] = json!(vpc.name);
        }
        if let Some(vm) = self.static_nat_vm.as_deref().and_then(|id| cloud.vm(id)) {
            v["virtualmachineid"] = json!(vm.id);
            v["virtualmachinename"] = json!(vm.name);
            v["virtualmachinedisplayname"] = json!(vm.display_name);
            v["virtualmachinetype"] = json!("User");
            if let Some(nic) = vm.nics.first() {
                v["vmipaddress"] = json!(nic.ip);
            }
        }
        v
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PfRule {
    pub id: String,
    pub ip_id: String,
    pub protocol: String,
    pub private_port: u16,
    pub private_end_port: u16,
    pub public_port: u16,
    pub public_end_port: u16,
    pub vm_id: String,
    pub cidrs: String,
    pub state: String,
    /// Who owns it (`tenancy.rs`); older state files: the root admin.
    #[serde(default)]
    pub owner: Owner,
}

impl PfRule {
    /// Ports are strings in this response, unlike the firewall rule's.
    pub fn render(&self, cloud: &Cloud) -> Value {
        let vm = cloud.vm(&self.vm_id);
        let ip = cloud.ip(&self.ip_id);
        json!({
            "id": self.id,
            "privateport": self.private_port.to_string(),
            "privateendport": self.private_end_port.to_string(),
            "protocol": self.protocol,
            "publicport": self.public_port.to_string(),
            "publicendport": self.public_end_port.to_string(),
            "virtualmachineid": self.vm_id,
            "virtualmachinename": vm.map(|v| v.name.clone()).unwrap_or_default(),
            "virtualmachinedisplayname": vm.map(|v| v.display_name.clone()).unwrap_or_default(),
            "vmguestip": vm.and_then(|v| v.nics.first()).map(|n| n.ip.clone()).unwrap_or_default(),
            "ipaddressid": self.ip_id,
            "ipaddress": ip.map(|i| i.address.clone()).unwrap_or_default(),
            "networkid": ip.and_then(|i| i.network_id.clone()).unwrap_or_default(),
            "state": self.state,
            "cidrlist": self.cidrs,
            "tags": cloud.tags_of(&self.id),
            "fordisplay": true,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FwRule {
    pub id: String,
    pub ip_id: String,
    pub protocol: String,
    pub start_port: Option<u16>,
    pub end_port: Option<u16>,
    pub cidrs: String,
    pub state: String,
    /// Who owns it (`tenancy.rs`); older state files: the root admin.
    #[serde(default)]
    pub owner: Owner,
}

impl FwRule {
    pub fn render(&self, cloud: &Cloud) -> Value {
        let ip = cloud.ip(&self.ip_id);
        let mut v = json!({
            "id": self.id,
            "protocol": self.protocol,
            "ipaddressid": self.ip_id,
            "ipaddress": ip.map(|i| i.address.clone()).unwrap_or_default(),
            "networkid": ip.and_then(|i| i.network_id.clone()).unwrap_or_default(),
            "state": self.state,
            "cidrlist": self.cidrs,
            "tags": cloud.tags_of(&self.id),
            "fordisplay": true,
        });
        if let (Some(s), Some(e)) = (self.start_port, self.end_port) {
            v["startport"] = json!(s);
            v["endport"] = json!(e);
        }
        v
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IngressRule {
    pub id: String,
    pub protocol: String,
    pub start_port: Option<u16>,
    pub end_port: Option<u16>,
    pub cidr: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecurityGroup {
    pub id: String,
    pub name: String,
    pub description: String,
    pub ingress: Vec<IngressRule>,
    /// Who owns it (`tenancy.rs`); older state files: the root admin.
    #[serde(default)]
    pub owner: Owner,
}

impl SecurityGroup {
    pub fn render(&self, cloud: &Cloud) -> Value {
        let rules: Vec<Value> = self
            .ingress
            .iter()
            .map(|r| {
                let mut v =
                    json!({"ruleid": r.id, "protocol": r.protocol, "cidr": r.cidr, "tags": []});
                if let (Some(s), Some(e)) = (r.start_port, r.end_port) {
                    v["startport"] = json!(s);
                    v["endport"] = json!(e);
                }
                v
            })
            .collect();
        let vms: Vec<&str> = cloud
            .vms
            .iter()
            .filter(|v| v.security_group_ids.contains(&self.id))
            .map(|v| v.id.as_str())
            .collect();
        merge(
            json!({
                "id": self.id,
                "name": self.name,
                "description": self.description,
                "ingressrule": rules,
                "egressrule": [],
                "tags": cloud.tags_of(&self.id),
                "virtualmachinecount": vms.len(),
                "virtualmachineids": vms,
            }),
            cloud.owner_fields(&self.owner),
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VmSnapshot {
    pub id: String,
    pub name: String,
    pub display_name: String,
    pub description: String,
    pub vm_id: String,
    pub memory: bool,
    pub state: String,
    pub current: bool,
    pub parent: Option<String>,
    pub created: u64,
    /// Who owns it (`tenancy.rs`); older state files: the root admin.
    #[serde(default)]
    pub owner: Owner,
}

impl VmSnapshot {
    pub fn render(&self, cloud: &Cloud) -> Value {
        let vm = cloud.vm(&self.vm_id);
        let mut v = merge(
            json!({
                "id": self.id,
                "name": self.name,
                "displayname": self.display_name,
                "description": self.description,
                "state": self.state,
                "type": if self.memory { "DiskAndMemory" } else { "Disk" },
                "current": self.current,
                "created": clock::format_ms(self.created),
                "virtualmachineid": self.vm_id,
                "virtualmachinename": vm.map(|v| v.name.clone()).unwrap_or_default(),
                "zoneid": vm.map(|v| v.zone_id.clone()).unwrap_or_default(),
                "hypervisor": "KVM",
                "tags": cloud.tags_of(&self.id),
            }),
            cloud.owner_fields(&self.owner),
        );
        if let Some(p) = self
            .parent
            .as_deref()
            .and_then(|p| cloud.vm_snapshots.iter().find(|s| s.id == p))
        {
            v["parent"] = json!(p.id);
            v["parentName"] = json!(p.name);
        }
        v
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
    pub resource_type: String,
    pub resource_id: String,
    /// Who owns it (`tenancy.rs`); older state files: the root admin.
    #[serde(default)]
    pub owner: Owner,
}

impl Tag {
    pub fn render(&self, cloud: &Cloud) -> Value {
        merge(
            json!({
                "key": self.key,
                "value": self.value,
                "resourcetype": self.resource_type,
                "resourceid": self.resource_id,
            }),
            cloud.owner_fields(&self.owner),
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AffinityGroup {
    pub id: String,
    pub name: String,
    pub description: String,
    pub kind: String,
    /// Who owns it (`tenancy.rs`); older state files: the root admin.
    #[serde(default)]
    pub owner: Owner,
}

impl AffinityGroup {
    pub fn render(&self, cloud: &Cloud) -> Value {
        let vms: Vec<&str> = cloud
            .vms
            .iter()
            .filter(|v| v.affinity_group_ids.contains(&self.id))
            .map(|v| v.id.as_str())
            .collect();
        merge(
            json!({"id": self.id, "name": self.name, "description": self.description, "type": self.kind, "virtualmachineIds": vms}),
            cloud.owner_fields(&self.owner),
        )
    }
}
