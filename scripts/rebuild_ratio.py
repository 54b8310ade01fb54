#!/usr/bin/env python3
"""How much an edit of one `#[cached]` function costs to rebuild, against an edit of a
plain one.

Generates a crate with 20 cached functions and 20 plain ones (each in the same
module), builds it once, then alternately edits the body of one cached function and of
one plain function and times `cargo build` (debug, incremental) after each edit.
Prints the medians and their ratio.

    python3 scripts/rebuild_ratio.py [--rounds N]

The crate lives in target/rebuild-ratio and shares nothing with the workspace's own
target directory, so the timings are of that crate alone.
"""
import argparse
import os
import statistics
import subprocess
import time

import scratch_crate

CRATE = scratch_crate.make("rebuild-ratio")
FUNCTIONS = 20


def cached_fn(i, edit):
    return f"""
#[stratacache::cached(ttl = "15m", tags = ["users", "user:{{id}}"])]
pub async fn cached_{i}(id: u64) -> Result<User, String> {{
    Ok(User {{ id, name: format!("user {{}} from {i}", id + {edit}) }})
}}
"""


def plain_fn(i, edit):
    return f"""
pub async fn plain_{i}(id: u64) -> Result<User, String> {{
    Ok(User {{ id, name: format!("user {{}} from {i}", id + {edit}) }})
}}
"""


def write_source(cached_edit, plain_edit):
    parts = [
        "#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]\n"
        "pub struct User { pub id: u64, pub name: String }\n"
    ]
    for i in range(FUNCTIONS):
        parts.append(cached_fn(i, cached_edit if i == 0 else 0))
        parts.append(plain_fn(i, plain_edit if i == 0 else 0))
    with open(os.path.join(CRATE, "src", "lib.rs"), "w") as f:
        f.write("".join(parts))


def build():
    start = time.monotonic()
    subprocess.run(
        ["cargo", "build", "--quiet"],
        cwd=CRATE,
        check=True,
        env={**os.environ, "CARGO_INCREMENTAL": "1"},
    )
    return time.monotonic() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    rounds = parser.parse_args().rounds
    write_source(0, 0)
    build()  # dependencies and the first full build
    cached, plain = [], []
    for n in range(1, rounds + 1):
        write_source(n, n - 1)
        cached.append(build())
        write_source(n, n)
        plain.append(build())
    cached_median, plain_median = statistics.median(cached), statistics.median(plain)
    print(f"edit of a cached function: median {cached_median:.2f} s  {sorted(round(t, 2) for t in cached)}")
    print(f"edit of a plain function:  median {plain_median:.2f} s  {sorted(round(t, 2) for t in plain)}")
    print(f"ratio: {cached_median / plain_median:.2f}x")


if __name__ == "__main__":
    main()
