//! Getting a box into the store: from a file, a URL, or a recipe's name,
//! and [`Store::ensure`], which providers call before they boot a machine.

use std::path::{Path, PathBuf};

use super::checksum::{Algorithm, Checksum};
use super::download::{self, Downloaded};
use super::import::{self, Imported};
use super::recipe::{DownloadSpec, Recipe};
use super::{with_hint, BoxError, BoxImage, BoxLock, Store};
use crate::output::Printer;

/// Options of `box box add`.
#[derive(Debug, Clone, Default)]
pub struct AddOptions {
    /// The name to store it under.
    pub name: Option<String>,
    /// The expected checksum of the file or download.
    pub checksum: Option<Checksum>,
    /// Replace a box of the same name and version.
    pub force: bool,
}

impl Store {
    /// Returns the newest version of box `name`, getting it first if it is
    /// missing: a box with an embedded recipe is downloaded or built the way
    /// the recipe says. Holds the box's lock while getting it, so parallel
    /// callers wait and then share the result.
    pub async fn ensure(&self, name: &str, printer: &Printer) -> anyhow::Result<BoxImage> {
        self.ensure_version(name, None, printer).await
    }

    /// As [`Store::ensure`], for the newest version that meets `wanted`
    /// (a machine's `box_version`). A box got from its recipe that does
    /// not meet it is kept, and the error says which versions there are.
    pub async fn ensure_version(
        &self,
        name: &str,
        wanted: Option<&semver::VersionReq>,
        printer: &Printer,
    ) -> anyhow::Result<BoxImage> {
        if let Some(image) = self.newest_meeting(name, wanted).map_err(with_hint)? {
            return Ok(image);
        }
        let lock = self.lock_async(name, printer).await.map_err(with_hint)?;
        if let Some(image) = self.newest_meeting(name, wanted).map_err(with_hint)? {
            return Ok(image);
        }
        let recipe = Recipe::embedded(name).ok_or_else(|| {
            with_hint(match self.find(name) {
                Ok(Some(_)) => BoxError::NoVersionMeets {
                    name: name.to_string(),
                    wanted: wanted.map(ToString::to_string).unwrap_or_default(),
                    have: self.version_list(name),
                },
                _ => BoxError::Unknown {
                    name: name.to_string(),
                },
            })
        })?;
        printer.info(&format!(
            "box `{name}`{} is not in the store yet; getting it",
            wanted.map(|w| format!(" {w}")).unwrap_or_default()
        ));
        let image = recipe.get(self, &lock, printer).await?;
        if crate::lockfile::meets(wanted, &image.version) {
            return Ok(image);
        }
        Err(with_hint(BoxError::NoVersionMeets {
            name: name.to_string(),
            wanted: wanted.map(ToString::to_string).unwrap_or_default(),
            have: self.version_list(name),
        }))
    }

    /// The newest version of `name` that meets `wanted`.
    pub fn newest_meeting(
        &self,
        name: &str,
        wanted: Option<&semver::VersionReq>,
    ) -> Result<Option<BoxImage>, BoxError> {
        Ok(self
            .versions(name)?
            .into_iter()
            .rfind(|b| crate::lockfile::meets(wanted, &b.version)))
    }

    fn version_list(&self, name: &str) -> String {
        let versions: Vec<String> = self
            .versions(name)
            .unwrap_or_default()
            .into_iter()
            .map(|b| b.version)
            .collect();
        if versions.is_empty() {
            "none".into()
        } else {
            versions.join(", ")
        }
    }

    /// `box box add SOURCE`: a URL, a file, or the name of a box with a recipe.
    pub async fn add(
        &self,
        source: &str,
        options: &AddOptions,
        printer: &Printer,
    ) -> anyhow::Result<BoxImage> {
        if source.starts_with("http://") || source.starts_with("https://") {
            let file_name = url_file_name(source);
            let downloaded = download::fetch(
                source,
                &self.downloads_dir().map_err(with_hint)?,
                &self.locks_dir(),
                &file_name,
                printer,
            )
            .await
            .map_err(with_hint)?;
            return self
                .add_downloaded(downloaded, source, &file_name, options, printer)
                .await;
        }
        let path = Path::new(source);
        if path.is_dir() && path.join("box.toml").is_file() {
            let recipe = Recipe::from_dir(path).map_err(with_hint)?;
            return self.add_recipe(recipe, options, printer).await;
        }
        if path.exists() {
            return self.add_file(path, source, options, printer).await;
        }
        match Recipe::embedded(source) {
            Some(recipe) => self.add_recipe(recipe, options, printer).await,
            None => Err(with_hint(BoxError::Unknown {
                name: source.to_string(),
            })),
        }
    }

    /// Gets a recipe's box the way the recipe says, unless it is there.
    async fn add_recipe(
        &self,
        recipe: Recipe,
        options: &AddOptions,
        printer: &Printer,
    ) -> anyhow::Result<BoxImage> {
        if options.checksum.is_some() || options.name.is_some() {
            anyhow::bail!(
                "--checksum and --name are for files and URLs; a recipe names its box and checks its own download"
            );
        }
        let lock = self
            .lock_async(&recipe.name, printer)
            .await
            .map_err(with_hint)?;
        if !options.force {
            if let Some(image) = self.find(&recipe.name).map_err(with_hint)? {
                printer.info(&format!(
                    "box `{}` {} is already in the store",
                    image.name, image.version
                ));
                return Ok(image);
            }
        }
        recipe.get(self, &lock, printer).await
    }

