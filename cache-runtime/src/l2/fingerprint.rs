//! The fingerprint of a value type's serde shape, recorded in every envelope, so a
//! deploy that changes the shape (fields reordered, renamed, retyped; variants
//! added) reads the previous deploy's entries as misses instead of misreading them.
//! postcard is not self-describing: two swapped `u32` fields decode without error.
//!
//! The shape is traced from the type's `Deserialize` impl (`shape_tracer.rs`),
//! once per cache, in as many passes as it takes to see every variant of every
//! enum, nested ones included. That needs no derive or annotation from the user and
//! sees what the wire format sees: `#[serde(rename)]`, `skip`, a changed container.
//! (serde-reflection was tried first: it completes only the top-level enum.) It
//! fails for types whose `Deserialize` inspects the input (`deserialize_any`:
//! `serde_json::Value`, untagged and internally tagged enums, `#[serde(flatten)]`)
//! or validates it (timestamps parsed from strings, `NonZero*`, checked newtypes);
//! for those, and any type containing one, the fingerprint falls back to the
//! type's name, and `version = N` remains the guard against a changed shape.

use std::fmt::Write;

use serde::de::DeserializeOwned;
use xxhash_rust::xxh3::xxh3_64;

use super::shape_tracer::{Registry, Tracer};

/// What a fingerprint was computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Traced {
    /// The full serde shape.
    Shape,
    /// The shape, with the variants no pass reached left out.
    Partial,
    /// Only the type's name: its shape could not be traced.
    NameOnly,
    /// Only the type's name: its `Deserialize` asks the input what it holds
    /// (`deserialize_any`), which postcard cannot answer, so its values are written
    /// in a self-describing format whatever the configured one.
    AsksItsInput,
}

impl Traced {
    /// Whether postcard can decode the type's values.
    pub(crate) fn needs_self_describing_format(self) -> bool {
        self == Traced::AsksItsInput
    }
}

pub(crate) fn schema_fingerprint<V: DeserializeOwned>() -> (u64, Traced) {
    // A Deserialize impl that panics on the tracer's made-up input must not take
    // the first call of the cache with it.
    let traced = std::panic::catch_unwind(trace_shape::<V>).unwrap_or(Err(Traced::NameOnly));
    match traced {
        Ok((shape, traced)) => (xxh3_64(shape.as_bytes()), traced),
        Err(traced) => {
            let name = format!("name-only:{}", std::any::type_name::<V>());
            (xxh3_64(name.as_bytes()), traced)
        }
    }
}

/// Enough passes for every variant of many nested enums; past it, the variants not
/// reached are left out (`Traced::Partial`).
const MAX_PASSES: usize = 1024;

/// The shape of the top-level value and of every named container it reaches; or
/// why there is none (`NameOnly` or `AsksItsInput`).
fn trace_shape<V: DeserializeOwned>() -> Result<(String, Traced), Traced> {
    let mut registry = Registry::default();
    let mut top = String::new();
    for _ in 0..MAX_PASSES {
        top.clear();
        let tracer = Tracer {
            registry: &mut registry,
            stack: &mut Vec::new(),
            out: &mut top,
            muted: false,
        };
        let pass = V::deserialize(tracer);
        if registry.asks_its_input {
            return Err(Traced::AsksItsInput);
        }
        pass.map_err(|_| Traced::NameOnly)?;
        if !aim_at_unseen_variants(&mut registry) {
            return Ok((describe(&top, &registry), Traced::Shape));
        }
    }
    Ok((describe(&top, &registry), Traced::Partial))
}

/// Points each enum's cursor at a variant not seen yet, and moves the cursor of an
/// enum seen in full on by one, so the paths through it to enums nested in its
/// variants are all taken again. False once every variant has been seen.
fn aim_at_unseen_variants(registry: &mut Registry) -> bool {
    let Registry { enums, cursors, .. } = registry;
    let mut unseen = false;
    for (name, shape) in enums.iter() {
        let count = shape.names.len().max(1);
        let next = match (0..count).find(|i| !shape.seen.contains_key(i)) {
            Some(variant) => {
                unseen = true;
                variant
            }
            None => (cursors.get(name).copied().unwrap_or(0) + 1) % count,
        };
        cursors.insert(name, next);
    }
    unseen
}

