//! Domains, accounts and projects: `listDomains`, `listAccounts` and
//! `listProjects`, with the scoping of `QueryManagerImpl` (a caller sees its
//! own domain, account and projects unless `listall` widens that).

use serde_json::{json, Value};

use super::list::{field_eq, list};
use super::{Ctx, Reply};
use crate::error::ApiError;
use crate::params::Params;
use crate::tenancy::{denied, AccountRecord, Domain, Project, Role};

fn render_domain(c: &crate::model::Cloud, d: &Domain) -> Value {
    let all = c.domains();
    let mut v = json!({
        "id": d.id,
        "name": d.name,
        "level": d.path.matches('/').count(),
        "haschild": all.iter().any(|x| x.parent.as_deref() == Some(d.id.as_str())),
        "path": d.path,
        "state": "Active",
        "hasannotations": false,
    });
    if let Some(parent) = d.parent.as_deref().and_then(|p| c.domain_by_id(p)) {
        v["parentdomainid"] = json!(parent.id);
        v["parentdomainname"] = json!(parent.name);
    }
    v
}

pub fn list_domains(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let c = &*ctx.cloud;
    let caller = c.caller();
    if let Some(id) = p.str("id") {
        let d = c
            .domain_by_id(id)
            .ok_or_else(|| ApiError::invalid(format!("Domain id={id} doesn't exist")))?;
        c.check_domain_access(&caller, &d)?;
    }
    let list_all = p.bool("listall").unwrap_or(false);
    let level = p.int("level")?;
    let items: Vec<Value> = c
        .domains()
        .iter()
        // Without listall (or an id), only the caller's own domain.
        .filter(|d| {
            if p.has("id") || list_all {
                c.is_child_domain(&caller.domain_id, &d.id)
            } else {
                d.id == caller.domain_id
            }
        })
        .filter(|d| level.is_none_or(|l| d.path.matches('/').count() as i64 == l))
        .map(|d| render_domain(c, d))
        .collect();
    list(p, "domain", items)
}

fn render_account(c: &crate::model::Cloud, a: &AccountRecord) -> Value {
    let d = c
        .domain_by_id(&a.domain_id)
        .unwrap_or_else(|| c.root_domain());
    json!({
        "id": a.id,
        "name": a.name,
        "accounttype": a.role.number(),
        "roletype": a.role.role_type(),
        "rolename": match a.role {
            Role::Admin => "Root Admin",
            Role::DomainAdmin => "Domain Admin",
            Role::User => "User",
        },
        "domainid": d.id,
        "domain": d.name,
        "domainpath": d.path,
        "state": "enabled",
        "isdefault": a.id == c.account.account_id,
        "user": [{
            "id": a.user_id,
            "username": a.name,
            "accountid": a.id,
            "account": a.name,
            "accounttype": a.role.number(),
            "domainid": d.id,
            "domain": d.name,
            "state": "enabled",
        }],
    })
}

pub fn list_accounts(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let c = &*ctx.cloud;
    let caller = c.caller();
    let list_all = p.bool("listall").unwrap_or(false);
    let mut recursive = p.bool("isrecursive").unwrap_or(false);
    let domain = match p.str("domainid") {
        Some(id) => {
            let d = c
                .domain_by_id(id)
                .ok_or_else(|| ApiError::invalid(format!("Domain id={id} doesn't exist")))?;
            c.check_domain_access(&caller, &d)?;
            d
        }
        None => {
            if list_all {
                recursive = true;
            }
            c.domain_by_id(&caller.domain_id)
                .unwrap_or_else(|| c.root_domain())
        }
    };
    let kind = field_eq(p, "accounttype", "accounttype");
    let items: Vec<Value> = c
        .accounts()
        .iter()
        // A plain user sees only its own account.
        .filter(|a| caller.role != Role::User || a.id == caller.id)
        .filter(|a| {
            caller.role == Role::User
                || if recursive {
                    c.is_child_domain(&domain.id, &a.domain_id)
                } else {
                    a.domain_id == domain.id
                }
        })
        .map(|a| render_account(c, a))
        .filter(|v| kind(v))
        .collect();
    list(p, "account", items)
}

fn render_project(c: &crate::model::Cloud, pr: &Project) -> Value {
    let d = c
        .domain_by_id(&pr.domain_id)
        .unwrap_or_else(|| c.root_domain());
    let owner = c
        .account_by_id(&pr.owner)
        .map(|a| a.name)
        .unwrap_or_default();
    json!({
        "id": pr.id,
        "name": pr.name,
        "displaytext": pr.display_text,
        "domainid": d.id,
        "domain": d.name,
        "account": owner,
        "projectaccountname": pr.account_name,
        "state": "Active",
        "tags": c.tags_of(&pr.id),
    })
}

