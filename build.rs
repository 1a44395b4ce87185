//! Renders the man page and the bash, zsh and fish completions from the
//! clap definition the binary itself parses with (`src/args.rs`), so they
//! can never miss or misdescribe an option.
//!
//! Output goes to `OUT_DIR` (the tests compare it with `--help`) and to
//! `<target>/<profile>/assets/`, where `cargo deb` picks it up as
//! `target/release/assets/...`: cargo-deb has no way to name `OUT_DIR`.

use std::io::Write as _;
use std::path::PathBuf;

use clap::CommandFactory as _;
use clap_complete::Shell;

// Only the definition is needed here, not every helper of the binary.
#[allow(dead_code)]
#[path = "src/args.rs"]
mod args;

fn main() -> std::io::Result<()> {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/args.rs");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // OUT_DIR is <target>/[<triple>/]<profile>/build/cdrship-<hash>/out.
    let assets = out_dir
        .ancestors()
        .nth(3)
        .expect("OUT_DIR lies three levels below the profile directory")
        .join("assets");
    std::fs::create_dir_all(&assets)?;

    let mut command = args::Cli::command();
    let mut roff = Vec::new();
    clap_mangen::Man::new(command.clone()).render(&mut roff)?;
    std::fs::write(out_dir.join("cdrship.1"), &roff)?;
    // Debian ships man pages compressed; cargo-deb leaves built files as they are.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&roff)?;
    std::fs::write(assets.join("cdrship.1.gz"), gz.finish()?)?;

    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut command, "cdrship", &assets)?;
    }
    Ok(())
}
