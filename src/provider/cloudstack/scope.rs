//! Where box acts on the cloud: the account of the credentials, another
//! account (`domain` + `account`, for administrators acting for it), or a
//! project. Resolved once per run (names to ids, with did-you-mean),
//! recorded in `.box/project.json`, and handed to the client as the
//! parameters it adds to every call of a command that accepts them
//! ([`Scope::params`]): one place, so no call box makes can forget it.
//!
//! CloudStack takes a project or an account, never both ("Account and
//! projectId can't be specified together"): with `project`, `account` and
//! `domain` only say where the project is found, and calls carry
//! `projectid` alone.

use cloudstack::{Client, Params};
use serde::{Deserialize, Serialize};

use crate::boxfile::CloudStackSettings;
use crate::error::Hinted;

use super::api::convert;
use super::names::{self, Named};

/// The commands box sends that CloudStack scopes by `projectid`, or by
/// `domainid` and `account` (each is a `BaseListProjectAndAccountResourcesCmd`
/// or takes the owner of what it creates through `finalizeOwner`). Commands
/// that name their object by id (`destroyVirtualMachine`,
/// `createPortForwardingRule`, `createTags`, ...) act on that object wherever
/// it lives and take neither.
pub const SCOPED_COMMANDS: &[&str] = &[
    "listVirtualMachines",
    "deployVirtualMachine",
    "listTemplates",
    "listNetworks",
    "listPublicIpAddresses",
    "associateIpAddress",
    "listPortForwardingRules",
    "listFirewallRules",
    "listIpForwardingRules",
    "listSecurityGroups",
    "createSecurityGroup",
    "deleteSecurityGroup",
    "authorizeSecurityGroupIngress",
    "listSSHKeyPairs",
    "registerSSHKeyPair",
    "createSSHKeyPair",
    "deleteSSHKeyPair",
    "listTags",
    "listVMSnapshot",
    "listAffinityGroups",
    "listVolumes",
    "listEvents",
    "listVPCs",
    "listNetworkACLLists",
    "listNetworkACLs",
];

/// The resolved scope, as recorded in `.box/project.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Scope {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<Found>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<Found>,
    /// The account acted for (with `domain`), when there is no project.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

/// A project or domain: its id, and its name (a domain's path) for messages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Found {
    pub id: String,
    pub name: String,
}

impl Scope {
    /// The parameters `command` carries in this scope.
    pub fn params(&self, command: &str) -> Vec<(String, String)> {
        if !SCOPED_COMMANDS.contains(&command) {
            return Vec::new();
        }
        match (&self.project, &self.domain, &self.account) {
            (Some(p), _, _) => vec![("projectid".into(), p.id.clone())],
            (None, Some(d), Some(a)) => vec![
                ("domainid".into(), d.id.clone()),
                ("account".into(), a.clone()),
            ],
            _ => Vec::new(),
        }
    }

    /// The project's id, when box works in one.
    pub fn project_id(&self) -> Option<&str> {
        self.project.as_ref().map(|p| p.id.as_str())
    }

    /// Where box acts, for messages: "project `shop`", "account `alice` of
    /// domain `ROOT/eng`", or "the account of the credentials".
    pub fn describe(&self) -> String {
        match (&self.project, &self.domain, &self.account) {
            (Some(p), _, _) => format!("project `{}`", p.name),
            (None, Some(d), Some(a)) => format!("account `{a}` of domain `{}`", d.name),
            _ => "the account of the credentials".into(),
        }
    }

    /// The same place as `other` (ids compared; names may change).
    pub fn same_place(&self, other: &Scope) -> bool {
        let id = |f: &Option<Found>| f.as_ref().map(|f| f.id.clone());
        id(&self.project) == id(&other.project)
            && (self.project.is_some()
                || (id(&self.domain) == id(&other.domain) && self.account == other.account))
    }

