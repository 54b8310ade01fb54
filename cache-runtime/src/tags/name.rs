//! A tag's name, held in its cell: inline when short, as most `entity:{id}` tags
//! are, so that a tag unique to one entry costs one allocation, not two.

/// Names up to this many bytes are held inline.
const INLINE: usize = 22;

#[derive(Debug)]
pub(super) enum TagName {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<str>),
}

impl TagName {
    pub(super) fn new(name: &str) -> Self {
        let len = name.len();
        if len > INLINE {
            return Self::Heap(name.into());
        }
        let mut bytes = [0; INLINE];
        bytes[..len].copy_from_slice(name.as_bytes());
        Self::Inline {
            len: len as u8,
            bytes,
        }
    }

    /// The name's bytes: what the index hashes and compares, with no UTF-8 check.
    pub(super) fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Self::Heap(name) => name.as_bytes(),
        }
    }

    pub(super) fn as_str(&self) -> &str {
        // Copied whole from a `str`: always valid.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
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
}
