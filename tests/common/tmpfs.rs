//! A small tmpfs mounted for one test: a disk that fills up (root only:
//! a test that needs one fails, never skips, without mount permission).

use std::path::PathBuf;
use std::process::Command;

/// A tmpfs of a fixed size, mounted for one test.
pub struct Tmpfs {
    /// The mount point.
    pub dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mount a tmpfs of `size` (`300k`); panics without permission.
    pub fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("running mount");
        assert!(
            status.success(),
            "mounting a {size} tmpfs at {} failed ({status}): the full-disk tests need root",
            dir.path().display()
        );
        Tmpfs { dir }
    }

    /// The spool directory on it.
    pub fn spool(&self) -> PathBuf {
        self.dir.path().join("spool")
    }

    /// Fill what is left of it with a file (`filler`); removing that
    /// file frees the space again.
    pub fn fill(&self) -> PathBuf {
        use std::io::Write as _;
        let filler = self.dir.path().join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = [0u8; 4096];
        while file.write_all(&block).is_ok() {}
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let path = self.dir.path();
        let unmounted = Command::new("umount").arg(path).status();
        if !unmounted.is_ok_and(|s| s.success()) {
            // Something still holds it: detach it, the temp dir goes anyway.
            let _ = Command::new("umount").arg("-l").arg(path).status();
        }
    }
}
