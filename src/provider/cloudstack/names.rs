//! Names to ids, once per run: zones, templates, offerings, networks,
//! security and affinity groups may be given by name or id in the Boxfile.
//!
//! Each list is fetched once for all machines, and every unknown name of
//! every machine is reported together, with what is available and a
//! did-you-mean, before anything is created.

use std::collections::BTreeMap;

use cloudstack::{
    AffinityGroup, DiskOffering, Network, Params, SecurityGroup, ServiceOffering, Template, Zone,
};

use crate::boxfile::Machine;
use crate::error::Hinted;

use super::api::{convert, Api};

/// How a machine is reached, chosen from its zone and settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// Basic or security-group zone: the NIC address, through the project's
    /// security group.
    SecurityGroup,
    /// Advanced zone: port forwarding on a public IP (source NAT, the
    /// project's acquired IP, or a given address).
    PortForward { ip: IpChoice },
    /// Advanced zone: a public IP of the machine's own, static NAT.
    StaticNat,
    /// The NIC address, directly (VPN users).
    Private,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpChoice {
    SourceNat,
    Auto,
    Address(String),
}

/// Everything `deployVirtualMachine` and reachability need, as ids.
#[derive(Debug, Clone)]
pub struct Plan {
    pub zone_id: String,
    pub zone_name: String,
    pub template_id: String,
    pub service_offering_id: String,
    pub disk_offering_id: Option<String>,
    pub network_id: Option<String>,
    pub security_group_ids: Vec<String>,
    pub affinity_group_ids: Vec<String>,
    pub reach: Reach,
}

/// The lists fetched so far, so each is asked for once.
#[derive(Default)]
struct Lists {
    zones: Option<Vec<Zone>>,
    templates: BTreeMap<String, Vec<Template>>,
    offerings: Option<Vec<ServiceOffering>>,
    disk_offerings: Option<Vec<DiskOffering>>,
    networks: BTreeMap<String, Vec<Network>>,
    affinity: Option<Vec<AffinityGroup>>,
    security: Option<Vec<SecurityGroup>>,
}

