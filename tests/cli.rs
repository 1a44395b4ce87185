//! The man page and `--version` as an admin meets them. `build.rs` renders
//! the man page from the clap definition the binary parses with; this
//! checks the result against the binary's own `--help`.

use std::process::Command;

fn cdrship(arg: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_cdrship"))
        .arg(arg)
        .output()
        .expect("running cdrship");
    assert!(out.status.success(), "cdrship {arg}: {:?}", out.status);
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Long options listed by `--help`, e.g. `--spool-dir`.
fn help_options() -> Vec<String> {
    cdrship("--help")
        .lines()
        .map(str::trim_start)
        .filter(|line| line.starts_with('-'))
        .flat_map(|line| line.split([' ', ',']))
        .filter(|word| word.starts_with("--"))
        // `--verbose...`: clap marks a repeatable flag.
        .map(|word| word.trim_end_matches('.').to_owned())
        .collect()
}

#[test]
fn every_option_of_help_has_an_entry_in_the_man_page() {
    let man = include_str!(concat!(env!("OUT_DIR"), "/cdrship.1"));
    let options = help_options();
    assert!(options.len() > 30, "too few options parsed: {options:?}");
    for option in options {
        // An entry line of OPTIONS: `\fB\-\-spool\-dir\fR ...`, or after
        // the short form: `\fB\-b\fR, \fB\-\-brokers\fR ...`.
        let roff = format!("\\fB{}\\fR", option.replace('-', "\\-"));
        let entry = man
            .lines()
            .any(|l| l.starts_with(&roff) || l.contains(&format!("\\fR, {roff}")));
        assert!(entry, "{option} has no entry in cdrship.1");
    }
}

#[test]
fn version_names_librdkafka() {
    let version = cdrship("--version");
    let expected = format!("cdrship {} (librdkafka 2.", env!("CARGO_PKG_VERSION"));
    assert!(version.starts_with(&expected), "{version}");
}
