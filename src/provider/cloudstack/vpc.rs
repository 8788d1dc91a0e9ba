//! VPC tiers: machines on a tier are reached through a public address of
//! the VPC, port forwarding onto the tier, and rules of the tier's network
//! ACL list opened only to `allow_from`. CloudStack refuses firewall rules
//! in a VPC (the ACL list is the tier's only gate), and the system lists
//! `default_allow` and `default_deny` cannot be edited.
//!
//! What box does with a tier's list (`vpc_acl`):
//! - unset: box adds its rules to the tier's own custom list; a tier on a
//!   system list is an error before anything is made, since replacing the
//!   list changes what reaches every VM of the tier.
//! - `"create"`: a tier on a system list gets box's list, `box-<tier>`, one
//!   per tier and shared by every environment that uses the tier; its
//!   description names the list the tier had, which the last environment
//!   to leave it empty puts back before deleting it. A tier already on a
//!   custom list keeps it.
//!
//! Each environment adds and removes only its own rules (recorded in the
//! machine's ledger and marked with a `reason` naming project, environment
//! and machine), so teammates sharing a tier never remove each other's.

use std::collections::BTreeMap;

use cloudstack::{Error, NetworkAcl, NetworkAclList, Params};

use crate::boxfile::Machine;
use crate::error::Hinted;
use crate::state::{ProjectState, ResourceKind};

use super::api::{convert, not_found, with_retries, Api};
use super::ledger::Ledger as _;
use super::names::{Plan, Reach};
use super::{save_project, CloudStack};

/// The system lists: CloudStack's own, with no VPC, never editable.
const SYSTEM_LISTS: [&str; 2] = ["default_allow", "default_deny"];

/// What `description` says before the id of the list box puts back.
const PUTS_BACK: &str = "box puts back list ";

/// The list box adds a tier's rules to.
#[derive(Debug, Clone)]
pub struct TierAcl {
    pub list_id: String,
}

/// What box found on a tier before making anything.
pub enum Decision {
    /// Add rules to this custom list (box's own when `box_made`).
    Use { acl: TierAcl, box_made: bool },
    /// `vpc_acl = "create"` on a tier with a system list: attach box's list.
    Attach {
        tier_id: String,
        tier_name: String,
        vpc_id: String,
        previous: NetworkAclList,
    },
}

/// The name of box's list for a tier.
fn box_list_name(tier_name: &str) -> String {
    format!("box-{tier_name}")
}

fn is_system(list: &NetworkAclList) -> bool {
    SYSTEM_LISTS.contains(&list.name.as_str()) && list.vpcid.as_deref().is_none_or(str::is_empty)
}

/// Whether box needs rules on the machine's tier: forwards and static NAT
/// always, a private machine only when `allow_from` names who may come in.
fn needs_rules(m: &Machine, plan: &Plan) -> bool {
    plan.vpc_id.is_some() && (plan.reach != Reach::Private || !m.cloudstack.allow_from.is_empty())
}

