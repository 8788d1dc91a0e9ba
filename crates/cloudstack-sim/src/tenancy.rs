//! Who owns what: domains (a tree under ROOT), accounts, projects, the
//! account the API key acts as, and the [`Owner`] every owned object carries.
//!
//! How command handlers use it (see also `api::Ctx`):
//! - a new object: `let owner = ctx.owner_from(p)?;` reads `projectid`, or
//!   `account` + `domainid`, or falls back to the caller, with CloudStack's
//!   refusals; store it in the object's `owner: Owner` field. An object made
//!   from another (a rule from its address, a snapshot from its VM, a tag from
//!   its resource) takes that object's owner instead.
//! - rendering: `cloud.owner_fields(&self.owner)` gives the JSON to merge:
//!   `account`, `domainid`, `domain` for an account's object; `projectid`,
//!   `project`, `domainid`, `domain` for a project's (no `account`, as in
//!   `ApiResponseHelper.populateOwner`).
//! - a list: `let scope = ctx.scope(p)?;` then keep the objects with
//!   `scope.sees(cloud, &obj.owner)`; this is CloudStack's
//!   `buildACLSearchParameters` (`projectid`, `projectid=-1`, `account`,
//!   `domainid`, `isrecursive`, `listall`, `id`).
//! - acting on an existing object (delete, stop, ..): `ctx.may_operate(&obj.owner)?`.
//!
//! The root admin (`admin` in `ROOT`) is `cloud.account`, so state files
//! written before this module load unchanged: everything they hold belongs to
//! [`Owner::Admin`], the default.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::model::{Cloud, ACCOUNT, DOMAIN};

/// Who owns an object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Owner {
    /// The cloud's root admin account (`admin` in `ROOT`).
    #[default]
    Admin,
    /// An account of [`Tenancy::accounts`], by id.
    Account(String),
    /// A project of [`Tenancy::projects`], by id.
    Project(String),
}

/// `Account.Type`: what an account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    Admin,
    DomainAdmin,
    User,
}

impl Role {
    /// `accounttype` in responses: 0 user, 1 admin, 2 domain admin.
    pub fn number(self) -> u8 {
        match self {
            Role::User => 0,
            Role::Admin => 1,
            Role::DomainAdmin => 2,
        }
    }

