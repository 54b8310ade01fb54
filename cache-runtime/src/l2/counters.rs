//! Tag counters in Redis: versions that never repeat, whatever Redis loses.
//!
//! An entry records the versions of its tags' counters, read before its load; it is
//! valid while each counter still holds the version it recorded. That is only sound
//! if a counter never takes a value it held before. Redis can lose counters: a
//! restart without persistence, a master of a cluster restarted empty, an eviction
//! under `maxmemory`. A plain `INCR` would then count 1, 2, 3 again, and an entry
//! recorded at 3 before the loss would validate again after three invalidations.
//!
//! So every value a counter takes is at least the current unix time in microseconds
//! of the process that writes it:
//! - an invalidation sets the counter to `max(counter + 1, now_µs)` (one script);
//! - a counter that is missing when a load reads it is created at `now_µs`
//!   (`SET NX GET`) before the loader runs, so no entry records a missing counter;
//! - a missing counter reads as [`MISSING`] (0), which no entry records, and which a
//!   process takes as "no information", never as a lower version.
//!
//! After a loss, the next value written is the writer's clock, which is past every
//! value written before the loss as long as the loss lasted longer than the clock
//! skew between the fleet's machines (milliseconds under NTP; a restart takes longer).
//! Processes compare versions with `>`, so they apply the next invalidation of any
//! tag after a loss as they would have before it, and entries stored before the loss
//! never validate again, in L1 or in Redis.

use super::{Fault, L2};

/// The version of a counter Redis does not hold.
pub(crate) const MISSING: u64 = crate::tags::NO_COUNTER;

/// `max(counter + 1, ARGV[1])`: the floor keeps a counter that Redis lost (and so
/// restarted from nothing) above every value it had before. `allow-oom`: Redis at
/// `maxmemory` under `noeviction` refuses writes, and an invalidation refused there
/// would wait in the outbox for as long as Redis stays full, every other process
/// serving what it superseded; a counter is a few bytes. (Script flags need Redis 7,
/// as `SET NX GET` below does.)
///
/// A named tag's bump is also logged: the namespace's count of bumps (`{ns}:bumps`)
/// is bumped the same way, and the count it took, the count before and the counter
/// are appended to `{ns}:bumped`, the list of the latest [`BUMPS_LOGGED`]. A resync
/// that finds the count where it was at its last read of the named tags knows none
/// has moved since, and one that finds it moved reads only the counters the list
/// names (see [`L2::bumped_since`]). On a standalone server one script does both
/// (`KEYS`: the counter, the count, the list), so no bump is ever seen without the
/// others. On a cluster the count and the list live in another slot than the
/// counter, so the log is a second call of the same script (`KEYS`: the count, the
/// list; `ARGV[3]`: the counter) made after the bump and its message
/// ([`L2::log_bump`]): a resync that reads the count, then the counters, reads every
/// counter bumped before the count it read moved.
const BUMP: &str = "#!lua flags=allow-oom\n\
    local floor = tonumber(ARGV[1]) \
    local function bump(key) \
      local current = tonumber(redis.call('GET', key) or '0') \
      if current < floor then redis.call('SET', key, ARGV[1]) return floor end \
      return redis.call('INCR', key) \
    end \
    local function log(count_key, list, counter) \
      local before = tonumber(redis.call('GET', count_key) or '0') \
      local count = bump(count_key) \
      redis.call('RPUSH', list, string.format('%d %d %s', count, before, counter)) \
      redis.call('LTRIM', list, -tonumber(ARGV[2]), -1) \
      return count \
    end \
    if ARGV[3] then return log(KEYS[1], KEYS[2], ARGV[3]) end \
    if KEYS[2] then log(KEYS[2], KEYS[3], KEYS[1]) end \
    return bump(KEYS[1])";

/// A cache's entry-change counter (`entry_changes.rs`) counts one by one, so that a
/// process can tell that it missed a change between two it heard of: unlike a tag's,
/// no entry records it, and only its order matters. A missing counter starts at
/// `ARGV[1]`, the writer's clock in µs rounded down to a multiple of
/// [`CHANGES_EPOCH`], so that its first change is known as one (see
/// [`is_first_change`]), and a counter Redis lost starts again above every value it
/// held (as long as the loss outlasted the clock skew, as with [`BUMP`]'s floor).
const COUNT_CHANGE: &str = "#!lua flags=allow-oom\n\
    if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SET', KEYS[1], ARGV[1]) end \
    return redis.call('INCR', KEYS[1])";

