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

use crate::boxfile::{CloudStackSettings, Machine};
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
    /// The VPC, when the network is one of its tiers.
    pub vpc_id: Option<String>,
    pub security_group_ids: Vec<String>,
    pub affinity_group_ids: Vec<String>,
    pub reach: Reach,
}

/// The lists fetched so far, so each is asked for once.
#[derive(Default)]
struct Lists {
    zones: Option<Vec<Zone>>,
    /// By zone id.
    templates: BTreeMap<String, Option<Vec<Template>>>,
    offerings: Option<Vec<ServiceOffering>>,
    disk_offerings: Option<Vec<DiskOffering>>,
    /// By zone id.
    networks: BTreeMap<String, Option<Vec<Network>>>,
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

/// A kind of thing the Boxfile may give by name or id. Adding one is an
/// impl here and one `listed` call in `plan` (the project, domain and
/// account of `scope.rs` are others).
pub(super) trait Named {
    /// As messages call one: "unknown service offering `x`".
    const KIND: &'static str;
    /// As messages call the list: "cannot list service offerings".
    const PLURAL: &'static str;
    /// The Boxfile key that names it, for the hint.
    const KEY: &'static str;
    fn id(&self) -> &str;
    fn name(&self) -> &str;
}

macro_rules! named {
    ($($t:ty => $kind:literal, $plural:literal, $key:literal;)*) => {$(
        impl Named for $t {
            const KIND: &'static str = $kind;
            const PLURAL: &'static str = $plural;
            const KEY: &'static str = $key;
            fn id(&self) -> &str {
                &self.id
            }
            fn name(&self) -> &str {
                &self.name
            }
        }
    )*};
}

named! {
    Zone => "zone", "zones", "zone";
    Template => "template", "templates", "template";
    ServiceOffering => "service offering", "service offerings", "service_offering";
    DiskOffering => "disk offering", "disk offerings", "disk_offering";
    AffinityGroup => "affinity group", "affinity groups", "affinity_groups";
    Network => "network", "networks", "network";
}

impl Named for SecurityGroup {
    const KIND: &'static str = "security group";
    const PLURAL: &'static str = "security groups";
    const KEY: &'static str = "security_groups";
    fn id(&self) -> &str {
        &self.id
    }
    fn name(&self) -> &str {
        self.name.as_deref().unwrap_or_default()
    }
}

/// The list in `slot`, fetched the first time it is asked for.
async fn listed<T: Named>(
    slot: &mut Option<Vec<T>>,
    fetch: impl std::future::Future<Output = Result<Vec<T>, cloudstack::Error>>,
) -> Result<&[T], Failure> {
    if slot.is_none() {
        let list = fetch
            .await
            .map_err(|e| convert(e, &format!("cannot list {}", T::PLURAL)))?;
        *slot = Some(list);
    }
    Ok(slot.as_deref().unwrap_or_default())
}

/// Finds `wanted` among `items`: an exact id, an exact name, then a name in
/// any letter case.
pub(super) fn pick<'a, T: Named>(wanted: &str, items: &'a [T]) -> Option<&'a T> {
    items
        .iter()
        .find(|i| i.id() == wanted)
        .or_else(|| items.iter().find(|i| i.name() == wanted))
        .or_else(|| items.iter().find(|i| i.name().eq_ignore_ascii_case(wanted)))
}

/// `wanted` among `items`, or the problem that names what is available.
fn find<'a, T: Named>(wanted: &str, machine: &str, items: &'a [T]) -> Result<&'a T, Problem> {
    pick(wanted, items).ok_or_else(|| unknown(wanted, machine, items))
}

/// The id `wanted` names, or none with the problem noted in `soft` (a
/// problem that leaves the machine's other names worth checking).
fn find_id<T: Named>(
    wanted: &str,
    machine: &str,
    items: &[T],
    soft: &mut Vec<Problem>,
) -> Option<String> {
    match find(wanted, machine, items) {
        Ok(item) => Some(item.id().to_string()),
        Err(p) => {
            soft.push(p);
            None
        }
    }
}

/// The ids of every name in `wanted`, listed only when there is one; the
/// unknown ones are noted in `soft`.
async fn find_ids<T: Named>(
    wanted: &[String],
    machine: &str,
    slot: &mut Option<Vec<T>>,
    fetch: impl std::future::Future<Output = Result<Vec<T>, cloudstack::Error>>,
    soft: &mut Vec<Problem>,
) -> Result<Vec<String>, Failure> {
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let items = listed(slot, fetch).await?;
    Ok(wanted
        .iter()
        .filter_map(|w| find_id(w, machine, items, soft))
        .collect())
}

