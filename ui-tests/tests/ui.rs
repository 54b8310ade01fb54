//! Compile-time behaviour of `#[cached]`: every mistake is an error on the offending
//! token, and the function is still emitted. Regenerate the `.stderr` files with
//! `TRYBUILD=overwrite cargo test -p stratacache-ui-tests` and review every change.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
