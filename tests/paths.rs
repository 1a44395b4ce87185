//! End to end: one followed file, however its path is spelled. A symlink
//! (`feeds/pbx1.csv -> .../cdr-csv/Master.csv`) is followed to its target,
//! whose directory holds the rotated files; `DIR//Master.csv`,
//! `DIR/./Master.csv` and a symlinked directory name the same file, so
//! they share one state and one lock (issue 25, defects 4 and 10).

mod common;

use std::fs;
use std::os::unix::fs::symlink;

use common::{numbered, Broker, Expected, Followed};

/// `--file` through a symlink, rotated (`create`) while cdrship was
/// stopped: the saved file is found beside the target, not among the
/// link's siblings, and the log says what the link resolved to.
#[test]
fn a_symlinked_file_rotated_while_stopped_is_finished_beside_its_target() {
    let broker = Broker::start();
    let f = Followed::new(&broker, 1, "symlink");
    let feeds = f.dir.path().join("feeds");
    fs::create_dir(&feeds).unwrap();
    let link = feeds.join("pbx1.csv");
    symlink(&f.path, &link).unwrap();
    let state = f.dir.path().join("state");
    let args = [
        "-t",
        &f.topic,
        "--file",
        link.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ];
    let mut e = Expected::new(&broker, &f.topic);
    e.add(&f.path, numbered("cdr", 0..100));
    let mut first = common::cdrship(&broker, &args);
    e.check();
    let resolved = first.wait_for_log("resolves to");
    assert!(
        resolved.contains(&f.path.display().to_string()),
        "{resolved}"
    );
    first.stop();

    e.add(&f.path, numbered("cdr", 100..110));
    fs::rename(&f.path, f.sibling("Master.csv.1")).unwrap();
    e.add(&f.path, numbered("new", 0..50));
    let mut second = common::cdrship(&broker, &args);
    e.check();
    second.stop();
    assert!(!second.log().contains("is gone"), "{}", second.log());
    e.nothing_more();
}

/// The same file and state directory under another spelling of the path
/// is the same follower: the second is refused, whichever spelling.
#[test]
fn a_second_follower_under_another_spelling_of_the_path_is_refused() {
    let broker = Broker::start();
    let f = Followed::new(&broker, 1, "spellings");
    let dir = f.dir.path();
    let linked_dir = tempfile::tempdir().unwrap();
    let link = linked_dir.path().join("cdr-csv");
    symlink(dir, &link).unwrap();
    let state = dir.join("state");
    let mut e = Expected::new(&broker, &f.topic);
    e.add(&f.path, numbered("cdr", 0..10));
    let mut first = f.start(&broker);
    e.check();
    let spellings = [
        format!("{}//Master.csv", dir.display()),
        format!("{}/./Master.csv", dir.display()),
        format!("{}/Master.csv", link.display()),
    ];
    for spelling in &spellings {
        let args = [
            "-t",
            &f.topic,
            "--file",
            spelling,
            "--state-dir",
            state.to_str().unwrap(),
        ];
        let mut second = common::cdrship(&broker, &args);
        assert_eq!(
            second.wait().code(),
            Some(1),
            "{spelling}: {}",
            second.log()
        );
        assert!(
            second.log().contains("is followed by another cdrship"),
            "{spelling}: {}",
            second.log()
        );
    }
    e.add(&f.path, numbered("cdr", 10..20));
    e.check();
    first.stop();
    e.nothing_more();
}

/// A state saved under an older name (the path as it was spelled) is
/// still read: no line is sent again after an upgrade.
#[test]
fn a_state_saved_under_the_spelled_path_is_still_read() {
    let broker = Broker::start();
    let f = Followed::new(&broker, 1, "old-state-name");
    let mut e = Expected::new(&broker, &f.topic);
    e.add(&f.path, numbered("cdr", 0..10));
    let mut first = f.start(&broker);
    e.check();
    first.stop();
    // As an older cdrship named it: after the path given, `/` as `_`.
    let saved = f.state_file();
    let spelled = format!("{}/./Master.csv", f.dir.path().display());
    let old_name = spelled.trim_start_matches('/').replace('/', "_");
    let old = saved.with_file_name(format!("{old_name}.state.json"));
    fs::rename(&saved, &old).unwrap();
    e.add(&f.path, numbered("cdr", 10..15));
    let mut second = common::cdrship(
        &broker,
        &[
            "-t",
            &f.topic,
            "--file",
            &spelled,
            "--state-dir",
            f.dir.path().join("state").to_str().unwrap(),
        ],
    );
    e.check();
    second.stop();
    e.nothing_more();
}

/// `/X/a_b/M.csv` and `/X/a/b/M.csv` are two files: with one state
/// directory both are followed at once, and each keeps its own progress
/// across restarts (found by the adversarial review: their state names
/// were one, so the second was refused as a second follower, and
/// restarts re-sent each file whole).
#[test]
fn paths_that_differ_only_in_slashes_and_underscores_have_their_own_state() {
    let broker = Broker::start();
    let f = Followed::new(&broker, 1, "underscores");
    let dir = f.dir.path();
    let files = [dir.join("a_b/M.csv"), dir.join("a/b/M.csv")];
    for (i, file) in files.iter().enumerate() {
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        fs::write(file, numbered(&format!("file{i}"), 0..20)).unwrap();
    }
    let state = dir.join("state");
    let start = |file: &std::path::Path| {
        let args = [
            "-t",
            &f.topic,
            "--file",
            file.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ];
        common::cdrship(&broker, &args)
    };
    let reader = broker.reader(&f.topic);
    let mut got = Vec::new();
    let mut runs: Vec<_> = files.iter().map(|file| start(file)).collect();
    reader.read_more(&mut got, 40);
    for run in &mut runs {
        run.stop();
    }
    // Restarts, one after the other, with nothing new: nothing is sent.
    for file in files.iter().chain(&files) {
        let mut run = start(file);
        run.wait_for_log("resuming at byte");
        run.stop();
    }
    assert_eq!(reader.stored(), 40);
}
