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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{call, envelope, find, response_name};
    use crate::seed;

    fn site() -> UploadSite {
        UploadSite {
            base_url: "http://127.0.0.1:9".into(),
            ttl_secs: 60,
            key: "k".into(),
        }
    }

    fn run(
        cloud: &mut crate::model::Cloud,
        command: &str,
        pairs: &[(&str, &str)],
    ) -> Result<serde_json::Value, ApiError> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let cmd = find(command).unwrap();
        let mut ctx = Ctx::new(cloud, 1_000_000, 10, false);
        ctx.upload = Some(site());
        call(&mut ctx, cmd, &Params::new(cmd.name, &pairs))
            .map(|r| envelope(cmd.name, r)[response_name(cmd.name)].clone())
    }

    #[test]
    fn upload_params_register_a_template_that_is_not_ready_until_uploaded() {
        let mut c = seed::cloud();
        let zone = c.zones[0].id.clone();
        let os = c.templates[0].id.clone();
        let sum = format!("{{SHA-256}}{}", "ab".repeat(32));
        let r = run(
            &mut c,
            "getUploadParamsForTemplate",
            &[
                ("name", "mine"),
                ("format", "QCOW2"),
                ("hypervisor", "KVM"),
                ("zoneid", &zone),
                ("ostypeid", &os),
                ("checksum", &sum),
            ],
        )
        .unwrap();
        let p = &r["getuploadparams"];
        let id = p["id"].as_str().unwrap().to_string();
        assert_eq!(p["postURL"], format!("http://127.0.0.1:9/upload/{id}"));
        let signed = site().signature(
            &id,
            p["metadata"].as_str().unwrap(),
            p["expires"].as_str().unwrap(),
        );
        assert_eq!(p["signature"], signed);
        assert_eq!(
            response_name("getUploadParamsForTemplate"),
            "postuploadtemplateresponse"
        );

        let listed = run(&mut c, "listTemplates", &[("templatefilter", "self")]).unwrap();
        assert_eq!(listed["count"], 1, "one zone only: {listed}");
        assert_eq!(listed["template"][0]["isready"], false);
        assert_eq!(listed["template"][0]["status"], "Upload Not Started");

        let offering = c.service_offerings[0].id.clone();
        let e = run(
            &mut c,
            "deployVirtualMachine",
            &[
                ("zoneid", &zone),
                ("templateid", &id),
                ("serviceofferingid", &offering),
            ],
        )
        .unwrap_err();
        assert!(
            e.text.contains("not been completely downloaded"),
            "{}",
            e.text
        );
    }

    #[test]
    fn checksums_take_cloudstacks_algorithm_prefix() {
        assert_eq!(
            checksum_of(&"0F".repeat(16)).unwrap(),
            ("MD5".into(), "0f".repeat(16))
        );
        assert_eq!(
            checksum_of(&format!("{{sha-256}}{}", "a".repeat(64)))
                .unwrap()
                .0,
            "SHA-256"
        );
        assert!(checksum_of("{SHA-256}abc").is_err());
        assert!(checksum_of(&format!("{{CRC}}{}", "a".repeat(8))).is_err());
    }
}
