//! The ready-made stacks `box init --template NAME` writes: a Boxfile and
//! the files it needs, shipped inside the binary (from `templates/`) so a
//! template works wherever box does.

/// One stack: its files, relative to the project folder. `{project}` in
/// the Boxfile becomes the project's name.
pub struct Template {
    pub name: &'static str,
    pub summary: &'static str,
    pub files: &'static [(&'static str, &'static str)],
}

macro_rules! file {
    ($template:literal, $path:literal) => {
        (
            $path,
            include_str!(concat!("../templates/", $template, "/", $path)),
        )
    };
}

pub const TEMPLATES: &[Template] = &[
    Template {
        name: "docker-host",
        summary: "one machine with Docker, a sample container built from app/, port 8080, ready for `box docker-env`",
        files: &[
            file!("docker-host", "Boxfile"),
            file!("docker-host", "app/Dockerfile"),
            file!("docker-host", "app/index.html"),
        ],
    },
    Template {
        name: "swarm",
        summary: "a Docker Swarm of a manager and two workers; a sample service on all three, port 8080 (needs ansible-core)",
        files: &[
            file!("swarm", "Boxfile"),
            file!("swarm", "swarm.yml"),
            file!("swarm", "app/Dockerfile"),
            file!("swarm", "app/index.html"),
        ],
    },
    Template {
        name: "postgres-replica",
        summary: "a PostgreSQL primary and a streaming replica, checked with a row (needs ansible-core)",
        files: &[
            file!("postgres-replica", "Boxfile"),
            file!("postgres-replica", "replication.yml"),
            file!("postgres-replica", ".gitignore"),
        ],
    },
];

/// The template called `name`.
pub fn find(name: &str) -> Option<&'static Template> {
    TEMPLATES.iter().find(|t| t.name == name)
}

impl Template {
    /// The files with the project's name filled in.
    pub fn render(&self, project: &str) -> Vec<(&'static str, String)> {
        self.files
            .iter()
            .map(|(path, text)| {
                let text = if *path == crate::project::BOXFILE {
                    text.replace("{project}", project)
                } else {
                    text.to_string()
                };
                (*path, text)
            })
            .collect()
    }
}
