//! Static NAT rules (`createIpForwardingRule`): port ranges of an address
//! that has static NAT to a VM, as `listIpForwardingRules` renders them
//! (`ApiResponseHelper.createIpForwardingRuleResponse`).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::Cloud;
use crate::tenancy::Owner;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StaticNatRule {
    pub id: String,
    pub ip_id: String,
    /// As sent: the command keeps the case it is given.
    pub protocol: String,
    pub start_port: u16,
    pub end_port: u16,
    /// `Add`, `Active`, or `Revoke` (rendered `Deleting`).
    pub state: String,
    /// The firewall rule `openfirewall` opened with it, removed with it.
    pub firewall_rule: Option<String>,
    pub owner: Owner,
}

impl StaticNatRule {
    pub fn render(&self, cloud: &Cloud) -> Value {
        let ip = cloud.ip(&self.ip_id);
        let mut v = json!({
            "id": self.id,
            "protocol": self.protocol,
            "startport": self.start_port,
            "endport": self.end_port,
            "state": if self.state == "Revoke" { "Deleting" } else { self.state.as_str() },
        });
        if let Some(ip) = ip {
            // The server puts the address's internal database id here
            // (`response.setPublicIpAddressId(ip.getId())`, a Long), not its UUID.
            v["ipaddressid"] = json!(internal_id(&ip.address));
            v["ipaddress"] = json!(ip.address);
            if let Some(vm) = ip.static_nat_vm.as_deref().and_then(|id| cloud.vm(id)) {
                v["virtualmachineid"] = json!(vm.id);
                v["virtualmachinename"] = json!(vm.name);
                v["virtualmachinedisplayname"] = json!(vm.display_name);
            }
        }
        v
    }
}

/// A stable positive number per public address, standing for its row id.
fn internal_id(address: &str) -> u64 {
    address
        .split('.')
        .filter_map(|o| o.parse::<u64>().ok())
        .fold(0, |n, o| n * 256 + o)
        % 1_000_000
        + 1
}
