//! What generated code says about a function's cache: its key and value types, the
//! key and tags of a call, its options, the spec that names it, the lookups that
//! reach it, and the type checks that open it.

use proc_macro2::{Ident, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{ItemFn, ReturnType, Type};

use crate::template::Template;
use crate::validate::{Arg, KeyPlan, Plan, ShapeKind};

/// How a generated body names the runtime's hidden module: every body imports it
/// first under this short alias (as serde_derive's code does with `_serde`), so that
/// the expansion reads short. Signatures, outside the bodies, spell the full path.
pub(crate) fn runtime() -> Ident {
    Ident::new("__sc", proc_macro2::Span::call_site())
}

/// The import of [`runtime`]'s alias and of the probes' traits that opens each body.
pub(crate) fn runtime_import(plan: &Plan) -> TokenStream {
    let (krate, rt) = (&plan.krate, runtime());
    quote! {
        #[allow(unused_imports)]
        use #krate::__private::{self as #rt, probes::*};
    }
}

/// On each `let` that rebinds an argument under its own name to another value (the
/// loader's copy, a batch's missing keys): neither an unused one nor the shadowing is
/// the user's to fix, whatever `clippy::shadow_*` lints they deny.
pub(crate) fn rebinding() -> TokenStream {
    quote!(#[allow(unused_variables, unused_mut, clippy::shadow_unrelated)])
}

/// On each `let` that rebinds an argument to a clone of itself.
pub(crate) fn recloning() -> TokenStream {
    quote!(#[allow(clippy::shadow_reuse)])
}

/// The cached function's shape, as a body names it.
pub(crate) fn shape_type(plan: &Plan) -> TokenStream {
    shape_type_in(plan, runtime().to_token_stream())
}

/// The shape with the runtime's hidden module named by `runtime`.
pub(crate) fn shape_type_in(plan: &Plan, rt: TokenStream) -> TokenStream {
    match &plan.shape {
        ShapeKind::Whole(ty) | ShapeKind::Unread(ty) => quote!(#rt::Whole<#ty>),
        ShapeKind::WholeResult(ty) => quote!(#rt::WholeResult<#ty>),
        ShapeKind::OkOnly(ty) => quote!(#rt::OkOnly<#ty>),
        ShapeKind::OkSome(ty) => quote!(#rt::OkSome<#ty>),
        ShapeKind::SomeOnly(ty) => quote!(#rt::SomeOnly<#ty>),
    }
}

pub(crate) fn key_type(plan: &Plan) -> TokenStream {
    let parts: Vec<TokenStream> = match &plan.key {
        KeyPlan::Template(_) => return quote!(::std::string::String),
        KeyPlan::Args => plan
            .args
            .iter()
            .filter(|a| a.in_key)
            .map(|a| match &a.ty {
                Type::Reference(r) => {
                    let elem = &r.elem;
                    quote!(<#elem as ::std::borrow::ToOwned>::Owned)
                }
                ty => ty.to_token_stream(),
            })
            .collect(),
    };
    match parts.as_slice() {
        [single] => single.clone(),
        parts => quote!((#(#parts,)*)),
    }
}

pub(crate) fn key_expr(plan: &Plan) -> TokenStream {
    let parts: Vec<TokenStream> = match &plan.key {
        KeyPlan::Template(template) => {
            let args = format_template(template, |name| name.to_token_stream());
            return quote!(::std::string::ToString::to_string(&#args));
        }
        KeyPlan::Args => plan
            .args
            .iter()
            .filter(|a| a.in_key)
            .map(|a| {
                let ident = &a.ident;
                match &a.ty {
                    Type::Reference(_) => quote!(::std::borrow::ToOwned::to_owned(#ident)),
                    _ => quote!(::core::clone::Clone::clone(&#ident)),
                }
            })
            .collect(),
    };
    match parts.as_slice() {
        [single] => single.clone(),
        parts => quote!((#(#parts,)*)),
    }
}

/// The key as the call passes it: borrowed from the one argument it is made of
/// (`Borrowed(name)` for `name: &str`, `Borrowed(&name)` for `name: String`), so that
/// a hit allocates no owned key; else owned.
pub(crate) fn key_arg(plan: &Plan) -> TokenStream {
    let rt = runtime();
    match (single_key_arg(plan), borrowed_owned_key(plan)) {
        (
            Some(Arg {
                ty: Type::Reference(_),
                ident,
                ..
            }),
            _,
        ) => quote!(#rt::Borrowed(#ident)),
        (_, Some(ident)) => quote!(#rt::Borrowed(&#ident)),
        _ => key_expr(plan),
    }
}

/// The one argument the key is made of, if it is one.
fn single_key_arg(plan: &Plan) -> Option<&Arg> {
    let KeyPlan::Args = &plan.key else {
        return None;
    };
    let mut in_key = plan.args.iter().filter(|a| a.in_key);
    match (in_key.next(), in_key.next()) {
        (Some(arg), None) => Some(arg),
        _ => None,
    }
}

/// The one owned argument the key is borrowed from (`name: String`): the loader then
/// makes its own copy when a load starts, rather than the call one for the key on
/// every hit. Not when the argument is `mut`, which the body may change, nor a
/// primitive (`u64`), whose copy costs less than the borrow (9 instructions more
/// per hit, by callgrind).
pub(crate) fn borrowed_owned_key(plan: &Plan) -> Option<&Ident> {
    const PRIMITIVES: [&str; 14] = [
        "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize",
        "bool", "char",
    ];
    let primitive = |ty: &Type| matches!(ty, Type::Path(path) if path.qself.is_none() && PRIMITIVES.iter().any(|p| path.path.is_ident(p)));
    single_key_arg(plan)
        .filter(|arg| !arg.mutable && !matches!(arg.ty, Type::Reference(_)) && !primitive(&arg.ty))
        .map(|arg| &arg.ident)
}

/// `format_args!("user:{0}", <value of id>)`, the value given by `value_of`.
pub(crate) fn format_template(
    template: &Template,
    value_of: impl Fn(&Ident) -> TokenStream,
) -> TokenStream {
    let literal = &template.literal;
    let values = template.names.iter().map(value_of);
    quote!(::core::format_args!(#literal, #(#values),*))
}

pub(crate) fn tags_expr(plan: &Plan, value_of: impl Fn(&Ident) -> TokenStream) -> TokenStream {
    let rt = runtime();
    let tags = plan.tags.iter().map(|t| format_template(t, &value_of));
    quote!(#rt::tags([#(#tags),*]))
}

pub(crate) fn options_expr(plan: &Plan) -> TokenStream {
    let rt = runtime();
    let duration = |d: &std::time::Duration| match (d.as_secs(), d.subsec_nanos()) {
        (secs, 0) => quote!(#rt::Duration::from_secs(#secs)),
        _ if d.subsec_nanos().is_multiple_of(1_000_000) => {
            let millis = d.as_millis() as u64;
            quote!(#rt::Duration::from_millis(#millis))
        }
        (secs, nanos) => quote!(#rt::Duration::new(#secs, #nanos)),
    };
    let set = |setter: &str, d: &Option<std::time::Duration>| {
        let setter = quote::format_ident!("{setter}");
        d.as_ref().map(|d| {
            let d = duration(d);
            quote!(.#setter(#d))
        })
    };
    let times = &plan.times;
    let ttl = set("ttl", &times.ttl);
    let window = set("stale_window", &times.stale_window);
    let fail_safe = set("fail_safe", &times.fail_safe);
    let retry_after = set("fail_safe_retry", &times.retry_after);
    let refresh_ahead = times
        .refresh_ahead
        .map(|fraction| quote!(.refresh_ahead(#fraction)))
        .or_else(|| plan.xfetch.map(|beta| quote!(.xfetch(#beta))));
    let lock = plan.lock.then(|| quote!(.lock(true)));
    let timeout = set("timeout", &times.timeout);
    // Only what differs from `CacheOptions::default()` is spelled out.
    let capacity = plan.capacity.map(|capacity| quote!(.capacity(#capacity)));
    let local = plan.local.then(|| quote!(.local(true)));
    let version = (plan.version != 0).then(|| {
        let version = plan.version;
        quote!(.version(#version))
    });
    let max_loads = plan.max_loads.map(|n| quote!(.max_loads(#n)));
    let sliding = plan.sliding.then(|| quote!(.sliding(true)));
    let compress = plan.compress.map(|on| quote!(.compress(#on)));
    let encrypt = plan.encrypt.map(|on| quote!(.encrypt(#on)));
    quote! {
        #rt::CacheOptions::default()
            #capacity #local #version #ttl #window #fail_safe #retry_after #refresh_ahead #timeout #lock
            #sliding #max_loads #compress #encrypt
    }
}

/// The closure that names this function's cache and its options: run once, by the
/// function's `static` slot on its first call, or by a sibling on each entry operation.
pub(crate) fn spec(plan: &Plan, item: &ItemFn) -> TokenStream {
    let rt = runtime();
    let fn_name = item.sig.ident.to_string();
    let name = match &plan.name {
        Some(name) => quote!(::std::string::String::from(#name)),
        // The path of a closure in here is the function's path, for methods too.
        None => quote!(#rt::default_name(|| (), #fn_name)),
    };
    let options = options_expr(plan);
    if plan.local {
        quote!(|| #rt::local_spec(#name, #options))
    } else {
        quote!(|| #rt::shared_spec(#name, #options))
    }
}

/// The lookup of the function's cache, through the proof that its types passed.
pub(crate) fn checked_lookup(
    plan: &Plan,
    item: &ItemFn,
    checks: &TokenStream,
    spec: &TokenStream,
) -> TokenStream {
    let rt = runtime();
    // A return type cached whole that is a `Result` or an `Option` behind another
    // name is an error: the function alone checks it, so it is reported once.
    let spelled = matches!(&plan.shape, ShapeKind::Unread(_)).then(|| {
        let ty = crate::expand::output_type(item);
        quote_spanned!(return_span(item)=>
            #[allow(clippy::needless_borrow)]
            (&&&#rt::SpelledProbe::<#ty>::new()).spelled();)
    });
    quote! {
        #checks
        #spelled
        static __STRATACACHE: #rt::Slot = #rt::Slot::new();
        let __stratacache_cache =
            __stratacache_checked.cache(&__STRATACACHE, #rt::Instantiation::of(|| ()), #spec);
    }
}

/// The checks of the key and value types (see the runtime's `checks`): each mistake is
/// one error, at the key's arguments or at the return type. The function and its
/// siblings emit them with the same spans, so rustc prints an error once.
pub(crate) fn type_checks(plan: &Plan, item: &ItemFn) -> TokenStream {
    let (rt, mode, import) = (runtime(), probe_mode(plan), runtime_import(plan));
    let (key, shape) = (key_type(plan), shape_type(plan));
    let key_proof = quote_spanned!(key_span(plan, item)=>
        (&&&&#rt::KeyProbe::<#key, #mode>::new()).checked());
    let value_proof = quote_spanned!(return_span(item)=>
        (&&&&#rt::ValueProbe::<#shape, #mode>::new()).checked());
    quote! {
        #import
        #[allow(clippy::needless_borrow)]
        let __stratacache_checked = #key_proof.with(#value_proof);
    }
}

/// The probes' mode: a cache that is not `local` needs serde too.
pub(crate) fn probe_mode(plan: &Plan) -> TokenStream {
    let rt = runtime();
    if plan.local {
        quote!(#rt::LocalCache)
    } else {
        quote!(#rt::SharedCache)
    }
}

/// Where errors about the key point: its one argument's type, else the argument list.
pub(crate) fn key_span(plan: &Plan, item: &ItemFn) -> proc_macro2::Span {
    if let KeyPlan::Template(_) = &plan.key {
        return item.sig.ident.span();
    }
    let mut in_key = plan.args.iter().filter(|a| a.in_key);
    match (in_key.next(), in_key.next()) {
        (Some(arg), None) => arg.ty.span(),
        (Some(_), Some(_)) => item.sig.paren_token.span.join(),
        (None, _) => item.sig.ident.span(),
    }
}

/// Where errors about the cached value point: the return type, or the name of a
/// function that returns `()`.
pub(crate) fn return_span(item: &ItemFn) -> proc_macro2::Span {
    match &item.sig.output {
        ReturnType::Type(_, ty) => ty.span(),
        ReturnType::Default => item.sig.ident.span(),
    }
}
