//! The state file's name: the followed path, resolved, spelled so that no
//! two paths share one (`/` as `_`, and a `_` or `%` of the path escaped
//! as `%5F`, `%25`). Older cdrships wrote `/` as `_` alone, so `/a_b/M.csv`
//! and `/a/b/M.csv` shared a state and a lock; their states are still
//! found under that name and taken over when they are this path's.

use std::path::Path;

/// Longest name kept whole: a file name may have 255 bytes, and the
/// suffixes (`.state.json`, `.json.tmp`, `.lock`) need some.
const LONGEST: usize = 200;

/// The name of `followed`'s state, without the `.state.json` suffix. A
/// longer one keeps its end (the file's own name) after a hash of all.
pub(super) fn name(followed: &Path) -> String {
    let mut name = String::new();
    for c in followed.to_string_lossy().trim_start_matches('/').chars() {
        match c {
            '/' => name.push('_'),
            '_' => name.push_str("%5F"),
            '%' => name.push_str("%25"),
            c => name.push(c),
        }
    }
    if name.len() <= LONGEST {
        return name;
    }
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let mut cut = name.len() - (LONGEST - 17);
    while !name.is_char_boundary(cut) {
        cut += 1;
    }
    format!("{hash:016x}-{}", &name[cut..])
}

/// The name an older cdrship gave `followed`'s state.
pub(super) fn legacy(followed: &Path) -> String {
    followed
        .to_string_lossy()
        .trim_start_matches('/')
        .replace('/', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_two_paths_share_a_name() {
        let paths = [
            "/x/a_b/M.csv",
            "/x/a/b/M.csv",
            "/x/a%5Fb/M.csv",
            "/x/a%b/M.csv",
        ];
        let names: std::collections::HashSet<String> =
            paths.iter().map(|p| name(Path::new(p))).collect();
        assert_eq!(names.len(), paths.len(), "{names:?}");
        assert_eq!(
            name(Path::new("/var/log/a/Master.csv")),
            "var_log_a_Master.csv"
        );
        assert_eq!(
            legacy(Path::new("/x/a_b/M.csv")),
            legacy(Path::new("/x/a/b/M.csv"))
        );
        // Deep paths: a name a file system takes, still one per path.
        let deep = |leaf: &str| format!("/{}/{leaf}/Master.csv", "d/".repeat(150));
        let (a, b) = (name(Path::new(&deep("a"))), name(Path::new(&deep("b"))));
        assert!(a.len() <= LONGEST && a.ends_with("_Master.csv"), "{a}");
        assert_ne!(a, b);
    }
}