/// Reads each tier's list and decides what box will do with it; nothing is
/// made. A tier on a system list without `vpc_acl = "create"` is an error
/// whose hint gives the commands that fix it.
pub async fn check(
    api: &Api,
    plans: &BTreeMap<String, Plan>,
    machines: &[&Machine],
) -> anyhow::Result<BTreeMap<String, Decision>> {
    // The machines of each tier and what they ask of its list.
    let mut tiers: BTreeMap<String, (String, Option<String>, Vec<String>)> = BTreeMap::new();
    for m in machines {
        let Some(plan) = plans.get(&m.name) else {
            continue;
        };
        if !needs_rules(m, plan) {
            continue;
        }
        let (Some(tier), Some(vpc)) = (&plan.network_id, &plan.vpc_id) else {
            continue;
        };
        let wanted = m.cloudstack.vpc_acl.clone();
        let entry = tiers
            .entry(tier.clone())
            .or_insert_with(|| (vpc.clone(), wanted.clone(), Vec::new()));
        if entry.1 != wanted {
            return Err(Hinted::new(
                format!(
                    "machines {} and `{}` share a VPC tier but set different `vpc_acl`; nothing was created",
                    entry.2.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "),
                    m.name
                ),
                "a tier has one ACL list: give its machines the same `vpc_acl`",
            )
            .into());
        }
        entry.2.push(m.name.clone());
    }

    let mut out = BTreeMap::new();
    for (tier_id, (vpc_id, wanted, names)) in tiers {
        // In the project (Scope, on the client): a project's tier is listed only there.
        let tier = api
            .client
            .list_networks(&Params::new().set("id", &tier_id).set("listall", "true"))
            .await
            .map_err(|e| convert(e, "cannot read the VPC tier"))?
            .into_iter()
            .find(|n| n.id == tier_id)
            .ok_or_else(|| anyhow::anyhow!("the VPC tier {tier_id} is gone from the cloud"))?;
        let machines = names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let create = wanted.as_deref() == Some("create");
        let fix = |what: &str| {
            Hinted::new(
                format!(
                    "network `{}` of {machines} is a VPC tier {what}; box opens SSH and the ports to `allow_from` with rules of the tier's network ACL list and never replaces it on its own; nothing was created",
                    tier.name
                ),
                format!(
                    "set `vpc_acl = \"create\"` under [cloudstack] to let box attach a list of its own to the tier (and put the tier's list back on destroy), or give the tier a custom list yourself:\n  box api createNetworkACLList name={name}-acl vpcid={vpc_id}\n  box api replaceNetworkACLList aclid=<the id it prints> networkid={tier_id}",
                    name = tier.name
                ),
            )
        };
        let Some(acl_id) = tier.aclid.clone().filter(|a| !a.is_empty()) else {
            return Err(fix("with no network ACL list").into());
        };
        let list = api
            .client
            .list_network_acl_lists(&Params::new().set("id", &acl_id))
            .await
            .map_err(|e| convert(e, "cannot read the VPC tier's network ACL list"))?
            .into_iter()
            .find(|l| l.id == acl_id)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "the network ACL list {acl_id} of tier `{}` is not visible to this account",
                    tier.name
                )
            })?;
        let decision = if !is_system(&list) {
            Decision::Use {
                box_made: list.name == box_list_name(&tier.name)
                    && list
                        .description
                        .as_deref()
                        .is_some_and(|d| d.contains(PUTS_BACK)),
                acl: TierAcl {
                    list_id: list.id.clone(),
                },
            }
        } else if create {
            Decision::Attach {
                tier_id: tier_id.clone(),
                tier_name: tier.name.clone(),
                vpc_id,
                previous: list,
            }
        } else {
            return Err(fix(&format!(
                "whose ACL list is the system list `{}`, which CloudStack does not let anyone edit",
                list.name
            ))
            .into());
        };
        out.insert(tier_id, decision);
    }
    Ok(out)
}

/// Carries out `check`'s decisions: box's list is found or made (recorded
/// before box waits) and attached. Returns each tier's list.
pub async fn ensure(
    p: &CloudStack,
    decisions: BTreeMap<String, Decision>,
    ps: &mut ProjectState,
) -> anyhow::Result<BTreeMap<String, TierAcl>> {
    let (api, env) = (&p.api, &p.env);
    let mut out = BTreeMap::new();
    for (tier_id, d) in decisions {
        let acl = match d {
            Decision::Use { acl, box_made } => {
                if box_made {
                    // Whoever empties box's list last puts the tier's back.
                    ps.record(
                        ResourceKind::NetworkAclList,
                        &acl.list_id,
                        "the VPC tier's ACL list box made",
                    );
                    save_project(env, ps)?;
                }
                acl
            }
            Decision::Attach {
                tier_id,
                tier_name,
                vpc_id,
                previous,
            } => {
                let name = box_list_name(&tier_name);
                let found = api
                    .client
                    .list_network_acl_lists(&Params::new().set("vpcid", &vpc_id).set("name", &name))
                    .await
                    .map_err(|e| convert(e, "cannot list network ACL lists"))?
                    .into_iter()
                    .find(|l| l.name == name && l.vpcid.as_deref() == Some(vpc_id.as_str()));
                let list_id = match found {
                    Some(l) => l.id,
                    None => {
                        let params = Params::new()
                            .set("name", &name)
                            .set("vpcid", &vpc_id)
                            .set(
                                "description",
                                format!(
                                    "made by box for tier {tier_name}; {PUTS_BACK}{} ({}) when no rule is left in it",
                                    previous.id, previous.name
                                ),
                            );
                        let (job, first) = api
                            .start_when_refused("createNetworkACLList", &params)
                            .await
                            .map_err(|e| {
                                convert(e, &format!("cannot create the network ACL list `{name}`"))
                            })?;
                        if let Some(id) = job.as_ref().and_then(|j| j.id.clone()) {
                            ps.record(
                                ResourceKind::NetworkAclList,
                                &id,
                                format!("ACL list {name}"),
                            );
                            save_project(env, ps)?;
                        }
                        let made: NetworkAclList = api
                            .finish("createNetworkACLList", &job, &first)
                            .await
                            .map_err(|e| {
                                convert(e, &format!("waiting for the network ACL list `{name}`"))
                            })?;
                        made.id
                    }
                };
                ps.record(
                    ResourceKind::NetworkAclList,
                    &list_id,
                    format!("ACL list {name}"),
                );
                save_project(env, ps)?;
                if previous.name == "default_allow" {
                    p.ctx.printer.warn(&format!(
                        "tier `{tier_name}` used the system list `default_allow`; box attaches its list `{name}`, so the tier's VMs take only what its rules allow until `box destroy` puts `default_allow` back"
                    ));
                }
                let params = Params::new()
                    .set("aclid", &list_id)
                    .set("networkid", &tier_id);
                with_retries(|| async {
                    let (job, _) = api.start("replaceNetworkACLList", &params).await?;
                    api.finish_any("replaceNetworkACLList", &job).await
                })
                .await
                .map_err(|e| {
                    convert(
                        e,
                        &format!(
                            "cannot attach the network ACL list `{name}` to tier `{tier_name}`"
                        ),
                    )
                })?;
                TierAcl { list_id }
            }
        };
        out.insert(tier_id, acl);
    }
    Ok(out)
}

