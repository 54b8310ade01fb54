//! The second deploy of the schema-change demonstration (`tests/payloads.rs`): the
//! same `Account` with its two `u32` fields swapped. postcard alone would read the
//! first deploy's `{ id: 7, balance: 700 }` as `{ balance: 7, id: 700 }`.

#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Account {
    balance: u32,
    id: u32,
}

include!("schema/run.rs");