/// Resolves every machine's names; one error listing every unknown name.
pub async fn resolve(api: &Api, machines: &[&Machine]) -> anyhow::Result<BTreeMap<String, Plan>> {
    let mut lists = Lists::default();
    let mut plans = BTreeMap::new();
    let mut problems: Vec<Problem> = Vec::new();
    for m in machines {
        let mut soft = Vec::new();
        match plan(api, &mut lists, m, &mut soft).await {
            Ok(p) if soft.is_empty() => {
                plans.insert(m.name.clone(), p);
            }
            Ok(_) => problems.extend(soft),
            Err(Failure::Problem(p)) => problems.push(p),
            Err(Failure::Api(e)) => return Err(e),
        }
    }
    if problems.is_empty() {
        return Ok(plans);
    }
    // One line per distinct problem, naming every machine it concerns.
    let mut grouped: Vec<(String, String, Vec<String>)> = Vec::new();
    for p in problems {
        match grouped
            .iter_mut()
            .find(|(m, h, _)| *m == p.message && *h == p.hint)
        {
            Some((_, _, machines)) => machines.extend(p.machine),
            None => grouped.push((p.message, p.hint, p.machine.into_iter().collect())),
        }
    }
    let message = grouped
        .iter()
        .map(|(m, _, machines)| match machines.as_slice() {
            [] => m.clone(),
            [one] => format!("{m} (machine `{one}`)"),
            many => format!(
                "{m} (machines {})",
                many.iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let hint = grouped
        .iter()
        .map(|(_, h, _)| h.as_str())
        .collect::<Vec<_>>()
        .join("\nhint: ");
    Err(Hinted::new(format!("{message}\nnothing was created"), hint).into())
}

/// A name that does not resolve, with what is available.
struct Problem {
    message: String,
    /// The machine, when the message does not name it already.
    machine: Option<String>,
    hint: String,
}

enum Failure {
    /// A problem that makes the machine's other names meaningless (its zone).
    Problem(Problem),
    Api(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Api(e)
    }
}

/// Finds `wanted` among `(id, name)` pairs: an exact id, an exact name,
/// then a name in any letter case.
fn pick<'a>(wanted: &str, items: &'a [(String, String)]) -> Option<&'a (String, String)> {
    items
        .iter()
        .find(|(id, _)| id == wanted)
        .or_else(|| items.iter().find(|(_, name)| name == wanted))
        .or_else(|| {
            items
                .iter()
                .find(|(_, name)| name.eq_ignore_ascii_case(wanted))
        })
}

fn unknown(
    kind: &str,
    wanted: &str,
    machine: &str,
    items: &[(String, String)],
    key: &str,
) -> Problem {
    let names: Vec<&str> = items.iter().map(|(_, n)| n.as_str()).collect();
    let mut uniq = names.clone();
    uniq.sort_unstable();
    uniq.dedup();
    let available = if uniq.is_empty() {
        "none is available to this account".to_string()
    } else {
        format!(
            "available: {}",
            uniq.iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let hint = match crate::suggest::did_you_mean(wanted, names.iter().copied()) {
        Some(s) => format!("did you mean `{s}` for `{key}`? {available}"),
        None => format!("set `{key}` under [cloudstack] or the machine; {available}"),
    };
    Problem {
        message: format!("unknown {kind} `{wanted}`"),
        machine: Some(machine.to_string()),
        hint,
    }
}

async fn plan(
    api: &Api,
    lists: &mut Lists,
    m: &Machine,
    soft: &mut Vec<Problem>,
) -> Result<Plan, Failure> {
    let cs = &m.cloudstack;
    let c = &api.client;

    if lists.zones.is_none() {
        lists.zones = Some(
            c.list_zones(&Params::new())
                .await
                .map_err(|e| convert(e, "cannot list zones"))?,
        );
    }
    let zones = lists.zones.as_deref().unwrap_or_default();
    let pairs: Vec<(String, String)> = zones
        .iter()
        .map(|z| (z.id.clone(), z.name.clone()))
        .collect();
    let zone = match cs.zone.as_deref() {
        Some(z) => match pick(z, &pairs) {
            Some((id, _)) => zones.iter().find(|x| &x.id == id),
            None => {
                return Err(Failure::Problem(unknown(
                    "zone", z, &m.name, &pairs, "zone",
                )))
            }
        },
        None if zones.len() == 1 => zones.first(),
        None => {
            return Err(Failure::Problem(Problem {
                machine: None,
                message: format!(
                    "machine `{}` names no zone and the cloud has {}",
                    m.name,
                    zones.len()
                ),
                hint: format!(
                    "set `zone` under [cloudstack]; available: {}",
                    pairs
                        .iter()
                        .map(|(_, n)| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }))
        }
    };
    let Some(zone) = zone.cloned() else {
        return Err(Failure::Problem(Problem {
            machine: None,
            message: "the cloud offers no zone to this account".into(),
            hint: "check the account with `box api listZones`".into(),
        }));
    };

    // Templates: what the account may deploy in this zone.
    if !lists.templates.contains_key(&zone.id) {
        let t = c
            .list_templates(
                &Params::new()
                    .set("templatefilter", "executable")
                    .set("zoneid", &zone.id),
            )
            .await
            .map_err(|e| convert(e, "cannot list templates"))?;
        lists.templates.insert(zone.id.clone(), t);
    }
    let templates = &lists.templates[&zone.id];
    let pairs: Vec<(String, String)> = templates
        .iter()
        .map(|t| (t.id.clone(), t.name.clone()))
        .collect();
    let wanted: Vec<String> = match &cs.template {
        Some(t) => vec![t.clone()],
        None => default_templates(&m.box_name),
    };
    let template_id = match wanted.iter().find_map(|w| pick(w, &pairs)) {
        Some((id, _)) => id.clone(),
        None => {
            soft.push(unknown("template", &wanted[0], &m.name, &pairs, "template"));
            String::new()
        }
    };

    if lists.offerings.is_none() {
        lists.offerings = Some(
            c.list_service_offerings(&Params::new())
                .await
                .map_err(|e| convert(e, "cannot list service offerings"))?,
        );
    }
    let offerings = lists.offerings.as_deref().unwrap_or_default();
    let pairs: Vec<(String, String)> = offerings
        .iter()
        .map(|o| (o.id.clone(), o.name.clone()))
        .collect();
    let service_offering_id = match cs.service_offering.as_deref() {
        Some(o) => match pick(o, &pairs) {
            Some((id, _)) => id.clone(),
            None => {
                soft.push(unknown(
                    "service offering",
                    o,
                    &m.name,
                    &pairs,
                    "service_offering",
                ));
                String::new()
            }
        },
        // The smallest fixed offering that fits `cpus` and `memory`.
        None => match offerings
            .iter()
            .filter(|o| o.iscustomized != Some(true))
            .filter(|o| {
                o.cpunumber.unwrap_or(0) >= u64::from(m.cpus)
                    && o.memory.unwrap_or(0) >= u64::from(m.memory)
            })
            .min_by_key(|o| (o.memory.unwrap_or(0), o.cpunumber.unwrap_or(0)))
        {
            Some(o) => o.id.clone(),
            None => {
                return Err(Failure::Problem(Problem {
                    machine: None,
                    message: format!(
                        "no service offering fits machine `{}` ({} CPUs, {} MiB)",
                        m.name, m.cpus, m.memory
                    ),
                    hint: format!(
                        "set `service_offering`; available: {}",
                        pairs
                            .iter()
                            .map(|(_, n)| format!("`{n}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }))
            }
        },
    };

    let disk_offering_id = match cs.disk_offering.as_deref() {
        None => None,
        Some(d) => {
            if lists.disk_offerings.is_none() {
                lists.disk_offerings = Some(
                    c.list_disk_offerings(&Params::new())
                        .await
                        .map_err(|e| convert(e, "cannot list disk offerings"))?,
                );
            }
            let pairs: Vec<(String, String)> = lists
                .disk_offerings
                .as_deref()
                .unwrap_or_default()
                .iter()
                .map(|o| (o.id.clone(), o.name.clone()))
                .collect();
            match pick(d, &pairs) {
                Some((id, _)) => Some(id.clone()),
                None => {
                    soft.push(unknown(
                        "disk offering",
                        d,
                        &m.name,
                        &pairs,
                        "disk_offering",
                    ));
                    None
                }
            }
        }
    };

    let mut affinity_group_ids = Vec::new();
    if !cs.affinity_groups.is_empty() {
        if lists.affinity.is_none() {
            lists.affinity = Some(
                c.list_affinity_groups(&Params::new())
                    .await
                    .map_err(|e| convert(e, "cannot list affinity groups"))?,
            );
        }
        let pairs: Vec<(String, String)> = lists
            .affinity
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|g| (g.id.clone(), g.name.clone()))
            .collect();
        for g in &cs.affinity_groups {
            match pick(g, &pairs) {
                Some((id, _)) => affinity_group_ids.push(id.clone()),
                None => soft.push(unknown(
                    "affinity group",
                    g,
                    &m.name,
                    &pairs,
                    "affinity_groups",
                )),
            }
        }
    }

    let sg_zone = zone
        .networktype
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("basic"))
        || zone.securitygroupsenabled == Some(true);
    let mut security_group_ids = Vec::new();
    if !cs.security_groups.is_empty() {
        if lists.security.is_none() {
            lists.security = Some(
                c.list_security_groups(&Params::new())
                    .await
                    .map_err(|e| convert(e, "cannot list security groups"))?,
            );
        }
        let pairs: Vec<(String, String)> = lists
            .security
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|g| (g.id.clone(), g.name.clone().unwrap_or_default()))
            .collect();
        for g in &cs.security_groups {
            match pick(g, &pairs) {
                Some((id, _)) => security_group_ids.push(id.clone()),
                None => soft.push(unknown(
                    "security group",
                    g,
                    &m.name,
                    &pairs,
                    "security_groups",
                )),
            }
        }
    }

    let mut network_id = None;
    if !sg_zone || cs.network.is_some() {
        if !lists.networks.contains_key(&zone.id) {
            let n = c
                .list_networks(&Params::new().set("zoneid", &zone.id))
                .await
                .map_err(|e| convert(e, "cannot list networks"))?;
            lists.networks.insert(zone.id.clone(), n);
        }
        let networks = &lists.networks[&zone.id];
        let pairs: Vec<(String, String)> = networks
            .iter()
            .map(|n| (n.id.clone(), n.name.clone()))
            .collect();
        network_id = match cs.network.as_deref() {
            Some(n) => match pick(n, &pairs) {
                Some((id, _)) => Some(id.clone()),
                None => {
                    return Err(Failure::Problem(unknown(
                        "network", n, &m.name, &pairs, "network",
                    )))
                }
            },
            None => {
                let isolated: Vec<&Network> = networks
                    .iter()
                    .filter(|n| {
                        n.network_type
                            .as_deref()
                            .is_none_or(|t| t.eq_ignore_ascii_case("isolated"))
                    })
                    .filter(|n| n.canusefordeploy != Some(false))
                    .collect();
                match isolated.as_slice() {
                    [one] => Some(one.id.clone()),
                    [] => {
                        return Err(Failure::Problem(Problem {
                            machine: None,
                            message: format!(
                                "zone `{}` has no isolated network for machine `{}`",
                                zone.name, m.name
                            ),
                            hint: "create a guest network for the account, or set `network`".into(),
                        }))
                    }
                    many => {
                        return Err(Failure::Problem(Problem {
                            machine: None,
                            message: format!(
                                "zone `{}` has {} networks and machine `{}` names none",
                                zone.name,
                                many.len(),
                                m.name
                            ),
                            hint: format!(
                                "set `network`; available: {}",
                                many.iter()
                                    .map(|n| format!("`{}`", n.name))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        }))
                    }
                }
            }
        };
    }

    let reach = if sg_zone {
        Reach::SecurityGroup
    } else if cs.private == Some(true) {
        Reach::Private
    } else if cs.static_nat == Some(true) {
        Reach::StaticNat
    } else {
        Reach::PortForward {
            ip: match cs.public_ip.as_deref() {
                None | Some("source-nat") => IpChoice::SourceNat,
                Some("auto") => IpChoice::Auto,
                Some(addr) => IpChoice::Address(addr.to_string()),
            },
        }
    };

    Ok(Plan {
        zone_id: zone.id.clone(),
        zone_name: zone.name.clone(),
        template_id,
        service_offering_id,
        disk_offering_id,
        network_id,
        security_group_ids,
        affinity_group_ids,
        reach,
    })
}

/// Template names to try for a box when the Boxfile names none: the box's
/// name written the way clouds name templates (`debian-12` → `Debian 12`).
fn default_templates(box_name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let pretty: String = box_name
        .split(['-', '_'])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_uppercase().chain(c).collect::<String>(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    out.push(pretty);
    out.push(box_name.to_string());
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_names_map_to_cloud_template_names() {
        assert!(default_templates("debian-12").contains(&"Debian 12".to_string()));
    }

    #[test]
    fn names_match_ids_then_names_then_any_case() {
        let items = vec![
            ("1".to_string(), "Small".to_string()),
            ("2".to_string(), "Large".to_string()),
        ];
        assert_eq!(pick("2", &items).map(|p| p.0.as_str()), Some("2"));
        assert_eq!(pick("small", &items).map(|p| p.0.as_str()), Some("1"));
        assert!(pick("Medium", &items).is_none());
    }
}
