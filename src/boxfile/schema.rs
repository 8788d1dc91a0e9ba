//! The Boxfile's vocabulary: every table, the keys it accepts, each key's
//! type, the values an enumerated key takes and a line of documentation.
//! Validation reads it for unknown-key reports and did-you-mean
//! suggestions, and `json_schema` turns it into the JSON Schema that editors
//! use (`docs/boxfile.schema.json`), so the two cannot drift apart. The
//! reference for people is `docs/boxfile.md`.
//!
//! What a JSON Schema cannot say (a path exists, machine names are unique,
//! no dependency cycle) is checked by `box validate` alone.

/// A table of the Boxfile and the keys it accepts; any other key is an error.
pub(crate) struct Table {
    pub keys: &'static [Key],
    /// Exactly one of these keys must be set (what a provisioner does).
    pub one_of: &'static [&'static str],
}

impl Table {
    pub fn key(&self, name: &str) -> Option<&'static Key> {
        self.keys.iter().find(|k| k.name == name)
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.keys.iter().map(|k| k.name).collect()
    }
}

pub(crate) struct Key {
    pub name: &'static str,
    pub ty: Type,
    /// One or two sentences for an editor's hover; Markdown.
    pub doc: &'static str,
    /// A table without this key is an error.
    pub required: bool,
    /// Keys that must be set beside this one (`args` needs `script`).
    pub needs: &'static [&'static str],
    /// Keys that must be set with this one somewhere in the Boxfile and
    /// `Boxfile.local` merged, maybe in another file or table (`keypair` in
    /// the Boxfile, its `identity_file` in `Boxfile.local`): validation
    /// checks them; the JSON Schema cannot require them, and names them
    /// under `x-together` for its readers and tests.
    pub together: &'static [&'static str],
    /// A value `box validate` accepts, as JSON text: the schema shows it as
    /// an example and the schema tests try it. Booleans, choices and tables
    /// need none.
    pub example: Option<&'static str>,
}

/// What a key's value must be.
pub(crate) enum Type {
    Str,
    /// A string that must match a rule box checks; the rule written as an
    /// ECMA-262 regular expression, for editors. Validation checks the rule
    /// in Rust (with a message saying what is wrong); the schema tests hold
    /// the two to the same verdicts.
    Pattern(&'static str),
    Bool,
    /// An integer in `min..=max`.
    Int {
        min: i64,
        max: i64,
    },
    Choice(&'static [&'static str]),
    /// An array of strings.
    Strings,
    /// A table of strings (integers and booleans are taken as their text);
    /// when `names` is set, every key must match that pattern.
    Map {
        names: Option<&'static str>,
    },
    Table(&'static Table),
    /// An array of tables: `[[x]]` or `x = [{ ... }]`.
    Tables(&'static Table),
}

/// A key with no example, not required, needing nothing.
const fn key(name: &'static str, ty: Type, doc: &'static str) -> Key {
    Key {
        name,
        ty,
        doc,
        required: false,
        needs: &[],
        together: &[],
        example: None,
    }
}

impl Key {
    const fn example(mut self, json: &'static str) -> Key {
        self.example = Some(json);
        self
    }

    const fn required(mut self) -> Key {
        self.required = true;
        self
    }

    const fn needs(mut self, keys: &'static [&'static str]) -> Key {
        self.needs = keys;
        self
    }

    const fn together(mut self, keys: &'static [&'static str]) -> Key {
        self.together = keys;
        self
    }
}

const U32: i64 = u32::MAX as i64;
const POSITIVE: Type = Type::Int { min: 1, max: U32 };
const PORT_NUMBER: Type = Type::Int { min: 1, max: 65535 };