/// `QueryManagerImpl.listProjectsInternal`.
pub fn list_projects(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let c = &*ctx.cloud;
    let caller = c.caller();
    let list_all = p.bool("listall").unwrap_or(false);
    let recursive = p.bool("isrecursive").unwrap_or(false);
    let account_name = p.str("account");
    let domain_id = p.str("domainid");
    // Projects whose members include this account.
    let mut member: Option<String> = None;
    if caller.role != Role::User {
        if let Some(id) = domain_id {
            let d = c
                .domain_by_id(id)
                .ok_or_else(|| ApiError::invalid(format!("Domain id={id} doesn't exist")))?;
            c.check_domain_access(&caller, &d)?;
            if let Some(name) = account_name {
                let a = c.account_by_name(name, &d.id).ok_or_else(|| {
                    ApiError::invalid(format!("Unable to find account {name} in domain {id}"))
                })?;
                member = Some(a.id);
            }
        } else if let Some(name) = account_name {
            return Err(ApiError::invalid(format!(
                "could not find account {name} because domain is not specified"
            )));
        }
    } else {
        if let Some(name) = account_name {
            if !name.eq_ignore_ascii_case(&caller.name) {
                return Err(denied(format!(
                    "Can't list account {name} projects; unauthorized"
                )));
            }
        }
        if let Some(id) = domain_id {
            if id != caller.domain_id {
                return Err(denied(format!(
                    "Can't list domain id= {id} projects; unauthorized"
                )));
            }
        }
        member = Some(caller.id.clone());
    }
    let mut under: Option<String> = None;
    if domain_id.is_none() && member.is_none() && (caller.role == Role::User || !list_all) {
        member = Some(caller.id.clone());
    } else if caller.role == Role::DomainAdmin || (recursive && !list_all) {
        under = Some(caller.domain_id.clone());
    }
    let items: Vec<Value> = c
        .tenancy
        .projects
        .iter()
        .filter(|pr| member.as_ref().is_none_or(|m| pr.members.contains(m)))
        .filter(|pr| {
            under
                .as_ref()
                .is_none_or(|d| c.is_child_domain(d, &pr.domain_id))
        })
        .filter(|pr| recursive || domain_id.is_none_or(|d| pr.domain_id == d))
        .filter(|pr| {
            p.str("displaytext")
                .is_none_or(|t| pr.display_text.eq_ignore_ascii_case(t))
        })
        // Every project here is Active.
        .filter(|_| {
            p.str("state")
                .is_none_or(|s| s.eq_ignore_ascii_case("Active"))
        })
        .map(|pr| render_project(c, pr))
        .collect();
    list(p, "project", items)
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::super::tests::{finish_all, run};
    use crate::model::Cloud;
    use crate::seed;
    use crate::tenancy::{Layout, Owner};

    /// ROOT/eng with the user `dev`, ROOT/ops with `ops`; the project `team`
    /// (the root admin's) and `other` (owned by ops).
    fn cloud(caller: Option<&str>) -> Cloud {
        let mut c = seed::cloud();
        let layout = Layout {
            domains: vec!["ROOT/eng/web".into()],
            accounts: vec![
                "ROOT/eng:dev".parse().unwrap(),
                "ROOT/ops:ops:domain-admin".parse().unwrap(),
            ],
            projects: vec![
                "team".parse().unwrap(),
                "other:ROOT/ops:ops".parse().unwrap(),
            ],
            members: vec![],
            caller: caller.map(|c| c.parse().unwrap()),
        };
        c.apply_layout(&layout).unwrap();
        c
    }

    fn project(c: &Cloud, name: &str) -> String {
        c.tenancy
            .projects
            .iter()
            .find(|p| p.name == name)
            .unwrap()
            .id
            .clone()
    }

    fn domain(c: &Cloud, path: &str) -> String {
        c.domain_by_path(path).unwrap().id
    }

    fn advanced(c: &Cloud) -> String {
        c.zones
            .iter()
            .find(|z| z.name == seed::ADVANCED_ZONE)
            .unwrap()
            .id
            .clone()
    }

    fn deploy(
        c: &mut Cloud,
        name: &str,
        extra: &[(&str, &str)],
    ) -> Result<Value, crate::error::ApiError> {
        let (zone, t, o) = (
            advanced(c),
            c.templates[0].id.clone(),
            c.service_offerings[0].id.clone(),
        );
        let mut pairs = vec![
            ("zoneid", zone.as_str()),
            ("templateid", t.as_str()),
            ("serviceofferingid", o.as_str()),
            ("name", name),
        ];
        pairs.extend_from_slice(extra);
        let r = run(c, "deployVirtualMachine", &pairs);
        finish_all(c, None);
        r
    }

    fn names(v: &Value, key: &str) -> Vec<String> {
        v[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| x["name"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn lists_without_projectid_skip_project_objects_and_projectid_shows_only_them() {
        let mut c = cloud(None);
        let team = project(&c, "team");
        deploy(&mut c, "mine", &[]).unwrap();
        deploy(&mut c, "shared", &[("projectid", &team)]).unwrap();
        let own = run(&mut c, "listVirtualMachines", &[]).unwrap();
        assert_eq!(names(&own, "virtualmachine"), ["mine"]);
        let in_team = run(&mut c, "listVirtualMachines", &[("projectid", &team)]).unwrap();
        assert_eq!(names(&in_team, "virtualmachine"), ["shared"]);
        // An id finds a project's VM for the root admin, as on a real cloud.
        let id = in_team["virtualmachine"][0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let by_id = run(&mut c, "listVirtualMachines", &[("id", &id)]).unwrap();
        assert_eq!(by_id["count"], 1);
    }

    #[test]
    fn projectid_minus_one_lists_every_project_the_caller_sees() {
        let mut c = cloud(None);
        let (team, other) = (project(&c, "team"), project(&c, "other"));
        deploy(&mut c, "a", &[("projectid", &team)]).unwrap();
        deploy(&mut c, "b", &[("projectid", &other)]).unwrap();
        deploy(&mut c, "c", &[]).unwrap();
        // The root admin sees every project's objects.
        let all = run(&mut c, "listVirtualMachines", &[("projectid", "-1")]).unwrap();
        let mut got = names(&all, "virtualmachine");
        got.sort();
        assert_eq!(got, ["a", "b"]);
        // A user who is in no project sees none of them.
        c.tenancy.caller = c
            .tenancy
            .accounts
            .iter()
            .find(|a| a.name == "dev")
            .map(|a| a.id.clone());
        let none = run(&mut c, "listVirtualMachines", &[("projectid", "-1")]).unwrap();
        assert_eq!(none, serde_json::json!({}));
    }

    #[test]
    fn a_project_the_caller_cannot_access_is_refused_with_531() {
        let mut c = cloud(Some("ROOT/eng:dev"));
        let other = project(&c, "other");
        let e = run(&mut c, "listVirtualMachines", &[("projectid", &other)]).unwrap_err();
        assert_eq!((e.code, e.cs_code), (531, Some(4365)));
        let dev = c.caller();
        assert_eq!(
            e.text,
            format!("Account Acct[{}-dev] can't access project id=2", dev.id)
        );
        let e = deploy(&mut c, "x", &[("projectid", &other)]).unwrap_err();
        assert_eq!(e.code, 531);
        assert!(
            e.text
                .contains("does not have permission to operate with resource Acct[")
                && e.text.contains("-PrjAcct-other-4]"),
            "{}",
            e.text
        );
        let e = run(
            &mut c,
            "createSSHKeyPair",
            &[("name", "k"), ("projectid", &other)],
        )
        .unwrap_err();
        assert_eq!(e.code, 531);
        assert!(
            e.text.ends_with("is unauthorised to use project id=2"),
            "{}",
            e.text
        );
        // A malformed or unknown project id is the usual 431.
        let e = run(&mut c, "listVirtualMachines", &[("projectid", "nope")]).unwrap_err();
        assert_eq!(e.code, 431);
    }

    #[test]
    fn owners_render_as_account_or_project_like_populate_owner() {
        let mut c = cloud(None);
        let (team, eng) = (project(&c, "team"), domain(&c, "ROOT/eng"));
        let vm = deploy(&mut c, "p", &[("projectid", &team)]).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let v = &run(&mut c, "listVirtualMachines", &[("id", &vm)]).unwrap()["virtualmachine"][0];
        assert_eq!(v["projectid"], team.as_str());
        assert_eq!(v["project"], "team");
        assert_eq!(v["domain"], "ROOT");
        assert!(
            v.get("account").is_none(),
            "a project's object has no account: {v}"
        );
        deploy(&mut c, "d", &[("account", "dev"), ("domainid", &eng)]).unwrap();
        let l = run(
            &mut c,
            "listVirtualMachines",
            &[("account", "dev"), ("domainid", &eng)],
        )
        .unwrap();
        let v = &l["virtualmachine"][0];
        assert_eq!(
            (v["name"].as_str(), v["account"].as_str()),
            (Some("d"), Some("dev"))
        );
        assert_eq!(
            (v["domain"].as_str(), v["domainid"].as_str()),
            (Some("eng"), Some(eng.as_str()))
        );
        assert!(v.get("projectid").is_none());
    }

    #[test]
    fn domains_list_with_their_path_and_parent() {
        let mut c = cloud(None);
        assert_eq!(c.domain_by_path("root/ENG/web").unwrap().name, "web");
        // Without listall only the caller's own domain.
        let own = run(&mut c, "listDomains", &[]).unwrap();
        assert_eq!(names(&own, "domain"), ["ROOT"]);
        let all = run(&mut c, "listDomains", &[("listall", "true")]).unwrap();
        let web = all["domain"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == "web")
            .unwrap();
        assert_eq!(web["path"], "ROOT/eng/web");
        assert_eq!(web["parentdomainname"], "eng");
        assert_eq!(web["level"], 2);
        let eng = all["domain"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == "eng")
            .unwrap();
        assert_eq!(eng["haschild"], true);
    }

    #[test]
    fn account_goes_with_domainid_as_cloudstack_requires() {
        let mut c = cloud(None);
        let eng = domain(&c, "ROOT/eng");
        let e = run(
            &mut c,
            "createSSHKeyPair",
            &[("name", "k"), ("account", "dev")],
        )
        .unwrap_err();
        assert_eq!(
            (e.code, e.text.as_str()),
            (431, "AccountName and domainId must be specified together")
        );
        let e = deploy(&mut c, "x", &[("account", "dev")]).unwrap_err();
        assert_eq!(e.text, "Account must be specified with domainId parameter");
        let e = run(
            &mut c,
            "createSSHKeyPair",
            &[("name", "k"), ("account", "nobody"), ("domainid", &eng)],
        )
        .unwrap_err();
        assert_eq!(
            e.text,
            format!("Unable to find account nobody in domain {eng}")
        );
        run(
            &mut c,
            "createSSHKeyPair",
            &[("name", "k"), ("account", "dev"), ("domainid", &eng)],
        )
        .unwrap();
        let theirs = run(
            &mut c,
            "listSSHKeyPairs",
            &[("account", "dev"), ("domainid", &eng)],
        )
        .unwrap();
        assert_eq!(theirs["sshkeypair"][0]["account"], "dev");
        // The admin's own list does not show dev's key.
        assert_eq!(
            run(&mut c, "listSSHKeyPairs", &[]).unwrap(),
            serde_json::json!({})
        );
        // The same name is free in another owner.
        run(&mut c, "createSSHKeyPair", &[("name", "k")]).unwrap();
        let team = project(&c, "team");
        let e = run(
            &mut c,
            "deleteSSHKeyPair",
            &[("name", "k"), ("projectid", &team)],
        )
        .unwrap_err();
        assert!(
            e.text.contains("does not exist for account PrjAcct-team-1"),
            "{}",
            e.text
        );
    }

    #[test]
    fn a_plain_user_sees_its_own_objects_and_its_projects_only() {
        let mut c = cloud(None);
        let team = project(&c, "team");
        let dev = c
            .tenancy
            .accounts
            .iter()
            .find(|a| a.name == "dev")
            .unwrap()
            .id
            .clone();
        c.tenancy
            .projects
            .iter_mut()
            .find(|p| p.id == team)
            .unwrap()
            .members
            .push(dev.clone());
        let admin_vm = deploy(&mut c, "adm", &[]).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        c.tenancy.caller = Some(dev);
        deploy(&mut c, "mine", &[]).unwrap();
        let v = run(&mut c, "listVirtualMachines", &[("listall", "true")]).unwrap();
        assert_eq!(names(&v, "virtualmachine"), ["mine"]);
        // A member works in the project.
        let vm = deploy(&mut c, "team-vm", &[("projectid", &team)]).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        run(&mut c, "stopVirtualMachine", &[("id", &vm)]).unwrap();
        // The admin's VM is out of reach.
        let e = run(&mut c, "destroyVirtualMachine", &[("id", &admin_vm)]).unwrap_err();
        assert_eq!(e.code, 531);
        assert!(
            e.text
                .contains("does not have permission to operate with resource Acct["),
            "{}",
            e.text
        );
        let p = run(&mut c, "listProjects", &[]).unwrap();
        assert_eq!(names(&p, "project"), ["team"]);
    }

    #[test]
    fn list_projects_shows_the_admins_projects_unless_listall() {
        let mut c = cloud(None);
        let p = run(&mut c, "listProjects", &[]).unwrap();
        assert_eq!(names(&p, "project"), ["team"]);
        assert_eq!(p["project"][0]["account"], "admin");
        assert_eq!(p["project"][0]["state"], "Active");
        let all = run(&mut c, "listProjects", &[("listall", "true")]).unwrap();
        assert_eq!(names(&all, "project"), ["team", "other"]);
        let other = &all["project"][1];
        assert_eq!(
            (other["account"].as_str(), other["domain"].as_str()),
            (Some("ops"), Some("ops"))
        );
        let by_name = run(
            &mut c,
            "listProjects",
            &[("listall", "true"), ("name", "OTHER")],
        )
        .unwrap();
        assert_eq!(by_name["count"], 1);
        let e = run(&mut c, "listProjects", &[("account", "ops")]).unwrap_err();
        assert_eq!(
            e.text,
            "could not find account ops because domain is not specified"
        );
    }

    #[test]
    fn project_objects_get_the_project_as_owner_and_tags_follow_their_resource() {
        let mut c = cloud(None);
        let team = project(&c, "team");
        let vm = deploy(&mut c, "p", &[("projectid", &team)]).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let zone = advanced(&c);
        let ip = run(
            &mut c,
            "associateIpAddress",
            &[("zoneid", &zone), ("projectid", &team)],
        )
        .unwrap();
        finish_all(&mut c, None);
        let ip = ip["id"].as_str().unwrap();
        assert_eq!(c.ip(ip).unwrap().owner, Owner::Project(team.clone()));
        run(
            &mut c,
            "createTags",
            &[
                ("resourceids", &vm),
                ("resourcetype", "UserVm"),
                ("tags[0].key", "box"),
                ("tags[0].value", "1"),
            ],
        )
        .unwrap();
        finish_all(&mut c, None);
        assert_eq!(run(&mut c, "listTags", &[]).unwrap(), serde_json::json!({}));
        let t = run(&mut c, "listTags", &[("projectid", &team)]).unwrap();
        assert_eq!(
            (t["count"].as_u64(), t["tag"][0]["project"].as_str()),
            (Some(1), Some("team"))
        );
        let ips = run(&mut c, "listPublicIpAddresses", &[("projectid", &team)]).unwrap();
        // The project's source NAT address and the new one.
        assert_eq!(ips["count"], 2);
    }

    #[test]
    fn an_address_on_a_projects_network_belongs_to_the_project() {
        let mut c = cloud(Some("ROOT/eng:dev"));
        let dev = c.caller().id;
        let other = project(&c, "other");
        let net = |c: &Cloud, name: &str| {
            c.networks
                .iter()
                .find(|n| n.name == name)
                .unwrap()
                .id
                .clone()
        };
        // As AssociateIPAddrCmd.getEntityOwnerId: the network's owner...
        c.tenancy
            .projects
            .iter_mut()
            .find(|p| p.id == other)
            .unwrap()
            .members
            .push(dev);
        let on = net(&c, "other-isolated");
        let r = run(&mut c, "associateIpAddress", &[("networkid", &on)]).unwrap();
        let ip = r["id"].as_str().unwrap().to_string();
        assert_eq!(c.ip(&ip).unwrap().owner, Owner::Project(other.clone()));
        // ...whom the caller must be allowed to act for.
        let ops = net(&c, "ops-isolated");
        let e = run(&mut c, "associateIpAddress", &[("networkid", &ops)]).unwrap_err();
        assert_eq!(e.code, 531);
        assert!(e.text.contains("-ops]"), "{}", e.text);
    }

    #[test]
    fn a_layout_naming_an_undeclared_account_says_which_flag_to_add() {
        let mut c = seed::cloud();
        let layout = Layout {
            projects: vec!["x:ROOT/eng:dev".parse().unwrap()],
            ..Default::default()
        };
        let e = c.apply_layout(&layout).unwrap_err().to_string();
        assert!(
            e.contains("--project x names the account ROOT/eng:dev"),
            "{e}"
        );
        assert!(e.contains("hint: add --account ROOT/eng:dev"), "{e}");
        assert!("eng:dev".parse::<crate::tenancy::AccountRef>().is_err());
    }

    #[test]
    fn an_older_state_file_loads_with_everything_owned_by_the_admin() {
        let mut c = seed::cloud();
        deploy(&mut c, "old", &[]).unwrap();
        let mut v = serde_json::to_value(&c).unwrap();
        v.as_object_mut().unwrap().remove("tenancy");
        for vm in v["vms"].as_array_mut().unwrap() {
            vm.as_object_mut().unwrap().remove("owner");
        }
        let back: Cloud = serde_json::from_value(v).unwrap();
        assert_eq!(back.vms[0].owner, Owner::Admin);
        assert!(back.tenancy.projects.is_empty());
    }
}
