"""Takes each of the fleet's defences out of the code in turn and runs the fleet
checker's short form against it, to show what the checker catches (README, "What it
catches").

Each mutation is one edit of one file, checked to apply exactly once; the file is
restored afterwards, whatever happens. Run from the repository's root, with
nothing else building:

    python3 scripts/fleet_mutations.py            # every mutation, about 20 minutes
    python3 scripts/fleet_mutations.py cas        # one, by name

A mutation the checker does not catch is printed as "passed". Expected for:
`write_back_doom` (the compare-and-set covers it); `breaker_per_master`,
`subscribe_elsewhere` and `publish_elsewhere` (within the checker's bound;
tests/coherence.rs catches each); `resync_in_the_loop` and `leave_a_lost_owner`
(they lengthen the lag of the items a frozen master does not hold, within the
bound; README, "What it catches").
"""

import re
import subprocess
import sys
from pathlib import Path

MUTATIONS = {
    # The resync's tag part: the named tags' versions read from Redis are ignored.
    "resync_tags": (
        "cache-runtime/src/backplane/resync.rs",
        "cell.observe_remote(version);",
        "let _ = (cell, version);",
    ),
    # The resync's entry-change part: a missed entry change drops nothing.
    "resync_entries": (
        "cache-runtime/src/backplane/resync.rs",
        "registry::missed_entry_changes(name);",
        "let _ = name;",
    ),
    # The write-back's compare-and-set: the script writes whatever the key holds.
    "cas": (
        "cache-runtime/src/l2/replace.rs",
        "    if len ~= tonumber(ARGV[1]) then return 0 end \\\n"
        "    if len > 0 and redis.call('GETRANGE', KEYS[1], -8, -1) ~= ARGV[2] then return 0 end \\\n",
        "",
    ),
    # The landing's doom: an overtaken load's value is kept in its own L1.
    "landing_doom": (
        "cache-runtime/src/flights.rs",
        "if !flight.is_doomed() && tags::all_current(stamps) {",
        "if tags::all_current(stamps) {",
    ),
    # One circuit per cluster master: every key's commands go through one breaker,
    # which a master that is down opens for the others too.
    "breaker_per_master": (
        "cache-runtime/src/l2/routing.rs",
        "Some(&owner) if owner != UNKNOWN => map.nodes[usize::from(owner)].breaker.clone(),",
        "Some(&owner) if owner != UNKNOWN => self.shared.clone(),",
    ),
    # The backplane's way off a channel master that is down: it goes back to that
    # master for as long as the master's circuit is closed.
    "subscribe_elsewhere": (
        "cache-runtime/src/backplane/mod.rs",
        "Some(owner) if !owner_failed => owner,",
        "Some(owner) => owner,",
    ),
    # Connecting afresh beside the old cluster client: the new one is swapped in at
    # once, and holds every call while it connects to a hanging master.
    "connect_in_place": (
        "cache-runtime/src/l2/renewal.rs",
        "self.connect_beside(cluster);",
        "self.connect_afresh(cluster);",
    ),
    # The subscription's quick ping: every 2 s, answered within 1 s, as before.
    "slow_ping": (
        "cache-runtime/src/backplane/mod.rs",
        "Duration::from_millis(250);\nconst PING_ANSWER: Duration = Duration::from_millis(500);",
        "Duration::from_secs(2);\nconst PING_ANSWER: Duration = Duration::from_secs(1);",
    ),
    # The resync beside the listening: the loop waits for it, hearing nothing.
    "resync_in_the_loop": (
        "cache-runtime/src/backplane/mod.rs",
        "syncing.set(resync(l2, Hearing::Listening).fuse());",
        "if false { syncing.set(resync(l2, Hearing::Listening).fuse()); }"
        " resync(l2, Hearing::Listening).await;",
    ),
    # A message its channel's master fails goes elsewhere only once that master's
    # circuit is open.
    "publish_elsewhere": (
        "cache-runtime/src/l2/commands.rs",
        "if published.is_ok() {",
        "if published.is_ok() || self.is_cluster() {",
    ),
    # A subscription lost at the channel's master is made there again first.
    "leave_a_lost_owner": (
        "cache-runtime/src/backplane/mod.rs",
        "owner_failed = l2.subscribers.len() > 1",
        "owner_failed = false && l2.subscribers.len() > 1",
    ),
    # The write-back's doom alone: a doomed load still tries its compare-and-set.
    "write_back_doom": (
        "cache-runtime/src/engine/shared.rs",
        "        if flight.is_doomed() {\n            return;\n        }\n        // Not boxed here",
        "        // Not boxed here",
    ),
}


def run(*command):
    return subprocess.run(command, capture_output=True, text=True)


def fleet_short_form():
    """Builds the worker with the mutation and runs the short form: (passed, problems)."""
    build = run("cargo", "build", "-q", "--example", "fleet_worker")
    if build.returncode != 0:
        sys.exit(f"the mutated worker did not build:\n{build.stderr}")
    test = run("cargo", "test", "-q", "--test", "fleet", "the_fleet", "--", "--nocapture")
    problems = re.findall(r'^\s+"(.*)",$', test.stdout + test.stderr, re.MULTILINE)
    return test.returncode == 0, problems


def main():
    names = sys.argv[1:] or list(MUTATIONS)
    for name in names:
        path, old, new = MUTATIONS[name]
        file = Path(path)
        original = file.read_text()
        if original.count(old) != 1:
            sys.exit(f"{name}: the code to take out is not in {path} once; update this script")
        try:
            file.write_text(original.replace(old, new))
            passed, problems = fleet_short_form()
        finally:
            file.write_text(original)
        print(f"{name}: {'passed' if passed else 'caught'}")
        for problem in problems:
            print(f"    {problem}")
    # Leave the worker built from the code as it is.
    run("cargo", "build", "-q", "--example", "fleet_worker")


if __name__ == "__main__":
    main()
