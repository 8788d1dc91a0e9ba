//! What a VM's tags tell teammates and `box ls`, beside the tags that find
//! it (`box:project`, `box:machine`, `box:owner`, `box:env`) and its pinned
//! host key (`box:hostkey`):
//!
//! - `box:expires`: when the current run expires, `2026-12-01T10:05:00Z`;
//! - `box:ssh`: where its SSH server is reached, `host:port`;
//! - `box:shared`: the names `box share` gave keys to, comma-separated.
//!
//! And a teammate's way in: `box ssh --env ID MACHINE` finds the VM by
//! `box:env` and `box:machine` and connects with the host key pinned in
//! `box:hostkey`, never trusting on first use.

use std::path::PathBuf;

use anyhow::Context as _;
use cloudstack::{Params, VirtualMachine};

use crate::boxfile::Machine;
use crate::error::Hinted;
use crate::state::{MachineState, SshTarget};

use super::api::{convert, with_retries};
use super::CloudStack;

pub const EXPIRES: &str = "box:expires";
pub const SSH: &str = "box:ssh";
pub const SHARED: &str = "box:shared";

/// After `up` made the machine run: records the start (its expiry) and
/// tags the VM with its expiry and SSH endpoint. `started` is whether this
/// run started the VM (deployed it or started it from Stopped).
pub(super) async fn after_up(
    p: &CloudStack,
    machine: &Machine,
    vm: &VirtualMachine,
    st: &mut MachineState,
    started: bool,
) -> anyhow::Result<()> {
    crate::idle::record_start(st, machine, started);
    p.save(st)?;
    let mut want: Vec<(&str, Option<String>)> = Vec::new();
    if let Some(at) = st.stops.and_then(|s| s.expires_at) {
        want.push((EXPIRES, Some(crate::idle::timestamp(at))));
    }
    if let Some(t) = &st.ssh {
        want.push((SSH, Some(format!("{}:{}", t.host, t.port))));
    }
    set_tags(p, vm, &want)
        .await
        .with_context(|| format!("cannot tag the VM of `{}`", machine.name))
}

impl CloudStack {
    /// Makes the VM's `box:shared` tag list the machine's shared names
    /// (none: no tag).
    pub async fn tag_shared(&self, st: &MachineState) -> anyhow::Result<()> {
        let Some(id) = st.id.as_deref() else {
            return Ok(());
        };
        let vm = self
            .api
            .client
            .list_virtual_machines(&Params::new().set("id", id).set("listall", "true"))
            .await
            .map_err(|e| convert(e, &format!("cannot look up the VM of `{}`", st.name)))?
            .into_iter()
            .find(|v| v.id == id)
            .with_context(|| format!("the VM of `{}` ({id}) is gone from the cloud", st.name))?;
        let value = crate::share::tag_value(&st.shared);
        let value = (!value.is_empty()).then_some(value);
        set_tags(self, &vm, &[(SHARED, value)])
            .await
            .with_context(|| format!("cannot tag the VM of `{}`", st.name))
    }

    /// The SSH endpoint of a teammate's machine, found by its environment
    /// id and machine name, with the host key its tag pins; `identity` is
    /// the teammate's own private key.
    pub async fn teammate_target(
        &self,
        env: &str,
        machine: &Machine,
        identity: PathBuf,
    ) -> anyhow::Result<SshTarget> {
        let name = &machine.name;
        let list = self
            .api
            .client
            .list_virtual_machines(
                &Params::new()
                    .set("listall", "true")
                    .tags([("box:env", env), ("box:machine", name.as_str())]),
            )
            .await
            .map_err(|e| convert(e, &format!("cannot look up `{name}` of environment {env}")))?;
        let vm = list
            .into_iter()
            .find(|v| {
                v.tag("box:env") == Some(env)
                    && v.tag("box:machine") == Some(name.as_str())
                    && !super::vm::gone(v)
            })
            .ok_or_else(|| {
                Hinted::new(
                    format!("no VM of `{name}` in environment {env} is visible to these credentials"),
                    "check the environment id (the owner's `box ls` shows it) and that your profile is in the same account or project",
                )
            })?;
        if vm.state.as_deref() != Some("Running") {
            return Err(Hinted::new(
                format!(
                    "`{name}` of environment {env} is {}",
                    vm.state.as_deref().unwrap_or("in no state")
                ),
                "its owner starts it with `box up`",
            )
            .into());
        }
        let host_key = vm.tag("box:hostkey").ok_or_else(|| {
            Hinted::new(
                format!("the VM of `{name}` in environment {env} has no `box:hostkey` tag"),
                "box pins host keys and never trusts on first use; its owner's `box up` adds the tag",
            )
        })?;
        let endpoint = vm.tag(SSH).ok_or_else(|| {
            Hinted::new(
                format!("the VM of `{name}` in environment {env} has no `{SSH}` tag"),
                "its owner's `box up` (with this version of box) adds it",
            )
        })?;
        let (host, port) = endpoint
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
            .with_context(|| format!("the `{SSH}` tag of `{name}` is not host:port: {endpoint}"))?;
        Ok(SshTarget {
            host,
            port,
            user: machine.user.clone(),
            identity_file: identity,
            host_key: host_key.to_string(),
        })
    }
}

/// Sets (or, for `None`, removes) tags on the VM. CloudStack refuses a
/// second tag with the same key, so a changed value is deleted first.
async fn set_tags(
    p: &CloudStack,
    vm: &VirtualMachine,
    want: &[(&str, Option<String>)],
) -> anyhow::Result<()> {
    let stale: Vec<&str> = want
        .iter()
        .filter(|(k, v)| vm.tag(k).is_some() && vm.tag(k) != v.as_deref())
        .map(|(k, _)| *k)
        .collect();
    let missing: Vec<(&str, &str)> = want
        .iter()
        .filter_map(|(k, v)| Some((*k, v.as_deref()?)))
        .filter(|(k, v)| vm.tag(k) != Some(*v))
        .collect();
    if !stale.is_empty() {
        let mut params = Params::new()
            .set("resourceids", &vm.id)
            .set("resourcetype", "UserVm");
        for (i, k) in stale.iter().enumerate() {
            params.push(format!("tags[{i}].key"), *k);
        }
        with_retries(|| async { p.api.client.delete_tags(&params).await.map(|_| ()) })
            .await
            .map_err(|e| convert(e, "cannot remove an old tag"))?;
    }
    if !missing.is_empty() {
        let params = Params::new()
            .set("resourceids", &vm.id)
            .set("resourcetype", "UserVm")
            .tags(missing);
        with_retries(|| async { p.api.client.create_tags(&params).await.map(|_| ()) })
            .await
            .map_err(|e| convert(e, "cannot add a tag"))?;
    }
    Ok(())
}
