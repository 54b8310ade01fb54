//! Code generation. The signature, attributes and docs are kept byte for byte; only
//! the body changes, into a call to the runtime's cache-aside engine. Two hidden
//! siblings let the entry macros (`invalidate!(f(args))`, `put!`, `peek!`, ...) and
//! `clear!(f)` reach the same cache.
//! Hidden names are prefixed `__stratacache_`.

use proc_macro2::{Group, Ident, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, ReturnType, Type};

use crate::validate::{KeyPlan, Plan, ReceiverKind, ShapeKind, Template};

pub(crate) fn expand(plan: &Plan, item: &ItemFn) -> TokenStream {
    let (main, siblings) = expand_parts(plan, item);
    quote!(#main #siblings)
}

/// The function, and its hidden siblings (placed beside it, or for a trait impl in
/// an inherent impl of the same type).
pub(crate) fn expand_parts(plan: &Plan, item: &ItemFn) -> (TokenStream, TokenStream) {
    if let Some(batch) = &plan.batch {
        // One entry per key: the entry macros name entries through a single-key
        // function sharing the cache's `name`.
        let (key, value) = crate::expand_batch::cache_types(plan, batch, item);
        let lookup = cache_lookup(plan, item, key.clone(), value.clone());
        let main = crate::expand_batch::main_fn(plan, batch, item, &lookup);
        let clear = clear_sibling(plan, item, &sibling_lookup(plan, item, key, value));
        return (main, clear);
    }
    let checks = type_checks(plan, item);
    let spec = spec(plan, item);
    let main = main_fn(plan, item, &checked_lookup(plan, &checks, &spec));
    let sibling_lookup =
        quote!(#checks let __stratacache_cache = __stratacache_checked.named(#spec););
    let entry = entry_sibling(plan, item, &sibling_lookup);
    let clear = clear_sibling(plan, item, &sibling_lookup);
    (main, quote!(#entry #clear))
}

/// The name `invalidate!(f(..))` calls.
pub(crate) fn entry_ident(function: &Ident) -> Ident {
    format_ident!("__stratacache_entry_{}", function, span = function.span())
}

/// The name `clear!(f)` calls.
pub(crate) fn clear_ident(function: &Ident) -> Ident {
    format_ident!("__stratacache_clear_{}", function, span = function.span())
}

pub(crate) fn output_type(item: &ItemFn) -> Type {
    match &item.sig.output {
        ReturnType::Default => syn::parse_quote!(()),
        ReturnType::Type(_, ty) => (**ty).clone(),
    }
}

fn shape_type(plan: &Plan) -> TokenStream {
    let krate = &plan.krate;
    match &plan.shape {
        ShapeKind::Whole(ty) => quote!(#krate::__private::Whole<#ty>),
        ShapeKind::WholeResult(ty) => quote!(#krate::__private::WholeResult<#ty>),
        ShapeKind::OkOnly(ty) => quote!(#krate::__private::OkOnly<#ty>),
        ShapeKind::OkSome(ty) => quote!(#krate::__private::OkSome<#ty>),
        ShapeKind::SomeOnly(ty) => quote!(#krate::__private::SomeOnly<#ty>),
    }
}

fn key_type(plan: &Plan) -> TokenStream {
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

fn key_expr(plan: &Plan) -> TokenStream {
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

/// The key as the call passes it: borrowed from the one reference argument it is made
/// of (`Borrowed(name)` for `name: &str`), so that a hit allocates no owned key;
/// else owned.
fn key_arg(plan: &Plan) -> TokenStream {
    let krate = &plan.krate;
    if let KeyPlan::Args = &plan.key {
        let mut in_key = plan.args.iter().filter(|a| a.in_key);
        if let (Some(arg), None) = (in_key.next(), in_key.next()) {
            if let Type::Reference(_) = &arg.ty {
                let ident = &arg.ident;
                return quote!(#krate::__private::Borrowed(#ident));
            }
        }
    }
    key_expr(plan)
}

/// `format_args!("user:{id}", id = <value of id>)`, the value given by `value_of`.
fn format_template(template: &Template, value_of: impl Fn(&Ident) -> TokenStream) -> TokenStream {
    let literal = &template.literal;
    let named = template.names.iter().map(|name| {
        let value = value_of(name);
        quote!(#name = #value)
    });
    quote!(::core::format_args!(#literal, #(#named),*))
}

pub(crate) fn tags_expr(plan: &Plan, value_of: impl Fn(&Ident) -> TokenStream) -> TokenStream {
    let krate = &plan.krate;
    let tags = plan.tags.iter().map(|t| format_template(t, &value_of));
    quote!(#krate::__private::tags([#(#tags),*]))
}

fn options_expr(plan: &Plan) -> TokenStream {
    let krate = &plan.krate;
    let duration = |d: &std::time::Duration| match (d.as_secs(), d.subsec_nanos()) {
        (secs, 0) => quote!(#krate::__private::Duration::from_secs(#secs)),
        _ if d.subsec_nanos() % 1_000_000 == 0 => {
            let millis = d.as_millis() as u64;
            quote!(#krate::__private::Duration::from_millis(#millis))
        }
        (secs, nanos) => quote!(#krate::__private::Duration::new(#secs, #nanos)),
    };
    let ttl = plan.ttl.as_ref().map(|d| {
        let d = duration(d);
        quote!(.ttl(#d))
    });
    let window = plan.stale_window.as_ref().map(|d| {
        let d = duration(d);
        quote!(.stale_window(#d))
    });
    let fail_safe = plan.fail_safe.as_ref().map(|d| {
        let d = duration(d);
        quote!(.fail_safe(#d))
    });
    let retry_after = plan.retry_after.as_ref().map(|d| {
        let d = duration(d);
        quote!(.fail_safe_retry(#d))
    });
    let refresh_ahead = plan
        .refresh_ahead
        .map(|fraction| quote!(.refresh_ahead(#fraction)))
        .or_else(|| plan.xfetch.map(|beta| quote!(.xfetch(#beta))));
    let lock = plan.lock.then(|| quote!(.lock(true)));
    let timeout = plan.timeout.as_ref().map(|d| {
        let d = duration(d);
        quote!(.timeout(#d))
    });
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
        #krate::__private::CacheOptions::default()
            #capacity #local #version #ttl #window #fail_safe #retry_after #refresh_ahead #timeout #lock
            #sliding #max_loads #compress #encrypt
    }
}

/// The closure that names this function's cache and its options: run once, by the
/// function's `static` slot on its first call, or by a sibling on each entry operation.
fn spec(plan: &Plan, item: &ItemFn) -> TokenStream {
    let krate = &plan.krate;
    let fn_name = item.sig.ident.to_string();
    let name = match &plan.name {
        Some(name) => quote!(::std::string::String::from(#name)),
        // The path of a closure in here is the function's path, for methods too.
        None => quote!(#krate::__private::default_name(|| (), #fn_name)),
    };
    let options = options_expr(plan);
    if plan.local {
        quote!(|| #krate::__private::local_spec(#name, #options))
    } else {
        quote!(|| #krate::__private::shared_spec(#name, #options))
    }
}

/// The function's own lookup: one `static` slot, so a call costs an atomic load.
pub(crate) fn cache_lookup(
    plan: &Plan,
    item: &ItemFn,
    key: TokenStream,
    value: TokenStream,
) -> TokenStream {
    let (krate, spec) = (&plan.krate, spec(plan, item));
    quote! {
        static __STRATACACHE: #krate::__private::Slot = #krate::__private::Slot::new();
        let __stratacache_cache = __STRATACACHE.get::<#key, #value>(#spec);
    }
}

/// The lookup of a single-key function, through the proof that its types passed.
fn checked_lookup(plan: &Plan, checks: &TokenStream, spec: &TokenStream) -> TokenStream {
    let krate = &plan.krate;
    quote! {
        #checks
        static __STRATACACHE: #krate::__private::Slot = #krate::__private::Slot::new();
        let __stratacache_cache = __stratacache_checked.cache(&__STRATACACHE, #spec);
    }
}

/// The checks of the key and value types (see the runtime's `checks`): each mistake is
/// one error, at the key's arguments or at the return type. The function and its
/// siblings emit them with the same spans, so rustc prints an error once.
fn type_checks(plan: &Plan, item: &ItemFn) -> TokenStream {
    let krate = &plan.krate;
    let mode = if plan.local {
        quote!(#krate::__private::LocalCache)
    } else {
        quote!(#krate::__private::SharedCache)
    };
    let (key, shape) = (key_type(plan), shape_type(plan));
    let key_proof = quote_spanned!(key_span(plan, item)=>
        (&&&&#krate::__private::KeyProbe::<#key, #mode>::new()).checked());
    let value_proof = quote_spanned!(return_span(item)=>
        (&&&&#krate::__private::ValueProbe::<#shape, #mode>::new()).checked());
    quote! {
        #[allow(unused_imports)]
        use #krate::__private::probes::*;
        #[allow(clippy::needless_borrow)]
        let __stratacache_checked = #key_proof.with(#value_proof);
    }
}

/// Where errors about the key point: its one argument's type, else the argument list.
fn key_span(plan: &Plan, item: &ItemFn) -> proc_macro2::Span {
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

/// A sibling's lookup: through the registry by name, so the function keeps the only
/// `static`.
fn sibling_lookup(plan: &Plan, item: &ItemFn, key: TokenStream, value: TokenStream) -> TokenStream {
    let (krate, spec) = (&plan.krate, spec(plan, item));
    quote!(let __stratacache_cache = #krate::__private::named::<#key, #value>(#spec);)
}

/// Where errors about the cached value point: the return type, or the name of a
/// function that returns `()`.
pub(crate) fn return_span(item: &ItemFn) -> proc_macro2::Span {
    match &item.sig.output {
        ReturnType::Type(_, ty) => ty.span(),
        ReturnType::Default => item.sig.ident.span(),
    }
}

fn main_fn(plan: &Plan, item: &ItemFn, lookup: &TokenStream) -> TokenStream {
    let krate = &plan.krate;
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = item;
    let output = output_type(item);
    let key = key_arg(plan);
    let call = if plan.background {
        background_call(plan, &output, block)
    } else if plan.sync {
        let call = inline_call(plan, &output, block);
        quote!(#krate::__private::block_on(async move { #call }))
    } else {
        inline_call(plan, &output, block)
    };
    quote! {
        #(#attrs)*
        #vis #sig {
            #lookup
            let __stratacache_key = #key;
            #[allow(clippy::needless_borrow)]
            let __stratacache_share = (&&&#krate::__private::ShareProbe::<#output>::new()).share_fn();
            #call
        }
    }
}

/// The loader may borrow the arguments: it runs inside this call's future.
fn inline_call(plan: &Plan, output: &Type, block: &syn::Block) -> TokenStream {
    let tags = tags_expr(plan, |name| name.to_token_stream());
    let shape = shape_type(plan);
    let loader = checked_loader(plan, output, quote!(async move #block));
    quote! {
        __stratacache_cache
            .get_or_load::<#shape, _, _>(__stratacache_key, __stratacache_share, move || {
                (#tags, #loader)
            })
            .await
    }
}

/// The body as the loader: typed by the return type, then, with `validate`,
/// checked by the user's function (an error on its path if the types differ).
fn checked_loader(plan: &Plan, output: &Type, body: TokenStream) -> TokenStream {
    let krate = &plan.krate;
    let loader = quote!(#krate::__private::typed_loader::<#output, _>(#body));
    match &plan.validate {
        None => loader,
        Some(check) => {
            let shape = shape_type(plan);
            let check = quote_spanned!(check.span()=> #check as fn(&_) -> bool);
            quote!(#krate::__private::validated::<#shape, _>(#loader, #check))
        }
    }
}

fn owned_ident(arg: &Ident) -> Ident {
    format_ident!("__stratacache_arg_{}", arg)
}

/// The loader owns everything (arguments by `ToOwned`, `&self` by `Clone`), so a
/// stale-while-revalidate refresh can run in a spawned task.
fn background_call(plan: &Plan, output: &Type, block: &syn::Block) -> TokenStream {
    let krate = &plan.krate;
    let shape = shape_type(plan);
    let take: Vec<TokenStream> = plan
        .args
        .iter()
        .map(|arg| {
            let (ident, owned) = (&arg.ident, owned_ident(&arg.ident));
            // The loader's copy is the one mutated; touching the caller's binding mutably
            // keeps `mut` in the signature from being reported as unneeded.
            let touch = arg.mutable.then(|| quote!(let _ = &mut #ident;));
            match &arg.ty {
                Type::Reference(_) => {
                    quote!(#touch let #owned = ::std::borrow::ToOwned::to_owned(#ident);)
                }
                _ => quote!(#touch let #owned = #ident;),
            }
        })
        .collect();
    let rebind: Vec<TokenStream> = plan
        .args
        .iter()
        .map(|arg| {
            let (ident, owned) = (&arg.ident, owned_ident(&arg.ident));
            let mutability = arg.mutable.then(|| quote!(mut));
            match &arg.ty {
                Type::Reference(r) => {
                    let mut ty = r.clone();
                    ty.lifetime = None;
                    let ty = erase_lifetimes(ty.into_token_stream());
                    quote!(#[allow(unused_variables, unused_mut)] let #mutability #ident: #ty = ::core::borrow::Borrow::borrow(&#owned);)
                }
                _ => quote!(#[allow(unused_variables, unused_mut)] let #mutability #ident = #owned;),
            }
        })
        .collect();
    let self_ident = format_ident!("__stratacache_self");
    let (take_self, rebind_self) = match &plan.receiver {
        None => (None, None),
        Some(ReceiverKind::Shared(self_token)) => (
            Some(
                quote_spanned!(self_token.span=> let __stratacache_self_owned = #krate::__private::clone_receiver(self);),
            ),
            Some(quote!(let #self_ident: &Self = &__stratacache_self_owned;)),
        ),
        Some(ReceiverKind::Owned | ReceiverKind::Exclusive) => (
            Some(quote!(let __stratacache_self_owned = self;)),
            Some(quote!(#[allow(unused_mut)] let mut #self_ident = __stratacache_self_owned;)),
        ),
    };
    let body = if plan.receiver.is_some() {
        replace_self(block.to_token_stream(), &self_ident)
    } else {
        block.to_token_stream()
    };
    let tags = tags_expr(plan, |name| owned_ident(name).to_token_stream());
    // With `hard_timeout`, how a timed-out call becomes the function's `Err`.
    let timed_out = if plan.hard_timeout {
        quote!(::core::option::Option::Some(|__stratacache_timed_out: #krate::__private::TimedOut| -> #output {
            ::core::result::Result::Err(::core::convert::From::from(__stratacache_timed_out))
        }))
    } else {
        quote!(::core::option::Option::None)
    };
    let loader = checked_loader(
        plan,
        output,
        quote!(async move {
            #(#rebind)*
            #rebind_self
            #body
        }),
    );
    // The loader's copies are made only when a load or refresh starts, not on a hit.
    quote! {
        __stratacache_cache
            .get_or_load_refreshing::<#shape, _, _>(__stratacache_key, __stratacache_share, || {
                #(#take)*
                #take_self
                move || {
                    let __stratacache_tags = #tags;
                    (__stratacache_tags, #loader)
                }
            }, #timed_out)
            .await
    }
}

/// `&'a Foo<'b>` in a `let` inside the loader becomes `&Foo<'_>`.
pub(crate) fn erase_lifetimes(tokens: TokenStream) -> TokenStream {
    let mut out = Vec::new();
    let mut iter = tokens.into_iter().peekable();
    while let Some(tree) = iter.next() {
        match tree {
            TokenTree::Punct(p) if p.as_char() == '\'' => {
                if let Some(TokenTree::Ident(name)) = iter.next() {
                    let keep = if name == "static" {
                        name
                    } else {
                        Ident::new("_", name.span())
                    };
                    out.push(TokenTree::Punct(p));
                    out.push(TokenTree::Ident(keep));
                }
            }
            TokenTree::Group(g) => {
                let mut group = Group::new(g.delimiter(), erase_lifetimes(g.stream()));
                group.set_span(g.span());
                out.push(TokenTree::Group(group));
            }
            other => out.push(other),
        }
    }
    out.into_iter().collect()
}

/// Renames `self` to the loader's owned receiver; `self::path` is left alone.
fn replace_self(tokens: TokenStream, with: &Ident) -> TokenStream {
    let mut out = Vec::new();
    let mut iter = tokens.into_iter().peekable();
    while let Some(tree) = iter.next() {
        match tree {
            TokenTree::Ident(ident) if ident == "self" => {
                let is_path =
                    matches!(iter.peek(), Some(TokenTree::Punct(p)) if p.as_char() == ':');
                let ident = if is_path {
                    ident
                } else {
                    Ident::new(&with.to_string(), ident.span())
                };
                out.push(TokenTree::Ident(ident));
            }
            TokenTree::Group(g) => {
                let mut group = Group::new(g.delimiter(), replace_self(g.stream(), with));
                group.set_span(g.span());
                out.push(TokenTree::Group(group));
            }
            other => out.push(other),
        }
    }
    out.into_iter().collect()
}

/// `#[cfg]` attributes of the function, so its siblings exist exactly when it does.
pub(crate) fn cfg_attrs(item: &ItemFn) -> impl Iterator<Item = &syn::Attribute> {
    item.attrs
        .iter()
        .filter(|a| a.path().is_ident("cfg") || a.path().is_ident("cfg_attr"))
}

fn entry_sibling(plan: &Plan, item: &ItemFn, lookup: &TokenStream) -> TokenStream {
    let krate = &plan.krate;
    let (vis, ident) = (&item.vis, entry_ident(&item.sig.ident));
    let generics = &item.sig.generics;
    let where_clause = &generics.where_clause;
    let inputs = item.sig.inputs.iter().map(|input| match input {
        // The sibling only reads the key, so any receiver becomes `&self`.
        FnArg::Receiver(_) => quote!(&self),
        FnArg::Typed(typed) => typed.to_token_stream(),
    });
    let cfgs = cfg_attrs(item);
    let key = key_expr(plan);
    let key_ty = key_type(plan);
    let tags = tags_expr(plan, |name| name.to_token_stream());
    let shape = shape_type(plan);
    quote! {
        #(#cfgs)*
        #[doc(hidden)]
        #[allow(non_snake_case, unused_variables, unused_mut, clippy::too_many_arguments)]
        #vis fn #ident #generics (#(#inputs),*) -> #krate::__private::EntryOf<#key_ty, #shape>
            #where_clause
        {
            #lookup
            #krate::__private::EntryRef::new(__stratacache_cache, #key, #tags)
        }
    }
}

fn clear_sibling(plan: &Plan, item: &ItemFn, lookup: &TokenStream) -> TokenStream {
    let krate = &plan.krate;
    let (vis, ident) = (&item.vis, clear_ident(&item.sig.ident));
    let cfgs = cfg_attrs(item);
    quote! {
        #(#cfgs)*
        #[doc(hidden)]
        #[allow(non_snake_case)]
        #vis fn #ident() -> impl #krate::__private::CacheOps {
            #lookup
            __stratacache_cache
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_self_keeps_paths() {
        let with = format_ident!("__s");
        let out = replace_self(quote!({ self.x + self::CONST + f(self) }), &with).to_string();
        assert_eq!(out, quote!({ __s.x + self::CONST + f(__s) }).to_string());
    }

    #[test]
    fn erase_lifetimes_keeps_static() {
        let out = erase_lifetimes(quote!(&Foo<'a, 'static>)).to_string();
        assert_eq!(out, quote!(&Foo<'_, 'static>).to_string());
    }
}
