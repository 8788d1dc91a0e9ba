//! SSH key pairs: created (the cloud makes the private key) or registered
//! (the user brings the public key), listed by name or fingerprint.

use md5::{Digest, Md5};
use serde_json::json;

use super::list::{field_eq, list};
use super::{Ctx, Reply};
use crate::error::ApiError;
use crate::model::KeyPair;
use crate::params::Params;
use crate::tenancy::Owner;

/// The key types `registerSSHKeyPair` takes (`--keypair-types`); empty: all.
static ACCEPTED: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();

/// Makes `registerSSHKeyPair` refuse other key types, as CloudStack
/// versions whose key helper reads only RSA (and DSA, ECDSA) keys do: with
/// "Public key is invalid", the answer to a key it cannot read.
pub fn accept_only(types: &[String]) {
    let _ = ACCEPTED.set(types.to_vec());
}

/// Whether `key`'s type is accepted: `rsa` names `ssh-rsa`, `ed25519`
/// names `ssh-ed25519`, `ecdsa` names `ecdsa-sha2-*`.
fn accepted(key: &ssh_key::PublicKey) -> bool {
    let alg = key.algorithm();
    let name = alg.as_str();
    let short = name.strip_prefix("ssh-").unwrap_or(name);
    ACCEPTED.get().is_none_or(|types| {
        types.is_empty()
            || types
                .iter()
                .any(|t| t == name || t == short || short.starts_with(&format!("{t}-")))
    })
}

/// CloudStack's fingerprint: MD5 of the public key blob, colon-separated hex.
pub fn fingerprint(key: &ssh_key::PublicKey) -> Result<String, ApiError> {
    let blob = key
        .to_bytes()
        .map_err(|_| ApiError::invalid("Public key is invalid"))?;
    let digest = Md5::digest(blob);
    Ok(digest
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":"))
}

/// Names and keys are unique per owner (account or project).
fn check_free(ctx: &Ctx, owner: &Owner, name: &str, fp: &str) -> Result<(), ApiError> {
    let mine = || ctx.cloud.keypairs.iter().filter(|k| &k.owner == owner);
    if mine().any(|k| k.name == name) {
        return Err(ApiError::invalid(format!(
            "A key pair with name '{name}' already exists."
        )));
    }
    if mine().any(|k| k.fingerprint == fp) {
        return Err(ApiError::invalid(format!(
            "A key pair with key '{fp}' already exists for this account."
        )));
    }
    Ok(())
}

pub fn create(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let name = p.req("name")?.to_string();
    let owner = ctx.owner_from(p)?;
    let private = ssh_key::PrivateKey::random(&mut rand::rngs::OsRng, ssh_key::Algorithm::Ed25519)
        .map_err(|_| ApiError::internal("cannot generate a key pair"))?;
    let public = private.public_key().clone();
    let fp = fingerprint(&public)?;
    check_free(ctx, &owner, &name, &fp)?;
    let pem = private
        .to_openssh(ssh_key::LineEnding::LF)
        .map_err(|_| ApiError::internal("cannot encode the private key"))?;
    let public_text = public
        .to_openssh()
        .map_err(|_| ApiError::internal("cannot encode the public key"))?;
    let id = ctx.id();
    let kp = KeyPair {
        id,
        name,
        fingerprint: fp,
        public_key: public_text,
        owner,
    };
    let mut v = kp.render(ctx.cloud);
    // The private key is shown once, in this answer, and never stored.
    v["privatekey"] = json!(pem.as_str());
    ctx.cloud.keypairs.push(kp);
    Ok(Reply::Value(json!({"keypair": v})))
}

pub fn register(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let name = p.req("name")?.to_string();
    let text = p.req("publickey")?.trim().to_string();
    let owner = ctx.owner_from(p)?;
    let key = ssh_key::PublicKey::from_openssh(&text)
        .ok()
        .filter(accepted)
        .ok_or_else(|| ApiError::invalid("Public key is invalid"))?;
    let fp = fingerprint(&key)?;
    check_free(ctx, &owner, &name, &fp)?;
    let id = ctx.id();
    let kp = KeyPair {
        id,
        name,
        fingerprint: fp,
        public_key: text,
        owner,
    };
    let v = kp.render(ctx.cloud);
    ctx.cloud.keypairs.push(kp);
    Ok(Reply::Value(json!({"keypair": v})))
}

pub fn list_keypairs(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let c = &*ctx.cloud;
    let fp = field_eq(p, "fingerprint", "fingerprint");
    let scope = c.scope(p)?;
    let items = c
        .keypairs
        .iter()
        .filter(|k| scope.sees(c, &k.owner))
        .map(|k| k.render(c))
        .filter(|v| fp(v))
        .collect();
    list(p, "sshkeypair", items)
}

pub fn delete(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let name = p.req("name")?;
    let owner = ctx.owner_from(p)?;
    let before = ctx.cloud.keypairs.len();
    ctx.cloud
        .keypairs
        .retain(|k| !(k.name == name && k.owner == owner));
    if ctx.cloud.keypairs.len() == before {
        return Err(ApiError::invalid(format!(
            "A key pair with name '{name}' does not exist for account {} in specified domain id",
            ctx.cloud.account_name_of(&owner)
        )));
    }
    ctx.dirty = true;
    Ok(Reply::Value(json!({"success": true})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_md5_of_the_blob_like_ssh_keygen_e_md5() {
        // `ssh-keygen -l -E md5` on this key prints
        // MD5:d5:70:1e:55:c4:8f:bf:9a:03:73:f4:a7:83:7b:12:c6.
        let key = ssh_key::PublicKey::from_openssh(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJO1EenNbQ84XdXET9BMbAjMAc/lNQ2dZlSHUVTOuEa/ conformance",
        )
        .unwrap();
        assert_eq!(
            fingerprint(&key).unwrap(),
            "d5:70:1e:55:c4:8f:bf:9a:03:73:f4:a7:83:7b:12:c6"
        );
    }
}