/// What marks a rule as made by this environment for this machine.
pub fn reason(p: &CloudStack, machine: &str) -> String {
    format!("box {} {} {machine}", p.env.project, p.env.id)
}

/// The ingress rules on `list_id`.
pub async fn rules_of(api: &Api, list_id: &str) -> anyhow::Result<Vec<NetworkAcl>> {
    api.client
        .list_network_acls(&Params::new().set("aclid", list_id).set("listall", "true"))
        .await
        .map_err(|e| convert(e, "cannot list the network ACL rules"))
}

/// The list box's list replaced, as its description says.
fn put_back(list: &NetworkAclList) -> Option<String> {
    list.description
        .as_deref()
        .and_then(|d| d.split(PUTS_BACK).nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_string)
}

/// Removes box's list once no rule is left in it: the list it replaced (as
/// its description says) goes back on the tiers that use it, then the list
/// goes. A list that still holds rules (a teammate's, or added by hand) is
/// left as it is.
pub async fn release(api: &Api, list_id: &str) -> Result<(), Error> {
    let c = &api.client;
    let Some(list) = c
        .list_network_acl_lists(&Params::new().set("id", list_id))
        .await?
        .into_iter()
        .find(|l| l.id == list_id)
    else {
        return Ok(());
    };
    let rules = c
        .list_network_acls(&Params::new().set("aclid", list_id).set("listall", "true"))
        .await?;
    if !rules.is_empty() {
        return Ok(());
    }
    if let (Some(previous), Some(vpc)) = (put_back(&list), list.vpcid.as_deref()) {
        let tiers = c
            .list_networks(&Params::new().set("vpcid", vpc).set("listall", "true"))
            .await?;
        for tier in tiers.iter().filter(|t| t.aclid.as_deref() == Some(list_id)) {
            let params = Params::new()
                .set("aclid", &previous)
                .set("networkid", &tier.id);
            with_retries(|| async {
                let (job, _) = api.start("replaceNetworkACLList", &params).await?;
                api.finish_any("replaceNetworkACLList", &job).await
            })
            .await?;
        }
    }
    match with_retries(|| async {
        let (job, _) = api
            .start("deleteNetworkACLList", &Params::new().set("id", list_id))
            .await?;
        api.finish_any("deleteNetworkACLList", &job).await
    })
    .await
    {
        Err(e) if not_found(&e) => Ok(()),
        other => other.map(|_| ()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(name: &str, vpc: Option<&str>, description: Option<&str>) -> NetworkAclList {
        NetworkAclList {
            id: "l1".into(),
            name: name.into(),
            description: description.map(str::to_string),
            vpcid: vpc.map(str::to_string),
        }
    }

    #[test]
    fn only_the_vpc_less_default_lists_are_system_lists() {
        assert!(is_system(&list("default_deny", None, None)));
        assert!(is_system(&list("default_allow", Some(""), None)));
        // A VPC's own list may carry the name and is still editable.
        assert!(!is_system(&list("default_deny", Some("vpc-1"), None)));
        assert!(!is_system(&list("team-acl", None, None)));
    }

    #[test]
    fn boxs_list_names_the_list_it_puts_back() {
        let description = format!(
            "made by box for tier web; {PUTS_BACK}abc-123 (default_deny) when no rule is left in it"
        );
        let boxs = list("box-web", Some("vpc-1"), Some(&description));
        assert_eq!(put_back(&boxs).as_deref(), Some("abc-123"));
        assert_eq!(
            put_back(&list("team-acl", Some("vpc-1"), Some("ours"))),
            None
        );
        assert_eq!(box_list_name("web"), "box-web");
    }
}
