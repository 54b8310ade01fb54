//! The fingerprint of a value type's serde shape, recorded in every envelope, so a
//! deploy that changes the shape (fields reordered, renamed, retyped; variants
//! added) reads the previous deploy's entries as misses instead of misreading them.
//! postcard is not self-describing: two swapped `u32` fields decode without error.
//!
//! The shape is traced from the type's `Deserialize` impl with serde-reflection,
//! once per cache. That needs no derive or annotation from the user and sees what
//! the wire format sees: `#[serde(rename)]`, `skip`, a changed container. It fails
//! for types whose `Deserialize` inspects the input (`deserialize_any`:
//! `serde_json::Value`, untagged and internally tagged enums, `#[serde(flatten)]`)
//! or validates it (timestamps parsed from strings, `NonZero*`, checked newtypes);
//! for those, and any type containing one, the fingerprint falls back to the
//! type's name, and `version = N` remains the guard against a changed shape.

use serde::de::DeserializeOwned;
use serde_reflection::{Samples, Tracer, TracerConfig};
use xxhash_rust::xxh3::xxh3_64;

/// What a fingerprint was computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Traced {
    /// The full serde shape.
    Shape,
    /// The shape, with the variants of nested enums beyond their first missing;
    /// the type's name is added.
    Partial,
    /// Only the type's name: its shape could not be traced.
    NameOnly,
}

pub(crate) fn schema_fingerprint<V: DeserializeOwned>() -> (u64, Traced) {
    // A Deserialize impl that panics on the tracer's made-up input must not take
    // the first call of the cache with it.
    let traced = std::panic::catch_unwind(trace_shape::<V>).ok().flatten();
    match traced {
        Some((shape, traced)) => (xxh3_64(shape.as_bytes()), traced),
        None => {
            let name = format!("name-only:{}", std::any::type_name::<V>());
            (xxh3_64(name.as_bytes()), Traced::NameOnly)
        }
    }
}

/// The top-level format and every named container it reaches, as JSON (ordered:
/// the registry is a `BTreeMap`), and whether that is the whole shape.
///
/// serde-reflection completes the enum at the top level only: an enum reached
/// through a field, an `Option` or a `Vec` is traced at its first variant, and the
/// tracer never comes back to it. Its other variants are then missing from the
/// fingerprint (`Traced::Partial`), which still covers every struct, field and
/// type around them.
fn trace_shape<V: DeserializeOwned>() -> Option<(String, Traced)> {
    let samples = Samples::new();
    let mut tracer = Tracer::new(TracerConfig::default());
    let (format, _) = tracer.trace_type::<V>(&samples).ok()?;
    match tracer.registry() {
        Ok(registry) => Some((
            serde_json::to_string(&(format, registry)).ok()?,
            Traced::Shape,
        )),
        Err(serde_reflection::Error::MissingVariants(_)) => {
            let mut tracer = Tracer::new(TracerConfig::default());
            let (format, _) = tracer.trace_type::<V>(&samples).ok()?;
            let registry = tracer.registry_unchecked();
            let partial = (format, registry, std::any::type_name::<V>());
            Some((serde_json::to_string(&partial).ok()?, Traced::Partial))
        }
        Err(_) => None,
    }
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
        assert_eq!(print::<Vec<Role>>().1, Traced::Partial);
    }

    /// The documented limit: a nested enum is seen at its first variant only (the
    /// trace of `team_v2`'s changed later variant equals `team_v1`'s); a change of
    /// any field around it still changes the fingerprint.
    #[test]
    fn a_nested_enum_is_traced_at_its_first_variant_only() {
        assert_eq!(print::<team_v1::Team>().1, Traced::Partial);
        let shape = |trace: Option<(String, Traced)>| {
            let json: serde_json::Value = serde_json::from_str(&trace.unwrap().0).unwrap();
            (json[0].clone(), json[1].clone())
        };
        assert_eq!(
            shape(trace_shape::<team_v1::Team>()),
            shape(trace_shape::<team_v2::Team>())
        );
        assert_ne!(print::<team_v1::Team>().0, print::<team_v3::Team>().0);
    }

    #[test]
    fn untraceable_types_fall_back_to_their_name() {
        assert_eq!(print::<Untagged>().1, Traced::NameOnly);
        assert_eq!(print::<serde_json::Value>().1, Traced::NameOnly);
        assert_eq!(print::<std::num::NonZeroU32>().1, Traced::NameOnly);
        assert_ne!(print::<Untagged>().0, print::<serde_json::Value>().0);
    }
}
