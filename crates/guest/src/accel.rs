//! Which accelerator QEMU uses: KVM when it works, HVF on macOS, TCG
//! otherwise; the caller's wish (a Boxfile's `accel`) and `BOX_QEMU_ACCEL`
//! override it, because on some nested hosts `/dev/kvm` opens but guests hang.

/// An accelerator asked for, where `auto` means probe the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Accel {
    #[default]
    Auto,
    Kvm,
    Hvf,
    Tcg,
}

/// The environment variable that forces an accelerator for every machine.
pub const ENV: &str = "BOX_QEMU_ACCEL";

#[derive(Debug, thiserror::Error)]
#[error("{ENV}=`{value}` is not an accelerator; use kvm, hvf, tcg or auto")]
pub struct BadAccel {
    pub value: String,
}

/// A concrete accelerator (never `auto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Chosen {
    Kvm,
    Hvf,
    Tcg,
}

impl Chosen {
    pub fn as_str(self) -> &'static str {
        match self {
            Chosen::Kvm => "kvm",
            Chosen::Hvf => "hvf",
            Chosen::Tcg => "tcg",
        }
    }

    /// `-accel` argument: TCG gets one host thread per virtual CPU.
    pub fn qemu_arg(self) -> &'static str {
        match self {
            Chosen::Kvm => "kvm",
            Chosen::Hvf => "hvf",
            Chosen::Tcg => "tcg,thread=multi",
        }
    }

    /// The CPU model: the host's with hardware help, QEMU's richest otherwise.
    pub fn cpu(self) -> &'static str {
        match self {
            Chosen::Kvm | Chosen::Hvf => "host",
            Chosen::Tcg => "max",
        }
    }
}

/// The environment's choice, if any.
pub fn from_env() -> Result<Option<Accel>, BadAccel> {
    match std::env::var(ENV) {
        Ok(v) if !v.trim().is_empty() => parse(&v).map(Some),
        _ => Ok(None),
    }
}

fn parse(value: &str) -> Result<Accel, BadAccel> {
    match value.trim().to_ascii_lowercase().as_str() {
        "auto" => Ok(Accel::Auto),
        "kvm" => Ok(Accel::Kvm),
        "hvf" => Ok(Accel::Hvf),
        "tcg" => Ok(Accel::Tcg),
        _ => Err(BadAccel {
            value: value.to_string(),
        }),
    }
}

/// Resolves `auto` by probing the host.
pub fn choose(wanted: Accel, env: Option<Accel>) -> Chosen {
    match env.unwrap_or(wanted) {
        Accel::Kvm => Chosen::Kvm,
        Accel::Hvf => Chosen::Hvf,
        Accel::Tcg => Chosen::Tcg,
        Accel::Auto => probe(),
    }
}

fn probe() -> Chosen {
    if cfg!(target_os = "macos") {
        return Chosen::Hvf;
    }
    // Opening for read and write is what QEMU needs; a node that exists
    // but is not ours (no kvm group) must fall back to TCG.
    let kvm_opens = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    if kvm_opens {
        Chosen::Kvm
    } else {
        Chosen::Tcg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_the_boxfile() {
        assert_eq!(choose(Accel::Kvm, Some(Accel::Tcg)), Chosen::Tcg);
        assert_eq!(choose(Accel::Tcg, None), Chosen::Tcg);
    }

    #[test]
    fn accel_names_parse_case_insensitively_and_junk_is_refused() {
        assert_eq!(parse(" TCG ").unwrap(), Accel::Tcg);
        assert!(parse("xen")
            .unwrap_err()
            .to_string()
            .contains("kvm, hvf, tcg or auto"));
    }
}
