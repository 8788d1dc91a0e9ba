//! Box recipes (`boxes/<name>/box.toml`): where to download a box, how to
//! build it from packages, and which CloudStack template it matches.
//!
//! The repository's recipes are embedded in the binary so `box up` can get
//! a missing box anywhere; `box box build DIR` reads a recipe folder instead,
//! so a recipe can be changed and tried without rebuilding box.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::store::{NewBox, Staging};
use super::{BoxError, BoxImage, BoxLock, Store, DEFAULT_CMDLINE};
use crate::output::Printer;

/// The recipes shipped inside box: (box.toml, [(file name, contents)]).
const EMBEDDED: &[(&str, &[(&str, &str)])] = &[
    (
        include_str!("../../boxes/debian-12/box.toml"),
        &[("build.sh", include_str!("../../boxes/debian-12/build.sh"))],
    ),
    (
        include_str!("../../boxes/debian-12-docker/box.toml"),
        &[
            (
                "build.sh",
                include_str!("../../boxes/debian-12-docker/build.sh"),
            ),
            // debian-12's script, which the derived recipe runs.
            ("base.sh", include_str!("../../boxes/debian-12/build.sh")),
            (
                "customize.sh",
                include_str!("../../boxes/debian-12-docker/customize.sh"),
            ),
        ],
    ),
    (
        include_str!("../../boxes/debian-12-postgres/box.toml"),
        &[
            (
                "build.sh",
                include_str!("../../boxes/debian-12-postgres/build.sh"),
            ),
            // debian-12's script, which the derived recipe runs.
            ("base.sh", include_str!("../../boxes/debian-12/build.sh")),
        ],
    ),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum GetMethod {
    #[default]
    Build,
    Download,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    pub name: String,
    /// The recipe's own version, `MAJOR.MINOR`: a build is
    /// `MAJOR.MINOR.YYYYMMDD` (its date), so `box_version` requirements
    /// select builds of one recipe version. Without it a build is
    /// versioned by the clock alone (`YYYYMMDD.HHMMSS`).
    pub version: Option<String>,
    #[serde(default)]
    pub description: String,
    pub cloudstack_template: Option<String>,
    #[serde(default)]
    pub get: GetMethod,
    pub cmdline: Option<String>,
    pub download: Option<DownloadSpec>,
    pub build: Option<BuildSpec>,
    #[serde(skip)]
    origin: Origin,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DownloadSpec {
    pub url: String,
    /// `sha256:HEX` or `sha512:HEX`.
    pub checksum: Option<String>,
    /// A `SHA256SUMS`/`SHA512SUMS` file listing the image.
    pub checksum_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildSpec {
    pub script: String,
    #[serde(default)]
    pub requires: Vec<Requirement>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    pub program: String,
    pub package: String,
}

#[derive(Debug, Clone, Default)]
enum Origin {
    #[default]
    Embedded,
    Folder(PathBuf),
}

/// The names of the embedded recipes.
pub fn embedded_names() -> Vec<String> {
    EMBEDDED
        .iter()
        .filter_map(|(toml_text, _)| toml::from_str::<Recipe>(toml_text).ok())
        .map(|r| r.name)
        .collect()
}

impl Recipe {
    /// The embedded recipe for `name`, if box ships one.
    pub fn embedded(name: &str) -> Option<Recipe> {
        EMBEDDED
            .iter()
            .filter_map(|(toml_text, _)| toml::from_str::<Recipe>(toml_text).ok())
            .find(|r| r.name == name)
    }

    /// Reads `DIR/box.toml`.
    pub fn from_dir(dir: &Path) -> Result<Recipe, BoxError> {
        let path = dir.join("box.toml");
        let text = std::fs::read_to_string(&path).map_err(|source| BoxError::Read {
            path: path.clone(),
            source,
        })?;
        let mut recipe: Recipe = toml::from_str(&text).map_err(|e| BoxError::BadRecipe {
            path: path.clone(),
            message: e.to_string(),
        })?;
        super::check_name(&recipe.name)?;
        if let Some(v) = &recipe.version {
            super::check_version(v)?;
        }
        recipe.origin = Origin::Folder(dir.to_path_buf());
        Ok(recipe)
    }

    /// Where the recipe came from, recorded as the box's source.
    pub fn source(&self) -> String {
        match &self.origin {
            Origin::Embedded => format!("recipe:{}", self.name),
            Origin::Folder(dir) => format!("recipe:{}", dir.display()),
        }
    }

    /// Gets the box the way the recipe says (`get`).
    pub(crate) async fn get(
        &self,
        store: &Store,
        lock: &BoxLock,
        printer: &Printer,
    ) -> anyhow::Result<BoxImage> {
        match self.get {
            GetMethod::Build => Ok(self.build(store, lock, printer).await?),
            GetMethod::Download => {
                let spec = self.download.as_ref().ok_or_else(|| BoxError::BadRecipe {
                    path: PathBuf::from(self.source()),
                    message: "get = \"download\" needs a [download] table".into(),
                })?;
                super::add::download_recipe(store, lock, self, spec, printer).await
            }
        }
    }

    /// Runs the build script into a staging folder and installs the result.
    pub(crate) async fn build(
        &self,
        store: &Store,
        lock: &BoxLock,
        printer: &Printer,
    ) -> Result<BoxImage, BoxError> {
        let spec = self.build.as_ref().ok_or_else(|| BoxError::BadRecipe {
            path: PathBuf::from(self.source()),
            message: "there is no [build] table".into(),
        })?;
        for req in &spec.requires {
            if super::which(&req.program).is_none() {
                return Err(BoxError::Missing {
                    program: req.program.clone(),
                    purpose: format!("build box `{}`", self.name),
                    package: req.package.clone(),
                });
            }
        }
        // An embedded recipe is written out so the script can find its files.
        let unpacked;
        let dir = match &self.origin {
            Origin::Folder(dir) => dir.clone(),
            Origin::Embedded => {
                unpacked = tempfile::tempdir().map_err(|source| BoxError::Write {
                    path: std::env::temp_dir(),
                    source,
                })?;
                self.write_embedded_files(unpacked.path())?;
                unpacked.path().to_path_buf()
            }
        };
        let script = dir.join(&spec.script);
        let staging: Staging = store.staging()?;
        let log = store.logs_dir()?.join(format!("{}-build.log", self.name));
        let log_file = std::fs::File::create(&log).map_err(|source| BoxError::Write {
            path: log.clone(),
            source,
        })?;
        let mut log_err = log_file.try_clone().map_err(|source| BoxError::Write {
            path: log.clone(),
            source,
        })?;
        printer.info(&format!(
            "building box `{}` from packages (about a minute; log: {})",
            self.name,
            log.display()
        ));
        let spinner = printer.spinner(&self.name, "building");
        let tool_err = |e: std::io::Error| BoxError::Tool {
            program: format!("sh {}", script.display()),
            message: e.to_string(),
        };
        let mut child = tokio::process::Command::new("sh")
            .arg(&script)
            .arg(staging.path())
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(tool_err)?;
        // mmdebstrap reports its steps as `I: ...` on stderr: they become
        // the spinner's text (and -v lines), and everything goes to the log.
        if let Some(stderr) = child.stderr.take() {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = writeln!(log_err, "{line}");
                if let Some(step) = line.strip_prefix("I: ") {
                    spinner.set_message(step.trim_end_matches("...").to_string());
                    printer.verbose(&format!("{}: {step}", self.name));
                }
            }
        }
        let status = child.wait().await.map_err(tool_err)?;
        spinner.finish_and_clear();
        let disk = staging.path().join("disk.qcow2");
        if !status.success() || !disk.is_file() {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(15)..].join("\n");
            return Err(BoxError::Build {
                name: self.name.clone(),
                status: if status.success() {
                    "no disk.qcow2 was written".into()
                } else {
                    status.to_string()
                },
                log,
                tail,
            });
        }
        let has = |f: &str| staging.path().join(f).is_file().then(|| f.to_string());
        let kernel = has("vmlinuz");
        let new = NewBox {
            name: self.name.clone(),
            version: store.build_version(&self.name, self.version.as_deref()),
            disk: "disk.qcow2".into(),
            initrd: has("initrd.img"),
            cmdline: kernel.as_ref().map(|_| {
                self.cmdline
                    .clone()
                    .unwrap_or_else(|| DEFAULT_CMDLINE.to_string())
            }),
            kernel,
            cloudstack_template: self.cloudstack_template.clone(),
            source: self.source(),
            sha256: Some(super::hash_async(disk).await?),
        };
        store.install(lock, staging, new, false)
    }

    fn write_embedded_files(&self, dir: &Path) -> Result<(), BoxError> {
        let files = EMBEDDED
            .iter()
            .find(|(toml_text, _)| {
                toml::from_str::<Recipe>(toml_text).is_ok_and(|r| r.name == self.name)
            })
            .map(|(_, files)| *files)
            .unwrap_or_default();
        for (name, text) in files {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(|source| BoxError::Write { path, source })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_debian_recipe_parses() {
        let r = Recipe::embedded("debian-12").unwrap();
        assert_eq!(r.cloudstack_template.as_deref(), Some("Debian 12"));
        assert_eq!(r.get, GetMethod::Build);
        assert!(r.download.unwrap().checksum_url.is_some());
        assert_eq!(r.build.unwrap().script, "build.sh");
        assert_eq!(
            embedded_names(),
            ["debian-12", "debian-12-docker", "debian-12-postgres"]
        );
    }

    #[test]
    fn the_docker_recipe_carries_the_script_it_derives_from() {
        let r = Recipe::embedded("debian-12-docker").unwrap();
        assert_eq!(r.cloudstack_template.as_deref(), Some("Debian 12 Docker"));
        assert_eq!(r.build.as_ref().unwrap().script, "build.sh");
        let dir = tempfile::tempdir().unwrap();
        r.write_embedded_files(dir.path()).unwrap();
        for f in ["build.sh", "base.sh", "customize.sh"] {
            assert!(dir.path().join(f).is_file(), "{f}");
        }
        let base = std::fs::read_to_string(dir.path().join("base.sh")).unwrap();
        assert!(
            base.contains("BOX_EXTRA_PACKAGES"),
            "the base script has the hook"
        );
    }

    #[test]
    fn a_recipe_version_must_be_a_safe_folder_name() {
        let dir = tempfile::tempdir().unwrap();
        let write = |version: &str| {
            std::fs::write(
                dir.path().join("box.toml"),
                format!("name = \"tiny\"\nversion = \"{version}\"\n"),
            )
            .unwrap()
        };
        write("1.2");
        assert_eq!(
            Recipe::from_dir(dir.path()).unwrap().version.as_deref(),
            Some("1.2")
        );
        write("../1");
        assert!(Recipe::from_dir(dir.path()).is_err());
    }
}
