//! The state file's name: the followed path, resolved, spelled so that no
//! two paths share one (`/` as `_`, and a `_` or `%` of the path escaped
//! as `%5F`, `%25`). Older cdrships wrote `/` as `_` alone, so `/a_b/M.csv`
//! and `/a/b/M.csv` shared a state and a lock; their states are still
//! found under that name and taken over when they are this path's.

use std::path::Path;

/// The name of `followed`'s state, without the `.state.json` suffix.
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
    name
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
    }
}
