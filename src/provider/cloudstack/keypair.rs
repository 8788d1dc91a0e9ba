//! The key pair each machine is deployed with, and the key box logs in with:
//! a key pair the user names (`keypair` + `identity_file`), used as it is and
//! never registered nor deleted by box; else box's own login key, registered
//! under the environment's key pair name.
//!
//! box's own key is ed25519. Older CloudStack versions refuse to register
//! one ("Public key is invalid"); box then makes an RSA key, says so once,
//! and records the kind in `.box/project.json`, so every later run uses the
//! RSA key without asking the cloud again.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context as _;
use cloudstack::{Error, Params, SshKeyPair};

use crate::boxfile::Machine;
use crate::keys::KeyKind;
use crate::output::Printer;
use crate::state::{ProjectState, ResourceKind};

use super::api::{convert, with_retries, Api};
use super::ledger::Ledger as _;
use super::names::{self, Named};
use super::Env;

/// How one machine is deployed and reached.
#[derive(Debug, Clone)]
pub struct Login {
    /// The key pair named in `deployVirtualMachine`.
    pub keypair: String,
    /// The public key cloud-init authorises for the login user.
    pub public: String,
    /// The private key SSH uses.
    pub private_path: PathBuf,
}

/// What [`prepare`] found or registered.
pub struct Logins {
    /// By machine name.
    pub by_machine: BTreeMap<String, Login>,
    /// box's own key pair replaced one of the same name holding another
    /// key (a lost `.box/`).
    pub replaced: bool,
}

impl Named for SshKeyPair {
    const KIND: &'static str = "key pair";
    const PLURAL: &'static str = "key pairs";
    const KEY: &'static str = "keypair";
    fn id(&self) -> &str {
        self.id.as_deref().unwrap_or(&self.name)
    }
    fn name(&self) -> &str {
        &self.name
    }
}

/// Every machine's login: the named key pairs checked (all unknown names in
/// one error, before anything is made), box's own registered when a
/// machine needs it.
pub async fn prepare(
    api: &Api,
    env: &Env,
    printer: &Printer,
    state_dir: &std::path::Path,
    machines: &[&Machine],
    ps: &mut ProjectState,
) -> anyhow::Result<Logins> {
    let mut by_machine = BTreeMap::new();
    let named: Vec<&Machine> = machines
        .iter()
        .copied()
        .filter(|m| m.cloudstack.keypair.is_some())
        .collect();
    if !named.is_empty() {
        let existing = api
            .client
            .list_ssh_key_pairs(&Params::new().set("listall", "true"))
            .await
            .map_err(|e| convert(e, "cannot list SSH key pairs"))?;
        for m in named {
            let (Some(wanted), Some(identity)) =
                (&m.cloudstack.keypair, &m.cloudstack.identity_file)
            else {
                continue;
            };
            let Some(pair) = existing.iter().find(|k| &k.name == wanted) else {
                let who = format!("{} has", api.scope.describe());
                let mut e = names::not_found(wanted, &existing, &who);
                e.message = format!("{} (machine `{}`)\nnothing was created", e.message, m.name);
                return Err(e.into());
            };
            let public = crate::keys::public_of(identity).with_context(|| {
                format!(
                    "cannot read the public key of `identity_file` {} (machine `{}`); put it beside the private key as {}.pub",
                    identity.display(),
                    m.name,
                    identity.display()
                )
            })?;
            // box logs in through cloud-init with `public` whatever the key
            // pair holds; a key pair of another key only lets in someone else.
            let ours = crate::keys::md5_fingerprint(&public);
            if let (Some(theirs), Some(ours)) = (&pair.fingerprint, ours) {
                if !theirs.eq_ignore_ascii_case(&ours) {
                    printer.warn(&format!(
                        "{}: `identity_file` {} is not the key of key pair `{}` (fingerprint {ours}, the key pair's {theirs}); box logs in with `identity_file`, the key pair's own key opens the template's default user",
                        m.name,
                        identity.display(),
                        pair.name
                    ));
                }
            }
            by_machine.insert(
                m.name.clone(),
                Login {
                    keypair: pair.name.clone(),
                    public,
                    private_path: identity.clone(),
                },
            );
        }
    }

    let mut replaced = false;
    if machines.iter().any(|m| m.cloudstack.keypair.is_none()) {
        let (key, was_replaced) = own(api, env, printer, state_dir, ps).await?;
        replaced = was_replaced;
        for m in machines.iter().filter(|m| m.cloudstack.keypair.is_none()) {
            by_machine.insert(
                m.name.clone(),
                Login {
                    keypair: env.keypair_name(),
                    public: key.public.clone(),
                    private_path: key.private_path.clone(),
                },
            );
        }
    }
    Ok(Logins {
        by_machine,
        replaced,
    })
}

