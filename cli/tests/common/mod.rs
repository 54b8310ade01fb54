//! The inspector run from a test, with none of the environment's defaults.
#![allow(dead_code)] // each test binary uses part of it

use std::process::{Command, Output};

use serde_json::Value;

/// The inspector run with `args`, the variables it would default from removed.
pub fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stratacache-cli"))
        .args(args)
        .env_remove("STRATACACHE_REDIS_URL")
        .env_remove("STRATACACHE_REDIS_CA_FILE")
        .output()
        .expect("run the inspector")
}

/// The one JSON document a run that succeeded answered.
pub fn answer(output: Output) -> Value {
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).expect("one JSON document")
}

/// What a run that failed (exit 2, the tool's own failure, not a panic) said.
pub fn failure(output: Output) -> String {
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    String::from_utf8(output.stderr).unwrap()
}
