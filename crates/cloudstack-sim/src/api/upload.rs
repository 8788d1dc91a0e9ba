//! `getUploadParamsForTemplate`: CloudStack's browser upload. The command
//! registers a template that is not ready (`NotUploaded`) and answers where
//! and how to POST its image: `postURL` (the simulator's own
//! `/upload/<id>`), an opaque `metadata`, `expires`, and a `signature`,
//! HMAC-SHA1 of metadata + URL + expires under a key only the server knows,
//! as the secondary storage's upload servlet checks it. The POST itself is
//! served by `server.rs` (`upload` module there).

use base64::Engine;
use serde_json::json;

use super::{Ctx, Reply};
use crate::clock;
use crate::error::ApiError;
use crate::model::{Template, Upload, UploadState};
use crate::params::Params;

/// Where uploads go and how long a signed POST stays valid; set by the
/// server on every call (tests of the API alone have none).
#[derive(Debug, Clone)]
pub struct UploadSite {
    /// e.g. `http://127.0.0.1:8080`.
    pub base_url: String,
    pub ttl_secs: i64,
    /// The key signatures are made with; never sent.
    pub key: String,
}

impl UploadSite {
    pub fn post_url(&self, id: &str) -> String {
        format!("{}/upload/{id}", self.base_url)
    }

    pub fn signature(&self, id: &str, metadata: &str, expires: &str) -> String {
        let data = format!("{metadata}{}{expires}", self.post_url(id));
        cloudstack::signing::sign_string(&self.key, &data)
    }
}

pub fn get_upload_params(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let Some(site) = ctx.upload.clone() else {
        return Err(ApiError::internal("this simulator takes no uploads"));
    };
    let name = p.req("name")?.to_string();
    let format = p.req("format")?;
    if !["QCOW2", "OVA", "VHD"].contains(&format.to_uppercase().as_str()) {
        return Err(ApiError::invalid(format!(
            "Invalid value for format: {format}; valid values are QCOW2, OVA, VHD"
        )));
    }
    if !format.eq_ignore_ascii_case("QCOW2") {
        return Err(ApiError::invalid(format!(
            "The KVM hypervisor takes QCOW2 templates, not {format}"
        )));
    }
    let hypervisor = p.req("hypervisor")?;
    if !hypervisor.eq_ignore_ascii_case("KVM") {
        return Err(ApiError::invalid(format!(
            "Hypervisor {hypervisor} is not supported in this zone"
        )));
    }
    let Some(os_type) = p.str("ostypeid") else {
        return Err(ApiError::invalid("Missing parameter ostypeid"));
    };
    let zone_id = p.req("zoneid")?.to_string();
    if let Some(c) = p.str("checksum") {
        checksum_of(c)?;
    }
    if p.str("projectid").is_some() || p.str("account").is_some() {
        ctx.owner_from(p)?;
    }
    let id = ctx.id();
    let mut token = [0u8; 24];
    rand::Rng::fill(&mut rand::thread_rng(), &mut token);
    let metadata = base64::engine::general_purpose::STANDARD.encode(token);
    let expires_at = (ctx.now / 1000) as i64 + site.ttl_secs;
    let expires = clock::format_ms(expires_at.max(0) as u64 * 1000);
    ctx.cloud.templates.push(Template {
        id: id.clone(),
        display_text: p.str("displaytext").unwrap_or(&name).to_string(),
        os_type: os_type.to_string(),
        name,
        box_name: String::new(),
        size: 0,
        checksum: p.str("checksum").map(str::to_string),
        upload: Some(Upload {
            zone_id,
            state: UploadState::NotUploaded,
            error: None,
            image: None,
            metadata: metadata.clone(),
            expires: expires_at,
        }),
    });
    let signature = site.signature(&id, &metadata, &expires);
    Ok(Reply::Value(json!({"getuploadparams": {
        "id": id,
        "postURL": site.post_url(&id),
        "metadata": metadata,
        "expires": expires,
        "signature": signature,
    }})))
}

/// A checksum as CloudStack takes it: `{ALGORITHM}hex`, or bare hex for
/// MD5. Returns the algorithm (`MD5`, `SHA-256`...) and the hex, lowercase.
pub fn checksum_of(value: &str) -> Result<(String, String), ApiError> {
    let (algorithm, hex) = match value.strip_prefix('{').and_then(|r| r.split_once('}')) {
        Some((a, h)) => (a.to_uppercase(), h),
        None => ("MD5".to_string(), value),
    };
    let len = match algorithm.as_str() {
        "MD5" => 32,
        "SHA-256" => 64,
        _ => {
            return Err(ApiError::invalid(format!(
                "Checksum algorithm {algorithm} is not supported here; use MD5 or SHA-256"
            )))
        }
    };
    if hex.len() != len || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::invalid(format!(
            "Invalid checksum {value}: {algorithm} is {len} hex digits"
        )));
    }
    Ok((algorithm, hex.to_lowercase()))
}
