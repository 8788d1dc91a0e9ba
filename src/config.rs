//! User configuration and CloudStack credentials.
//!
//! Sources, highest priority first:
//! 1. `CLOUDSTACK_API_URL`, `CLOUDSTACK_API_KEY`, `CLOUDSTACK_SECRET_KEY`
//!    (the names Terraform's and Vagrant's CloudStack tools use);
//! 2. the profile in `~/.config/box/config.toml` (`BOX_PROFILE`, else the
//!    Boxfile's `profile`, else `default`);
//! 3. the same profile in CloudMonkey's `~/.cmk/config`.
//!
//! A secret is held as [`Secret`] and never printed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::Deserialize;

use crate::fsutil::readable_by_others;
use secret::Secret;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not valid: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("no CloudStack credentials for profile `{profile}`")]
    NoCredentials { profile: String },
    #[error("profile `{profile}` lacks `{field}`")]
    Incomplete {
        profile: String,
        field: &'static str,
    },
    #[error("the secret command of profile `{profile}` failed: {message}")]
    SecretCommand { profile: String, message: String },
    /// A limit (timeout, size) that is not a usable number.
    #[error("{setting} is `{value}`, but must be {expected}")]
    InvalidSetting {
        /// The variable, or the key with its profile and file.
        setting: String,
        value: String,
        expected: &'static str,
    },
}

/// `~/.config/box/config.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    #[serde(default)]
    pub profiles: BTreeMap<String, ProfileConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileConfig {
    pub endpoint: Option<String>,
    pub api_key: Option<String>,
    pub secret_key: Option<String>,
    /// A command whose stdout is the secret key (e.g. `pass show cloud`).
    pub secret_command: Option<String>,
    /// A PEM file of extra CA certificates.
    pub ca_file: Option<PathBuf>,
    /// Skip TLS verification (warns on every run).
    #[serde(default)]
    pub insecure: bool,
    /// Seconds one API request may take, body included.
    pub timeout_secs: Option<u64>,
    /// Seconds an async job may take before box stops waiting.
    pub job_timeout_secs: Option<u64>,
    /// The largest API answer box reads, in MB.
    pub max_response_mb: Option<u64>,
}

/// How long box waits for the cloud and how much of an answer it reads,
/// from `BOX_CLOUDSTACK_TIMEOUT`, `BOX_CLOUDSTACK_JOB_TIMEOUT` and
/// `BOX_CLOUDSTACK_MAX_RESPONSE_MB`, else the profile's `timeout_secs`,
/// `job_timeout_secs` and `max_response_mb`, else the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloudLimits {
    pub timeout: Duration,
    pub job_timeout: Duration,
    pub max_response_bytes: u64,
}

