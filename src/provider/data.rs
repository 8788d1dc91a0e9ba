//! Where each provider's own data sits in the state files: a machine has
//! one provider's ([`ProviderData`]); the project has both providers'
//! ([`ProjectData`]), since one project may use both. Each provider defines
//! its part (`local::LocalData`, `cloudstack::CloudStackData`...).
//!
//! On disk it is the layout release 1 wrote, a machine's `"provider"` and
//! its `"provider_data"` object with the same keys, so its files load as
//! they are and need no schema change.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::cloudstack::{CloudStackData, CloudStackProjectData};
use super::local::{LocalData, LocalProjectData};
use super::ProviderKind;

/// The provider a machine lives on, with what that provider keeps about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderData {
    Local(LocalData),
    CloudStack(CloudStackData),
}

impl ProviderData {
    /// A machine of `kind` with nothing recorded yet.
    pub fn new(kind: ProviderKind) -> ProviderData {
        match kind {
            ProviderKind::Local => ProviderData::Local(LocalData::default()),
            ProviderKind::CloudStack => ProviderData::CloudStack(CloudStackData::default()),
        }
    }

    pub fn kind(&self) -> ProviderKind {
        match self {
            ProviderData::Local(_) => ProviderKind::Local,
            ProviderData::CloudStack(_) => ProviderKind::CloudStack,
        }
    }

    /// The local provider's data; `None` for another provider's machine.
    pub fn local(&self) -> Option<&LocalData> {
        match self {
            ProviderData::Local(d) => Some(d),
            ProviderData::CloudStack(_) => None,
        }
    }

    pub fn cloudstack(&self) -> Option<&CloudStackData> {
        match self {
            ProviderData::CloudStack(d) => Some(d),
            ProviderData::Local(_) => None,
        }
    }

    /// The local provider's data, for the local provider to change. Another
    /// provider's machine becomes a local one with nothing recorded: only a
    /// machine that does not exist yet changes provider (`up` refuses the
    /// others).
    pub fn local_mut(&mut self) -> &mut LocalData {
        if !matches!(self, ProviderData::Local(_)) {
            *self = ProviderData::new(ProviderKind::Local);
        }
        match self {
            ProviderData::Local(d) => d,
            ProviderData::CloudStack(_) => unreachable!("made local above"),
        }
    }

    /// The CloudStack provider's data, for it to change; as [`Self::local_mut`].
    pub fn cloudstack_mut(&mut self) -> &mut CloudStackData {
        if !matches!(self, ProviderData::CloudStack(_)) {
            *self = ProviderData::new(ProviderKind::CloudStack);
        }
        match self {
            ProviderData::CloudStack(d) => d,
            ProviderData::Local(_) => unreachable!("made cloudstack above"),
        }
    }
}

/// The two keys of a machine's file.
#[derive(Serialize)]
struct Written<'a, T> {
    provider: ProviderKind,
    provider_data: &'a T,
}

/// `provider_data` may be missing: files written by hand (the benchmarks')
/// often leave it out.
#[derive(Deserialize)]
struct Read {
    provider: ProviderKind,
    #[serde(default)]
    provider_data: Option<serde_json::Value>,
}

impl Serialize for ProviderData {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let provider = self.kind();
        match self {
            ProviderData::Local(d) => Written {
                provider,
                provider_data: d,
            }
            .serialize(s),
            ProviderData::CloudStack(d) => Written {
                provider,
                provider_data: d,
            }
            .serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for ProviderData {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let read = Read::deserialize(d)?;
        let data = read
            .provider_data
            .unwrap_or_else(|| serde_json::Value::Object(Default::default()));
        let typed = match read.provider {
            ProviderKind::Local => serde_json::from_value(data).map(ProviderData::Local),
            ProviderKind::CloudStack => serde_json::from_value(data).map(ProviderData::CloudStack),
        };
        typed.map_err(|e| D::Error::custom(format!("provider_data: {e}")))
    }
}

/// Both providers' project-wide data, side by side in `project.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectData {
    #[serde(flatten)]
    pub local: LocalProjectData,
    #[serde(flatten)]
    pub cloudstack: CloudStackProjectData,
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use serde_json::{json, Value};

