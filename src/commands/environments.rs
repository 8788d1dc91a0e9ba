//! Every environment box can see from here, for `box ls` and
//! `box destroy --env`: the local ones from the host-wide index (their
//! state read live from each project's `.box/`), and the cloud ones found
//! by box's tags on every configured CloudStack profile, in the account
//! and in each CloudStack project it belongs to.
//!
//! API calls per profile: one `listProjects` (a cloud without projects
//! answers 432, "no projects"), then one `listVirtualMachines` for the
//! account and one per project.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use cloudstack::{Client, Params, VirtualMachine};
use serde::Deserialize;

use crate::cloud_client;
use crate::config::{self, Paths};
use crate::index::{Entry, Index};
use crate::provider::ProviderKind;
use crate::state::{MachineState, StateStore};

use super::Settings;

/// One CloudStack account to look in: the first profile naming it.
#[derive(Clone)]
pub struct Account {
    pub profile: String,
    /// The API endpoint: with a VM's id, what names it across accounts
    /// (two accounts in one CloudStack project both see its VMs).
    pub endpoint: String,
    pub client: Client,
}

/// Where in an account: the account's own resources, or a CloudStack
/// project's (`projectid`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// The CloudStack project's id and name; `None` is the account itself.
    pub project: Option<(String, String)>,
}

impl Scope {
    pub fn params(&self) -> Params {
        let p = Params::new().set("listall", "true");
        match &self.project {
            Some((id, _)) => p.set("projectid", id),
            None => p,
        }
    }

    pub fn name(&self) -> Option<&str> {
        self.project.as_ref().map(|(_, n)| n.as_str())
    }
}

/// The profiles configured on this host: `config.toml`'s, then
/// CloudMonkey's sections. With `CLOUDSTACK_API_URL` set, every profile
/// resolves to that one endpoint, so only the profile in force is used.
pub fn profiles(g: &Settings) -> Vec<String> {
    let in_force = g.profile.clone().unwrap_or_else(|| "default".to_string());
    if std::env::var_os("CLOUDSTACK_API_URL").is_some_and(|v| !v.is_empty()) {
        return vec![in_force];
    }
    let mut names = BTreeSet::new();
    let mut warnings = Vec::new();
    match config::load_user_config(&g.paths.config_file, &mut warnings) {
        Ok(c) => names.extend(c.profiles.into_keys()),
        Err(e) => g
            .printer
            .warn(&format!("{e}; its profiles are not searched")),
    }
    names.extend(cloudmonkey_profiles(&g.paths));
    names.into_iter().collect()
}

/// The sections of CloudMonkey's configuration that hold an endpoint.
fn cloudmonkey_profiles(paths: &Paths) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(&paths.cloudmonkey_file) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut section: Option<String> = None;
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = Some(name.trim().to_string());
        } else if let (Some(s), Some((k, _))) = (&section, line.split_once('=')) {
            if k.trim().eq_ignore_ascii_case("url") && s != "core" && !out.contains(s) {
                out.push(s.clone());
            }
        }
    }
    out
}

/// A client per distinct account (endpoint and API key) among the
/// configured profiles. A profile that cannot be used is warned about and
/// skipped: the other clouds are still listed.
pub fn accounts(g: &Settings) -> Vec<Account> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for profile in profiles(g) {
        let config = match cloud_client::client_config(&g.printer, &g.paths, &profile) {
            Ok(c) => c,
            Err(e) => {
                g.printer
                    .warn(&format!("profile `{profile}` is skipped: {e:#}"));
                continue;
            }
        };
        if !seen.insert((config.endpoint.clone(), config.api_key.clone())) {
            continue;
        }
        let endpoint = config.endpoint.clone();
        match cloud_client::build(&g.printer, config) {
            Ok(client) => out.push(Account {
                profile,
                endpoint,
                client,
            }),
            Err(e) => g
                .printer
                .warn(&format!("profile `{profile}` is skipped: {e:#}")),
        }
    }
    out
}

#[derive(Debug, Deserialize)]
struct CsProject {
    id: String,
    #[serde(default)]
    name: Option<String>,
}

impl cloudstack::Resource for CsProject {
    const LIST_KEY: &'static str = "project";
    const OBJECT_KEY: &'static str = "project";
}

