//! The first deploy of the schema-change demonstration (`tests/payloads.rs`):
//! `Account { id, balance }`. See `schema/run.rs`.

#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Account {
    id: u32,
    balance: u32,
}

include!("schema/run.rs");