/// `check_host_name`: a lowercase RFC 1123 label.
const HOST_NAME: Type = Type::Pattern("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$");
/// `is_user_name`: as `useradd` takes it.
const USER_NAME: Type = Type::Pattern("^[a-z_][a-z0-9_-]{0,31}$");
/// `user` or `user:group`, as `chown` takes it.
const OWNER: Type = Type::Pattern("^[a-z_][a-z0-9_-]{0,31}(:[a-z_][a-z0-9_-]{0,31})?$");
const GUEST_PATH: Type = Type::Pattern("^/");
/// `{project}`, `{machine}` and `{env}` only, and `{machine}` at least once
/// (the part before the first `{machine}` holds only the others).
const NAME_PATTERN: Type = Type::Pattern(
    "^[^{]*(\\{(project|env)\\}[^{]*)*\\{machine\\}[^{]*(\\{(project|machine|env)\\}[^{]*)*$",
);

pub(crate) const PROVIDERS: &[&str] = &["local", "cloudstack"];
pub(crate) const RUN: &[&str] = &["once", "always", "never"];
pub(crate) const ACCEL: &[&str] = &["auto", "kvm", "hvf", "tcg"];
pub(crate) const PROTOCOLS: &[&str] = &["tcp", "udp"];
/// `vpc_acl`: the tier's own list, or a list box creates for the tier.
pub(crate) const VPC_ACL: &[&str] = &["tier", "create"];

/// Placeholders `name_pattern` may use.
pub(crate) const NAME_PATTERN_VARS: &[&str] = &["project", "machine", "env"];

/// The keys that say what a provisioner does; exactly one is required.
pub(crate) const PROVISION_KINDS: &[&str] = &["shell", "script", "file", "ansible", "docker"];

/// `ansible = { ... }` in a provisioner: a playbook run from the host.
pub(crate) const ANSIBLE: Table = Table {
    keys: &[
        key(
            "playbook",
            Type::Str,
            "The playbook on the host (relative to the Boxfile's folder, inside the project).",
        )
        .required()
        .example("\"site.yml\""),
        key(
            "extra_vars",
            Type::Map { names: None },
            "Variables passed to the playbook (`--extra-vars`), as strings.",
        )
        .example("{\"app_env\": \"dev\"}"),
        key(
            "limit",
            Type::Str,
            "Ansible host pattern the play runs on (`--limit`); default this machine. `all` runs it on every running machine of the project.",
        )
        .example("\"all\""),
    ],
    one_of: &[],
};

/// A `docker` run entry's restart policies (`docker run --restart`).
pub(crate) const DOCKER_RESTART: &[&str] = &["no", "always", "unless-stopped", "on-failure"];
/// A shell variable name: `env` and build `args` names.
const VARIABLE_NAMES: Type = Type::Map {
    names: Some("^[A-Za-z_][A-Za-z0-9_]*$"),
};

/// `docker = { ... }` in a provisioner: images loaded and built, containers run.
pub(crate) const DOCKER: Table = Table {
    keys: &[
        key(
            "load",
            Type::Strings,
            "Image tarballs on the host (from `docker save`; relative to the Boxfile's folder, inside the project), streamed into the guest's `docker load`.",
        )
        .example("[\"image.tar\"]"),
        key(
            "build",
            Type::Tables(&DOCKER_BUILD),
            "Images built in the guest from a folder synced there, each with a tag.",
        ),
        key(
            "run",
            Type::Tables(&DOCKER_RUN),
            "Containers run detached; one that runs with the same configuration is left alone, a changed one is replaced.",
        ),
    ],
    one_of: &[],
};

pub(crate) const DOCKER_BUILD: Table = Table {
    keys: &[
        key(
            "path",
            GUEST_PATH,
            "The build context: an absolute guest path, usually a `sync` entry's `to` or a folder inside it.",
        )
        .required()
        .example("\"/srv/app\""),
        key(
            "tag",
            DOCKER_IMAGE,
            "The image's name and tag, e.g. `shop/web:dev`.",
        )
        .required()
        .example("\"shop/web:dev\""),
        key(
            "dockerfile",
            Type::Pattern("^[^/]"),
            "The Dockerfile, relative to `path`; default `Dockerfile`.",
        )
        .example("\"Dockerfile.dev\""),
        key(
            "args",
            VARIABLE_NAMES,
            "Build arguments (`--build-arg NAME=value`); names are shell variable names.",
        )
        .example("{\"VERSION\": \"1.2\"}"),
    ],
    one_of: &[],
};

