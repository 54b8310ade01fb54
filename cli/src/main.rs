//! `stratacache-cli`: looks inside a stratacache Redis namespace (the caches, an
//! entry decoded, tag counters), invalidates entries and tags, and clears caches.
//! [`USAGE`], which `--help` prints, lists the commands and options. On a Redis
//! Cluster, any node's URL (or the node list) will do: every master is scanned.

mod entry;
mod invalidate;
mod key;
mod nodes;
mod scan;

struct Options {
    redis: String,
    namespace: String,
    secret: Option<String>,
    /// The PEM of the private CA a `rediss://` server's certificate is checked against.
    root_cert: Option<Vec<u8>>,
}

/// What `--help` prints, and the first line of what a wrong command line fails with.
const USAGE: &str = "\
usage: stratacache-cli [--redis URL] [--namespace NS] [--secret LIST] [--ca-file PEM] COMMAND

commands:
  inspect                    the caches: entries (SCAN), bytes (MEMORY USAGE), tag counters
  entry CACHE KEY_JSON       one entry decoded: times, tags (recorded and current), payload,
                             signature
  tags PATTERN               tag counters matching a glob, with their versions
  invalidate CACHE KEY_JSON  one entry, found as `entry` finds it, as invalidate!
  invalidate-tag TAG         through the same counter and message as invalidate_tag!
  clear CACHE                every entry of one cache (its name as `inspect` lists it), as clear!
  clear-all                  every entry of every cache of the namespace, as clear_all()

options (defaults from the environment):
  --redis URL                STRATACACHE_REDIS_URL; on a Redis Cluster, any node's URL
  --namespace NS             STRATACACHE_NAMESPACE, else stratacache
  --secret LIST              STRATACACHE_SECRET, to check signed entries
  --ca-file PEM              STRATACACHE_REDIS_CA_FILE: the private CA of a rediss:// server
                             (else the system's trust store)

Every answer is one JSON document on stdout.";

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut options = Options {
        redis: std::env::var("STRATACACHE_REDIS_URL").unwrap_or_default(),
        namespace: std::env::var("STRATACACHE_NAMESPACE").unwrap_or_else(|_| "stratacache".into()),
        secret: std::env::var("STRATACACHE_SECRET").ok(),
        root_cert: None,
    };
    let mut ca_file = std::env::var_os("STRATACACHE_REDIS_CA_FILE");
    // Options come first: what follows the command is its arguments, a tag `-h` too.
    while args.first().is_some_and(|a| a.starts_with('-')) {
        let flag = args.remove(0);
        match flag.as_str() {
            "--help" | "-h" => return print_out(USAGE),
            "--version" | "-V" => {
                return print_out(&format!("stratacache-cli {}", env!("CARGO_PKG_VERSION")))
            }
            _ => {}
        }
        let value = if args.is_empty() {
            fail(&format!("{flag} needs a value"))
        } else {
            args.remove(0)
        };
        match flag.as_str() {
            "--redis" => options.redis = value,
            "--namespace" => options.namespace = value,
            "--secret" => options.secret = Some(value),
            "--ca-file" => ca_file = Some(value.into()),
            other => fail(&format!("unknown option {other}")),
        }
    }
    if let Some(path) = ca_file.map(std::path::PathBuf::from) {
        let pem = std::fs::read(&path)
            .unwrap_or_else(|e| fail(&format!("cannot read the CA file {}: {e}", path.display())));
        options.root_cert = Some(pem);
    }
    if options.redis.is_empty() {
        fail("no Redis: give --redis URL or set STRATACACHE_REDIS_URL");
    }
    let answer = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["inspect"] => scan::inspect(&options),
        ["entry", cache, key] => entry::show(&options, cache, key),
        ["tags", pattern] => scan::tags(&options, pattern),
        ["invalidate", cache, key] => invalidate::entry(&options, cache, key),
        ["invalidate-tag", tag] => invalidate::tag(&options, tag),
        ["clear", cache] => invalidate::cache(&options, cache),
        ["clear-all"] => invalidate::all(&options),
        _ => fail(USAGE.lines().next().expect("a usage line")),
    };
    match answer {
        Ok(value) => print_out(&serde_json::to_string_pretty(&value).expect("JSON")),
        Err(error) => fail(&error),
    }
}

/// This machine's clock in unix milliseconds, against which entries' times are read
/// (`entry` and `inspect` both: neither module imports the other for it).
fn unix_ms_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One answer and a newline on stdout. A reader that went away (`| head`) ends the
/// process quietly, as for any Unix tool, where `println!` would panic.
fn print_out(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(error) => fail(&format!("cannot write the answer: {error}")),
    }
}

fn fail(message: &str) -> ! {
    eprintln!("stratacache-cli: {message}");
    std::process::exit(2);
}
