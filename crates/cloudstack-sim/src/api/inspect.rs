//! The list commands clients call to describe machines and what is around
//! them: `listNics`, `listVolumes`, `listEvents` and `listNetworks` with its
//! filters, answering as Apache CloudStack's `*Cmd` classes and response
//! builders do. (`listIpForwardingRules` is in `static_nat.rs`, with the
//! rules it lists.)

use serde_json::Value;

use super::list::{field_eq, list_by};
use super::{Ctx, Reply};
use crate::error::ApiError;
use crate::model::Volume;
use crate::params::Params;

/// The volumes a new VM gets: its ROOT volume, and a DATADISK when it was
/// deployed with `diskofferingid`.
pub fn add_volumes(ctx: &mut Ctx, vm: &str, p: &Params) -> Result<(), ApiError> {
    let gb = |name: &str| -> Result<Option<u64>, ApiError> {
        Ok(p.int(name)?.filter(|n| *n > 0).map(|n| n as u64))
    };
    let (root_gb, data_gb) = (gb("rootdisksize")?, gb("size")?);
    let id = ctx.id();
    if let Some(v) = Volume::root(id, ctx.cloud, vm, root_gb) {
        ctx.cloud.volumes.push(v);
    }
    if let Some(offering) = p.str("diskofferingid") {
        let id = ctx.id();
        if let Some(v) = Volume::data(id, ctx.cloud, vm, offering, data_gb) {
            ctx.cloud.volumes.push(v);
        }
    }
    Ok(())
}

/// `ListVolumesCmd`: by id/ids, name, type, VM, zone, disk offering, state, tags.
pub fn list_volumes(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let c = &*ctx.cloud;
    let filters = [
        field_eq(p, "type", "type"),
        field_eq(p, "virtualmachineid", "virtualmachineid"),
        field_eq(p, "zoneid", "zoneid"),
        field_eq(p, "diskofferingid", "diskofferingid"),
        field_eq(p, "state", "state"),
    ];
    let scope = ctx.scope(p)?;
    let ids = p.list("ids");
    let items: Vec<Value> = c
        .volumes
        .iter()
        .filter(|v| scope.sees(c, &v.owner))
        .filter(|v| ids.is_empty() || ids.contains(&v.id))
        .map(|v| v.render(c))
        .filter(|v| filters.iter().all(|f| f(v)))
        .collect();
    list_by(p, "volume", items, &["name"])
}

/// `ListNicsCmd`: the NICs of one VM, by `nicid` and `networkid`. The
/// command turns every failure into an internal error (530).
pub fn list_nics(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let c = &*ctx.cloud;
    let id = p.req("virtualmachineid")?;
    let Some(vm) = c.vm(id) else {
        return Err(ApiError::internal("Virtual machine id does not exist"));
    };
    ctx.may_operate(&vm.owner)?;
    let nic = p.str("nicid");
    let network = p.str("networkid");
    let items: Vec<Value> = vm
        .nics
        .iter()
        .enumerate()
        .filter(|(_, n)| nic.is_none_or(|x| x == n.id))
        .filter(|(_, n)| network.is_none_or(|x| x == n.network_id))
        .map(|(i, n)| {
            let mut v = n.render(c, i);
            v["virtualmachineid"] = serde_json::json!(vm.id);
            v["deviceid"] = serde_json::json!(i.to_string());
            v
        })
        .collect();
    // `id` and `name` are not listNics parameters: keep the shared filter
    // from reading them.
    list_by(&p.without(&["id", "name"]), "nic", items, &[])
}

/// A `startdate`/`enddate` of `listEvents` in epoch ms, as
/// `ParamProcessWorker` reads them: `yyyy-MM-dd HH:mm:ss`, or `yyyy-MM-dd`
/// meaning 00:00:00 for a start and 23:59:59 for an end (server time, UTC).
fn event_date(p: &Params, name: &str, end: bool) -> Result<Option<u64>, ApiError> {
    use time::macros::format_description;
    let Some(v) = p.str(name) else {
        return Ok(None);
    };
    let v = v.trim();
    let full = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    let day = format_description!("[year]-[month]-[day]");
    let at = time::PrimitiveDateTime::parse(v, full).ok().or_else(|| {
        time::Date::parse(v, day).ok().map(|d| {
            let t = if end {
                time::Time::from_hms(23, 59, 59)
            } else {
                Ok(time::Time::MIDNIGHT)
            };
            d.with_time(t.unwrap_or(time::Time::MIDNIGHT))
        })
    });
    let Some(at) = at else {
        return Err(ApiError::invalid(format!(
            "Unable to parse date {v} for command listEvents, please pass dates in the format mentioned in the api documentation"
        )));
    };
    let ms = at.assume_utc().unix_timestamp() * 1000 + if end { 999 } else { 0 };
    Ok(Some(ms.max(0) as u64))
}

