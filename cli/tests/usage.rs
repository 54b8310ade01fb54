//! The command line itself: help, version, a wrong command, no server. No Redis is
//! reached.

mod common;

use std::process::Command;

use common::{failure, run};

#[test]
fn help_lists_every_command_and_option_and_succeeds() {
    for flag in ["--help", "-h"] {
        let output = run(&[flag]);
        assert!(output.status.success(), "{flag}: {output:?}");
        let stdout = String::from_utf8(output.stdout).unwrap();
        for word in [
            "inspect",
            "entry CACHE KEY_JSON",
            "tags PATTERN",
            "invalidate CACHE KEY_JSON",
            "invalidate-tag TAG",
            "clear CACHE",
            "clear-all",
        ] {
            assert!(
                stdout.contains(word),
                "{flag} does not name {word}: {stdout}"
            );
        }
        for option in ["--redis", "--namespace", "--secret", "--ca-file"] {
            assert!(
                stdout.contains(option),
                "{flag} does not name {option}: {stdout}"
            );
        }
    }
}

#[test]
fn version_prints_the_packages_version() {
    let output = run(&["--version"]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8(output.stdout).unwrap().trim(),
        format!("stratacache-cli {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn an_unknown_command_fails_with_the_usage_line() {
    let stderr = failure(run(&["--redis", "redis://127.0.0.1:1", "frobnicate"]));
    assert!(
        stderr.starts_with("stratacache-cli: usage: stratacache-cli"),
        "{stderr}"
    );
}

#[test]
fn a_reader_that_went_away_ends_the_process_without_a_panic() {
    // The read end is closed before the process starts, so its write fails for certain.
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let output = Command::new(env!("CARGO_BIN_EXE_stratacache-cli"))
        .arg("--help")
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("run the inspector");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "{:?}: {stderr}", output.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn invalidating_a_tag_without_a_server_fails_at_once_saying_so() {
    let stderr = failure(run(&[
        "--redis",
        "redis://127.0.0.1:1",
        "invalidate-tag",
        "user:7",
    ]));
    assert!(
        stderr.contains("cannot reach Redis at 127.0.0.1:1"),
        "{stderr}"
    );
}

#[test]
fn a_command_argument_that_looks_like_a_flag_is_the_commands() {
    // `-h` after the command is a tag to invalidate, not a request for help.
    let stderr = failure(run(&[
        "--redis",
        "redis://127.0.0.1:1",
        "invalidate-tag",
        "-h",
    ]));
    assert!(stderr.contains("cannot reach Redis"), "{stderr}");
}
