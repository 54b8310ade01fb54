//! What a function's return type means for its cache (its shape: what is stored,
//! what counts as a failed load), and the arguments that depend on it.

use syn::{ReturnType, Type};

use crate::args::{CachedArgs, Errors};

pub(crate) enum ShapeKind {
    /// Cache the whole output.
    Whole(Type),
    /// Cache the whole output, a named type the signature does not show to be a
    /// `Result` or an `Option`: the function checks that it is neither (an alias of
    /// one would have its `Err` or `None` cached like a value).
    Unread(Type),
    /// Cache the whole `Result`, counting `Err` as a failed load.
    WholeResult(Type),
    /// Cache `Ok` only.
    OkOnly(Type),
    /// Cache `Ok(Some(_))` only: a `Result<Option<T>, E>` without `cache_none`.
    OkSome(Type),
    /// Cache `Some` only; holds the `Option`'s `T`.
    SomeOnly(Type),
}

fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match ty {
        Type::Path(path) if path.qself.is_none() => path.path.segments.last(),
        Type::Paren(inner) => last_segment(&inner.elem),
        _ => None,
    }
}

/// The first `impl Trait` in `ty`, however deep (`Option<impl Display>`).
pub(crate) fn first_impl_trait(ty: &Type) -> Option<syn::TypeImplTrait> {
    struct Find(Option<syn::TypeImplTrait>);
    impl syn::visit_mut::VisitMut for Find {
        fn visit_type_impl_trait_mut(&mut self, opaque: &mut syn::TypeImplTrait) {
            self.0.get_or_insert_with(|| opaque.clone());
        }
    }
    let mut find = Find(None);
    syn::visit_mut::VisitMut::visit_type_mut(&mut find, &mut ty.clone());
    find.0
}

/// `T` of `Option<T>` or `Result<T, E>`.
fn first_type_argument(segment: &syn::PathSegment) -> Option<Type> {
    match &segment.arguments {
        syn::PathArguments::AngleBracketed(a) => match a.args.first()? {
            syn::GenericArgument::Type(inner) => Some(inner.clone()),
            _ => None,
        },
        _ => None,
    }
}

pub(crate) fn shape(output: &ReturnType, args: &CachedArgs, errors: &mut Errors) -> ShapeKind {
    let ty: Type = match output {
        ReturnType::Default => syn::parse_quote!(()),
        ReturnType::Type(_, ty) => (**ty).clone(),
    };
    if let Some(opaque) = first_impl_trait(&ty) {
        errors.spanned(opaque, "a cached function cannot return `impl Trait`: the cache stores and clones the value, so name its type");
    }
    let segment = last_segment(&ty);
    let is_result = segment.is_some_and(|s| s.ident == "Result");
    let option_inner = segment
        .filter(|s| s.ident == "Option")
        .and_then(first_type_argument);
    // `Result<Option<T>, E>` (and `io::Result<Option<T>>`): `Ok(None)` is a `None`.
    let ok_is_option = segment
        .filter(|_| is_result)
        .and_then(first_type_argument)
        .and_then(|ok| {
            last_segment(&ok)
                .is_some_and(|s| s.ident == "Option")
                .then_some(())
        })
        .is_some();
    if let Some(given) = &args.cache_err {
        if !is_result {
            errors.spanned(
                &given.keyword,
                format!("`cache_err` has no effect: this function does not return a `Result`{READ_FROM_THE_SIGNATURE}"),
            );
        }
    }
    if let Some(given) = &args.cache_none {
        if option_inner.is_none() && !ok_is_option {
            errors.spanned(
                &given.keyword,
                format!("`cache_none` has no effect: this function returns neither an `Option` nor a `Result<Option<T>, E>`{READ_FROM_THE_SIGNATURE}"),
            );
        }
    }
    match (is_result, option_inner) {
        (true, _) if args.cache_err.is_some() => ShapeKind::WholeResult(ty),
        (true, _) if ok_is_option && args.cache_none.is_none() => ShapeKind::OkSome(ty),
        (true, _) => ShapeKind::OkOnly(ty),
        (_, Some(_)) if args.cache_none.is_some() => ShapeKind::Whole(ty),
        (_, Some(inner)) => ShapeKind::SomeOnly(inner),
        _ if segment.is_some() => ShapeKind::Unread(ty),
        _ => ShapeKind::Whole(ty),
    }
}

/// How the attribute knows a `Result` or an `Option`, said where it did not see one.
const READ_FROM_THE_SIGNATURE: &str =
    " (as the signature spells it: write it out where a type alias hides it)";

pub(crate) fn check_hard_timeout(args: &CachedArgs, shape: &ShapeKind, errors: &mut Errors) {
    if let Some(given) = &args.hard_timeout {
        if args.timeout.is_none() {
            errors.spanned(
                &given.keyword,
                "`hard_timeout` fails a call that waited `timeout`: add `timeout = \"2s\"`",
            );
        }
        if !matches!(
            shape,
            ShapeKind::OkOnly(_) | ShapeKind::OkSome(_) | ShapeKind::WholeResult(_)
        ) {
            errors.spanned(&given.keyword, format!("`hard_timeout` returns an error, so the function must return a `Result` whose error implements `From<stratacache::TimedOut>`{READ_FROM_THE_SIGNATURE}"));
        }
    }
}