/// `check_image`: a lowercase repository path and an optional tag.
const DOCKER_IMAGE: Type = Type::Pattern(
    "^[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$",
);

pub(crate) const DOCKER_RUN: Table = Table {
    keys: &[
        key(
            "name",
            Type::Pattern("^[A-Za-z0-9][A-Za-z0-9_.-]*$"),
            "The container's name: letters, digits, `_`, `.` and `-`, starting with a letter or digit. Unique within the step.",
        )
        .required()
        .example("\"web\""),
        key(
            "image",
            DOCKER_IMAGE,
            "The image: built by a `build` entry, loaded by `load`, or already in the guest. Never pulled.",
        )
        .required()
        .example("\"shop/web:dev\""),
        key(
            "ports",
            Type::Strings,
            "Published ports as `docker run -p` takes them: `GUEST:CONTAINER` or `IP:GUEST:CONTAINER`, optionally `/tcp` or `/udp`. Forward the guest port to the host with the machine's `ports`.",
        )
        .example("[\"8080:80\"]"),
        key(
            "env",
            VARIABLE_NAMES,
            "Environment variables of the container; names are shell variable names.",
        )
        .example("{\"APP_ENV\": \"dev\"}"),
        key(
            "volumes",
            Type::Strings,
            "As `docker run -v`: `/guest/path:/container/path` or `volume-name:/container/path`, optionally `:ro`.",
        )
        .example("[\"/srv/data:/data\"]"),
        key(
            "restart",
            Type::Choice(DOCKER_RESTART),
            "The restart policy; default `unless-stopped` (the container comes back when the machine boots again).",
        ),
        key(
            "args",
            Type::Strings,
            "The command and its arguments, after the image (as in `docker run IMAGE ARGS...`).",
        )
        .example("[\"httpd\", \"-f\", \"-p\", \"80\"]"),
    ],
    one_of: &[],
};

// Keys `[defaults]` and `[[machine]]` share.
const PROVIDER: Key = key(
    "provider",
    Type::Choice(PROVIDERS),
    "Where machines run: `local` (QEMU on this host) or `cloudstack`. A machine's value wins over `[defaults]`, which wins over `[project]`; default `local`.",
);
const BOX: Key = key(
    "box",
    Type::Pattern("\\S"),
    "The box (image) to start from, from `box box list`; default `debian-12`.",
)
.example("\"debian-12\"");
const BOX_VERSION: Key = key(
    "box_version",
    Type::Str,
    "Which versions of the box will do, as a semver requirement (as in Cargo.toml); default: the newest. The version chosen is recorded in `Boxfile.lock`.",
)
.example("\">= 12.0, < 13\"");
const CPUS: Key = key("cpus", POSITIVE, "Virtual CPUs; default 1.").example("2");
const MEMORY: Key = key("memory", POSITIVE, "Memory in MiB; default 1024.").example("2048");
const USER: Key = key(
    "user",
    USER_NAME,
    "The login user box creates in the guest; default `box`.",
)
.example("\"box\"");
const ACCEL_KEY: Key = key(
    "accel",
    Type::Choice(ACCEL),
    "Local provider: the QEMU accelerator. `auto` (the default) uses KVM or HVF when they work, TCG otherwise.",
);
const DISK_SIZE: Key = key(
    "disk_size",
    POSITIVE,
    "Local provider: the root disk size in GiB, grown on first boot; default the image's.",
)
.example("20");