    pub fn role_type(self) -> &'static str {
        match self {
            Role::User => "User",
            Role::Admin => "Admin",
            Role::DomainAdmin => "DomainAdmin",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Domain {
    pub id: String,
    /// The database id; ROOT is 1.
    pub number: u32,
    pub name: String,
    /// As CloudStack shows it: `ROOT/eng`.
    pub path: String,
    pub parent: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountRecord {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub domain_id: String,
    pub role: Role,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Project {
    pub id: String,
    /// The database id, which CloudStack's error texts show.
    pub number: u32,
    pub name: String,
    pub display_text: String,
    pub domain_id: String,
    /// The account that owns (administers) the project, by id.
    pub owner: String,
    /// Accounts that may use it, owner included.
    pub members: Vec<String>,
    /// The project's own account (`PrjAcct-<name>-<domain number>`), by id.
    pub account_id: String,
    pub account_name: String,
}

/// Domains, accounts and projects besides ROOT and its admin.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Tenancy {
    #[serde(default)]
    pub domains: Vec<Domain>,
    #[serde(default)]
    pub accounts: Vec<AccountRecord>,
    #[serde(default)]
    pub projects: Vec<Project>,
    /// The account the API key acts as; `None` is the root admin.
    #[serde(default)]
    pub caller: Option<String>,
}

/// `permission denied` answers: `PermissionDeniedException`, 531.
pub fn denied(text: impl Into<String>) -> ApiError {
    ApiError::new(531, Some(4365), text)
}

impl Cloud {
    pub fn root_domain(&self) -> Domain {
        Domain {
            id: self.account.domain_id.clone(),
            number: 1,
            name: DOMAIN.into(),
            path: DOMAIN.into(),
            parent: None,
        }
    }

    pub fn root_account(&self) -> AccountRecord {
        AccountRecord {
            id: self.account.account_id.clone(),
            user_id: self.account.user_id.clone(),
            name: ACCOUNT.into(),
            domain_id: self.account.domain_id.clone(),
            role: Role::Admin,
        }
    }

    /// Every domain, ROOT first.
    pub fn domains(&self) -> Vec<Domain> {
        let mut all = vec![self.root_domain()];
        all.extend(self.tenancy.domains.iter().cloned());
        all
    }

    /// Every (non-project) account, the root admin first.
    pub fn accounts(&self) -> Vec<AccountRecord> {
        let mut all = vec![self.root_account()];
        all.extend(self.tenancy.accounts.iter().cloned());
        all
    }

    pub fn domain_by_id(&self, id: &str) -> Option<Domain> {
        self.domains().into_iter().find(|d| d.id == id)
    }

    /// By path (`ROOT/eng`, case-insensitive like CloudStack's names).
    pub fn domain_by_path(&self, path: &str) -> Option<Domain> {
        let path = path.trim_end_matches('/');
        self.domains()
            .into_iter()
            .find(|d| d.path.eq_ignore_ascii_case(path))
    }

    pub fn account_by_id(&self, id: &str) -> Option<AccountRecord> {
        self.accounts().into_iter().find(|a| a.id == id)
    }

    pub fn account_by_name(&self, name: &str, domain_id: &str) -> Option<AccountRecord> {
        self.accounts()
            .into_iter()
            .find(|a| a.name.eq_ignore_ascii_case(name) && a.domain_id == domain_id)
    }

    pub fn project(&self, id: &str) -> Option<&Project> {
        self.tenancy.projects.iter().find(|p| p.id == id)
    }

    /// The account the API key acts as.
    pub fn caller(&self) -> AccountRecord {
        self.tenancy
            .caller
            .as_deref()
            .and_then(|id| self.account_by_id(id))
            .unwrap_or_else(|| self.root_account())
    }

    /// The account behind an owner (a project's own account for a project).
    pub fn account_id_of(&self, owner: &Owner) -> String {
        match owner {
            Owner::Admin => self.account.account_id.clone(),
            Owner::Account(id) => id.clone(),
            Owner::Project(id) => self
                .project(id)
                .map(|p| p.account_id.clone())
                .unwrap_or_default(),
        }
    }

    pub fn domain_of(&self, owner: &Owner) -> Option<Domain> {
        let id = match owner {
            Owner::Admin => Some(self.account.domain_id.clone()),
            Owner::Account(id) => self.account_by_id(id).map(|a| a.domain_id),
            Owner::Project(id) => self.project(id).map(|p| p.domain_id.clone()),
        };
        id.and_then(|id| self.domain_by_id(&id))
    }

    /// The owner fields of a response, as `ApiResponseHelper.populateOwner` sets them.
    pub fn owner_fields(&self, owner: &Owner) -> Value {
        let domain = self.domain_of(owner).unwrap_or_else(|| self.root_domain());
        match owner {
            Owner::Project(id) => {
                let p = self.project(id);
                json!({
                    "projectid": id,
                    "project": p.map(|p| p.name.clone()).unwrap_or_default(),
                    "domainid": domain.id,
                    "domain": domain.name,
                })
            }
            Owner::Admin | Owner::Account(_) => {
                let name = match owner {
                    Owner::Account(id) => {
                        self.account_by_id(id).map(|a| a.name).unwrap_or_default()
                    }
                    _ => ACCOUNT.to_string(),
                };
                json!({"account": name, "domainid": domain.id, "domain": domain.name})
            }
        }
    }

    /// How CloudStack prints an account in error texts (`AccountVO.toString`).
    pub fn account_text(&self, a: &AccountRecord) -> String {
        format!("Acct[{}-{}]", a.id, a.name)
    }

    /// Whether `child` is `parent` or below it.
    pub fn is_child_domain(&self, parent: &str, child: &str) -> bool {
        let (Some(p), Some(c)) = (self.domain_by_id(parent), self.domain_by_id(child)) else {
            return false;
        };
        c.path == p.path || c.path.starts_with(&format!("{}/", p.path))
    }

    /// `ProjectManager.canAccessProjectAccount`.
    pub fn can_access_project(&self, caller: &AccountRecord, project: &Project) -> bool {
        match caller.role {
            Role::Admin => true,
            Role::DomainAdmin => self.is_child_domain(&caller.domain_id, &project.domain_id),
            Role::User => project.members.contains(&caller.id),
        }
    }

    /// Projects the caller may use (`listPermittedProjectAccounts`, plus all
    /// of them for the root admin).
    pub fn visible_projects(&self, caller: &AccountRecord) -> Vec<&Project> {
        self.tenancy
            .projects
            .iter()
            .filter(|p| self.can_access_project(caller, p))
            .collect()
    }

    /// `DomainChecker.checkAccess(caller, domain)`.
    pub fn check_domain_access(
        &self,
        caller: &AccountRecord,
        domain: &Domain,
    ) -> Result<(), ApiError> {
        let ok = match caller.role {
            Role::User => caller.domain_id == domain.id,
            Role::Admin | Role::DomainAdmin => self.is_child_domain(&caller.domain_id, &domain.id),
        };
        if ok {
            Ok(())
        } else {
            Err(denied(format!(
                "{} does not have permission to operate within domain id={}",
                self.account_text(caller),
                domain.id
            )))
        }
    }

    /// `DomainChecker.checkAccess(caller, entity)`: may the caller act on an
    /// object of this owner?
    pub fn may_operate(&self, owner: &Owner) -> Result<(), ApiError> {
        let caller = self.caller();
        let ok = match caller.role {
            Role::Admin => true,
            Role::DomainAdmin => self
                .domain_of(owner)
                .is_some_and(|d| self.is_child_domain(&caller.domain_id, &d.id)),
            Role::User => match owner {
                Owner::Project(id) => self
                    .project(id)
                    .is_some_and(|p| self.can_access_project(&caller, p)),
                _ => self.account_id_of(owner) == caller.id,
            },
        };
        if ok {
            return Ok(());
        }
        let target = match owner {
            Owner::Project(id) => self
                .project(id)
                .map(|p| format!("Acct[{}-{}]", p.account_id, p.account_name))
                .unwrap_or_default(),
            _ => self
                .account_by_id(&self.account_id_of(owner))
                .map(|a| self.account_text(&a))
                .unwrap_or_default(),
        };
        Err(denied(format!(
            "{} does not have permission to operate with resource {target}",
            self.account_text(&caller)
        )))
    }

    fn project_param(&self, id: &str) -> Result<&Project, ApiError> {
        self.project(id)
            .ok_or_else(|| ApiError::invalid(format!("Unable to find project by id {id}")))
    }

    /// The owner of a new object (`AccountManager.finalizeOwner`): the
    /// project, the named account, or the caller.
    pub fn owner_from(&self, p: &crate::params::Params) -> Result<Owner, ApiError> {
        let caller = self.caller();
        let account = p.str("account");
        let domain_id = p.str("domainid");
        let project = p.str("projectid");
        if account.is_some() && domain_id.is_some() && project.is_some() {
            return Err(ApiError::invalid(
                "ProjectId and account/domainId can't be specified together",
            ));
        }
        if let Some(id) = project {
            let project = self.project_param(id)?;
            if !self.can_access_project(&caller, project) {
                return Err(denied(format!(
                    "Account {} is unauthorised to use project id={}",
                    self.account_text(&caller),
                    project.number
                )));
            }
            return Ok(Owner::Project(project.id.clone()));
        }
        match (account, domain_id) {
            (Some(_), None) => Err(ApiError::invalid(
                "AccountName and domainId must be specified together",
            )),
            (None, _) => Ok(self.owner_for(&caller)),
            (Some(name), Some(domain_id)) => {
                if caller.role == Role::User {
                    if !name.eq_ignore_ascii_case(&caller.name) || domain_id != caller.domain_id {
                        return Err(denied(format!(
                            "Can't create/list resources for account {name} in domain {domain_id}, permission denied"
                        )));
                    }
                    return Ok(self.owner_for(&caller));
                }
                let domain = self.domain_by_id(domain_id).ok_or_else(|| {
                    ApiError::invalid(format!("Unable to find the domain by id={domain_id}"))
                })?;
                let owner = self.account_by_name(name, &domain.id).ok_or_else(|| {
                    ApiError::invalid(format!(
                        "Unable to find account {name} in domain {domain_id}"
                    ))
                })?;
                self.check_domain_access(&caller, &domain)?;
                Ok(self.owner_for(&owner))
            }
        }
    }

    fn owner_for(&self, a: &AccountRecord) -> Owner {
        if a.id == self.account.account_id {
            Owner::Admin
        } else {
            Owner::Account(a.id.clone())
        }
    }

    /// Which owners a list command shows (`buildACLSearchParameters`).
    pub fn scope(&self, p: &crate::params::Params) -> Result<Scope, ApiError> {
        let caller = self.caller();
        let list_all = p.bool("listall").unwrap_or(false);
        let recursive = p.bool("isrecursive").unwrap_or(false);
        let id = p.str("id");
        let mut scope = Scope {
            accounts: vec![],
            domain: None,
            projects: Projects::Any,
        };
        let mut domain = None;
        if let Some(d) = p.str("domainid") {
            let d = self
                .domain_by_id(d)
                .ok_or_else(|| ApiError::invalid(format!("Unable to find domain by id {d}")))?;
            self.check_domain_access(&caller, &d)?;
            domain = Some(d);
        }
        if let Some(name) = p.str("account") {
            if p.has("projectid") {
                return Err(ApiError::invalid(
                    "Account and projectId can't be specified together",
                ));
            }
            let d = domain
                .clone()
                .or_else(|| self.domain_by_id(&caller.domain_id))
                .unwrap_or_else(|| self.root_domain());
            let Some(a) = self.account_by_name(name, &d.id) else {
                return Err(ApiError::invalid(format!(
                    "could not find account {name} in domain {}",
                    d.path
                )));
            };
            if caller.role == Role::User && a.id != caller.id {
                return Err(denied(format!(
                    "{} does not have permission to operate with resource {}",
                    self.account_text(&caller),
                    self.account_text(&a)
                )));
            }
            self.check_domain_access(&caller, &self.domain_by_id(&a.domain_id).unwrap_or(d))?;
            scope.accounts.push(a.id);
        }
        match p.str("projectid") {
            Some("-1") => {
                scope.projects = Projects::Only;
                if caller.role != Role::Admin {
                    scope.accounts.extend(
                        self.visible_projects(&caller)
                            .into_iter()
                            .map(|p| p.account_id.clone()),
                    );
                    if scope.accounts.is_empty() || list_all {
                        scope.accounts.push(caller.id.clone());
                    }
                }
                if list_all {
                    scope.projects = Projects::Any;
                }
            }
            Some(pid) => {
                let project = self.project_param(pid)?;
                if !self.can_access_project(&caller, project) {
                    return Err(denied(format!(
                        "Account {} can't access project id={}",
                        self.account_text(&caller),
                        project.number
                    )));
                }
                scope.accounts.push(project.account_id.clone());
            }
            None => {
                if id.is_none() {
                    scope.projects = Projects::Skip;
                }
                if scope.accounts.is_empty() && domain.is_none() {
                    if caller.role == Role::User {
                        scope.accounts.push(caller.id.clone());
                    } else if !list_all {
                        if id.is_none() {
                            scope.accounts.push(caller.id.clone());
                        } else if caller.role != Role::Admin {
                            scope.domain = Some((caller.domain_id.clone(), true));
                        }
                    } else if caller.role == Role::DomainAdmin {
                        scope.domain = Some((caller.domain_id.clone(), true));
                    }
                } else if domain.is_some() && caller.role == Role::User {
                    scope.accounts.push(caller.id.clone());
                }
            }
        }
        if scope.accounts.is_empty() && scope.domain.is_none() {
            if let Some(d) = domain {
                scope.domain = Some((d.id, recursive));
            }
        }
        Ok(scope)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Projects {
    Any,
    /// `projectid=-1`: project objects only.
    Only,
    /// No `projectid`: no project objects.
    Skip,
}

/// The owners a list shows; see [`Cloud::scope`].
#[derive(Debug, Clone)]
pub struct Scope {
    /// Account ids (a project's own account for a project); empty: any.
    pub accounts: Vec<String>,
    /// A domain id, and whether its subdomains count.
    pub domain: Option<(String, bool)>,
    pub projects: Projects,
}

impl Scope {
    pub fn sees(&self, cloud: &Cloud, owner: &Owner) -> bool {
        let project = matches!(owner, Owner::Project(_));
        match self.projects {
            Projects::Only if !project => return false,
            Projects::Skip if project => return false,
            _ => {}
        }
        if !self.accounts.is_empty() {
            return self.accounts.contains(&cloud.account_id_of(owner));
        }
        if let Some((domain, recursive)) = &self.domain {
            let Some(d) = cloud.domain_of(owner) else {
                return false;
            };
            return if *recursive {
                cloud.is_child_domain(domain, &d.id)
            } else {
                &d.id == domain
            };
        }
        true
    }
}

impl Cloud {
    /// `NetworkModel.checkNetworkPermissions`: an isolated network serves
    /// only its owner; a shared one everybody.
    pub fn check_network_use(
        &self,
        owner: &Owner,
        network: &crate::model::Network,
    ) -> Result<(), ApiError> {
        if network.kind == "Shared" || &network.owner == owner {
            return Ok(());
        }
        Err(denied(format!(
            "Unable to use network with id= {}, permission denied",
            network.id
        )))
    }
}

impl Cloud {
    /// The account name behind an owner, as error texts show it (a
    /// project's own `PrjAcct-..` account for a project).
    pub fn account_name_of(&self, owner: &Owner) -> String {
        match owner {
            Owner::Admin => ACCOUNT.to_string(),
            Owner::Account(id) => self.account_by_id(id).map(|a| a.name).unwrap_or_default(),
            Owner::Project(id) => self
                .project(id)
                .map(|p| p.account_name.clone())
                .unwrap_or_default(),
        }
    }
}

/// A starting layout of domains, accounts and projects, from the command
/// line (`--domain`, `--account`, `--project`, `--project-member`,
/// `--caller-account`), applied to a fresh cloud only: a state file keeps
/// its own. The default adds nothing.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    pub domains: Vec<String>,
    pub accounts: Vec<AccountSpec>,
    pub projects: Vec<ProjectSpec>,
    pub members: Vec<MemberSpec>,
    pub caller: Option<AccountRef>,
}

/// `ROOT/eng:dev`: an account by domain path and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRef {
    pub domain: String,
    pub name: String,
}

/// `--account ROOT/eng:dev[:user|domain-admin|admin]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSpec {
    pub account: AccountRef,
    pub role: Role,
}

/// `--project NAME[:ROOT/eng:dev]`: a project and its owner (default: the
/// caller), who is its first member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectSpec {
    pub name: String,
    pub owner: Option<AccountRef>,
}

/// `--project-member NAME:ROOT/eng:dev`: one more account in a project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSpec {
    pub project: String,
    pub account: AccountRef,
}