    use super::*;
    use crate::provider::cloudstack::{Deploy, ProjectIp, SecurityGroup};
    use crate::provider::local::Boot;
    use crate::state::{MachineState, ProjectState};
    use guest::accel::Chosen;

    macro_rules! fixture {
        ($path:literal) => {
            include_str!(concat!("../../tests/cli/fixtures/state-v1/", $path))
        };
    }

    /// Reads a file as box reads it, and checks that writing it back gives
    /// the same JSON: no key renamed, dropped or added.
    fn round_trip<T: serde::de::DeserializeOwned + Serialize>(text: &str) -> T {
        let original: Value = serde_json::from_str(text).unwrap();
        let typed: T = serde_json::from_value(original.clone()).unwrap();
        assert_eq!(serde_json::to_value(&typed).unwrap(), original);
        typed
    }

    #[test]
    fn local_machine_files_of_release_1_load_typed_and_save_unchanged() {
        let web: MachineState = round_trip(fixture!("local/shop/dot-box/machines/web.json"));
        round_trip::<MachineState>(fixture!("local/shop/dot-box/machines/db.json"));
        let data = web.provider.local().expect("a local machine");
        assert_eq!(data.box_name.as_deref(), Some("debian-12"));
        assert_eq!(data.box_version.as_deref(), Some("20261130.232936"));
        assert!(data
            .base
            .as_ref()
            .is_some_and(|b| b.ends_with("debian-12/20261130.232936/local/disk.qcow2")));
        assert_eq!(data.boot, Some(Boot::default()));
        assert_eq!(data.pid, Some(23777));
        assert_eq!(data.accel, Some(Chosen::Tcg));
        assert_eq!(data.nat_mac.as_deref(), Some("52:54:00:39:81:f1"));
    }

    #[test]
    fn cloudstack_machine_files_of_release_1_load_typed_and_save_unchanged() {
        for name in ["web", "nat"] {
            let text = match name {
                "web" => fixture!("cloudstack/shop/dot-box/machines/web.json"),
                _ => fixture!("cloudstack/shop/dot-box/machines/nat.json"),
            };
            let m: MachineState = round_trip(text);
            let data = m.provider.cloudstack().expect("a cloudstack machine");
            assert_eq!(data.env.as_deref(), Some("hm81hi"));
            assert_eq!(data.vm_name, Some(format!("shop-{name}-hm81hi")));
            assert!(data.deploy.is_none() && data.deploy_job.is_none());
        }
        let db: MachineState = round_trip(fixture!("cloudstack/shop/dot-box/machines/db.json"));
        let db = db.provider.cloudstack().unwrap();
        assert_eq!(
            db.stop_job.as_deref(),
            Some("0f740eb3-91f7-4fa9-b8a7-d3269f57f4f8")
        );
        assert!(db.host_key.as_deref().unwrap().ends_with(" box:shop:db"));

        let worker: MachineState =
            round_trip(fixture!("cloudstack/shop/dot-box/machines/worker.json"));
        let worker = worker.provider.cloudstack().unwrap();
        assert_eq!(
            worker.deploy,
            Some(Deploy {
                name: "shop-worker-hm81hi".into()
            })
        );
        assert_eq!(
            worker.deploy_job.as_deref(),
            Some("c012f190-e332-4410-8281-f94750716db7")
        );
        assert!(worker.host_key.is_some());
    }