/// `ListEventsCmd`: newest first, by id, type, level, `startid` (the event
/// and those it started), `resourceid`/`resourcetype` and
/// `startdate`/`enddate`.
pub fn list_events(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let from = event_date(p, "startdate", false)?;
    let until = event_date(p, "enddate", true)?;
    let c = &*ctx.cloud;
    let filters = [
        field_eq(p, "type", "type"),
        field_eq(p, "level", "level"),
        field_eq(p, "resourceid", "resourceid"),
        field_eq(p, "resourcetype", "resourcetype"),
    ];
    let scope = ctx.scope(p)?;
    let start = p.str("startid");
    let mut events: Vec<_> = c
        .events
        .iter()
        .filter(|e| scope.sees(c, &e.owner))
        .filter(|e| start.is_none_or(|s| e.id == s || e.parent.as_deref() == Some(s)))
        .filter(|e| from.is_none_or(|f| e.created >= f) && until.is_none_or(|u| e.created <= u))
        .collect();
    events.sort_by_key(|e| std::cmp::Reverse((e.created, e.seq)));
    let items: Vec<Value> = events
        .into_iter()
        .map(|e| e.render(c))
        .filter(|v| filters.iter().all(|f| f(v)))
        .collect();
    list_by(p, "event", items, &["type", "description"])
}

