//! A process whose runtimes come and go, as a test binary's `#[tokio::test]`s do:
//! no Redis call fails on a connection of a runtime that ended. Run on a standalone
//! server (`runtimes/main.rs`) and on a cluster (`runtimes_cluster/main.rs`), each in
//! a process of its own (`init` is process-wide).

use stratacache::cached;

use crate::support::Deployment;

#[cached(ttl = "1m", name = "runtimes.get")]
async fn get(id: u64) -> u64 {
    id * 2
}

fn l2_errors() -> u64 {
    let stats = stratacache::stats();
    let cache = stats.caches.iter().find(|c| c.name == "runtimes.get");
    cache.map_or(0, |c| c.l2_errors)
}

pub fn a_runtime_that_ends_takes_no_redis_connection_with_it(cluster: bool) {
    let server = Deployment::start(cluster, None);
    for round in 0..3u64 {
        // Each round its own runtime, as each `#[tokio::test]` has; the first calls
        // `init`.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
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
    let written = server.keys("runtimes:runtimes.get:*");
    assert_eq!(written.len(), 9, "every value reached Redis: {written:?}");

    // Then no runtime at all: sync code drives an entry macro's future with
    // `block_on`, as the README shows. Its Redis calls run on the tier's own runtime.
    let sync_code = std::thread::spawn(|| {
        let invalidated = stratacache::block_on(stratacache::invalidate_tag!("runtimes:{}", 7));
        let peeked = stratacache::block_on(stratacache::peek!(get(21)));
        (invalidated.is_ok(), peeked)
    });
    let (invalidated, peeked) = sync_code.join().expect("no panic outside a runtime");
    assert!(invalidated);
    assert_eq!(peeked, Some(42), "peek! found the value of round 2");
    assert_eq!(
        stratacache::stats().outbox.pending,
        0,
        "delivered, not queued"
    );
    assert!(
        !server.get("runtimes:tag:runtimes:7").is_empty(),
        "the tag's counter is in Redis"
    );
    assert_eq!(l2_errors(), 0);
}
