//! The cloud a fresh simulator starts with: one zone of each network type,
//! offerings, templates for the boxes the local provider knows, and the
//! default security group and source NAT address a new account gets.

use std::collections::{BTreeMap, BTreeSet};

use crate::clock;
use crate::ids::uuid;
use crate::model::*;
use crate::tenancy::Owner;

pub const BASIC_ZONE: &str = "Sim-Basic";
pub const ADVANCED_ZONE: &str = "Sim-Advanced";

/// The second octet of public addresses (basic-zone guests use it plus
/// 10); 10 unless `--address-octet` says otherwise.
static ADDRESS_OCTET: std::sync::OnceLock<u8> = std::sync::OnceLock::new();

/// Moves this simulator's loopback addresses, so that two simulators with
/// real machines behind them never forward the same address and port.
pub fn use_address_octet(octet: u8) {
    let _ = ADDRESS_OCTET.set(octet);
}

fn octet() -> u16 {
    u16::from(*ADDRESS_OCTET.get().unwrap_or(&10))
}

/// Public addresses are loopback addresses so that, with real machines
/// behind them, a forwarded port is reachable from the host.
pub fn public_ip(n: u32) -> String {
    format!("127.{}.{}.{}", octet(), (n / 250) % 256, n % 250 + 1)
}

/// Basic-zone guests sit directly on a loopback address of their own.
pub fn basic_ip(n: u32) -> String {
    format!("127.{}.{}.{}", octet() + 10, (n / 250) % 256, n % 250 + 2)
}

pub fn guest_ip(n: u32) -> String {
    format!("10.1.1.{}", n % 250 + 2)
}

pub fn cloud() -> Cloud {
    let mut known = BTreeSet::new();
    let mut id = || {
        let i = uuid();
        known.insert(i.clone());
        i
    };
    let account = Account {
        account_id: id(),
        user_id: id(),
        domain_id: id(),
    };
    let basic = Zone {
        id: id(),
        name: BASIC_ZONE.into(),
        network_type: "Basic".into(),
    };
    let advanced = Zone {
        id: id(),
        name: ADVANCED_ZONE.into(),
        network_type: "Advanced".into(),
    };
    let shared = Network {
        id: id(),
        name: "guestNetworkForBasicZone".into(),
        zone_id: basic.id.clone(),
        kind: "Shared".into(),
        cidr: format!("127.{}.0.0/16", octet() + 10),
        gateway: format!("127.{}.0.1", octet() + 10),
        owner: Owner::Admin,
        vpc_id: None,
        acl_id: None,
    };
    let isolated = Network {
        id: id(),
        name: "box-isolated".into(),
        zone_id: advanced.id.clone(),
        kind: "Isolated".into(),
        cidr: "10.1.1.0/24".into(),
        gateway: "10.1.1.1".into(),
        owner: Owner::Admin,
        vpc_id: None,
        acl_id: None,
    };
    let offering = |id: String, name: &str, cpu, memory| ServiceOffering {
        id,
        name: name.into(),
        cpu,
        cpu_speed: 2000,
        memory,
    };
    let service_offerings = vec![
        offering(id(), "Tiny Instance", 1, 256),
        offering(id(), "Small Instance", 1, 512),
        offering(id(), "Medium Instance", 2, 2048),
        offering(id(), "Large Instance", 4, 8192),
    ];
    let disk = |id: String, name: &str, size, customized| DiskOffering {
        id,
        name: name.into(),
        size,
        customized,
    };
    let disk_offerings = vec![
        disk(id(), "Small", 5, false),
        disk(id(), "Medium", 20, false),
        disk(id(), "Large", 100, false),
        disk(id(), "Custom", 0, true),
    ];
    let templates = vec![
        Template {
            id: id(),
            name: "Debian 12".into(),
            display_text: "Debian 12 (bookworm) with cloud-init".into(),
            os_type: "Debian GNU/Linux 12 (64-bit)".into(),
            box_name: "debian-12".into(),
            size: 3 * 1024 * 1024 * 1024,
            checksum: None,
            upload: None,
        },
        Template {
            id: id(),
            name: "CentOS 5.5(64-bit) no GUI (KVM)".into(),
            display_text: "CentOS 5.5(64-bit) no GUI (KVM)".into(),
            os_type: "CentOS 5.5 (64-bit)".into(),
            box_name: String::new(),
            size: 8 * 1024 * 1024 * 1024,
            checksum: None,
            upload: None,
        },
    ];
    let default_sg = SecurityGroup {
        id: id(),
        name: "default".into(),
        description: "Default Security Group".into(),
        ingress: vec![],
        owner: Owner::Admin,
    };
    let source_nat = PublicIp {
        id: id(),
        address: public_ip(0),
        zone_id: advanced.id.clone(),
        network_id: Some(isolated.id.clone()),
        source_nat: true,
        static_nat_vm: None,
        allocated: clock::now_ms(),
        state: "Allocated".into(),
        owner: Owner::Admin,
        vpc_id: None,
    };
    let vpc = crate::model::vpc::VpcState::seeded(&mut id);
    Cloud {
        account,
        zones: vec![basic, advanced],
        networks: vec![shared, isolated],
        service_offerings,
        disk_offerings,
        templates,
        keypairs: vec![],
        vms: vec![],
        ips: vec![source_nat],
        pf_rules: vec![],
        fw_rules: vec![],
        security_groups: vec![default_sg],
        vm_snapshots: vec![],
        tags: vec![],
        affinity_groups: vec![],
        volumes: vec![],
        events: vec![],
        static_nat_rules: vec![],
        jobs: BTreeMap::new(),
        known_ids: known,
        counters: Counters {
            public_ip: 1,
            ..Default::default()
        },
        tenancy: Default::default(),
        vpc,
    }
}
