//! Everything stratacache reads from Redis, fed arbitrary bytes: the envelope, the
//! payload codecs (postcard and JSON, for a struct with a string, a vector and an
//! enum) and the backplane's messages. None may panic, loop or allocate without
//! bound; what they accept is up to them.

#![no_main]

use libfuzzer_sys::fuzz_target;
use stratacache_runtime::__fuzz;

#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct User {
    id: u64,
    name: String,
    roles: Vec<Role>,
    manager: Option<Box<User>>,
}

#[derive(Clone, serde::Serialize, serde::Deserialize)]
enum Role {
    Admin,
    Member { since: u32 },
}

fuzz_target!(|data: &[u8]| {
    let _ = __fuzz::envelope(data);
    let _ = __fuzz::sealed_envelope(data);
    let _ = __fuzz::value::<User>(data, false);
    let _ = __fuzz::value::<User>(data, true);
    let _ = __fuzz::value::<String>(data, false);
    let _ = __fuzz::message(&String::from_utf8_lossy(data));
});
