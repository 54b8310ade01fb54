#!/usr/bin/env python3
"""How many lines `#[cached]` adds to the README's first function.

Expands a crate holding that function twice, with the attribute and without it
(`rustc -Zunpretty=expanded`, formatted by rustfmt), and prints the difference and,
with `--show`, the expansion itself.

    python3 scripts/expansion_lines.py [--show]
"""
import os

import scratch_crate
import subprocess
import sys

CRATE = scratch_crate.make("expansion-lines")

SOURCE = """#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct User;
#[derive(Debug)]
pub struct DbError;
mod db {
    pub async fn load_user(_id: u64) -> Result<super::User, super::DbError> {
        Ok(super::User)
    }
}

ATTRIBUTE
pub async fn get_user(id: u64) -> Result<User, DbError> {
    db::load_user(id).await
}
"""

ATTRIBUTE = '#[stratacache::cached(ttl = "15m", tags = ["users", "user:{id}"], stale_while_revalidate)]'


def expand(attribute):
    with open(os.path.join(CRATE, "src", "lib.rs"), "w") as f:
        f.write(SOURCE.replace("ATTRIBUTE", attribute))
    expanded = subprocess.run(
        ["cargo", "rustc", "--quiet", "--profile=check", "--", "-Zunpretty=expanded"],
        cwd=CRATE,
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "RUSTC_BOOTSTRAP": "1"},
    ).stdout
    formatted = subprocess.run(
        ["rustfmt", "--edition", "2021"], input=expanded, check=True, capture_output=True, text=True
    ).stdout
    return formatted


def function_part(expanded):
    """From the function on: what the derives expand to is the same either way."""
    lines = expanded.splitlines()
    start = next(i for i, line in enumerate(lines) if "fn get_user" in line)
    # Keep the attributes and doc lines just above the function.
    while start > 0 and lines[start - 1].lstrip().startswith("#["):
        start -= 1
    return lines[start:]


def main():
    plain = expand("")
    cached = expand(ATTRIBUTE)
    added = len(cached.splitlines()) - len(plain.splitlines())
    if "--show" in sys.argv:
        print("\n".join(function_part(cached)))
    print(f"lines with the attribute: {len(cached.splitlines())}, without: {len(plain.splitlines())}, added: {added}")


if __name__ == "__main__":
    main()