fn describe(top: &str, registry: &Registry) -> String {
    let mut text = format!("{top}\n");
    for (name, shapes) in &registry.containers {
        for shape in shapes {
            let _ = writeln!(text, "{name}={shape}");
        }
    }
    for (name, shape) in &registry.enums {
        let _ = write!(text, "enum {name}=");
        for (index, variant) in shape.names.iter().enumerate() {
            let seen = shape.seen.get(&index).map_or("?", String::as_str);
            let _ = write!(text, "{index}:{variant}:{seen}|");
        }
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    mod before {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        pub struct User {
            pub id: u32,
            pub age: u32,
        }
    }
    mod swapped {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        pub struct User {
            pub age: u32,
            pub id: u32,
        }
    }
    mod same {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        pub struct User {
            pub id: u32,
            pub age: u32,
        }
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    enum Role {
        Admin,
        Member { since: u64 },
    }
    #[derive(Deserialize)]
    #[allow(dead_code)]
    enum RoleAdded {
        Admin,
        Member { since: u64 },
        Guest,
    }
    /// The same container and enum names in two deploys; the second's nested enum
    /// gained a field in a variant that is neither the first nor at the top level.
    mod team_v1 {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        pub struct Team {
            pub roles: Vec<Role>,
            pub last: Option<Role>,
            pub kind: super::Kind,
        }
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        pub enum Role {
            Admin,
            Member { since: u64 },
        }
    }
    mod team_v3 {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        pub struct Team {
            pub roles: Vec<super::team_v1::Role>,
            pub last: Option<super::team_v1::Role>,
            pub kind: super::Kind,
            pub size: u32,
        }
    }
    mod team_v2 {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        pub struct Team {
            pub roles: Vec<Role>,
            pub last: Option<Role>,
            pub kind: super::Kind,
        }
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        pub enum Role {
            Admin,
            Member { since: u64, until: u64 },
        }
    }
    #[derive(Deserialize)]
    #[allow(dead_code)]
    enum Kind {
        Plain(u8),
        Nested(Option<Box<Kind>>),
    }
    #[derive(Deserialize)]
    #[allow(dead_code)]
    #[serde(untagged)]
    enum Untagged {
        A(u32),
        B(String),
    }

    fn print<V: DeserializeOwned>() -> (u64, Traced) {
        schema_fingerprint::<V>()
    }

    #[test]
    fn swapped_fields_change_the_fingerprint_and_equal_shapes_keep_it() {
        let (before, how) = print::<before::User>();
        assert_eq!(how, Traced::Shape);
        assert_ne!(before, print::<swapped::User>().0);
        assert_eq!(before, print::<same::User>().0, "same shape, other module");
        assert_ne!(print::<u32>().0, print::<u64>().0);
        assert_eq!(print::<std::sync::Arc<String>>().0, print::<String>().0);
        assert_ne!(print::<Vec<Role>>().0, print::<Vec<RoleAdded>>().0);
        assert_eq!(print::<Vec<Role>>().1, Traced::Shape);
        assert_ne!(print::<Vec<Role>>().0, print::<Vec<RoleAdded>>().0);
        assert_ne!(print::<Option<Role>>().0, print::<Option<RoleAdded>>().0);
    }

    /// A change in a later variant of an enum nested in a field, an `Option` and a
    /// `Vec` changes the fingerprint; so does a field around it.
    #[test]
    fn nested_enums_are_traced_in_full() {
        assert_eq!(print::<team_v1::Team>().1, Traced::Shape);
        assert_ne!(print::<team_v1::Team>().0, print::<team_v2::Team>().0);
        assert_ne!(print::<team_v1::Team>().0, print::<team_v3::Team>().0);
        let shape = trace_shape::<team_v2::Team>().unwrap().0;
        assert!(shape.contains("1:Member:since:u64,until:u64,|"), "{shape}");
    }

    /// A tree: the recursion is written as a reference and ends.
    #[test]
    fn recursive_types_are_traced() {
        let (_, traced) = print::<Kind>();
        assert_eq!(traced, Traced::Shape);
        assert_eq!(print::<Tree>().1, Traced::Shape);
        assert_ne!(print::<Tree>().0, print::<Kind>().0);
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Tree {
        label: String,
        children: Vec<Tree>,
        parent: Option<Box<Tree>>,
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    #[serde(tag = "kind")]
    enum InternallyTagged {
        Created { id: u64 },
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Flattened {
        id: u64,
        #[serde(flatten)]
        rest: std::collections::HashMap<String, u64>,
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct NestedInspection {
        id: u64,
        events: Vec<Option<InternallyTagged>>,
    }

    #[test]
    fn untraceable_types_fall_back_to_their_name() {
        assert_eq!(print::<std::num::NonZeroU32>().1, Traced::NameOnly);
        assert_ne!(print::<Untagged>().0, print::<serde_json::Value>().0);
    }

    /// What postcard cannot decode is told apart from what only validates its input.
    #[test]
    fn types_that_ask_their_input_what_it_holds_need_a_self_describing_format() {
        assert!(print::<Untagged>().1.needs_self_describing_format());
        assert!(print::<serde_json::Value>()
            .1
            .needs_self_describing_format());
        assert!(print::<InternallyTagged>().1.needs_self_describing_format());
        assert!(print::<Flattened>().1.needs_self_describing_format());
        assert!(print::<NestedInspection>().1.needs_self_describing_format());
        assert!(print::<Result<u8, serde::de::IgnoredAny>>()
            .1
            .needs_self_describing_format());
        for traced in [
            print::<std::num::NonZeroU32>().1,
            print::<team_v1::Team>().1,
            print::<Tree>().1,
            print::<String>().1,
        ] {
            assert!(!traced.needs_self_describing_format(), "{traced:?}");
        }
    }
}