const IDLE_STOP: Key = key(
    "idle_stop",
    Type::Pattern(super::duration::PATTERN),
    "Power the machine off after this long with no SSH session and a low load, e.g. `\"2h\"` (units `d`, `h`, `m`, `s`, largest first) or `\"off\"`; default off. A watcher box installs in the guest does it; `box up` starts the machine again.",
)
.example("\"2h\"");
const EXPIRES: Key = key(
    "expires",
    Type::Pattern(super::duration::PATTERN),
    "Power the machine off this long after each start, e.g. `\"8h\"` or `\"off\"`; default off. `box status` shows when.",
)
.example("\"8h\"");
const FORWARD_AGENT: Key = key(
    "forward_agent",
    Type::Bool,
    "Forward your SSH agent (`SSH_AUTH_SOCK`) to `box ssh`, `box exec` and provisioners, so e.g. `git clone` of a private repository works inside. Those sessions then run through OpenSSH's `ssh` with box's pinned host key. Default `false`; `box ssh -A` asks for it once.",
);
const AUTO_CORRECT: Key = key(
    "auto_correct",
    Type::Bool,
    "Local provider: when a port's `host` port is taken, forward a free one instead (shown by `box up` and `box status`). Default `false`: a taken port is an error. Not for CloudStack machines.",
);

pub(crate) const PROJECT: Table = Table {
    keys: &[
        key(
            "name",
            HOST_NAME,
            "The project's name, used in machine names on CloudStack; default the folder name. Lowercase letters, digits and `-`.",
        )
        .example("\"shop\""),
        PROVIDER,
    ],
    one_of: &[],
};

pub(crate) const DEFAULTS: Table = Table {
    keys: &[
        BOX,
        CPUS,
        MEMORY,
        USER,
        ACCEL_KEY,
        DISK_SIZE,
        PROVIDER,
        IDLE_STOP,
        EXPIRES,
        FORWARD_AGENT,
        AUTO_CORRECT,
    ],
    one_of: &[],
};

pub(crate) const LOCAL: Table = Table {
    keys: &[key(
        "isolated",
        Type::Bool,
        "Guests reach nothing outside the host (QEMU `restrict=on`); forwarded ports and folder sync still work. Default `false`.",
    )],
    one_of: &[],
};