/// The names, each in backquotes, separated by commas.
fn quoted<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An unknown name outside any machine (the project, domain, account, a
/// key pair): what `who` (e.g. "the account of the credentials sees") can
/// use, and a did-you-mean.
pub(super) fn not_found<T: Named>(wanted: &str, items: &[T], who: &str) -> Hinted {
    let names: Vec<&str> = items.iter().map(Named::name).collect();
    let mut uniq = names.clone();
    uniq.sort_unstable();
    uniq.dedup();
    let message = format!("unknown {} `{wanted}`", T::KIND);
    let key = T::KEY;
    if uniq.is_empty() {
        return Hinted::new(
            format!("{message}: {who} no {}", T::PLURAL),
            format!(
                "check `{key}` under [cloudstack], and which {} the credentials' account may use",
                T::PLURAL
            ),
        );
    }
    let available = format!("{who}: {}", quoted(uniq.into_iter()));
    let hint = match crate::suggest::did_you_mean(wanted, names.iter().copied()) {
        Some(s) => format!("did you mean `{s}` for `{key}`? {available}"),
        None => format!("set `{key}` under [cloudstack] to one of them; {available}"),
    };
    Hinted::new(message, hint)
}

fn unknown<T: Named>(wanted: &str, machine: &str, items: &[T]) -> Problem {
    let names: Vec<&str> = items.iter().map(Named::name).collect();
    let mut uniq = names.clone();
    uniq.sort_unstable();
    uniq.dedup();
    let available = if uniq.is_empty() {
        "none is available to this account".to_string()
    } else {
        format!("available: {}", quoted(uniq.into_iter()))
    };
    let key = T::KEY;
    let hint = match crate::suggest::did_you_mean(wanted, names.iter().copied()) {
        Some(s) => format!("did you mean `{s}` for `{key}`? {available}"),
        None => format!("set `{key}` under [cloudstack] or the machine; {available}"),
    };
    Problem {
        message: format!("unknown {} `{wanted}`", T::KIND),
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

    let zones = listed(&mut lists.zones, c.list_zones(&Params::new())).await?;
    let zone = match cs.zone.as_deref() {
        Some(z) => find(z, &m.name, zones).map_err(Failure::Problem)?,
        None => only_zone(m, zones).map_err(Failure::Problem)?,
    }
    .clone();
    let reach = reach_of(&zone, cs);

    // Templates: what the account may deploy in this zone.
    let templates = listed(
        lists.templates.entry(zone.id.clone()).or_default(),
        c.list_templates(
            &Params::new()
                .set("templatefilter", "executable")
                .set("zoneid", &zone.id),
        ),
    )
    .await?;
    let wanted: Vec<String> = match &cs.template {
        Some(t) => vec![t.clone()],
        None => default_templates(&m.box_name),
    };
    // A box published to this zone (`box box publish`) deploys its own
    // template, unless the Boxfile names one.
    let published = match &cs.template {
        Some(_) => Ok(None),
        None => super::publish::published_template(
            &c.config().endpoint,
            &m.box_name,
            &zone.id,
            templates,
        ),
    };
    let template_id = match published {
        Ok(Some(id)) => id,
        Err(h) => {
            soft.push(Problem {
                message: h.message,
                machine: Some(m.name.clone()),
                hint: h.hint,
            });
            String::new()
        }
        Ok(None) => match wanted.iter().find_map(|w| pick(w, templates)) {
            Some(t) => t.id.clone(),
            None => {
                soft.push(unknown(&wanted[0], &m.name, templates));
                String::new()
            }
        },
    };

    let offerings = listed(
        &mut lists.offerings,
        c.list_service_offerings(&Params::new()),
    )
    .await?;
    let service_offering_id = match cs.service_offering.as_deref() {
        Some(o) => find_id(o, &m.name, offerings, soft).unwrap_or_default(),
        None => smallest_offering(m, offerings).map_err(Failure::Problem)?,
    };

    // At most one: listed only when named.
    let disk_offering_id = find_ids(
        cs.disk_offering.as_slice(),
        &m.name,
        &mut lists.disk_offerings,
        c.list_disk_offerings(&Params::new()),
        soft,
    )
    .await?
    .pop();

    let affinity_group_ids = find_ids(
        &cs.affinity_groups,
        &m.name,
        &mut lists.affinity,
        c.list_affinity_groups(&Params::new()),
        soft,
    )
    .await?;

    let security_group_ids = find_ids(
        &cs.security_groups,
        &m.name,
        &mut lists.security,
        c.list_security_groups(&Params::new()),
        soft,
    )
    .await?;

    let (mut network_id, mut vpc_id) = (None, None);
    if reach != Reach::SecurityGroup || cs.network.is_some() {
        let networks = listed(
            lists.networks.entry(zone.id.clone()).or_default(),
            c.list_networks(&Params::new().set("zoneid", &zone.id)),
        )
        .await?;
        let id = match cs.network.as_deref() {
            Some(n) => find(n, &m.name, networks)
                .map_err(Failure::Problem)?
                .id
                .clone(),
            None => default_network(&zone, m, networks).map_err(Failure::Problem)?,
        };
        vpc_id = networks
            .iter()
            .find(|n| n.id == id)
            .and_then(|n| n.vpcid.clone())
            .filter(|v| !v.is_empty());
        network_id = Some(id);
    }

    Ok(Plan {
        zone_id: zone.id.clone(),
        zone_name: zone.name.clone(),
        template_id,
        service_offering_id,
        disk_offering_id,
        network_id,
        vpc_id,
        security_group_ids,
        affinity_group_ids,
        reach,
    })
}

/// The zone of a machine that names none: the cloud's only one.
fn only_zone<'a>(m: &Machine, zones: &'a [Zone]) -> Result<&'a Zone, Problem> {
    match zones {
        [one] => Ok(one),
        many => Err(Problem {
            machine: None,
            message: format!(
                "machine `{}` names no zone and the cloud has {}",
                m.name,
                many.len()
            ),
            hint: format!(
                "set `zone` under [cloudstack]; available: {}",
                quoted(many.iter().map(Named::name))
            ),
        }),
    }
}