/// Where a cache's entry-change counter may start (see [`COUNT_CHANGE`]): 1,024 µs.
const CHANGES_EPOCH: u64 = 1024;

/// Whether `version` of an entry-change counter is the first change since the
/// counter was created: a process that read the counter missing takes it as
/// following what it read.
pub(crate) fn is_first_change(version: u64) -> bool {
    version % CHANGES_EPOCH == 1
}

/// How many bumps `{ns}:bumped` keeps: a resync that finds more since its last read
/// reads every named tag.
const BUMPS_LOGGED: usize = 1024;

/// The counters bumped since the count was `ARGV[1]`, newest first, after the count
/// now: walks `{ns}:bumped` back from its newest entry, whose count must be the count
/// now, each entry's count before being the count of the one before it, to the entry
/// whose count before is `ARGV[1]`. `"unknown"` after the count if that chain breaks
/// (a bump made without the list: a process of an earlier release), does not reach
/// back so far (more bumps than the list keeps), or the count is missing (Redis
/// restarted empty).
const BUMPED_SINCE: &str = "#!lua flags=no-writes\n\
    local since = tonumber(ARGV[1]) \
    local count = redis.call('GET', KEYS[1]) \
    if not count then return {'0', 'unknown'} end \
    local moved = {count, 'known'} \
    local want = tonumber(count) \
    for i = 1, tonumber(ARGV[2]) do \
      local entry = redis.call('LINDEX', KEYS[2], -i) \
      if not entry then break end \
      local at, before, counter = string.match(entry, '^(%d+) (%d+) (.+)$') \
      if tonumber(at) ~= want then break end \
      moved[#moved + 1] = counter \
      if tonumber(before) == since then return moved end \
      want = tonumber(before) \
    end \
    return {count, 'unknown'}";

/// What [`L2::bumped_since`] found.
pub(crate) enum Bumped {
    /// The count now, and the counters bumped since (a counter may come twice).
    Counters(u64, Vec<String>),
    /// Which counters moved is not known: every named tag must be read.
    Unknown,
}

/// Now in unix microseconds: the floor of every counter value written now.
pub(crate) fn floor() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Tag counters as read: a missing counter is [`MISSING`].
pub(crate) fn parse_versions(
    replies: impl IntoIterator<Item = Option<Vec<u8>>>,
) -> Result<Vec<u64>, Fault> {
    replies
        .into_iter()
        .map(|reply| {
            reply.map_or(Some(MISSING), |bytes| {
                std::str::from_utf8(&bytes).ok()?.parse().ok()
            })
        })
        .collect::<Option<Vec<u64>>>()
        .ok_or(Fault::Malformed)
}

impl L2 {
    /// The command that bumps `counter` to a version it never held, and, if it is a
    /// named tag's, on a standalone server, logs the bump (see [`BUMP`]). The other
    /// counters (a cache's, the global tag's, a cache's entry changes) are few, and
    /// every resync reads them anyway. A cache's entry changes are counted one by one
    /// ([`COUNT_CHANGE`]).
    pub(crate) fn bump_command(&self, counter: &str) -> redis::Cmd {
        let mut cmd = redis::cmd("EVAL");
        if super::keys::counts_entry_changes(&self.namespace, counter) {
            let now = floor();
            cmd.arg(COUNT_CHANGE)
                .arg(1)
                .arg(counter)
                .arg(now - now % CHANGES_EPOCH);
            return cmd;
        }
        if self.is_named(counter) && !self.is_cluster() {
            cmd.arg(BUMP)
                .arg(3)
                .arg(counter)
                .arg(self.bumps_key())
                .arg(self.bumped_key());
        } else {
            cmd.arg(BUMP).arg(1).arg(counter);
        }
        cmd.arg(floor()).arg(BUMPS_LOGGED);
        cmd
    }

    /// On a cluster, logs the bump of a named tag's counter, once it has succeeded
    /// (see [`BUMP`]); a no-op elsewhere. A bump whose log failed is to be made again
    /// with its log: a bump more is one more invalidation of the tag, an unlogged one
    /// a lost message that only a full resync finds.
    pub(crate) async fn log_bump(&self, counter: &str) -> Result<(), Fault> {
        if !self.is_named(counter) || !self.is_cluster() {
            return Ok(());
        }
        let (count, list) = (self.bumps_key(), self.bumped_key());
        let (count, list) = (count.as_str(), list.as_str());
        self.call(Some(count), |mut connection| async move {
            redis::cmd("EVAL")
                .arg(BUMP)
                .arg(2)
                .arg(count)
                .arg(list)
                .arg(floor())
                .arg(BUMPS_LOGGED)
                .arg(counter)
                .query_async::<u64>(&mut connection)
                .await
        })
        .await
        .map(drop)
    }