pub(crate) const CLOUDSTACK: Table = Table {
    keys: &[
        key(
            "profile",
            Type::Str,
            "The credentials profile; `BOX_PROFILE` overrides it; default `default`. Credentials never live in a Boxfile.",
        )
        .example("\"default\""),
        key("zone", Type::Str, "Zone name or id.").example("\"zone1\""),
        key("template", Type::Str, "Template name or id.").example("\"Debian 12\""),
        key(
            "service_offering",
            Type::Str,
            "Service offering (CPU and memory) name or id.",
        )
        .example("\"Small Instance\""),
        key(
            "disk_offering",
            Type::Str,
            "Disk offering for a data disk, name or id.",
        )
        .example("\"Custom\""),
        key(
            "data_disk_size",
            POSITIVE,
            "Data disk size in GiB (with a custom-size disk offering).",
        )
        .example("50"),
        key("root_disk_size", POSITIVE, "Root disk size in GiB.").example("20"),
        key("network", Type::Str, "Network name or id.").example("\"dev-net\""),
        key(
            "security_groups",
            Type::Strings,
            "Security groups (zones with security groups).",
        )
        .example("[\"default\"]"),
        key("affinity_groups", Type::Strings, "Affinity groups.").example("[\"spread\"]"),
        key(
            "public_ip",
            Type::Str,
            "How the machine is reached from outside: `auto` (acquire an address), `source-nat` (the network's source-NAT address) or an IP address.",
        )
        .example("\"auto\""),
        key(
            "static_nat",
            Type::Bool,
            "Use static NAT on the public address instead of port forwarding.",
        ),
        key(
            "private",
            Type::Bool,
            "Reach the machine's own NIC address directly (e.g. over a VPN).",
        ),
        key(
            "vpc_acl",
            Type::Choice(VPC_ACL),
            "VPC tiers: the network ACL list box adds its rules to. `tier` (default): the tier's own custom list (a system list `default_allow`/`default_deny` is an error); `create`: on a tier with a system list, box attaches a list of its own, shared with teammates, and puts the tier's list back when it is left empty.",
        )
        .example("\"create\""),
        key(
            "allow_from",
            Type::Strings,
            "CIDRs that may reach SSH and the forwarded ports, each with a prefix length. Unset means everyone, with a warning.",
        )
        .example("[\"203.0.113.7/32\"]"),
        key(
            "expunge",
            Type::Bool,
            "Expunge machines on destroy instead of leaving them recoverable.",
        ),
        key(
            "name_pattern",
            NAME_PATTERN,
            "The VM name: `{project}`, `{machine}` and `{env}` (a per-user, per-checkout id) are replaced. Must contain `{machine}`.",
        )
        .example("\"{project}-{machine}-{env}\""),
        key(
            "details",
            Type::Map { names: None },
            "Extra `details` passed when deploying.",
        )
        .example("{\"rootDiskController\": \"scsi\"}"),
        key(
            "project",
            Type::Str,
            "The CloudStack project (name or id) every machine lives in: each call that lists, creates or tags carries its id. The same for every machine.",
        )
        .example("\"shop-team\""),
        key(
            "domain",
            Type::Str,
            "The domain of `account` or `project`: a path such as `ROOT/eng`, or an id.",
        )
        .example("\"ROOT/eng\""),
        key(
            "account",
            Type::Str,
            "The account an administrator or domain administrator acts for; needs `domain`.",
        )
        .together(&["domain"])
        .example("\"alice\""),
        key(
            "keypair",
            Type::Str,
            "An existing key pair to deploy with instead of box's own; needs `identity_file`. box never deletes it.",
        )
        .together(&["identity_file"])
        .example("\"team-key\""),
        key(
            "identity_file",
            Type::Str,
            "The private key of `keypair` (a host path; in a Boxfile it must lie inside the project folder, in Boxfile.local anywhere); needs `keypair`.",
        )
        .together(&["keypair"])
        .example("\"team_key\""),
    ],
    one_of: &[],
};

pub(crate) const PORT: Table = Table {
    keys: &[
        key("guest", PORT_NUMBER, "The port in the guest.")
            .required()
            .example("80"),
        key(
            "host",
            PORT_NUMBER,
            "The port on the host (127.0.0.1 on the local provider); forwarded once per protocol.",
        )
        .required()
        .example("8080"),
        key(
            "protocol",
            Type::Choice(PROTOCOLS),
            "`tcp` (the default) or `udp`.",
        ),
        AUTO_CORRECT,
        key(
            "host_ip",
            Type::Str,
            "Local provider: the host address the port listens on, an IP address; default `127.0.0.1`. `\"0.0.0.0\"` (every address, reachable from other computers) only when you write it. Not for CloudStack machines.",
        )
        .example("\"127.0.0.1\""),
    ],
    one_of: &[],
};

/// A sync entry's `type`.
pub(crate) const SYNC_KINDS: &[&str] = &["copy", "mount"];