fn domain_path(s: &str) -> Result<String, String> {
    let s = s.trim().trim_end_matches('/');
    let mut parts = s.split('/');
    if parts.next() != Some("ROOT") {
        return Err(format!(
            "a domain path starts with ROOT, as in ROOT/eng (got '{s}')"
        ));
    }
    if parts.any(|p| p.is_empty()) {
        return Err(format!("'{s}' has an empty domain name"));
    }
    Ok(s.to_string())
}

impl std::str::FromStr for AccountRef {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let Some((domain, name)) = s.rsplit_once(':') else {
            return Err(format!(
                "expected DOMAIN-PATH:ACCOUNT, as in ROOT/eng:dev (got '{s}')"
            ));
        };
        if name.is_empty() {
            return Err(format!("'{s}' has no account name after the ':'"));
        }
        Ok(AccountRef {
            domain: domain_path(domain)?,
            name: name.to_string(),
        })
    }
}

pub fn parse_domain(s: &str) -> Result<String, String> {
    domain_path(s)
}

impl std::str::FromStr for AccountSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (rest, role) = match s.rsplit_once(':') {
            Some((rest, "user")) => (rest, Role::User),
            Some((rest, "domain-admin")) => (rest, Role::DomainAdmin),
            Some((rest, "admin")) => (rest, Role::Admin),
            _ => (s, Role::User),
        };
        Ok(AccountSpec {
            account: rest.parse()?,
            role,
        })
    }
}

