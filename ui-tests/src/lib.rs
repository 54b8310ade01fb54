//! Nothing but a home for `tests/ui.rs`: the compile errors of `#[cached]` and the
//! entry macros, each case in `tests/ui/fail/` with its reviewed `.stderr`, and the
//! shapes that must compile in `tests/ui/pass/`. Run them with
//! `cargo test -p stratacache-ui-tests`; regenerate the `.stderr` files with
//! `TRYBUILD=overwrite cargo test -p stratacache-ui-tests` and review every change.
#![forbid(unsafe_code)]