pub(crate) const SYNC: Table = Table {
    keys: &[
        key(
            "from",
            Type::Str,
            "A host folder, relative to the Boxfile's folder. It must exist and, in the Boxfile (not `Boxfile.local`), lead inside the project folder.",
        )
        .required()
        .example("\".\""),
        key("to", GUEST_PATH, "The absolute guest path.")
            .required()
            .example("\"/srv/app\""),
        key(
            "exclude",
            Type::Strings,
            "gitignore-style patterns left out (the folder's `.gitignore` files apply too).",
        )
        .example("[\"target/\"]"),
        key(
            "owner",
            OWNER,
            "The guest owner, `user` or `user:group`; default the login user.",
        )
        .example("\"box:box\""),
        key(
            "pull",
            Type::Strings,
            "Paths inside the folder (relative to `from`, e.g. `dist/`) brought back from the guest after provisioning (`up`, `reload`, `provision`) and on `box sync`, even when ignored; a path changed on both sides is a conflict, listed and left alone (see `box sync --pull`).",
        )
        .example("[\"dist/\", \"Cargo.lock\"]"),
        key(
            "skip_unreadable",
            Type::Bool,
            "Leave out paths box cannot read or send instead of failing the sync; default `false`.",
        ),
        key(
            "type",
            Type::Choice(SYNC_KINDS),
            "`copy` (the default): copied over SSH on `up`, `reload` and `sync`. `mount`: the host folder is mounted live in the guest over virtio-fs, both ways, owned there by the login user; local provider only (no `exclude` or `owner`; `box suspend` refuses such a machine).",
        )
        .example("\"mount\""),
    ],
    one_of: &[],
};

pub(crate) const PROVISION: Table = Table {
    keys: &[
        key(
            "name",
            Type::Pattern("^[A-Za-z0-9._-]+$"),
            "Unique within the machine; `box provision --with NAME` runs only it. Default `<kind>-<n>`, e.g. `shell-1`.",
        )
        .example("\"motd\""),
        key("shell", Type::Str, "A shell script run in the guest.").example("\"echo hello\""),
        key(
            "script",
            Type::Str,
            "A script file on the host (relative to the Boxfile's folder, inside the project), copied into the guest and run.",
        )
        .example("\"setup.sh\""),
        key("args", Type::Strings, "`script` only: its arguments.")
            .needs(&["script"])
            .example("[\"--verbose\"]"),
        key(
            "env",
            Type::Map {
                names: Some("^[A-Za-z_][A-Za-z0-9_]*$"),
            },
            "`script` only: environment variables; each name is a shell variable name.",
        )
        .needs(&["script"])
        .example("{\"APP_ENV\": \"dev\"}"),
        key(
            "file",
            Type::Str,
            "A file or folder on the host (relative to the Boxfile's folder, inside the project) copied into the guest at `destination`.",
        )
        .needs(&["destination"])
        .example("\"motd.txt\""),
        key("destination", GUEST_PATH, "`file` only: the absolute guest path.")
            .needs(&["file"])
            .example("\"/etc/motd\""),
        key(
            "ansible",
            Type::Table(&ANSIBLE),
            "An Ansible playbook run from the host with `ansible-playbook` against an inventory box writes from its state (see `box ansible-inventory`).",
        ),
        key(
            "docker",
            Type::Table(&DOCKER),
            "Docker in the guest, with no registry: image tarballs loaded from the host, images built from synced folders, containers run (left alone when unchanged, replaced when changed). Needs a box with Docker, e.g. `debian-12-docker`.",
        )
        .example("{\"run\": [{\"name\": \"web\", \"image\": \"box/busybox\"}]}"),
        key(
            "privileged",
            Type::Bool,
            "Run as root (through sudo; `--become` for `ansible`); default `true`.",
        ),
        key(
            "run",
            Type::Choice(RUN),
            "`once` (the default): the first time the machine is provisioned; `always`: every time provisioners run; `never`: only when named with `box provision --with`.",
        ),
    ],
    one_of: PROVISION_KINDS,
};

