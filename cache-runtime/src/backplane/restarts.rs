//! A Redis server running anew with data from before. Restarted from a snapshot or
//! an append-only log, or a replica promoted before it had caught up, it lost the
//! writes made since: a counter gone back is found by the resync (`rollback`), but
//! not an entry's tombstone or value lost on a master where no counter of its cache
//! lives (on a cluster, the cache's entry-change counter is on another master), nor
//! a counter that came back missing (the snapshot predates it): the entry an
//! `invalidate!`, `put!` or `refresh!` had replaced validated again. So each resync
//! asks every master which run it is (`L2::runs`), and a run not seen before:
//! - with data, has the entry-level invalidations of every cache this process knows
//!   changed made again, each by one process of the fleet (the first to claim it);
//! - with or without, has the next resync read every named tag, so that one gone back
//!   there is found in every process, not only in those whose calls found it down.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::future::join_all;
use parking_lot::Mutex;

use super::rollback;
use crate::l2::runs::Run;
use crate::l2::{keys, Node, L2};
use crate::{entry_changes, registry};

/// The run last seen at each master's address; `None` until one answered.
static SEEN: Mutex<Option<HashMap<String, String>>> = Mutex::new(None);

/// How many runs not seen before were found: a change asks for a read of every named
/// tag (`resync`).
static RUNS_ANEW: AtomicU64 = AtomicU64::new(0);

pub(super) fn runs_anew() -> u64 {
    RUNS_ANEW.load(Ordering::Acquire)
}

/// Asks every master but those in `left` which run it is, and acts on the new ones.
pub(super) async fn check(l2: &'static L2, left: &HashSet<Node>) {
    let runs = l2.runs(left).await;
    let anew = new_runs(&mut SEEN.lock(), runs);
    if anew.is_empty() {
        return;
    }
    RUNS_ANEW.fetch_add(1, Ordering::AcqRel);
    tracing::info!(
        servers = anew.len(),
        "stratacache: a Redis server runs anew (restarted, or a replica promoted); every named tag is read at the next resync"
    );
    let changed: Vec<String> = registry::cache_tags()
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| entry_changes::highest_known(name).is_some())
        .collect();
    for run in anew.iter().filter(|run| run.with_data) {
        let claims = changed.iter().map(|cache| async move {
            let key = keys::made_again(&l2.namespace, cache, &run.id);
            l2.claim(&key).await.then(|| cache.clone())
        });
        let claimed: Vec<String> = join_all(claims).await.into_iter().flatten().collect();
        rollback::make_entry_changes_again(l2, &claimed);
    }
}

/// Takes in the runs that answered; returns those not seen before at their address.
/// The first answer is what was running when this process started: nothing new.
fn new_runs(seen: &mut Option<HashMap<String, String>>, runs: Vec<(String, Run)>) -> Vec<Run> {
    if runs.is_empty() {
        return Vec::new();
    }
    let first = seen.is_none();
    let seen = seen.get_or_insert_with(HashMap::new);
    runs.into_iter()
        .filter(|(address, run)| {
            seen.insert(address.clone(), run.id.clone()).as_ref() != Some(&run.id)
        })
        .filter(|_| !first)
        .map(|(_, run)| run)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: &str, with_data: bool) -> Run {
        Run {
            id: id.to_owned(),
            with_data,
        }
    }

    #[test]
    fn a_run_is_new_once_the_first_answer_is_taken_in() {
        let mut seen = None;
        let first = vec![("a".to_owned(), run("1", true))];
        assert!(
            new_runs(&mut seen, first.clone()).is_empty(),
            "running at start"
        );
        assert!(new_runs(&mut seen, first).is_empty(), "the same run");
        let restarted = vec![("a".to_owned(), run("2", true))];
        assert_eq!(new_runs(&mut seen, restarted.clone()), [run("2", true)]);
        assert!(new_runs(&mut seen, restarted).is_empty(), "new once");
    }

    #[test]
    fn a_master_first_heard_after_the_start_is_a_new_run() {
        let mut seen = None;
        assert!(new_runs(&mut seen, Vec::new()).is_empty());
        assert!(new_runs(&mut seen, vec![("a".to_owned(), run("1", false))]).is_empty());
        // A replica promoted: another address for the slots.
        let promoted = vec![
            ("a".to_owned(), run("1", false)),
            ("b".to_owned(), run("7", true)),
        ];
        assert_eq!(new_runs(&mut seen, promoted), [run("7", true)]);
    }
}