impl std::str::FromStr for ProjectSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, owner) = match s.split_once(':') {
            None => (s, None),
            Some((name, owner)) => (name, Some(owner.parse()?)),
        };
        if name.is_empty() {
            return Err(format!("expected NAME[:DOMAIN-PATH:ACCOUNT] (got '{s}')"));
        }
        Ok(ProjectSpec {
            name: name.to_string(),
            owner,
        })
    }
}

impl std::str::FromStr for MemberSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let Some((project, account)) = s.split_once(':') else {
            return Err(format!("expected PROJECT:DOMAIN-PATH:ACCOUNT (got '{s}')"));
        };
        Ok(MemberSpec {
            project: project.to_string(),
            account: account.parse()?,
        })
    }
}

/// Why a layout cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("--account {0}:{1} is given twice")]
    DuplicateAccount(String, String),
    #[error("{what} names the account {domain}:{name}, which no --account declares (hint: add --account {domain}:{name})")]
    UnknownAccount {
        what: String,
        domain: String,
        name: String,
    },
    #[error("--project {0} is given twice")]
    DuplicateProject(String),
    #[error("--project-member names the project {0}, which no --project declares")]
    UnknownProject(String),
}

impl Cloud {
    fn ensure_domain(&mut self, path: &str) -> String {
        if let Some(d) = self.domain_by_path(path) {
            return d.id;
        }
        let (parent, name) = path.rsplit_once('/').unwrap_or(("ROOT", path));
        let parent = self.ensure_domain(parent);
        let id = crate::ids::uuid();
        self.known_ids.insert(id.clone());
        let number = self.tenancy.domains.len() as u32 + 2;
        self.tenancy.domains.push(Domain {
            id: id.clone(),
            number,
            name: name.to_string(),
            path: path.to_string(),
            parent: Some(parent),
        });
        id
    }