/// The offering of a machine that names none: the smallest fixed one that
/// fits its `cpus` and `memory`.
fn smallest_offering(m: &Machine, offerings: &[ServiceOffering]) -> Result<String, Problem> {
    offerings
        .iter()
        .filter(|o| o.iscustomized != Some(true))
        .filter(|o| {
            o.cpunumber.unwrap_or(0) >= u64::from(m.cpus)
                && o.memory.unwrap_or(0) >= u64::from(m.memory)
        })
        .min_by_key(|o| (o.memory.unwrap_or(0), o.cpunumber.unwrap_or(0)))
        .map(|o| o.id.clone())
        .ok_or_else(|| Problem {
            machine: None,
            message: format!(
                "no service offering fits machine `{}` ({} CPUs, {} MiB)",
                m.name, m.cpus, m.memory
            ),
            hint: format!(
                "set `service_offering`; available: {}",
                quoted(offerings.iter().map(Named::name))
            ),
        })
}

/// How a machine in `zone` is reached: through the security group in a
/// Basic or SG zone, else as its settings say.
fn reach_of(zone: &Zone, cs: &CloudStackSettings) -> Reach {
    let sg_zone = zone
        .networktype
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("basic"))
        || zone.securitygroupsenabled == Some(true);
    if sg_zone {
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
    }
}

/// The network of a machine that names none: the zone's one isolated
/// network the account may deploy in.
fn default_network(zone: &Zone, m: &Machine, networks: &[Network]) -> Result<String, Problem> {
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
        [one] => Ok(one.id.clone()),
        [] => Err(Problem {
            machine: None,
            message: format!(
                "zone `{}` has no isolated network for machine `{}`",
                zone.name, m.name
            ),
            hint: "create a guest network for the account, or set `network`".into(),
        }),
        many => Err(Problem {
            machine: None,
            message: format!(
                "zone `{}` has {} networks and machine `{}` names none",
                zone.name,
                many.len(),
                m.name
            ),
            hint: format!(
                "set `network`; available: {}",
                quoted(many.iter().map(|n| n.name()))
            ),
        }),
    }
}

/// Template names to try for a box when the Boxfile names none: the box's
/// name written the way clouds name templates (`debian-12` → `Debian 12`).
pub(super) fn default_templates(box_name: &str) -> Vec<String> {
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
        let items: Vec<Zone> = serde_json::from_value(serde_json::json!([
            {"id": "1", "name": "Small"},
            {"id": "2", "name": "Large"},
        ]))
        .unwrap();
        assert_eq!(pick("2", &items).map(Named::id), Some("2"));
        assert_eq!(pick("small", &items).map(Named::id), Some("1"));
        assert!(pick("Medium", &items).is_none());
    }
}