/// `ListNetworksCmd` with the filters `NetworkServiceImpl.searchForNetworks`
/// applies. `type` takes `isolated`, `shared`, `l2` or `all`; the command has
/// no `name` parameter (a `name` is ignored, as the server ignores unknown
/// parameters) and `keyword` matches the name.
pub fn list_networks(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let c = &*ctx.cloud;
    let kind = match p.str("type").map(str::to_lowercase).as_deref() {
        None | Some("") | Some("all") => None,
        Some("isolated") => Some("Isolated"),
        Some("shared") => Some("Shared"),
        Some("l2") => Some("L2"),
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "Unable to find GuestType with value {other}"
            )))
        }
    };
    let filters = [
        field_eq(p, "zoneid", "zoneid"),
        field_eq(p, "vpcid", "vpcid"),
        field_eq(p, "traffictype", "traffictype"),
        field_eq(p, "acltype", "acltype"),
        field_eq(p, "issystem", "issystem"),
        field_eq(p, "canusefordeploy", "canusefordeploy"),
        field_eq(p, "restartrequired", "restartrequired"),
        field_eq(p, "specifyipranges", "specifyipranges"),
        field_eq(p, "networkofferingid", "networkofferingid"),
    ];
    let for_vpc = p.bool("forvpc");
    let services = p.list("supportedservices");
    let scope = ctx.scope(p)?;
    let items: Vec<Value> = c
        .networks
        .iter()
        // Shared networks serve every account of their domain; the others
        // are their owner's (`searchForNetworks`' account and domain lists).
        .filter(|n| n.kind == "Shared" || scope.sees(c, &n.owner))
        .map(|n| n.render(c))
        .filter(|v| kind.is_none_or(|k| v["type"] == k))
        .filter(|v| filters.iter().all(|f| f(v)))
        .filter(|v| for_vpc.is_none_or(|want| v.get("vpcid").is_some() == want))
        .filter(|v| {
            services.iter().all(|s| {
                v["service"].as_array().is_some_and(|all| {
                    all.iter().any(|x| {
                        x["name"]
                            .as_str()
                            .is_some_and(|n| n.eq_ignore_ascii_case(s))
                    })
                })
            })
        })
        .collect();
    list_by(&p.without(&["name"]), "network", items, &["name"])
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::super::{call, envelope, find, response_name, Ctx};
    use crate::error::ApiError;
    use crate::model::Cloud;
    use crate::params::Params;
    use crate::tenancy::Layout;
    use crate::{jobs, seed};

    fn run(cloud: &mut Cloud, command: &str, pairs: &[(&str, &str)]) -> Result<Value, ApiError> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let cmd = find(command).ok_or_else(|| ApiError::unknown_command(command))?;
        let mut ctx = Ctx::new(cloud, 1_000, 10, false);
        call(&mut ctx, cmd, &Params::new(cmd.name, &pairs))
            .map(|r| envelope(cmd.name, r)[response_name(cmd.name)].clone())
    }

    fn finish_all(cloud: &mut Cloud, fault: Option<ApiError>) {
        let pending: Vec<String> = cloud
            .jobs
            .values()
            .filter(|j| j.status == 0)
            .map(|j| j.id.clone())
            .collect();
        for id in pending {
            jobs::complete(cloud, &id, 2_000, fault.clone());
        }
    }

    fn zone(cloud: &Cloud, name: &str) -> String {
        cloud
            .zones
            .iter()
            .find(|z| z.name == name)
            .unwrap()
            .id
            .clone()
    }

    /// A running VM in the Advanced zone (or `zone`), deployed with `extra`.
    fn deploy_in(cloud: &mut Cloud, zone_name: &str, name: &str, extra: &[(&str, &str)]) -> String {
        let zone = zone(cloud, zone_name);
        let (t, o) = (
            cloud.templates[0].id.clone(),
            cloud.service_offerings[1].id.clone(),
        );
        let mut pairs = vec![
            ("zoneid", zone.as_str()),
            ("templateid", t.as_str()),
            ("serviceofferingid", o.as_str()),
            ("name", name),
        ];
        pairs.extend_from_slice(extra);
        let r = run(cloud, "deployVirtualMachine", &pairs).unwrap();
        finish_all(cloud, None);
        r["id"].as_str().unwrap().to_string()
    }

    fn deploy(cloud: &mut Cloud, name: &str, extra: &[(&str, &str)]) -> String {
        deploy_in(cloud, seed::ADVANCED_ZONE, name, extra)
    }

    fn items(v: &Value, key: &str) -> Vec<Value> {
        v[key].as_array().cloned().unwrap_or_default()
    }

    #[test]
    fn every_vm_has_a_root_volume_and_a_disk_offering_adds_a_datadisk() {
        let mut c = seed::cloud();
        let web = deploy(&mut c, "web", &[]);
        let medium = c
            .disk_offerings
            .iter()
            .find(|o| o.name == "Medium")
            .unwrap()
            .id
            .clone();
        let db = deploy(&mut c, "db", &[("diskofferingid", &medium)]);

        let all = run(&mut c, "listVolumes", &[]).unwrap();
        assert_eq!(all["count"], 3);
        let roots = items(
            &run(&mut c, "listVolumes", &[("type", "ROOT")]).unwrap(),
            "volume",
        );
        assert_eq!(roots.len(), 2);
        let root = &items(
            &run(
                &mut c,
                "listVolumes",
                &[("virtualmachineid", &web), ("type", "root")],
            )
            .unwrap(),
            "volume",
        )[0];
        assert_eq!(root["name"], "ROOT-1");
        assert_eq!(root["type"], "ROOT");
        assert_eq!(root["deviceid"], 0);
        assert_eq!(root["size"], c.templates[0].size);
        assert_eq!(root["state"], "Ready");
        assert_eq!(root["vmname"], "web");
        assert_eq!(root["vmstate"], "Running");
        assert_eq!(root["templateid"], c.templates[0].id.as_str());
        assert_eq!(root["serviceofferingname"], "Small Instance");
        assert_eq!(root["account"], "admin");
        assert!(root.get("diskofferingid").is_none());

        let data = &items(
            &run(&mut c, "listVolumes", &[("type", "DATADISK")]).unwrap(),
            "volume",
        )[0];
        assert_eq!(data["name"], "DATA-2");
        assert_eq!(data["virtualmachineid"], db.as_str());
        assert_eq!(data["deviceid"], 1);
        assert_eq!(data["size"], 20u64 * 1024 * 1024 * 1024);
        assert_eq!(data["diskofferingid"], medium.as_str());
        assert_eq!(data["diskofferingname"], "Medium");
        assert!(data.get("templateid").is_none());

        let by_keyword = run(&mut c, "listVolumes", &[("keyword", "data")]).unwrap();
        assert_eq!(by_keyword["count"], 1);
        let by_offering = run(&mut c, "listVolumes", &[("diskofferingid", &medium)]).unwrap();
        assert_eq!(by_offering["count"], 1);
    }

    #[test]
    fn root_disk_size_and_custom_data_disk_size_are_honoured() {
        let mut c = seed::cloud();
        let custom = c
            .disk_offerings
            .iter()
            .find(|o| o.customized)
            .unwrap()
            .id
            .clone();
        let vm = deploy(
            &mut c,
            "big",
            &[
                ("rootdisksize", "40"),
                ("diskofferingid", &custom),
                ("size", "7"),
            ],
        );
        let v = run(&mut c, "listVolumes", &[("virtualmachineid", &vm)]).unwrap();
        let sizes: Vec<u64> = items(&v, "volume")
            .iter()
            .map(|x| x["size"].as_u64().unwrap())
            .collect();
        assert_eq!(sizes, [40 << 30, 7 << 30]);
    }

    #[test]
    fn expunging_a_vm_removes_its_root_volume_and_detaches_its_datadisk() {
        let mut c = seed::cloud();
        let small = c.disk_offerings[0].id.clone();
        let vm = deploy(&mut c, "gone", &[("diskofferingid", &small)]);
        run(&mut c, "destroyVirtualMachine", &[("id", &vm)]).unwrap();
        finish_all(&mut c, None);
        let v = run(&mut c, "listVolumes", &[("virtualmachineid", &vm)]).unwrap();
        assert_eq!(
            v["count"], 2,
            "a destroyed VM keeps its volumes until expunged"
        );
        assert_eq!(v["volume"][0]["vmstate"], "Destroyed");

        run(&mut c, "expungeVirtualMachine", &[("id", &vm)]).unwrap();
        finish_all(&mut c, None);
        assert_eq!(
            run(&mut c, "listVolumes", &[("virtualmachineid", &vm)]).unwrap(),
            json!({})
        );
        let left = items(&run(&mut c, "listVolumes", &[]).unwrap(), "volume");
        assert_eq!(left.len(), 1);
        assert_eq!(left[0]["type"], "DATADISK");
        assert!(
            left[0].get("virtualmachineid").is_none(),
            "detached: {}",
            left[0]
        );
        assert!(left[0].get("deviceid").is_none());
    }

    #[test]
    fn list_nics_needs_a_vm_and_renders_its_nics() {
        let mut c = seed::cloud();
        let e = run(&mut c, "listNics", &[]).unwrap_err();
        assert_eq!(e.code, 431);
        assert!(
            e.text.ends_with("missing parameter virtualmachineid"),
            "{}",
            e.text
        );

        let vm = deploy(&mut c, "web", &[]);
        let v = run(&mut c, "listNics", &[("virtualmachineid", &vm)]).unwrap();
        assert_eq!(v["count"], 1);
        let nic = &v["nic"][0];
        let net = c.networks.iter().find(|n| n.kind == "Isolated").unwrap();
        assert_eq!(nic["virtualmachineid"], vm.as_str());
        assert_eq!(nic["networkid"], net.id.as_str());
        assert_eq!(nic["networkname"], net.name.as_str());
        assert_eq!(nic["ipaddress"], c.vm(&vm).unwrap().nics[0].ip.as_str());
        assert_eq!(nic["macaddress"], c.vm(&vm).unwrap().nics[0].mac.as_str());
        assert_eq!(nic["gateway"], "10.1.1.1");
        assert_eq!(nic["netmask"], "255.255.255.0");
        assert_eq!(nic["isdefault"], true);
        assert_eq!(nic["deviceid"], "0");
        assert_eq!(nic["type"], "Isolated");
        assert_eq!(nic["traffictype"], "Guest");
        // The same NIC as inside the VM's own answer.
        let listed = run(&mut c, "listVirtualMachines", &[("id", &vm)]).unwrap();
        assert_eq!(listed["virtualmachine"][0]["nic"][0]["id"], nic["id"]);

        let nic_id = nic["id"].as_str().unwrap().to_string();
        let by_id = run(
            &mut c,
            "listNics",
            &[("virtualmachineid", &vm), ("nicid", &nic_id)],
        )
        .unwrap();
        assert_eq!(by_id["count"], 1);
        let shared = c
            .networks
            .iter()
            .find(|n| n.kind == "Shared")
            .unwrap()
            .id
            .clone();
        let other = run(
            &mut c,
            "listNics",
            &[("virtualmachineid", &vm), ("networkid", &shared)],
        )
        .unwrap();
        assert_eq!(other, json!({}));
    }

    #[test]
    fn list_nics_of_an_expunged_vm_is_an_internal_error_as_listnicscmd_wraps_it() {
        let mut c = seed::cloud();
        let vm = deploy(&mut c, "web", &[]);
        run(
            &mut c,
            "destroyVirtualMachine",
            &[("id", &vm), ("expunge", "true")],
        )
        .unwrap();
        finish_all(&mut c, None);
        let e = run(&mut c, "listNics", &[("virtualmachineid", &vm)]).unwrap_err();
        assert_eq!(e.code, 530);
    }

    #[test]
    fn ip_forwarding_rules_need_static_nat_and_are_listed_until_static_nat_goes() {
        let mut c = seed::cloud();
        let vm = deploy(&mut c, "web", &[]);
        let zone = zone(&c, seed::ADVANCED_ZONE);
        let ip = run(&mut c, "associateIpAddress", &[("zoneid", &zone)]).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        finish_all(&mut c, None);
        let address = c.ip(&ip).unwrap().address.clone();
        let rule = [
            ("ipaddressid", ip.as_str()),
            ("protocol", "TCP"),
            ("startport", "80"),
            ("endport", "81"),
        ];

        let e = run(&mut c, "createIpForwardingRule", &rule).unwrap_err();
        assert_eq!(e.code, 537, "{}", e.text);
        assert_eq!(
            e.text,
            format!("Can't do static nat on ip address: {address}")
        );
        assert_eq!(
            run(&mut c, "listIpForwardingRules", &[]).unwrap(),
            json!({})
        );

        run(
            &mut c,
            "enableStaticNat",
            &[("ipaddressid", &ip), ("virtualmachineid", &vm)],
        )
        .unwrap();
        assert_eq!(
            run(&mut c, "listIpForwardingRules", &[]).unwrap(),
            json!({}),
            "enableStaticNat alone makes no ip forwarding rule"
        );
        let created = run(&mut c, "createIpForwardingRule", &rule).unwrap();
        finish_all(&mut c, None);
        let id = created["id"].as_str().unwrap().to_string();
        let job = c
            .jobs
            .values()
            .find(|j| j.command == "createIpForwardingRule")
            .unwrap();
        assert_eq!(
            job.render(&c)["jobresult"]["ipforwardingrule"]["id"],
            id.as_str()
        );

        let v = run(
            &mut c,
            "listIpForwardingRules",
            &[("virtualmachineid", &vm)],
        )
        .unwrap();
        assert_eq!(v["count"], 1);
        let r = &v["ipforwardingrule"][0];
        assert_eq!(r["id"], id.as_str());
        assert_eq!(r["protocol"], "TCP", "kept as sent");
        assert_eq!(
            (r["startport"].clone(), r["endport"].clone()),
            (json!(80), json!(81))
        );
        assert_eq!(r["ipaddress"], address.as_str());
        assert!(
            r["ipaddressid"].is_u64(),
            "the internal id, as the server sends: {r}"
        );
        assert_eq!(r["virtualmachineid"], vm.as_str());
        assert_eq!(r["virtualmachinename"], "web");
        assert_eq!(r["state"], "Active");
        assert_eq!(
            run(&mut c, "listIpForwardingRules", &[("ipaddressid", &ip)]).unwrap()["count"],
            1
        );
        let opened = run(&mut c, "listFirewallRules", &[("ipaddressid", &ip)]).unwrap();
        assert_eq!(opened["count"], 1, "openfirewall defaults to true");

        let e = run(
            &mut c,
            "createIpForwardingRule",
            &[
                ("ipaddressid", &ip),
                ("protocol", "tcp"),
                ("startport", "81"),
            ],
        )
        .unwrap_err();
        assert_eq!(e.code, 537, "an overlapping range conflicts: {}", e.text);
        let e = run(
            &mut c,
            "createIpForwardingRule",
            &[
                ("ipaddressid", &ip),
                ("protocol", "tcp"),
                ("startport", "90"),
                ("cidrlist", "10.0.0.0/8"),
            ],
        )
        .unwrap_err();
        assert!(
            e.text.starts_with("Parameter cidrList is deprecated"),
            "{}",
            e.text
        );

        run(&mut c, "deleteIpForwardingRule", &[("id", &id)]).unwrap();
        assert_eq!(
            run(&mut c, "listIpForwardingRules", &[]).unwrap()["ipforwardingrule"][0]["state"],
            "Deleting"
        );
        finish_all(&mut c, None);
        assert_eq!(
            run(&mut c, "listIpForwardingRules", &[]).unwrap(),
            json!({})
        );
        assert_eq!(
            run(&mut c, "listFirewallRules", &[("ipaddressid", &ip)]).unwrap(),
            json!({}),
            "its firewall rule goes with it"
        );

        run(
            &mut c,
            "createIpForwardingRule",
            &[
                ("ipaddressid", &ip),
                ("protocol", "udp"),
                ("startport", "53"),
                ("openfirewall", "false"),
            ],
        )
        .unwrap();
        finish_all(&mut c, None);
        run(&mut c, "disableStaticNat", &[("ipaddressid", &ip)]).unwrap();
        finish_all(&mut c, None);
        assert_eq!(
            run(&mut c, "listIpForwardingRules", &[]).unwrap(),
            json!({}),
            "disabling static NAT revokes its rules"
        );
    }

    #[test]
    fn events_record_each_job_scheduled_started_and_completed() {
        let mut c = seed::cloud();
        let vm = deploy(&mut c, "web", &[]);
        run(&mut c, "stopVirtualMachine", &[("id", &vm)]).unwrap();
        finish_all(&mut c, None);

        let creates = items(
            &run(&mut c, "listEvents", &[("type", "VM.CREATE")]).unwrap(),
            "event",
        );
        let states: Vec<&str> = creates
            .iter()
            .map(|e| e["state"].as_str().unwrap())
            .collect();
        assert_eq!(
            states,
            ["Completed", "Started", "Scheduled", "Created"],
            "newest first"
        );
        let created = &creates[3];
        assert_eq!(
            created["description"],
            "Successfully created entity for deploying Vm"
        );
        assert!(created.get("parentid").is_none());
        for e in &creates[..3] {
            assert_eq!(
                e["parentid"], created["id"],
                "the deploy's events hang off its Created event"
            );
        }
        assert_eq!(creates[0]["level"], "INFO");
        assert_eq!(
            creates[0]["description"],
            format!("Successfully completed starting Vm. Vm Id: {vm}")
        );
        assert_eq!(creates[0]["account"], "admin");
        assert_eq!(creates[0]["domain"], "ROOT");
        assert_eq!(creates[0]["username"], "admin");
        assert_eq!(creates[0]["resourcetype"], "VirtualMachine");
        assert_eq!(creates[0]["resourceid"], vm.as_str());
        assert!(creates[0]["created"].as_str().unwrap().ends_with("+0000"));

        let stops = items(
            &run(&mut c, "listEvents", &[("type", "VM.STOP")]).unwrap(),
            "event",
        );
        assert_eq!(stops.len(), 3);
        assert_eq!(stops[2]["state"], "Scheduled");
        assert_eq!(stops[2]["description"], format!("stopping user vm: {vm}"));
        assert_eq!(
            stops[0]["parentid"], stops[2]["id"],
            "Completed points at Scheduled"
        );

        let scheduled = stops[2]["id"].as_str().unwrap().to_string();
        let family = run(&mut c, "listEvents", &[("startid", &scheduled)]).unwrap();
        assert_eq!(family["count"], 3);
        let one = run(&mut c, "listEvents", &[("id", &scheduled)]).unwrap();
        assert_eq!(one["count"], 1);
    }

    #[test]
    fn events_list_between_start_and_end_dates_in_either_format() {
        let mut c = seed::cloud();
        deploy(&mut c, "web", &[]);
        // The test clock: submitted at 1 s, finished at 2 s after the epoch.
        let count = |c: &mut Cloud, pairs: &[(&str, &str)]| -> u64 {
            run(c, "listEvents", pairs).unwrap()["count"]
                .as_u64()
                .unwrap_or(0)
        };
        assert_eq!(count(&mut c, &[("startdate", "1970-01-01")]), 4);
        assert_eq!(count(&mut c, &[("startdate", "1970-01-01 00:00:02")]), 2);
        assert_eq!(count(&mut c, &[("enddate", "1970-01-01 00:00:01")]), 2);
        assert_eq!(
            count(&mut c, &[("enddate", "1970-01-01")]),
            4,
            "a day ends at 23:59:59"
        );
        assert_eq!(count(&mut c, &[("startdate", "1970-01-02")]), 0);
        let e = run(&mut c, "listEvents", &[("startdate", "yesterday")]).unwrap_err();
        assert_eq!(e.code, 431);
        assert!(
            e.text.starts_with("Unable to parse date yesterday"),
            "{}",
            e.text
        );
    }

    #[test]
    fn events_cover_addresses_and_rules_and_failed_jobs_are_errors() {
        let mut c = seed::cloud();
        let vm = deploy(&mut c, "web", &[]);
        let zone = zone(&c, seed::ADVANCED_ZONE);
        let ip = run(&mut c, "associateIpAddress", &[("zoneid", &zone)]).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        finish_all(&mut c, None);
        let address = c.ip(&ip).unwrap().address.clone();
        run(
            &mut c,
            "createPortForwardingRule",
            &[
                ("ipaddressid", &ip),
                ("privateport", "22"),
                ("publicport", "2222"),
                ("protocol", "tcp"),
                ("virtualmachineid", &vm),
            ],
        )
        .unwrap();
        finish_all(&mut c, Some(ApiError::internal("router unreachable")));

        let assign = items(
            &run(&mut c, "listEvents", &[("type", "NET.IPASSIGN")]).unwrap(),
            "event",
        );
        assert_eq!(assign[0]["state"], "Completed");
        assert!(
            assign[0]["description"]
                .as_str()
                .unwrap()
                .starts_with("Successfully completed associating ip to network id: "),
            "{}",
            assign[0]
        );
        let rule = items(
            &run(&mut c, "listEvents", &[("type", "NET.RULEADD")]).unwrap(),
            "event",
        );
        assert_eq!(rule[0]["level"], "ERROR");
        assert_eq!(
            rule[0]["description"],
            format!("Error while Applying port forwarding  rule for Ip: {address} with virtual machine:{vm}")
        );
        let errors = run(&mut c, "listEvents", &[("level", "ERROR")]).unwrap();
        assert_eq!(errors["count"], 1);
        let by_keyword = run(&mut c, "listEvents", &[("keyword", "port forwarding")]).unwrap();
        assert_eq!(by_keyword["count"], 3);
    }

    #[test]
    fn a_projects_volumes_and_events_list_only_with_its_projectid() {
        let mut c = seed::cloud();
        let layout = Layout {
            domains: vec![],
            accounts: vec![],
            projects: vec!["team".parse().unwrap()],
            members: vec![],
            caller: None,
        };
        c.apply_layout(&layout).unwrap();
        let team = c.tenancy.projects[0].id.clone();
        let vm = deploy(&mut c, "web", &[("projectid", &team)]);

        assert_eq!(run(&mut c, "listVolumes", &[]).unwrap(), json!({}));
        let v = run(&mut c, "listVolumes", &[("projectid", &team)]).unwrap();
        assert_eq!(v["count"], 1);
        assert_eq!(v["volume"][0]["virtualmachineid"], vm.as_str());
        assert_eq!(v["volume"][0]["projectid"], team.as_str());
        assert_eq!(v["volume"][0]["project"], "team");
        assert!(
            v["volume"][0].get("account").is_none(),
            "{}",
            v["volume"][0]
        );
        let all = run(&mut c, "listVolumes", &[("projectid", "-1")]).unwrap();
        assert_eq!(all["count"], 1);

        assert_eq!(
            run(&mut c, "listEvents", &[("type", "VM.CREATE")]).unwrap(),
            json!({})
        );
        let e = run(
            &mut c,
            "listEvents",
            &[("type", "VM.CREATE"), ("projectid", &team)],
        )
        .unwrap();
        assert_eq!(e["count"], 4);
        assert_eq!(e["event"][0]["project"], "team");
    }

    #[test]
    fn list_networks_filters_as_search_for_networks_does() {
        let mut c = seed::cloud();
        let count = |c: &mut Cloud, pairs: &[(&str, &str)]| -> u64 {
            run(c, "listNetworks", pairs).unwrap()["count"]
                .as_u64()
                .unwrap_or(0)
        };
        assert_eq!(count(&mut c, &[]), 2);
        assert_eq!(count(&mut c, &[("type", "isolated")]), 1);
        assert_eq!(count(&mut c, &[("type", "Shared")]), 1);
        assert_eq!(count(&mut c, &[("type", "all")]), 2);
        assert_eq!(count(&mut c, &[("type", "l2")]), 0);
        let e = run(&mut c, "listNetworks", &[("type", "bogus")]).unwrap_err();
        assert_eq!(e.code, 431);
        let adv = zone(&c, seed::ADVANCED_ZONE);
        let v = run(&mut c, "listNetworks", &[("zoneid", &adv)]).unwrap();
        assert_eq!(
            (v["count"].clone(), v["network"][0]["type"].clone()),
            (json!(1), json!("Isolated"))
        );
        assert_eq!(count(&mut c, &[("canusefordeploy", "true")]), 2);
        assert_eq!(count(&mut c, &[("canusefordeploy", "false")]), 0);
        assert_eq!(count(&mut c, &[("issystem", "false")]), 2);
        assert_eq!(count(&mut c, &[("forvpc", "false")]), 2);
        assert_eq!(count(&mut c, &[("forvpc", "true")]), 0);
        assert_eq!(count(&mut c, &[("acltype", "account")]), 1);
        assert_eq!(count(&mut c, &[("supportedservices", "SecurityGroup")]), 1);
        assert_eq!(
            count(&mut c, &[("supportedservices", "SourceNat,PortForwarding")]),
            1
        );
        assert_eq!(count(&mut c, &[("keyword", "isolated")]), 1);
        // listNetworks has no `name` parameter: the server ignores it.
        assert_eq!(count(&mut c, &[("name", "nothing-has-this-name")]), 2);
        let v = run(&mut c, "listNetworks", &[("type", "isolated")]).unwrap();
        let offering = v["network"][0]["networkofferingid"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(count(&mut c, &[("networkofferingid", &offering)]), 1);
    }

    #[test]
    fn security_groups_by_vm_are_the_vms_groups() {
        let mut c = seed::cloud();
        let vm = deploy_in(&mut c, seed::BASIC_ZONE, "basic", &[]);
        let v = run(&mut c, "listSecurityGroups", &[("virtualmachineid", &vm)]).unwrap();
        assert_eq!(v["count"], 1);
        assert_eq!(v["securitygroup"][0]["name"], "default");
        assert_eq!(v["securitygroup"][0]["virtualmachineids"], json!([vm]));
        let adv = deploy(&mut c, "isolated", &[]);
        assert_eq!(
            run(&mut c, "listSecurityGroups", &[("virtualmachineid", &adv)]).unwrap(),
            json!({})
        );
    }

    #[test]
    fn security_groups_of_an_expunged_vm_are_refused_as_instance_not_found() {
        let mut c = seed::cloud();
        let vm = deploy_in(&mut c, seed::BASIC_ZONE, "gone", &[]);
        run(
            &mut c,
            "destroyVirtualMachine",
            &[("id", &vm), ("expunge", "true")],
        )
        .unwrap();
        finish_all(&mut c, None);
        let e = run(&mut c, "listSecurityGroups", &[("virtualmachineid", &vm)]).unwrap_err();
        assert_eq!(e.code, 431);
        assert_eq!(
            e.text,
            format!("Unable to list network groups for virtual machine instance {vm}; instance not found.")
        );
    }

    #[test]
    fn security_groups_by_vm_ignore_the_other_filters() {
        let mut c = seed::cloud();
        let vm = deploy_in(&mut c, seed::BASIC_ZONE, "basic", &[]);
        let v = run(
            &mut c,
            "listSecurityGroups",
            &[
                ("virtualmachineid", &vm),
                ("securitygroupname", "nope"),
                ("keyword", "nope"),
            ],
        )
        .unwrap();
        assert_eq!(v["count"], 1, "{v}");
    }
}
