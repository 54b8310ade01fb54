//! A `Deserializer` that makes up a value of any derived type and writes down the
//! shape it was asked for: the calls a type's `Deserialize` makes are exactly what a
//! non-self-describing format such as postcard relies on.
//!
//! One pass deserializes one value: every `Option` is `Some`, every sequence and
//! map holds one element, and each enum takes the variant its cursor names, so a
//! pass sees one variant per enum. [`Registry`] keeps what every pass saw, and the
//! cursors move to the variants not yet seen (see `fingerprint.rs`).
//!
//! A container met again inside itself (a tree) is written as a reference, and its
//! value is made "muted": `None`, empty sequences and maps, the first variant.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

/// Deeper than this, the type is given up on (a recursion the muted mode cannot
/// end, such as an enum whose first variant contains itself).
const MAX_DEPTH: usize = 96;

/// Why a pass could not trace the type: serde's plain message error.
pub(crate) type Untraceable = de::value::Error;

/// An enum's variants: their names, and the shape of each one seen so far.
#[derive(Debug, Default)]
pub(crate) struct EnumShape {
    pub(crate) names: Vec<&'static str>,
    pub(crate) seen: BTreeMap<usize, String>,
}

/// Everything the passes saw, by container name.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    /// Structs, tuple and newtype structs: one entry per distinct shape (two types
    /// of one name in different modules stay apart).
    pub(crate) containers: BTreeMap<&'static str, BTreeSet<String>>,
    pub(crate) enums: BTreeMap<&'static str, EnumShape>,
    /// The variant each enum takes in the next pass.
    pub(crate) cursors: BTreeMap<&'static str, usize>,
    /// The type made a call postcard does not answer (see `asks_its_input`).
    pub(crate) asks_its_input: bool,
}

/// The tracer of one pass, writing the shape of the value it makes into `out`.
pub(crate) struct Tracer<'a> {
    pub(crate) registry: &'a mut Registry,
    pub(crate) stack: &'a mut Vec<&'static str>,
    pub(crate) out: &'a mut String,
    pub(crate) muted: bool,
}

impl Tracer<'_> {
    /// A call postcard does not answer: the type's values need a self-describing
    /// format, and its shape is not traced.
    fn asks_its_input<T>(self, call: &str) -> Result<T, Untraceable> {
        self.registry.asks_its_input = true;
        Err(de::Error::custom(format!(
            "the type asks its input ({call})"
        )))
    }

    /// The same tracer, borrowed for one nested value.
    fn reborrow(&mut self) -> Tracer<'_> {
        Tracer {
            registry: self.registry,
            stack: self.stack,
            out: self.out,
            muted: self.muted,
        }
    }

    /// A tracer writing into `out`, muted if this one is or `muted` says so.
    fn child<'b>(&'b mut self, out: &'b mut String, muted: bool) -> Tracer<'b> {
        Tracer {
            registry: self.registry,
            stack: self.stack,
            out,
            muted: self.muted || muted,
        }
    }

    /// Traces a named container: its shape goes to the registry under `name`, and
    /// the name to the enclosing shape. Met inside itself, it is traced muted.
    fn named<T>(
        mut self,
        kind: &str,
        name: &'static str,
        trace: impl FnOnce(Tracer<'_>) -> Result<T, Untraceable>,
    ) -> Result<T, Untraceable> {
        if self.stack.len() > MAX_DEPTH {
            return Err(de::Error::custom(format!(
                "{name} nests deeper than {MAX_DEPTH}"
            )));
        }
        let _ = write!(self.out, "{kind} {name},");
        let recursive = self.stack.contains(&name);
        self.stack.push(name);
        let mut shape = String::new();
        let traced = trace(self.child(&mut shape, recursive));
        self.stack.pop();
        if !self.muted && !recursive && traced.is_ok() && kind != "enum" {
            let shapes = self.registry.containers.entry(name).or_default();
            shapes.insert(shape);
        }
        traced
    }
}

macro_rules! primitive {
    ($($method:ident => $visit:ident($($value:expr)?), $label:literal;)*) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Untraceable> {
            self.out.push_str(concat!($label, ","));
            visitor.$visit($($value)?)
        })*
    };
}

