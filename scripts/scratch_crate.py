"""A throwaway crate under target/ that depends on this workspace's `stratacache`,
for the measurement scripts beside this file."""
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CARGO_TOML = """[package]
name = "{name}"
version = "0.0.0"
edition = "2021"
publish = false

[workspace]

[dependencies]
stratacache = {{ path = "{root}" }}
serde = {{ version = "1", features = ["derive"] }}
"""


def make(name):
    """Creates target/<name> with its Cargo.toml; returns its directory."""
    crate = os.path.join(ROOT, "target", name)
    os.makedirs(os.path.join(crate, "src"), exist_ok=True)
    with open(os.path.join(crate, "Cargo.toml"), "w") as f:
        f.write(CARGO_TOML.format(name=name, root=ROOT))
    return crate
