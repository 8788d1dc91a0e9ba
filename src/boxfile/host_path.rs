//! Where a host path named in a Boxfile leads. A Boxfile is data anyone
//! may clone, so the host paths it names (sync sources, scripts, files)
//! must stay inside the project folder once links are followed: otherwise
//! `from = "../../.aws"` or a link to `~/.ssh` would copy the user's keys
//! into a machine. `Boxfile.local`, which is personal, may name any path.

use std::path::{Component, Path, PathBuf};

/// A host path named in a Boxfile is at most this long: longer paths are no
/// real project's, and following links through them costs time.
pub(crate) const MAX_LEN: usize = 1024;

/// Why a host path is not inside the project folder.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Escape {
    /// It leads here, outside the project folder.
    Outside(PathBuf),
    /// Where it leads cannot be known yet: it climbs with `..` through a
    /// part that does not exist, or goes through a link whose target is
    /// missing.
    Unresolvable,
}

/// Checks that `path` (absolute, under `root` before links are followed)
/// resolves inside `root` after every link is followed. A path that does
/// not exist yet is judged by its deepest existing ancestor, resolved, plus
/// the rest taken as written.
pub(crate) fn inside(root: &Path, path: &Path) -> Result<(), Escape> {
    let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let resolved = resolve(path)?;
    if resolved.starts_with(&root) {
        Ok(())
    } else {
        Err(Escape::Outside(resolved))
    }
}

/// `path` with its links followed, as far as it exists.
fn resolve(path: &Path) -> Result<PathBuf, Escape> {
    if let Ok(real) = std::fs::canonicalize(path) {
        return Ok(real);
    }
    // Once one ancestor is missing so are all below it: find the first.
    let parts: Vec<Component> = path.components().collect();
    let mut existing = 0;
    let mut prefix = PathBuf::new();
    for (i, c) in parts.iter().enumerate() {
        prefix.push(c);
        if std::fs::symlink_metadata(&prefix).is_err() {
            break;
        }
        existing = i + 1;
    }
    let base: PathBuf = parts[..existing].iter().collect();
    let mut out = if base.as_os_str().is_empty() {
        PathBuf::new()
    } else {
        // It exists, yet cannot be resolved: a link to a missing target.
        std::fs::canonicalize(&base).map_err(|_| Escape::Unresolvable)?
    };
    for c in &parts[existing..] {
        match c {
            Component::ParentDir => return Err(Escape::Unresolvable),
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn project() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("shop");
        fs::create_dir_all(root.join("src")).unwrap();
        fs::create_dir_all(dir.path().join("secrets")).unwrap();
        (dir, root)
    }

    #[test]
    fn paths_in_the_project_are_inside() {
        let (_dir, root) = project();
        assert_eq!(inside(&root, &root), Ok(()));
        assert_eq!(inside(&root, &root.join("src")), Ok(()));
        assert_eq!(inside(&root, &root.join("src/../src")), Ok(()));
        assert_eq!(inside(&root, &root.join("not/yet/there")), Ok(()));
    }

    #[test]
    fn dot_dot_absolute_paths_and_links_out_are_outside() {
        let (dir, root) = project();
        let secrets = fs::canonicalize(dir.path().join("secrets")).unwrap();
        assert_eq!(
            inside(&root, &root.join("../secrets")),
            Err(Escape::Outside(secrets.clone()))
        );
        assert!(matches!(
            inside(&root, Path::new("/etc")),
            Err(Escape::Outside(_))
        ));
        std::os::unix::fs::symlink(&secrets, root.join("link")).unwrap();
        assert_eq!(
            inside(&root, &root.join("link")),
            Err(Escape::Outside(secrets.clone()))
        );
        assert_eq!(
            inside(&root, &root.join("link/new-file")),
            Err(Escape::Outside(secrets.join("new-file")))
        );
    }

    #[test]
    fn dot_dot_through_a_missing_folder_cannot_be_judged() {
        let (_dir, root) = project();
        assert_eq!(
            inside(&root, &root.join("missing/../../secrets")),
            Err(Escape::Unresolvable)
        );
    }

    #[test]
    fn a_link_to_a_missing_target_cannot_be_judged() {
        let (_dir, root) = project();
        std::os::unix::fs::symlink("/nonexistent/target", root.join("dangling")).unwrap();
        assert_eq!(
            inside(&root, &root.join("dangling")),
            Err(Escape::Unresolvable)
        );
        assert_eq!(
            inside(&root, &root.join("dangling/sub")),
            Err(Escape::Unresolvable)
        );
    }
}