/// The account itself, then each CloudStack project it can see. A cloud
/// that does not know `listProjects` (error 432) has no projects.
pub async fn scopes(account: &Account) -> anyhow::Result<Vec<Scope>> {
    let mut out = vec![Scope { project: None }];
    let projects = match account
        .client
        .list_of::<CsProject>("listProjects", &Params::new().set("listall", "true"))
        .await
    {
        Ok(p) => p,
        Err(cloudstack::Error::Api(a)) if a.errorcode == 432 => Vec::new(),
        Err(e) => return Err(cloud_client::client_error(e)),
    };
    out.extend(projects.into_iter().map(|p| Scope {
        project: Some((p.id.clone(), p.name.unwrap_or(p.id))),
    }));
    Ok(out)
}

/// box's VMs in one scope: one `listVirtualMachines`, filtered by
/// `box:owner` (only `owner`'s) or by `box:env` (one environment); with
/// neither, every VM carrying `box:env`.
pub async fn cloud_vms(
    account: &Account,
    scope: &Scope,
    owner: Option<&str>,
    env: Option<&str>,
) -> anyhow::Result<Vec<VirtualMachine>> {
    let mut tags = Vec::new();
    if let Some(o) = owner {
        tags.push(("box:owner", o));
    }
    if let Some(e) = env {
        tags.push(("box:env", e));
    }
    let vms = account
        .client
        .list_virtual_machines(&scope.params().tags(tags))
        .await
        .map_err(cloud_client::client_error)?;
    Ok(vms
        .into_iter()
        // A cloud that ignores the tag filter must not widen the answer.
        .filter(|vm| vm.tag("box:env").is_some())
        .filter(|vm| owner.is_none_or(|o| vm.tag("box:owner") == Some(o)))
        .filter(|vm| env.is_none_or(|e| vm.tag("box:env") == Some(e)))
        .filter(|vm| !matches!(vm.state.as_deref(), Some("Destroyed" | "Expunging")))
        .collect())
}

/// One index entry as found now.
pub struct LocalEnv {
    pub entry: Entry,
    /// The project folder or its `.box/` is gone: nothing to read.
    pub stale: bool,
    /// Why the state could not be read (a corrupt file): not stale, so
    /// `--prune` keeps it.
    pub unreadable: Option<String>,
    /// The machines' live state (empty when stale).
    pub machines: Vec<MachineState>,
}

impl LocalEnv {
    pub fn root(&self) -> &Path {
        &self.entry.root
    }
}

/// The index's environments, each with its machines' state read now from
/// `.box/`. A local machine recorded as running whose QEMU process is gone
/// reads as dead, or stopped if its guest powered itself off (a `/proc`
/// read and the console's tail, no QEMU query).
pub fn local_envs(index: &Index) -> anyhow::Result<Vec<LocalEnv>> {
    let file = index.load()?;
    let mut out = Vec::new();
    for entry in file.environments {
        let store = StateStore::existing(&entry.root);
        let (machines, unreadable) = match store.as_ref().map(StateStore::machines) {
            Some(Ok(m)) => (m, None),
            Some(Err(e)) => (Vec::new(), Some(e.to_string())),
            None => (Vec::new(), None),
        };
        let stale = unreadable.is_none() && machines.is_empty();
        let machines = machines
            .into_iter()
            .map(|mut m| {
                if let (ProviderKind::Local, Some(s)) = (m.provider.kind(), &store) {
                    m.status = crate::provider::local::live_status(s, &m);
                }
                m
            })
            .collect();
        out.push(LocalEnv {
            entry,
            stale,
            unreadable,
            machines,
        });
    }
    Ok(out)
}

/// The folders of stale entries.
pub fn stale_roots(envs: &[LocalEnv]) -> Vec<PathBuf> {
    envs.iter()
        .filter(|e| e.stale)
        .map(|e| e.entry.root.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloudmonkey_sections_with_an_endpoint_are_profiles() {
        let tmp = tempfile::tempdir().unwrap();
        let paths = Paths {
            config_file: tmp.path().join("config.toml"),
            cloudmonkey_file: tmp.path().join("cmk"),
            data_dir: tmp.path().join("data"),
            cache_dir: tmp.path().join("cache"),
        };
        std::fs::write(
            &paths.cloudmonkey_file,
            "[core]\nprofile = lab\nurl = x\n\n[lab]\nurl = http://127.0.0.1:1/client/api\napikey = K\n\n[empty]\napikey = K\n",
        )
        .unwrap();
        assert_eq!(cloudmonkey_profiles(&paths), vec!["lab".to_string()]);
    }
}