pub(crate) const MACHINE: Table = Table {
    keys: &[
        key(
            "name",
            HOST_NAME,
            "Unique; it becomes the guest's host name: lowercase letters, digits and `-`, not starting or ending with `-`, at most 63 characters.",
        )
        .required()
        .example("\"web\""),
        key(
            "primary",
            Type::Bool,
            "The machine `box ssh` opens when none is named (default: the first machine). At most one.",
        ),
        key(
            "autostart",
            Type::Bool,
            "`false`: `box up` and `box reload` without names leave this machine out; naming it (or a machine that depends on it) brings it up. Default `true`.",
        ),
        PROVIDER,
        BOX,
        BOX_VERSION,
        CPUS,
        MEMORY,
        USER,
        ACCEL_KEY,
        DISK_SIZE,
        IDLE_STOP,
        EXPIRES,
        FORWARD_AGENT,
        key(
            "depends_on",
            Type::Strings,
            "Machines that must be ready (up, synced, provisioned) before this one syncs and provisions; all machines boot at once. Unknown names and cycles are errors.",
        )
        .example("[\"db\"]"),
        key(
            "groups",
            Type::Strings,
            "Ansible groups the machine belongs to in the inventory box generates (`box ansible-inventory`, the `ansible` provisioner).",
        )
        .example("[\"web\", \"app_servers\"]"),
        key("ports", Type::Tables(&PORT), "Forwarded ports."),
        key(
            "sync",
            Type::Tables(&SYNC),
            "Folders copied into the guest on `up`, `reload` and `sync`.",
        ),
        key(
            "user_data",
            Type::Pattern("^\\s*#cloud-config"),
            "Extra cloud-init user data merged with box's own: a `#cloud-config` document.",
        )
        .example("\"#cloud-config\\npackages: [htop]\\n\""),
        key(
            "cloudstack",
            Type::Table(&CLOUDSTACK),
            "This machine's `[cloudstack]` keys, merged over the project's.",
        ),
        key(
            "provision",
            Type::Tables(&PROVISION),
            "Provisioners, run in order; each has one of `shell`, `script`, `file`, `ansible` or `docker`.",
        ),
    ],
    one_of: &[],
};

/// What a trigger runs: exactly one is required.
pub(crate) const TRIGGER_KINDS: &[&str] = &["run", "run_remote"];

pub(crate) const TRIGGER: Table = Table {
    keys: &[
        key(
            "on",
            Type::Strings,
            "The events it runs on: `before-up`, `after-up`, `before-halt`, `after-halt`, `before-destroy`, `after-destroy`, `after-provision`.",
        )
        .required()
        .example("[\"after-up\"]"),
        key(
            "machines",
            Type::Strings,
            "The machines it runs for (once per machine); default every machine.",
        )
        .example("[\"db\"]"),
        key(
            "run",
            Type::Str,
            "A host command, run by `sh -c` in the project folder with `BOX_MACHINE`, `BOX_EVENT`, `BOX_PROJECT` and `BOX_PROVIDER` set. box asks you to trust a Boxfile's host commands before it runs them (see `box trust`).",
        )
        .example("\"echo $BOX_MACHINE is up\""),
        key(
            "run_remote",
            Type::Str,
            "A guest command, run over SSH as the login user (`after-up`, `after-provision`, `before-halt`, `before-destroy` only: the guest is up then).",
        )
        .example("\"sudo systemctl restart app\""),
    ],
    one_of: TRIGGER_KINDS,
};

/// The whole file.
pub(crate) const TOP: Table = Table {
    keys: &[
        key("project", Type::Table(&PROJECT), "The project."),
        key(
            "defaults",
            Type::Table(&DEFAULTS),
            "Values every machine inherits unless it sets its own.",
        ),
        key(
            "local",
            Type::Table(&LOCAL),
            "Settings of the local (QEMU) provider.",
        ),
        key(
            "cloudstack",
            Type::Table(&CLOUDSTACK),
            "Settings for machines on the `cloudstack` provider (checked even when no machine uses them).",
        ),
        key(
            "machine",
            Type::Tables(&MACHINE),
            "One `[[machine]]` table per machine.",
        ),
        key(
            "trigger",
            Type::Tables(&TRIGGER),
            "Commands run on the host (`run`) or in the guest (`run_remote`) before or after `up`, `halt`, `destroy` and provisioning.",
        ),
    ],
    one_of: &[],
};
