//! A tag's name: inline when short, as most `entity:{id}` tags are. A cell holds its
//! name so, and a call's tags are made so: a constant tag borrowed, a formatted one
//! written in place, with no allocation unless it is long.

use std::fmt::{self, Write};

/// Names up to this many bytes are held inline.
const INLINE: usize = 22;

/// A tag's name (see the module's doc): 24 bytes whichever way it is held.
#[derive(Clone, Debug)]
pub enum TagName {
    /// A tag with no argument, borrowed from the attribute.
    Constant(&'static str),
    Inline {
        len: u8,
        bytes: [u8; INLINE],
    },
    Heap(Box<str>),
}

impl TagName {
    pub(crate) fn new(name: &str) -> Self {
        let mut held = Self::empty();
        held.push(name);
        held
    }

    /// A call's tag, from its template: borrowed when it has no argument, else
    /// formatted in place.
    pub(crate) fn from_template(template: fmt::Arguments<'_>) -> Self {
        if let Some(constant) = template.as_str() {
            return Self::Constant(constant);
        }
        let mut held = Self::empty();
        // Writing to a `TagName` cannot fail; only a `Display` that errs can, and the
        // name keeps what it wrote (where `format!` would panic).
        let _ = held.write_fmt(template);
        held
    }

    fn empty() -> Self {
        Self::Inline {
            len: 0,
            bytes: [0; INLINE],
        }
    }

    /// Appends `part`: in place while it fits, then on the heap.
    fn push(&mut self, part: &str) {
        match self {
            Self::Inline { len, bytes } if usize::from(*len) + part.len() <= INLINE => {
                let start = usize::from(*len);
                bytes[start..start + part.len()].copy_from_slice(part.as_bytes());
                *len += part.len() as u8;
            }
            _ => {
                let mut grown = String::with_capacity(self.as_bytes().len() + part.len());
                grown.push_str(self.as_str());
                grown.push_str(part);
                *self = Self::Heap(grown.into_boxed_str());
            }
        }
    }

    /// The name's bytes: what a tag's slot hashes and its index compares, with no
    /// UTF-8 check.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Constant(name) => name.as_bytes(),
            Self::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Self::Heap(name) => name.as_bytes(),
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        // Copied whole from `str`s: always valid.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }
}

impl Write for TagName {
    fn write_str(&mut self, part: &str) -> fmt::Result {
        self.push(part);
        Ok(())
    }
}

impl std::ops::Deref for TagName {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_inline_and_long_ones_on_the_heap() {
        for name in ["", "user:7", "é:ü", "a".repeat(INLINE).as_str()] {
            let held = TagName::new(name);
            assert!(matches!(held, TagName::Inline { .. }), "{name}");
            assert_eq!(held.as_str(), name);
        }
        let long = "tenant:7:user:1234567890";
        let held = TagName::new(long);
        assert!(matches!(held, TagName::Heap(_)));
        assert_eq!(held.as_str(), long);
        assert!(std::mem::size_of::<TagName>() <= 24);
    }

    #[test]
    fn a_template_is_borrowed_when_constant_and_formatted_in_place_when_short() {
        let constant = TagName::from_template(format_args!("users"));
        assert!(matches!(constant, TagName::Constant("users")));
        let id = 1_234_567u64;
        let short = TagName::from_template(format_args!("user:{id}"));
        assert!(matches!(short, TagName::Inline { .. }));
        assert_eq!(&*short, "user:1234567");
        let long = TagName::from_template(format_args!("tenant:{id}:user:{id}:{}", "é"));
        assert!(matches!(long, TagName::Heap(_)));
        assert_eq!(&*long, "tenant:1234567:user:1234567:é");
    }
}