impl Default for CloudLimits {
    fn default() -> Self {
        CloudLimits {
            timeout: Duration::from_secs(60),
            // Deploying from a large template can take several minutes.
            job_timeout: Duration::from_secs(15 * 60),
            max_response_bytes: cloudstack::DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

const MB: u64 = 1024 * 1024;

impl CloudLimits {
    fn resolve(
        profile: Option<&ProfileConfig>,
        where_: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<CloudLimits, ConfigError> {
        let default = CloudLimits::default();
        // (variable, profile key, profile value)
        let setting = |var: &str, key: &str, from_profile: Option<u64>| match env(var) {
            Some(text) => positive(var.to_string(), &text),
            None => match from_profile {
                Some(0) => Err(ConfigError::InvalidSetting {
                    setting: format!("`{key}` of {where_}"),
                    value: "0".into(),
                    expected: POSITIVE,
                }),
                other => Ok(other),
            },
        };
        let timeout = setting(
            "BOX_CLOUDSTACK_TIMEOUT",
            "timeout_secs",
            profile.and_then(|p| p.timeout_secs),
        )?;
        let job_timeout = setting(
            "BOX_CLOUDSTACK_JOB_TIMEOUT",
            "job_timeout_secs",
            profile.and_then(|p| p.job_timeout_secs),
        )?;
        let max_mb = setting(
            "BOX_CLOUDSTACK_MAX_RESPONSE_MB",
            "max_response_mb",
            profile.and_then(|p| p.max_response_mb),
        )?;
        Ok(CloudLimits {
            timeout: timeout.map_or(default.timeout, Duration::from_secs),
            job_timeout: job_timeout.map_or(default.job_timeout, Duration::from_secs),
            max_response_bytes: max_mb
                .map_or(default.max_response_bytes, |mb| mb.saturating_mul(MB)),
        })
    }
}

const POSITIVE: &str = "a whole number above 0";

fn positive(setting: String, text: &str) -> Result<Option<u64>, ConfigError> {
    match text.trim().parse::<u64>() {
        Ok(n) if n > 0 => Ok(Some(n)),
        _ => Err(ConfigError::InvalidSetting {
            setting,
            value: text.to_string(),
            expected: POSITIVE,
        }),
    }
}

/// Resolved credentials for one CloudStack endpoint.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub profile: String,
    pub endpoint: String,
    pub api_key: String,
    pub secret_key: Secret,
    pub ca_file: Option<PathBuf>,
    pub insecure: bool,
    pub limits: CloudLimits,
    /// Where the credentials came from, for messages (never the values).
    pub source: String,
}

impl Credentials {
    /// The client configuration for these credentials and limits.
    pub fn client_config(&self) -> cloudstack::ClientConfig {
        let mut config = cloudstack::ClientConfig::new(
            self.endpoint.clone(),
            self.api_key.clone(),
            self.secret_key.clone(),
        );
        config.ca_file = self.ca_file.clone();
        config.insecure = self.insecure;
        config.timeout = self.limits.timeout;
        config.max_response_bytes = self.limits.max_response_bytes;
        config.jobs.timeout = self.limits.job_timeout;
        config
    }
}

/// Where user files live; overridable so tests never touch the real home.
#[derive(Debug, Clone)]
pub struct Paths {
    pub config_file: PathBuf,
    pub cloudmonkey_file: PathBuf,
    /// The box store (images), e.g. `~/.local/share/box/boxes`.
    pub data_dir: PathBuf,
    pub cache_dir: PathBuf,
}

impl Paths {
    /// The user's paths; `BOX_HOME` puts everything under one folder.
    pub fn from_env() -> Self {
        if let Some(home) = std::env::var_os("BOX_HOME") {
            let home = PathBuf::from(home);
            return Paths {
                config_file: home.join("config.toml"),
                cloudmonkey_file: home.join("cmk-config"),
                data_dir: home.join("data"),
                cache_dir: home.join("cache"),
            };
        }
        let home = dirs::home_dir().unwrap_or_else(|| PathBuf::from("."));
        Paths {
            config_file: dirs::config_dir()
                .unwrap_or_else(|| home.join(".config"))
                .join("box/config.toml"),
            cloudmonkey_file: home.join(".cmk/config"),
            data_dir: dirs::data_dir()
                .unwrap_or_else(|| home.join(".local/share"))
                .join("box"),
            cache_dir: dirs::cache_dir()
                .unwrap_or_else(|| home.join(".cache"))
                .join("box"),
        }
    }
}

/// A warning to show the user (e.g. a secret file readable by others).
pub type Warnings = Vec<String>;

pub fn load_user_config(path: &Path, warnings: &mut Warnings) -> Result<UserConfig, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(UserConfig::default()),
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let config: UserConfig = toml::from_str(&text).map_err(|e| ConfigError::Invalid {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    if config.profiles.values().any(|p| p.secret_key.is_some()) && readable_by_others(path) {
        warnings.push(format!(
            "{} holds a secret key and is readable by other users; run `chmod 600 {}`",
            path.display(),
            path.display()
        ));
    }
    Ok(config)
}

/// Resolves the credentials for `profile` from the environment and files.
pub fn credentials(
    paths: &Paths,
    profile: &str,
    warnings: &mut Warnings,
) -> Result<Credentials, ConfigError> {
    credentials_with_env(paths, profile, warnings, |name| std::env::var(name).ok())
}

/// [`credentials`] with the environment passed in, so tests are not at the
/// mercy of a developer's shell.
pub fn credentials_with_env(
    paths: &Paths,
    profile: &str,
    warnings: &mut Warnings,
    getenv: impl Fn(&str) -> Option<String>,
) -> Result<Credentials, ConfigError> {
    let env = |name: &str| getenv(name).filter(|v| !v.is_empty());
    let config = load_user_config(&paths.config_file, warnings)?;
    let from_file = config.profiles.get(profile);
    let cmk = load_cloudmonkey(&paths.cloudmonkey_file, profile, warnings)?;

    let mut source = Vec::new();
    let endpoint = env("CLOUDSTACK_API_URL")
        .inspect(|_| source.push("CLOUDSTACK_API_URL"))
        .or_else(|| from_file.and_then(|p| p.endpoint.clone()))
        .or_else(|| cmk.as_ref().map(|c| c.url.clone()));
    let api_key = env("CLOUDSTACK_API_KEY")
        .inspect(|_| source.push("CLOUDSTACK_API_KEY"))
        .or_else(|| from_file.and_then(|p| p.api_key.clone()))
        .or_else(|| cmk.as_ref().map(|c| c.api_key.clone()));
    let secret = match env("CLOUDSTACK_SECRET_KEY") {
        Some(s) => {
            source.push("CLOUDSTACK_SECRET_KEY");
            Some(Secret::new(s))
        }
        None => match from_file {
            Some(ProfileConfig {
                secret_key: Some(s),
                ..
            }) => Some(Secret::new(s.clone())),
            Some(ProfileConfig {
                secret_command: Some(cmd),
                ..
            }) => Some(run_secret_command(profile, cmd)?),
            _ => cmk.as_ref().map(|c| c.secret_key.clone()),
        },
    };
    if endpoint.is_none() && api_key.is_none() && secret.is_none() {
        return Err(ConfigError::NoCredentials {
            profile: profile.to_string(),
        });
    }
    let limits = CloudLimits::resolve(
        from_file,
        &format!("profile `{profile}` in {}", paths.config_file.display()),
        env,
    )?;
    let origin = if !source.is_empty() {
        "environment".to_string()
    } else if from_file.is_some() {
        paths.config_file.display().to_string()
    } else {
        paths.cloudmonkey_file.display().to_string()
    };
    Ok(Credentials {
        profile: profile.to_string(),
        endpoint: endpoint.ok_or(ConfigError::Incomplete {
            profile: profile.to_string(),
            field: "endpoint",
        })?,
        api_key: api_key.ok_or(ConfigError::Incomplete {
            profile: profile.to_string(),
            field: "api_key",
        })?,
        secret_key: secret.ok_or(ConfigError::Incomplete {
            profile: profile.to_string(),
            field: "secret_key",
        })?,
        ca_file: from_file.and_then(|p| p.ca_file.clone()),
        insecure: from_file.is_some_and(|p| p.insecure),
        limits,
        source: origin,
    })
}

fn run_secret_command(profile: &str, cmd: &str) -> Result<Secret, ConfigError> {
    let output = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .map_err(|e| ConfigError::SecretCommand {
            profile: profile.to_string(),
            message: e.to_string(),
        })?;
    if !output.status.success() {
        // The command's stderr may hold part of the secret; report only the status.
        return Err(ConfigError::SecretCommand {
            profile: profile.to_string(),
            message: format!("exited with {}", output.status),
        });
    }
    let text = String::from_utf8_lossy(&output.stdout).trim().to_string();
    Ok(Secret::new(text))
}

struct CloudMonkeyProfile {
    url: String,
    api_key: String,
    secret_key: Secret,
}

/// Reads one `[profile]` section of CloudMonkey's INI config.
fn load_cloudmonkey(
    path: &Path,
    profile: &str,
    warnings: &mut Warnings,
) -> Result<Option<CloudMonkeyProfile>, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let mut section = String::new();
    let mut values = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_string();
            continue;
        }
        if section == profile {
            if let Some((k, v)) = line.split_once('=') {
                values.insert(k.trim().to_lowercase(), v.trim().to_string());
            }
        }
    }
    let (Some(url), Some(api_key), Some(secret)) = (
        values.get("url"),
        values.get("apikey"),
        values.get("secretkey"),
    ) else {
        return Ok(None);
    };
    if readable_by_others(path) {
        warnings.push(format!(
            "{} holds a secret key and is readable by other users; run `chmod 600 {}`",
            path.display(),
            path.display()
        ));
    }
    Ok(Some(CloudMonkeyProfile {
        url: url.clone(),
        api_key: api_key.clone(),
        secret_key: Secret::new(secret.clone()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(dir: &Path) -> Paths {
        Paths {
            config_file: dir.join("config.toml"),
            cloudmonkey_file: dir.join("cmk"),
            data_dir: dir.join("data"),
            cache_dir: dir.join("cache"),
        }
    }

    #[test]
    fn cloudmonkey_profile_is_a_fallback() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(
            tmp.path().join("cmk"),
            "[core]\nprofile = lab\n\n[lab]\nurl = http://127.0.0.1:8080/client/api\napikey = K\nsecretkey = S\n",
        )
        .unwrap();
        let mut w = Vec::new();
        let c = credentials_with_env(&paths(tmp.path()), "lab", &mut w, no_env).unwrap();
        assert_eq!(c.api_key, "K");
        assert_eq!(c.secret_key.expose(), "S");
        assert_eq!(c.endpoint, "http://127.0.0.1:8080/client/api");
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn environment_overrides_files() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(
            tmp.path().join("config.toml"),
            "[profiles.default]\nendpoint = \"http://127.0.0.1:1/client/api\"\napi_key = \"K\"\nsecret_key = \"S\"\n",
        )
        .unwrap();
        let mut w = Vec::new();
        let c = credentials_with_env(&paths(tmp.path()), "default", &mut w, |n| {
            (n == "CLOUDSTACK_API_KEY").then(|| "ENVKEY".to_string())
        })
        .unwrap();
        assert_eq!(c.api_key, "ENVKEY");
        assert_eq!(c.secret_key.expose(), "S");
        assert_eq!(c.source, "environment");
    }

    #[test]
    fn a_world_readable_secret_file_is_warned_about() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("config.toml");
        std::fs::write(
            &file,
            "[profiles.default]\nendpoint = \"http://127.0.0.1:1/client/api\"\napi_key = \"K\"\nsecret_key = \"s3cr3t-value\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut w = Vec::new();
        credentials_with_env(&paths(tmp.path()), "default", &mut w, no_env).unwrap();
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("chmod 600"));
        assert!(!w[0].contains("s3cr3t-value"));
    }

    #[test]
    fn missing_credentials_name_the_profile() {
        let tmp = tempfile::tempdir().unwrap();
        let mut w = Vec::new();
        let e = credentials_with_env(&paths(tmp.path()), "lab", &mut w, no_env).unwrap_err();
        assert_eq!(e.to_string(), "no CloudStack credentials for profile `lab`");
    }

    #[test]
    fn limits_come_from_the_environment_then_the_profile_then_the_defaults() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(
            tmp.path().join("config.toml"),
            "[profiles.default]\nendpoint = \"http://127.0.0.1:1/client/api\"\napi_key = \"K\"\nsecret_key = \"S\"\ntimeout_secs = 5\nmax_response_mb = 300\n",
        )
        .unwrap();
        let mut w = Vec::new();
        let c = credentials_with_env(&paths(tmp.path()), "default", &mut w, |n| {
            (n == "BOX_CLOUDSTACK_TIMEOUT").then(|| "7".to_string())
        })
        .unwrap();
        assert_eq!(c.limits.timeout, Duration::from_secs(7));
        assert_eq!(c.limits.max_response_bytes, 300 * MB);
        assert_eq!(c.limits.job_timeout, CloudLimits::default().job_timeout);
        let config = c.client_config();
        assert_eq!(
            (
                config.timeout,
                config.max_response_bytes,
                config.jobs.timeout
            ),
            (
                c.limits.timeout,
                c.limits.max_response_bytes,
                c.limits.job_timeout
            )
        );
    }

    #[test]
    fn a_limit_that_is_not_a_positive_number_is_refused_with_its_origin() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(
            tmp.path().join("config.toml"),
            "[profiles.default]\nendpoint = \"http://127.0.0.1:1/client/api\"\napi_key = \"K\"\nsecret_key = \"S\"\njob_timeout_secs = 0\n",
        )
        .unwrap();
        let mut w = Vec::new();
        let e = credentials_with_env(&paths(tmp.path()), "default", &mut w, no_env).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("`job_timeout_secs` of profile `default` in "),
            "{e}"
        );
        std::fs::write(
            tmp.path().join("config.toml"),
            "[profiles.default]\nendpoint = \"http://127.0.0.1:1/client/api\"\napi_key = \"K\"\nsecret_key = \"S\"\n",
        )
        .unwrap();
        for bad in ["0", "-1", "1.5", "ten"] {
            let e = credentials_with_env(&paths(tmp.path()), "default", &mut w, |n| {
                (n == "BOX_CLOUDSTACK_MAX_RESPONSE_MB").then(|| bad.to_string())
            })
            .unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "BOX_CLOUDSTACK_MAX_RESPONSE_MB is `{bad}`, but must be a whole number above 0"
                )
            );
        }
    }

    #[test]
    fn box_config_profile_with_secret_command() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(
            tmp.path().join("config.toml"),
            "[profiles.default]\nendpoint = \"http://127.0.0.1:1/client/api\"\napi_key = \"K\"\nsecret_command = \"echo S3\"\n",
        )
        .unwrap();
        let mut w = Vec::new();
        let c = credentials_with_env(&paths(tmp.path()), "default", &mut w, no_env).unwrap();
        assert_eq!(c.secret_key.expose(), "S3");
    }
}