    fn find_account(&self, r: &AccountRef, what: &str) -> Result<AccountRecord, LayoutError> {
        self.domain_by_path(&r.domain)
            .and_then(|d| self.account_by_name(&r.name, &d.id))
            .ok_or_else(|| LayoutError::UnknownAccount {
                what: what.to_string(),
                domain: r.domain.clone(),
                name: r.name.clone(),
            })
    }

    /// What CloudStack gives a new account or project: a default security
    /// group, and an isolated network with its source NAT address in each
    /// Advanced zone.
    fn provision(&mut self, owner: Owner, name: &str) {
        let id = crate::ids::uuid();
        self.known_ids.insert(id.clone());
        self.security_groups.push(crate::model::SecurityGroup {
            id,
            name: "default".into(),
            description: "Default Security Group".into(),
            ingress: vec![],
            owner: owner.clone(),
        });
        let zones: Vec<String> = self
            .zones
            .iter()
            .filter(|z| !z.basic())
            .map(|z| z.id.clone())
            .collect();
        for zone in zones {
            // The new network is like the zone's first isolated one.
            let Some(mut net) = self
                .networks
                .iter()
                .find(|n| n.zone_id == zone && n.kind == "Isolated")
                .cloned()
            else {
                continue;
            };
            net.id = crate::ids::uuid();
            net.name = format!("{name}-isolated");
            net.owner = owner.clone();
            self.known_ids.insert(net.id.clone());
            let mut ip = self
                .ips
                .iter()
                .find(|i| i.source_nat)
                .cloned()
                .expect("the seed has a source NAT address");
            self.counters.public_ip += 1;
            ip.id = crate::ids::uuid();
            ip.address = crate::seed::public_ip(self.counters.public_ip);
            ip.zone_id = zone.clone();
            ip.network_id = Some(net.id.clone());
            ip.owner = owner.clone();
            self.known_ids.insert(ip.id.clone());
            self.networks.push(net);
            self.ips.push(ip);
        }
    }

