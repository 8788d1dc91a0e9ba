//! Registering and deleting templates, so a test can replace a template
//! the way an operator does: a new one under the same name (a new id and
//! checksum), then the old one deleted. The image is not downloaded: the
//! template is ready at once.

use serde_json::json;

use super::{Ctx, Reply};
use crate::error::ApiError;
use crate::jobs::Action;
use crate::model::Template;
use crate::params::Params;

pub fn register(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let name = p.req("name")?.to_string();
    let url = p.req("url")?.to_string();
    if !url.starts_with("http://") && !url.starts_with("https://") {
        return Err(ApiError::invalid(format!(
            "Unsupported scheme for url: {url}"
        )));
    }
    // Under --backing qemu a replacement boots the box the old one did.
    let box_name = ctx
        .cloud
        .templates
        .iter()
        .find(|t| t.name == name)
        .map(|t| t.box_name.clone())
        .unwrap_or_default();
    let id = ctx.id();
    let template = Template {
        id,
        display_text: p.str("displaytext").unwrap_or(&name).to_string(),
        os_type: p.str("ostypeid").unwrap_or_default().to_string(),
        name,
        box_name,
        size: 2 * 1024 * 1024 * 1024,
        checksum: p.str("checksum").map(str::to_string),
        upload: None,
    };
    let zones: Vec<_> = ctx
        .cloud
        .zones
        .iter()
        .filter(|z| p.str("zoneid").is_none_or(|id| id == z.id))
        .cloned()
        .collect();
    let items: Vec<_> = zones
        .iter()
        .map(|z| template.render(ctx.cloud, z))
        .collect();
    ctx.cloud.templates.push(template);
    Ok(Reply::Value(
        json!({"count": items.len(), "template": items}),
    ))
}

pub fn delete(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let id = p.req("id")?.to_string();
    let before = ctx.cloud.templates.len();
    // An uploaded image goes with its template.
    let image = ctx
        .cloud
        .templates
        .iter()
        .find(|t| t.id == id)
        .and_then(|t| t.upload.as_ref()?.image.clone());
    if let Some(folder) = image.as_deref().and_then(std::path::Path::parent) {
        let _ = std::fs::remove_dir_all(folder);
    }
    ctx.cloud.templates.retain(|t| t.id != id);
    if ctx.cloud.templates.len() == before {
        return Err(ApiError::invalid(format!(
            "unable to find template by id {id}"
        )));
    }
    ctx.dirty = true;
    Ok(ctx.acted("deleteTemplate", "Template", &id, Action::Success))
}
