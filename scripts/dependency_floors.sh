#!/usr/bin/env bash
# Checks the two promises the manifests make about versions, each on a clone of the
# repository's last commit (the checkout and its Cargo.lock are left as they are; an
# uncommitted change is not checked: commit it first):
#
#   msrv     `rust-version` (Cargo.toml): with the dependencies Cargo's MSRV-aware resolver
#            picks for that toolchain, the libraries and binaries build, and a user's
#            crate holding the quickstart and the ui suite's pass cases builds and runs
#            them. Installs the toolchain with rustup if it is missing.
#   minimal  the lower bounds: with every direct dependency at the lowest version the
#            manifests allow (`cargo +nightly update -Z direct-minimal-versions`), every
#            target builds and the tests pass (the compile-error suite aside: its
#            expected messages are rustc's, not the dependencies').
#
#   scripts/dependency_floors.sh [msrv|minimal]...   (both when none is named)
#
# Neither runs in CI: together they build the workspace twice more, 6 to 10 minutes
# on a 2-core machine. Run them before a release, and after changing a dependency.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MSRV=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml")
# The copies live at the same place on every run: a test binary holds its source's
# path (`env!("CARGO_MANIFEST_DIR")`), and one built for a copy at another path,
# reused from the target directory, would read a tree that is gone.
WORK="$ROOT/target/floors-work"
rm -rf "$WORK"
mkdir -p "$WORK"

copy_of_repository() {
    git clone -q "$ROOT" "$WORK/$1"
    echo "$WORK/$1"
}

# Each check runs in a subshell of its own: its directory and environment stay there.
check_msrv() (
    rustup toolchain list | grep -q "^$MSRV" || rustup toolchain install "$MSRV" --profile minimal
    export CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS=fallback
    export CARGO_TARGET_DIR="$ROOT/target/floors-msrv"
    repo=$(copy_of_repository msrv)
    cd "$repo"
    cargo "+$MSRV" generate-lockfile -q
    echo "==> Rust $MSRV: the libraries and binaries"
    cargo "+$MSRV" build -q --workspace --all-features --lib --bins

    # The repository's own examples and tests need its dev-dependencies, whose
    # newest peers (the benchmarks' `cached` 4) need a newer Rust: a user's crate
    # tells what a user on this toolchain gets.
    user="$WORK/user"
    mkdir -p "$user/src" "$user/examples"
    touch "$user/src/lib.rs"
    cp "$repo/examples/quickstart.rs" "$user/examples/"
    for case in "$repo"/ui-tests/tests/ui/pass/*.rs; do
        cp "$case" "$user/examples/$(basename "$case" .rs | tr - _).rs"
    done
    cat > "$user/Cargo.toml" <<EOF
[package]
name = "msrv-user"
version = "0.0.0"
edition = "2021"
rust-version = "$MSRV"
publish = false

[workspace]

[dependencies]
stratacache = { path = "$repo", features = ["tls", "moka", "metrics", "postgres"] }
serde = { version = "1", features = ["derive"] }
tokio = { version = "1", features = ["full"] }
EOF
    echo "==> Rust $MSRV: a user's crate, the quickstart and the ui pass cases"
    cd "$user"
    cargo "+$MSRV" generate-lockfile -q
    cargo "+$MSRV" build -q --examples
    for example in examples/*.rs; do
        cargo "+$MSRV" run -q --example "$(basename "$example" .rs)" > "$WORK/example.out"
        echo "    $(basename "$example" .rs): ran"
    done
)

check_minimal() (
    export CARGO_TARGET_DIR="$ROOT/target/floors-minimal"
    repo=$(copy_of_repository minimal)
    cd "$repo"
    cargo +nightly update -q -Z direct-minimal-versions
    echo "==> lowest direct dependencies: every target builds"
    cargo check -q --workspace --all-features --all-targets
    echo "==> lowest direct dependencies: the tests"
    cargo build -q --workspace --examples
    cargo nextest run --workspace --no-fail-fast -E 'not binary(ui)'
    echo "==> lowest direct dependencies: the runtime's tests on the moka store"
    cargo nextest run -p stratacache-runtime --features moka
)

checks=("$@")
[ ${#checks[@]} -gt 0 ] || checks=(msrv minimal)
for check in "${checks[@]}"; do
    case "$check" in
        msrv) check_msrv ;;
        minimal) check_minimal ;;
        *) echo "unknown check: $check (msrv or minimal)" >&2; exit 2 ;;
    esac
done
echo "==> done"