    /// Adds a layout's domains, accounts and projects.
    pub fn apply_layout(&mut self, layout: &Layout) -> Result<(), LayoutError> {
        for d in &layout.domains {
            self.ensure_domain(d);
        }
        for spec in &layout.accounts {
            let domain = self.ensure_domain(&spec.account.domain);
            if self.account_by_name(&spec.account.name, &domain).is_some() {
                return Err(LayoutError::DuplicateAccount(
                    spec.account.domain.clone(),
                    spec.account.name.clone(),
                ));
            }
            let (id, user_id) = (crate::ids::uuid(), crate::ids::uuid());
            self.known_ids.insert(id.clone());
            self.known_ids.insert(user_id.clone());
            self.tenancy.accounts.push(AccountRecord {
                id: id.clone(),
                user_id,
                name: spec.account.name.clone(),
                domain_id: domain,
                role: spec.role,
            });
            self.provision(Owner::Account(id), &spec.account.name);
        }
        if let Some(r) = &layout.caller {
            let a = self.find_account(r, "--caller-account")?;
            self.tenancy.caller = Some(a.id);
        }
        for spec in &layout.projects {
            if self.tenancy.projects.iter().any(|p| p.name == spec.name) {
                return Err(LayoutError::DuplicateProject(spec.name.clone()));
            }
            let owner = match &spec.owner {
                Some(r) => self.find_account(r, &format!("--project {}", spec.name))?,
                None => self.caller(),
            };
            let domain_number = self
                .domain_by_id(&owner.domain_id)
                .map(|d| d.number)
                .unwrap_or(1);
            let (id, account_id) = (crate::ids::uuid(), crate::ids::uuid());
            self.known_ids.insert(id.clone());
            self.known_ids.insert(account_id.clone());
            let number = self.tenancy.projects.len() as u32 + 1;
            self.tenancy.projects.push(Project {
                id: id.clone(),
                number,
                name: spec.name.clone(),
                display_text: spec.name.clone(),
                domain_id: owner.domain_id.clone(),
                owner: owner.id.clone(),
                members: vec![owner.id.clone()],
                account_id,
                account_name: format!("PrjAcct-{}-{domain_number}", spec.name),
            });
            self.provision(Owner::Project(id), &spec.name);
        }
        for m in &layout.members {
            let a = self.find_account(&m.account, "--project-member")?;
            let Some(p) = self
                .tenancy
                .projects
                .iter_mut()
                .find(|p| p.name == m.project)
            else {
                return Err(LayoutError::UnknownProject(m.project.clone()));
            };
            if !p.members.contains(&a.id) {
                p.members.push(a.id);
            }
        }
        Ok(())
    }
}