    /// Whether a bump of `counter` is in the namespace's log of bumps once
    /// [`log_bump`](Self::log_bump) returns: a named tag's is, so another process's
    /// resync finds it without its message.
    pub(crate) fn bump_is_logged(&self, counter: &str) -> bool {
        self.is_named(counter)
    }

    fn is_named(&self, counter: &str) -> bool {
        super::keys::tag_name(&self.namespace, counter).is_some()
    }

    /// The named tags' counters bumped since the namespace's count of bumps was
    /// `since`. A bump of the count made other than by [`BUMP`] breaks the list's
    /// chain: every counter is to be read. A counter moved alone (an `INCR` by hand,
    /// or on a cluster a process of an earlier release, which logged nothing) is not
    /// listed: the resync's periodic full read finds it.
    pub(crate) async fn bumped_since(&self, since: u64) -> Result<Bumped, Fault> {
        let (count, list) = (self.bumps_key(), self.bumped_key());
        let (count, list) = (count.as_str(), list.as_str());
        let reply: Vec<String> = self
            .call(Some(count), |mut connection| async move {
                redis::cmd("EVAL")
                    .arg(BUMPED_SINCE)
                    .arg(2)
                    .arg(count)
                    .arg(list)
                    .arg(since)
                    .arg(BUMPS_LOGGED)
                    .query_async(&mut connection)
                    .await
            })
            .await?;
        let mut reply = reply.into_iter();
        let count = reply.next().and_then(|count| count.parse().ok());
        match (count, reply.next().as_deref()) {
            (Some(count), Some("known")) => Ok(Bumped::Counters(count, reply.collect())),
            (Some(_), Some("unknown")) => Ok(Bumped::Unknown),
            _ => Err(Fault::Malformed),
        }
    }

    /// The namespace's count of named tags' bumps ([`super::keys::bumps`]).
    pub(crate) fn bumps_key(&self) -> String {
        super::keys::bumps(&self.namespace, self.is_cluster())
    }

    fn bumped_key(&self) -> String {
        super::keys::bumped(&self.namespace, self.is_cluster())
    }

    /// Creates the counters among `counters` that read as missing (`versions` holds
    /// what was read, in the same order) and fills in the version each now has. One
    /// `SET NX GET` per missing counter, sent together; a counter created meanwhile
    /// by another process keeps that process's value.
    pub(crate) async fn settle(
        &self,
        counters: &[&str],
        versions: &mut [u64],
    ) -> Result<(), Fault> {
        let missing: Vec<usize> = (0..versions.len())
            .filter(|&i| versions[i] == MISSING)
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        if self.is_cluster() && self.any_refused(missing.iter().map(|&i| counters[i])) {
            return Err(Fault::Open);
        }
        let floor = floor();
        let creates = missing.iter().map(|&i| {
            let counter = counters[i];
            self.call(Some(counter), move |mut connection| async move {
                redis::cmd("SET")
                    .arg(counter)
                    .arg(floor)
                    .arg("NX")
                    .arg("GET")
                    .query_async::<Option<u64>>(&mut connection)
                    .await
            })
        });
        let created = futures_util::future::try_join_all(creates).await?;
        for (&i, existing) in missing.iter().zip(created) {
            versions[i] = existing.unwrap_or(floor);
        }
        Ok(())
    }

    /// The current versions of `counters`, created where missing: what a write that
    /// did not go through a load (`put!`, the tags a loader added) records.
    pub(crate) async fn settled_versions(&self, counters: &[String]) -> Result<Vec<u64>, Fault> {
        let mut versions = self.versions(counters).await?;
        let counters: Vec<&str> = counters.iter().map(String::as_str).collect();
        self.settle(&counters, &mut versions).await?;
        Ok(versions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_counter_reads_as_missing_and_garbage_is_malformed() {
        let read = parse_versions([None, Some(b"17".to_vec())]).unwrap();
        assert_eq!(read, [MISSING, 17]);
        assert!(parse_versions([Some(b"x".to_vec())]).is_err());
    }

    #[test]
    fn the_floor_is_unix_microseconds() {
        // 2020-01-01 in µs: a floor below it would be seconds or milliseconds.
        assert!(floor() > 1_577_836_800_000_000);
    }
}