/// box's own login key, registered as the environment's key pair; an RSA
/// one when the cloud refuses ed25519.
async fn own(
    api: &Api,
    env: &Env,
    printer: &Printer,
    state_dir: &std::path::Path,
    ps: &mut ProjectState,
) -> anyhow::Result<(crate::keys::KeyPair, bool)> {
    let kind = ps.providers.cloudstack.keypair_kind.unwrap_or_default();
    let key = crate::keys::project_key_of(state_dir, &env.project, kind)
        .context("cannot create the project's SSH key")?;
    match register(api, env, &key.public, ps).await {
        Ok(replaced) => {
            super::save_project(env, ps)?;
            Ok((key, replaced))
        }
        Err(e) if kind == KeyKind::Ed25519 && refuses_key(&e) => {
            printer.warn(&format!(
                "{} refused box's ed25519 key (older CloudStack versions accept only RSA keys); box uses an RSA key for this project from now on",
                api.scope.describe()
            ));
            let rsa = crate::keys::project_key_of(state_dir, &env.project, KeyKind::Rsa)
                .context("cannot create the project's RSA SSH key")?;
            let replaced = register(api, env, &rsa.public, ps).await.map_err(|e| {
                convert(
                    e,
                    &format!("cannot register the SSH key pair `{}`", env.keypair_name()),
                )
            })?;
            ps.providers.cloudstack.keypair_kind = Some(KeyKind::Rsa);
            super::save_project(env, ps)?;
            Ok((rsa, replaced))
        }
        Err(e) => Err(convert(
            e,
            &format!("cannot register the SSH key pair `{}`", env.keypair_name()),
        )),
    }
}

/// CloudStack's answer to a public key it cannot read, which is how
/// versions that know only RSA (and DSA, ECDSA) answer an ed25519 key.
fn refuses_key(e: &Error) -> bool {
    matches!(e, Error::Api(a) if a.errorcode == 431 && a.errortext.to_lowercase().contains("public key is invalid"))
}

/// Registers `public` under the environment's key pair name, replacing a
/// key pair of that name that holds another key (a lost `.box/` means a
/// new local key). True when it replaced one.
async fn register(
    api: &Api,
    env: &Env,
    public: &str,
    ps: &mut ProjectState,
) -> Result<bool, Error> {
    let name = env.keypair_name();
    let ours = crate::keys::public_key_without_comment(public);
    let recorded = ps.providers.cloudstack.keypair_public.as_deref() == Some(ours.as_str());
    let existing = api
        .client
        .list_ssh_key_pairs(&Params::new().set("name", &name))
        .await?;
    let exists = existing.iter().any(|k| k.name == name);
    if exists && recorded {
        ps.record(ResourceKind::SshKeyPair, &name, "the project's SSH key");
        return Ok(false);
    }
    if exists {
        api.client
            .delete_ssh_key_pair(&Params::new().set("name", &name))
            .await?;
    }
    with_retries(|| async {
        match api
            .client
            .register_ssh_key_pair(&Params::new().set("name", &name).set("publickey", &ours))
            .await
        {
            // A retry after a lost answer finds its own registration.
            Err(e) if super::api::transient(&e) => {
                let again = api
                    .client
                    .list_ssh_key_pairs(&Params::new().set("name", &name))
                    .await;
                match again {
                    Ok(list) if list.iter().any(|k| k.name == name) => Ok(()),
                    _ => Err(e),
                }
            }
            Err(e) => Err(e),
            Ok(_) => Ok(()),
        }
    })
    .await?;
    ps.providers.cloudstack.keypair_public = Some(ours);
    ps.record(ResourceKind::SshKeyPair, &name, "the project's SSH key");
    Ok(exists)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(code: u16, text: &str) -> Error {
        Error::Api(cloudstack::ApiError {
            command: "registerSSHKeyPair".into(),
            status: code,
            errorcode: code,
            cserrorcode: None,
            errortext: text.into(),
            expires_used: false,
        })
    }

    #[test]
    fn only_an_unreadable_public_key_is_a_refused_key_kind() {
        assert!(refuses_key(&api_error(431, "Public key is invalid")));
        assert!(!refuses_key(&api_error(
            431,
            "A key pair with name 'x' already exists for this account."
        )));
        assert!(!refuses_key(&api_error(530, "Public key is invalid")));
    }
}