impl<'de> de::Deserializer<'de> for Tracer<'_> {
    type Error = Untraceable;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Untraceable> {
        self.asks_its_input("deserialize_any")
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Untraceable> {
        self.asks_its_input("deserialize_ignored_any")
    }

    /// A field name read from the input (`#[serde(flatten)]`), not from the type.
    fn deserialize_identifier<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Untraceable> {
        self.asks_its_input("deserialize_identifier outside a struct or enum")
    }

    primitive! {
        deserialize_bool => visit_bool(false), "bool";
        deserialize_i8 => visit_i8(0), "i8";
        deserialize_i16 => visit_i16(0), "i16";
        deserialize_i32 => visit_i32(0), "i32";
        deserialize_i64 => visit_i64(0), "i64";
        deserialize_i128 => visit_i128(0), "i128";
        deserialize_u8 => visit_u8(0), "u8";
        deserialize_u16 => visit_u16(0), "u16";
        deserialize_u32 => visit_u32(0), "u32";
        deserialize_u64 => visit_u64(0), "u64";
        deserialize_u128 => visit_u128(0), "u128";
        deserialize_f32 => visit_f32(0.0), "f32";
        deserialize_f64 => visit_f64(0.0), "f64";
        deserialize_char => visit_char('a'), "char";
        deserialize_str => visit_str(""), "str";
        deserialize_string => visit_str(""), "str";
        deserialize_bytes => visit_bytes(&[]), "bytes";
        deserialize_byte_buf => visit_bytes(&[]), "bytes";
        deserialize_unit => visit_unit(), "unit";
    }

    fn deserialize_option<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, Untraceable> {
        if self.muted {
            return visitor.visit_none();
        }
        let mut inner = String::new();
        let value = visitor.visit_some(self.child(&mut inner, false))?;
        let _ = write!(self.out, "option({inner}),");
        Ok(value)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Untraceable> {
        sequence(self, "seq", None, visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Untraceable> {
        sequence(self, "tuple", Some(len), visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, Untraceable> {
        let mut inner = String::new();
        let left = usize::from(!self.muted);
        let value = visitor.visit_map(Entries {
            tracer: self.child(&mut inner, false),
            fields: None,
            left,
        })?;
        let _ = write!(self.out, "map({inner}),");
        Ok(value)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Untraceable> {
        self.named("unit", name, |_| visitor.visit_unit())
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Untraceable> {
        self.named("newtype", name, |inner| visitor.visit_newtype_struct(inner))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Untraceable> {
        self.named("tuple", name, |inner| {
            sequence(inner, "fields", Some(len), visitor)
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Untraceable> {
        self.named("struct", name, |tracer| {
            visitor.visit_map(Entries {
                tracer,
                fields: Some(fields),
                left: fields.len(),
            })
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Untraceable> {
        self.named("enum", name, |mut tracer| {
            let chosen = if tracer.muted {
                0
            } else {
                let shape = tracer.registry.enums.entry(name).or_default();
                shape.names = variants.to_vec();
                tracer.registry.cursors.get(name).copied().unwrap_or(0)
            };
            let variant = *variants
                .get(chosen)
                .ok_or_else(|| de::Error::custom(format!("{name} has no variant {chosen}")))?;
            let mut shape = String::new();
            let value = visitor.visit_enum(Variant {
                tracer: tracer.child(&mut shape, false),
                variant,
            })?;
            if !tracer.muted {
                let seen = &mut tracer.registry.enums.entry(name).or_default().seen;
                seen.insert(chosen, shape);
            }
            Ok(value)
        })
    }

    fn is_human_readable(&self) -> bool {
        false
    }
}

/// A sequence of `len` elements, or of one (none when muted) if the type says no
/// length (a `Vec`, a set).
fn sequence<'de, V: Visitor<'de>>(
    mut tracer: Tracer<'_>,
    kind: &str,
    len: Option<usize>,
    visitor: V,
) -> Result<V::Value, Untraceable> {
    let mut inner = String::new();
    let left = len.unwrap_or(usize::from(!tracer.muted));
    let value = visitor.visit_seq(Elements {
        tracer: tracer.child(&mut inner, false),
        left,
    })?;
    let _ = write!(tracer.out, "{kind}({inner}),");
    Ok(value)
}

struct Elements<'a> {
    tracer: Tracer<'a>,
    left: usize,
}

impl<'de> de::SeqAccess<'de> for Elements<'_> {
    type Error = Untraceable;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Untraceable> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(self.tracer.reborrow()).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

/// A struct's fields by name, or a map's entries.
struct Entries<'a> {
    tracer: Tracer<'a>,
    fields: Option<&'static [&'static str]>,
    left: usize,
}

impl<'de> de::MapAccess<'de> for Entries<'_> {
    type Error = Untraceable;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Untraceable> {
        if self.left == 0 {
            return Ok(None);
        }
        match self.fields {
            Some(fields) => {
                let field = fields[fields.len() - self.left];
                let _ = write!(self.tracer.out, "{field}:");
                seed.deserialize(field.into_deserializer()).map(Some)
            }
            None => seed.deserialize(self.tracer.reborrow()).map(Some),
        }
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<T::Value, Untraceable> {
        self.left -= 1;
        seed.deserialize(self.tracer.reborrow())
    }
}

struct Variant<'a> {
    tracer: Tracer<'a>,
    variant: &'static str,
}

impl<'de, 'a> de::EnumAccess<'de> for Variant<'a> {
    type Error = Untraceable;
    type Variant = Self;

    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Self), Untraceable> {
        let variant = seed.deserialize(self.variant.into_deserializer())?;
        Ok((variant, self))
    }
}

impl<'de> de::VariantAccess<'de> for Variant<'_> {
    type Error = Untraceable;

    fn unit_variant(self) -> Result<(), Untraceable> {
        self.tracer.out.push_str("unit,");
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, Untraceable> {
        seed.deserialize(self.tracer)
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Untraceable> {
        sequence(self.tracer, "tuple", Some(len), visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Untraceable> {
        visitor.visit_map(Entries {
            tracer: self.tracer,
            fields: Some(fields),
            left: fields.len(),
        })
    }
}
