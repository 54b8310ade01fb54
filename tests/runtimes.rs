//! A process whose runtimes come and go, as a test binary's `#[tokio::test]`s do:
//! the Redis tier's connection outlives the runtime that first used it. In a process
//! of its own (`init` is process-wide).

mod support;

use stratacache::cached;
use support::RedisServer;

#[cached(ttl = "1m", name = "runtimes.get")]
async fn get(id: u64) -> u64 {
    id * 2
}

fn l2_errors() -> u64 {
    let stats = stratacache::stats();
    let cache = stats.caches.iter().find(|c| c.name == "runtimes.get");
    cache.map_or(0, |c| c.l2_errors)
}

#[test]
fn a_runtime_that_ends_takes_no_redis_connection_with_it() {
    let server = RedisServer::start();
    for round in 0..3u64 {
        // Each round its own runtime, current-thread and without a timer, as a test's
        // may be; the first one calls `init`.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap();
        runtime.block_on(async {
            if round == 0 {
                let config = stratacache::Config::default()
                    .redis_url(server.url())
                    .namespace("runtimes");
                stratacache::init(config).unwrap();
            }
            for id in 0..3 {
                assert_eq!(get(round * 10 + id).await, (round * 10 + id) * 2);
            }
            stratacache::flush_writes().await;
        });
        drop(runtime);
        assert_eq!(
            l2_errors(),
            0,
            "round {round}: a Redis call failed on a connection of a runtime that ended"
        );
    }
    let mut redis = redis::Client::open(server.url()).unwrap();
    let written: Vec<String> = redis::cmd("KEYS")
        .arg("runtimes:runtimes.get:*")
        .query(&mut redis)
        .unwrap();
    assert_eq!(written.len(), 9, "every value reached Redis: {written:?}");
}
