//! What `--file` names, spelled one way: the final target of a symlink
//! (`feeds/pbx1.csv -> /var/log/asterisk/cdr-csv/Master.csv`), whose
//! directory holds the rotated generations, in its directory's canonical
//! path. `DIR//Master.csv`, `DIR/./Master.csv` and a symlinked directory
//! are then one file, with one state and one lock.

use std::path::{Path, PathBuf};

use super::current::directory_of;

/// Symlinks followed before giving up on a loop (the kernel's limit).
const MAX_LINKS: usize = 40;

/// The canonical path of the file `path` names, whether it exists yet or
/// not. A path whose directory cannot be resolved (it does not exist)
/// is made absolute as given.
pub fn resolve(path: &Path) -> PathBuf {
    if let Ok(full) = std::fs::canonicalize(path) {
        return full;
    }
    // Not there (yet): follow the links that exist, then the directory.
    let mut target = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match std::fs::read_link(&target) {
            Ok(next) => target = directory_of(&target).join(next),
            Err(_) => break,
        }
    }
    match (
        target.file_name(),
        std::fs::canonicalize(directory_of(&target)),
    ) {
        (Some(name), Ok(dir)) => dir.join(name),
        _ => std::path::absolute(path).unwrap_or_else(|_| path.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn every_spelling_and_link_resolves_to_one_path() {
        let dir = tempfile::tempdir().unwrap();
        let real = std::fs::canonicalize(dir.path()).unwrap();
        let file = real.join("Master.csv");
        let linked = real.join("linked");
        symlink(&real, &linked).unwrap();
        let feed = real.join("pbx1.csv");
        symlink("Master.csv", &feed).unwrap();
        // The file does not exist yet, then it does.
        for exists in [false, true] {
            if exists {
                std::fs::write(&file, b"a\n").unwrap();
            }
            for spelling in [
                format!("{}//Master.csv", real.display()),
                format!("{}/./Master.csv", real.display()),
                format!("{}/Master.csv", linked.display()),
                format!("{}/pbx1.csv", linked.display()),
            ] {
                assert_eq!(resolve(Path::new(&spelling)), file, "{spelling}");
            }
        }
        let missing = real.join("no-such-dir/Master.csv");
        assert_eq!(resolve(&missing), missing);
    }
}