    /// Verifies and imports a finished download, then deletes it. A bad
    /// download is deleted too: resuming it could never fix it.
    async fn add_downloaded(
        &self,
        downloaded: Downloaded,
        url: &str,
        file_name: &str,
        options: &AddOptions,
        printer: &Printer,
    ) -> anyhow::Result<BoxImage> {
        let path = downloaded.path.clone();
        let options = AddOptions {
            name: Some(
                options
                    .name
                    .clone()
                    .unwrap_or_else(|| import::name_from_file(file_name)),
            ),
            ..options.clone()
        };
        let result = self.add_file(&path, url, &options, printer).await;
        downloaded.discard();
        result
    }

    /// Verifies, stages and installs a local file.
    async fn add_file(
        &self,
        path: &Path,
        source: &str,
        options: &AddOptions,
        printer: &Printer,
    ) -> anyhow::Result<BoxImage> {
        let file_name = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some(name) = &options.name {
            super::check_name(name).map_err(with_hint)?;
        }
        let staging = self.staging().map_err(with_hint)?;
        printer.info(&format!("adding {source}"));
        let (p, name, expected) = (
            path.to_path_buf(),
            options.name.clone(),
            options.checksum.clone(),
        );
        let imported: Imported = tokio::task::spawn_blocking(move || {
            if let Some(expected) = &expected {
                expected.verify_file(&p, &p.display().to_string())?;
            }
            import::stage(&p, name.as_deref(), &file_name, staging)
        })
        .await?
        .map_err(with_hint)?;
        let Imported { staging, mut new } = imported;
        super::check_name(&new.name).map_err(with_hint)?;
        new.source = source_label(source);
        let sha = super::hash_async(staging.path().join(&new.disk)).await?;
        let lock = self
            .lock_async(&new.name, printer)
            .await
            .map_err(with_hint)?;
        if !options.force {
            // The same image again is not a new version.
            if let Some(same) = self
                .list()
                .map_err(with_hint)?
                .into_iter()
                .find(|b| b.name == new.name && b.sha256 == sha)
            {
                printer.info(&format!(
                    "box `{}` {} already holds this image",
                    same.name, same.version
                ));
                return Ok(same);
            }
        }
        if new.version.is_empty() {
            new.version = self.fresh_version(&new.name);
        }
        new.sha256 = Some(sha);
        self.install(&lock, staging, new, options.force)
            .map_err(with_hint)
    }
}

/// For a recipe whose `get` is `download`.
pub(crate) async fn download_recipe(
    store: &Store,
    lock: &BoxLock,
    recipe: &Recipe,
    spec: &DownloadSpec,
    printer: &Printer,
) -> anyhow::Result<BoxImage> {
    let file_name = url_file_name(&spec.url);
    let expected = match (&spec.checksum, &spec.checksum_url) {
        (Some(c), _) => Some(Checksum::parse(c).map_err(with_hint)?),
        (None, Some(list_url)) => {
            let list = download::fetch_text(list_url).await.map_err(with_hint)?;
            let hex = download::checksum_from_list(&list, &file_name)
                .ok_or_else(|| anyhow::anyhow!("{list_url} does not list {file_name}"))?;
            let algorithm = if hex.len() == 128 {
                Algorithm::Sha512
            } else {
                Algorithm::Sha256
            };
            Some(Checksum::parse(&format!("{algorithm}:{hex}")).map_err(with_hint)?)
        }
        (None, None) => None,
    };
    let downloaded = download::fetch(
        &spec.url,
        &store.downloads_dir()?,
        &store.locks_dir(),
        &file_name,
        printer,
    )
    .await
    .map_err(with_hint)?;
    let path: PathBuf = downloaded.path.clone();
    let result = async {
        let staging = store.staging()?;
        let name = recipe.name.clone();
        let imported = tokio::task::spawn_blocking(move || {
            if let Some(expected) = &expected {
                expected.verify_file(&path, &path.display().to_string())?;
            }
            import::stage(&path, Some(&name), &file_name, staging)
        })
        .await
        .map_err(|e| BoxError::Tool {
            program: "import".into(),
            message: e.to_string(),
        })??;
        let Imported { staging, mut new } = imported;
        new.version = store.build_version(&recipe.name, recipe.version.as_deref());
        new.cloudstack_template = recipe.cloudstack_template.clone();
        new.source = spec.url.clone();
        store.install(lock, staging, new, false)
    }
    .await;
    downloaded.discard();
    result.map_err(with_hint)
}

/// The last path segment of a URL, without its query.
fn url_file_name(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    path.rsplit('/')
        .find(|s| !s.is_empty())
        .unwrap_or("box")
        .to_string()
}

/// A path is recorded absolute so `box box list` says where it came from.
fn source_label(source: &str) -> String {
    if source.contains("://") {
        return source.to_string();
    }
    std::path::absolute(source)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| source.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_file_names_drop_queries() {
        assert_eq!(url_file_name("http://127.0.0.1:1/a/b.box?x=1"), "b.box");
        assert_eq!(url_file_name("http://127.0.0.1:1/a/"), "a");
    }
}