    /// Resolves the Boxfile's `project`, `domain` and `account` with the
    /// unscoped `client`; no call at all when none is set.
    pub async fn resolve(client: &Client, cs: &CloudStackSettings) -> anyhow::Result<Scope> {
        let mut scope = Scope::default();
        if let Some(wanted) = &cs.domain {
            scope.domain = Some(domain(client, wanted).await?);
        }
        if let (Some(wanted), Some(d)) = (&cs.account, &scope.domain) {
            account(client, wanted, d).await?;
            scope.account = Some(wanted.clone());
        }
        if let Some(wanted) = &cs.project {
            scope.project = Some(project(client, wanted, &scope).await?);
        }
        Ok(scope)
    }
}

#[derive(Debug, Clone, Deserialize)]
struct Domain {
    #[serde(deserialize_with = "cloudstack::lenient::string")]
    id: String,
    name: String,
    #[serde(default)]
    path: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct Account {
    #[serde(deserialize_with = "cloudstack::lenient::string")]
    id: String,
    name: String,
}

#[derive(Debug, Clone, Deserialize)]
struct Project {
    #[serde(deserialize_with = "cloudstack::lenient::string")]
    id: String,
    name: String,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    domain: Option<String>,
}

impl Named for Domain {
    const KIND: &'static str = "domain";
    const PLURAL: &'static str = "domains";
    const KEY: &'static str = "domain";
    fn id(&self) -> &str {
        &self.id
    }
    /// Its path (`ROOT/eng`), which is what the Boxfile gives.
    fn name(&self) -> &str {
        self.path.as_deref().unwrap_or(&self.name)
    }
}

impl Named for Account {
    const KIND: &'static str = "account";
    const PLURAL: &'static str = "accounts";
    const KEY: &'static str = "account";
    fn id(&self) -> &str {
        &self.id
    }
    fn name(&self) -> &str {
        &self.name
    }
}

impl Named for Project {
    const KIND: &'static str = "project";
    const PLURAL: &'static str = "projects";
    const KEY: &'static str = "project";
    fn id(&self) -> &str {
        &self.id
    }
    fn name(&self) -> &str {
        &self.name
    }
}

/// A domain by id or path (`ROOT/eng`), or by its own name when only one
/// domain has it.
async fn domain(client: &Client, wanted: &str) -> anyhow::Result<Found> {
    let all: Vec<Domain> = client
        .list(
            "listDomains",
            &Params::new().set("listall", "true"),
            "domain",
        )
        .await
        .map_err(|e| convert(e, "cannot list domains"))?;
    let by_name: Vec<&Domain> = all.iter().filter(|d| d.name == wanted).collect();
    let found = names::pick(wanted, &all).or(match by_name.as_slice() {
        [one] => Some(*one),
        _ => None,
    });
    match found {
        Some(d) => Ok(Found {
            id: d.id.clone(),
            name: Named::name(d).to_string(),
        }),
        None => Err(names::not_found(wanted, &all, "the credentials see").into()),
    }
}

/// Checks that the account exists in the domain.
async fn account(client: &Client, wanted: &str, domain: &Found) -> anyhow::Result<()> {
    let all: Vec<Account> = client
        .list(
            "listAccounts",
            &Params::new()
                .set("domainid", &domain.id)
                .set("listall", "true"),
            "account",
        )
        .await
        .map_err(|e| {
            convert(
                e,
                &format!("cannot list the accounts of domain `{}`", domain.name),
            )
        })?;
    if all.iter().any(|a| a.name == wanted) {
        return Ok(());
    }
    let seen_from = format!("domain `{}` has", domain.name);
    Err(names::not_found(wanted, &all, &seen_from).into())
}

/// A project the account can see, by id or name.
async fn project(client: &Client, wanted: &str, scope: &Scope) -> anyhow::Result<Found> {
    let mut params = Params::new().set("listall", "true");
    if let Some(d) = &scope.domain {
        params.push("domainid", d.id.clone());
        if let Some(a) = &scope.account {
            params.push("account", a.clone());
        }
    }
    let all: Vec<Project> = client
        .list("listProjects", &params, "project")
        .await
        .map_err(|e| convert(e, "cannot list projects"))?;
    let who = match (&scope.domain, &scope.account) {
        (Some(d), Some(a)) => format!("account `{a}` of domain `{}` sees", d.name),
        (Some(d), None) => format!("domain `{}` has", d.name),
        _ => "the account of the credentials sees".to_string(),
    };
    let Some(p) = names::pick(wanted, &all) else {
        return Err(names::not_found(wanted, &all, &who).into());
    };
    let namesakes: Vec<&str> = all
        .iter()
        .filter(|q| q.name == p.name)
        .filter_map(|q| q.domain.as_deref())
        .collect();
    if p.id != wanted && namesakes.len() > 1 {
        return Err(Hinted::new(
            format!(
                "{} projects are named `{}`, in domains {}",
                namesakes.len(),
                p.name,
                namesakes.join(", ")
            ),
            "set `domain` beside `project`, or give the project's id",
        )
        .into());
    }
    if let Some(state) = p
        .state
        .as_deref()
        .filter(|s| !s.eq_ignore_ascii_case("active"))
    {
        return Err(Hinted::new(
            format!("project `{}` is {state}, not Active", p.name),
            "ask the project's administrator to activate it",
        )
        .into());
    }
    Ok(Found {
        id: p.id.clone(),
        name: p.name.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(id: &str, name: &str) -> Option<Found> {
        Some(Found {
            id: id.into(),
            name: name.into(),
        })
    }

    #[test]
    fn a_project_scopes_the_commands_that_take_projectid_and_no_other() {
        let s = Scope {
            project: found("p1", "shop"),
            domain: found("d1", "ROOT/eng"),
            account: None,
        };
        assert_eq!(
            s.params("deployVirtualMachine"),
            [("projectid".to_string(), "p1".to_string())]
        );
        assert_eq!(s.params("listSSHKeyPairs").len(), 1);
        assert!(s.params("destroyVirtualMachine").is_empty());
        assert!(s.params("createTags").is_empty());
        assert!(s.params("listZones").is_empty());
    }

    #[test]
    fn an_account_goes_with_its_domain_and_never_with_a_project() {
        let acting = Scope {
            project: None,
            domain: found("d1", "ROOT/eng"),
            account: Some("alice".into()),
        };
        assert_eq!(
            acting.params("associateIpAddress"),
            [
                ("domainid".to_string(), "d1".to_string()),
                ("account".to_string(), "alice".to_string())
            ]
        );
        let in_project = Scope {
            project: found("p1", "shop"),
            ..acting.clone()
        };
        assert_eq!(in_project.params("listVirtualMachines").len(), 1);
        assert!(Scope::default().params("listVirtualMachines").is_empty());
    }

    #[test]
    fn the_same_place_is_compared_by_id() {
        let a = Scope {
            project: found("p1", "shop"),
            ..Default::default()
        };
        let renamed = Scope {
            project: found("p1", "shop-2"),
            ..Default::default()
        };
        let other = Scope {
            project: found("p2", "shop"),
            ..Default::default()
        };
        assert!(a.same_place(&renamed));
        assert!(!a.same_place(&other));
        assert!(!a.same_place(&Scope::default()));
    }

    #[test]
    fn an_unknown_project_lists_the_visible_ones_with_a_did_you_mean() {
        let all: Vec<Project> = serde_json::from_value(serde_json::json!([
            {"id": "1", "name": "shop-team"},
            {"id": "2", "name": "data"},
        ]))
        .unwrap();
        let e = names::not_found("shop-tem", &all, "the account of the credentials sees");
        assert_eq!(e.message, "unknown project `shop-tem`");
        assert!(e.hint.contains("did you mean `shop-team`"), "{}", e.hint);
        assert!(e.hint.contains("sees: `data`, `shop-team`"), "{}", e.hint);
        let none: Vec<Project> = Vec::new();
        let e = names::not_found("shop", &none, "the account of the credentials sees");
        assert_eq!(
            e.message,
            "unknown project `shop`: the account of the credentials sees no projects"
        );
    }
}