    #[test]
    fn project_files_of_release_1_load_typed_and_save_unchanged() {
        let local: ProjectState = round_trip(fixture!("local/shop/dot-box/project.json"));
        assert_eq!(
            local.providers.local.hub_machines,
            Some(vec!["web".to_string(), "db".to_string()])
        );
        assert_eq!(local.providers.cloudstack, CloudStackProjectData::default());

        let cloud: ProjectState = round_trip(fixture!("cloudstack/shop/dot-box/project.json"));
        let data = &cloud.providers.cloudstack;
        assert!(data
            .keypair_public
            .as_deref()
            .is_some_and(|k| k.starts_with("ssh-ed25519 ")));
        assert_eq!(
            data.ips.get("0f6b4197-2086-4479-bb48-1e8657a8921c"),
            Some(&ProjectIp {
                id: "ff832aa0-1b09-47da-990d-91cac7bea604".into(),
                address: Some("127.10.0.3".into()),
            })
        );
        assert_eq!(cloud.providers.local.hub_machines, None);
    }

    #[test]
    fn every_project_key_release_1_wrote_keeps_its_place_beside_the_others() {
        // Both providers' keys in one project, an IP still being acquired
        // (no address yet) and a security group, as release 1 wrote them.
        let text = json!({
            "schema": 1,
            "resources": [],
            "provider_data": {
                "local_hub_machines": ["a", "b"],
                "cloudstack.keypair.public": "ssh-ed25519 AAAA",
                "cloudstack.security_group": {"id": "sg-1", "name": "box-shop-x"},
                "cloudstack.ip.net-1": {"id": "ip-1"},
                "cloudstack.ip.net-2": {"id": "ip-2", "address": "192.0.2.7"}
            }
        })
        .to_string();
        let mut project: ProjectState = round_trip(&text);
        let data = &mut project.providers.cloudstack;
        assert_eq!(
            data.security_group,
            Some(SecurityGroup {
                id: "sg-1".into(),
                name: "box-shop-x".into()
            })
        );
        assert_eq!(data.ips["net-1"].address, None);
        data.forget("sg-1");
        data.forget("ip-2");
        assert_eq!(data.security_group, None);
        assert_eq!(data.ips.keys().collect::<Vec<_>>(), ["net-1"]);
        assert!(data.keypair_public.is_some());
    }

    #[test]
    fn a_box_with_its_own_kernel_keeps_its_boot_paths() {
        let text = json!({
            "schema": 1, "name": "m", "provider": "local", "id": null, "status": "stopped",
            "ssh": null, "ports": [], "provisioned": [], "resources": [],
            "provider_data": {
                "box": "debian-12", "box_version": "1", "base": "/s/disk.qcow2",
                "boot": {"kernel": "/s/vmlinuz", "initrd": "/s/initrd.img",
                         "cmdline": "root=/dev/vda rw console=ttyS0"}
            }
        })
        .to_string();
        let m: MachineState = round_trip(&text);
        let boot = m.provider.local().unwrap().boot.clone().unwrap();
        assert_eq!(boot.kernel, Some(PathBuf::from("/s/vmlinuz")));
        assert_eq!(boot.initrd, Some(PathBuf::from("/s/initrd.img")));
    }

    #[test]
    fn a_machine_file_without_provider_data_loads_with_nothing_recorded() {
        // As the benchmarks write them by hand.
        let m: MachineState = serde_json::from_str(
            r#"{"schema":1,"name":"web","provider":"cloudstack","status":"running"}"#,
        )
        .unwrap();
        assert_eq!(
            m.provider,
            ProviderData::CloudStack(CloudStackData::default())
        );
    }

    #[test]
    fn provider_data_of_the_wrong_type_is_named_in_the_error() {
        let err = serde_json::from_str::<MachineState>(
            r#"{"schema":1,"name":"web","provider":"local","provider_data":{"pid":"x"}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("provider_data"), "{err}");
    }

    #[test]
    fn a_machine_not_created_yet_takes_the_data_of_its_new_provider() {
        let mut m = MachineState::new("web", ProviderKind::CloudStack);
        m.provider.cloudstack_mut().vm_name = Some("shop-web-x".into());
        m.provider.local_mut().pid = Some(7);
        assert_eq!(m.provider.kind(), ProviderKind::Local);
        assert_eq!(m.provider.local().and_then(|d| d.pid), Some(7));
        assert_eq!(m.provider.cloudstack(), None);
    }
}
