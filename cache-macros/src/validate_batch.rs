//! The rules of `#[cached(batch)]`, checked against the function: which argument
//! holds the keys and in what form, and which arguments cannot go with `batch`.

use syn::Type;

use crate::args::{CachedArgs, Errors, Given};
use crate::validate::{Arg, ReceiverKind};

pub(crate) struct BatchPlan {
    /// Index in `Plan::args` of the argument holding the keys.
    pub(crate) keys: usize,
    pub(crate) list: KeyList,
    pub(crate) cache_none: bool,
}

/// How a batch function takes its keys; the loader gets the missing ones the same way.
pub(crate) enum KeyList {
    /// `&[K]`
    Slice,
    /// `&T` for a collection `T` (`&Vec<K>`, `&HashSet<K>`)
    Borrowed(Type),
    /// A collection `T` taken by value (`Vec<K>`, `BTreeSet<K>`)
    Owned(Type),
    /// `impl IntoIterator<Item = K>`, `impl Iterator<Item = K>`
    Iterator,
}

/// The rules of `batch`: one argument holds the keys (the others are skipped), each
/// key is one entry, and the policies that refresh or lock one entry are not offered.
pub(crate) fn batch_plan(
    given: &Given<()>,
    args: &CachedArgs,
    params: &[Arg],
    receiver: &Option<ReceiverKind>,
    errors: &mut Errors,
) -> BatchPlan {
    reject_unsupported(args, errors);
    if let Some(ReceiverKind::Exclusive | ReceiverKind::Owned) = receiver {
        errors.spanned(
            &given.keyword,
            "a `batch` method takes `&self`: its loader may run more than once in one call",
        );
    }
    let keys = key_argument(given, params, errors);
    for arg in params.iter().filter(|a| !a.in_key) {
        if matches!(&arg.ty, Type::Reference(r) if r.mutability.is_some()) {
            errors.spanned(&arg.ty, "a `batch` function cannot take a `&mut` argument: its loader may run more than once in one call");
        }
    }
    let list = key_list(params.get(keys).map(|a| &a.ty), errors);
    BatchPlan {
        keys,
        list,
        cache_none: args.cache_none.is_some(),
    }
}

/// The arguments whose policy refreshes, locks or keys one entry.
fn reject_unsupported(args: &CachedArgs, errors: &mut Errors) {
    let unsupported = [
        (
            "stale_while_revalidate",
            args.stale_while_revalidate.as_ref().map(|g| &g.keyword),
        ),
        (
            "stale_if_error",
            args.stale_if_error.as_ref().map(|g| &g.keyword),
        ),
        (
            "refresh_ahead",
            args.refresh_ahead.as_ref().map(|g| &g.keyword),
        ),
        ("timeout", args.timeout.as_ref().map(|g| &g.keyword)),
        ("lock", args.lock.as_ref().map(|g| &g.keyword)),
        ("cache_err", args.cache_err.as_ref().map(|g| &g.keyword)),
        ("key", args.key.as_ref().map(|g| &g.keyword)),
    ];
    for (name, keyword) in unsupported {
        if let Some(keyword) = keyword {
            let why = if name == "key" {
                "each key of the list is its own entry's key".to_owned()
            } else {
                format!("give the single-key function that shares this cache's `name` the `{name}`")
            };
            errors.spanned(
                keyword,
                format!("`{name}` cannot be used with `batch`: {why}"),
            );
        }
    }
}

/// The one argument that holds the keys.
fn key_argument(given: &Given<()>, params: &[Arg], errors: &mut Errors) -> usize {
    let in_key: Vec<usize> = (0..params.len()).filter(|&i| params[i].in_key).collect();
    match in_key.as_slice() {
        [one] => *one,
        [] => {
            errors.spanned(&given.keyword, "a `batch` function takes its keys in one argument, such as `ids: &[u64]`; this one has none (or skips them all)");
            0
        }
        [_, second, ..] => {
            let names: Vec<String> = in_key
                .iter()
                .skip(1)
                .map(|&i| params[i].ident.to_string())
                .collect();
            errors.spanned(
                &params[*second].ident,
                format!("a `batch` function takes its keys in one argument, and no other argument is part of the key: `skip({})` if the values do not depend on it, or put it in the keys (`&[(u64, String)]`)", names.join(", ")),
            );
            in_key[0]
        }
    }
}

/// How the keys argument holds its keys.
fn key_list(keys: Option<&Type>, errors: &mut Errors) -> KeyList {
    match keys {
        Some(Type::Reference(r)) if r.mutability.is_some() => {
            errors.spanned(r, "the keys of a `batch` function are read, not changed: take `&[K]`, `Vec<K>` or an iterator");
            KeyList::Slice
        }
        Some(Type::Reference(r)) => match &*r.elem {
            Type::Slice(_) => KeyList::Slice,
            Type::ImplTrait(_) => {
                errors.spanned(
                    r,
                    "take the keys as `impl IntoIterator<Item = K>`, `&[K]` or `Vec<K>`",
                );
                KeyList::Slice
            }
            elem => KeyList::Borrowed(elem.clone()),
        },
        Some(Type::ImplTrait(_)) => KeyList::Iterator,
        Some(ty) => KeyList::Owned(ty.clone()),
        None => KeyList::Slice,
    }
}
