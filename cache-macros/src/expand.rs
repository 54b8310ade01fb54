//! Code generation. The signature, attributes and docs are kept byte for byte; only
//! the body changes, into a call to the runtime's cache-aside engine. Two hidden
//! siblings let the entry macros (`invalidate!(f(args))`, `put!`, `peek!`, ...) and
//! `clear!(f)` reach the same cache.
//! Hidden names are prefixed `__stratacache_`.

use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, ReturnType, Type};

use crate::expand_background::background_call;
use crate::expand_cache::{
    checked_lookup, key_arg, key_expr, key_type, runtime, shape_type, shape_type_in, spec,
    tags_expr, type_checks,
};
use crate::validate::Plan;

pub(crate) fn expand(plan: &Plan, item: &ItemFn) -> TokenStream {
    let (main, siblings) = expand_parts(plan, item);
    quote!(#main #siblings)
}

/// The function, and its hidden siblings (placed beside it, or for a trait impl in
/// an inherent impl of the same type).
pub(crate) fn expand_parts(plan: &Plan, item: &ItemFn) -> (TokenStream, TokenStream) {
    let checks = match &plan.batch {
        Some(batch) => crate::expand_batch::type_checks(plan, batch, item),
        None => type_checks(plan, item),
    };
    let spec = spec(plan, item);
    let lookup = checked_lookup(plan, item, &checks, &spec);
    let sibling_lookup =
        quote!(#checks let __stratacache_cache = __stratacache_checked.named(#spec););
    let clear = clear_sibling(plan, item, &sibling_lookup);
    match &plan.batch {
        // One entry per key: the entry macros name entries through a single-key
        // function sharing the cache's `name`.
        Some(batch) => (
            crate::expand_batch::main_fn(plan, batch, item, &lookup),
            clear,
        ),
        None => {
            let entry = entry_sibling(plan, item, &sibling_lookup);
            (main_fn(plan, item, &lookup), quote!(#entry #clear))
        }
    }
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

fn main_fn(plan: &Plan, item: &ItemFn, lookup: &TokenStream) -> TokenStream {
    let rt = runtime();
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = item;
    let output = output_type(item);
    let key = key_arg(plan);
    let call = if plan.background {
        background_call(plan, &output, block, &key)
    } else if plan.sync {
        // A hit returns at once; only a miss is driven by `block_on`.
        inline_call(plan, &output, block, quote!(get_or_wait), &key)
    } else {
        awaited(inline_call(plan, &output, block, quote!(get_or_load), &key))
    };
    quote! {
        #(#attrs)*
        #vis #sig {
            #lookup
            #[allow(clippy::needless_borrow)]
            let __stratacache_share = (&&&#rt::ShareProbe::<#output>::new()).share_fn();
            #call
        }
    }
}

/// An `async fn`'s answer: a hit returns here, and only a miss's boxed load is
/// awaited, out of the `match` so that the answer is gone by then: the function's
/// future holds a pointer across the await, not the answer, so it is smaller to build
/// and to move.
pub(crate) fn awaited(call: TokenStream) -> TokenStream {
    let rt = runtime();
    quote! {
        let __stratacache_load = match #call {
            #rt::Answer::Ready(__stratacache_out) => return __stratacache_out,
            #rt::Answer::Load(__stratacache_load) => __stratacache_load,
        };
        __stratacache_load.await
    }
}

/// The loader may borrow the arguments: it runs inside the call of `method`, in the
/// load `get_or_load` answers a miss with, which the function awaits, or in
/// `get_or_wait`, which drives it to its end for a sync function.
fn inline_call(
    plan: &Plan,
    output: &Type,
    block: &syn::Block,
    method: TokenStream,
    key: &TokenStream,
) -> TokenStream {
    let tags = tags_expr(plan, |name| name.to_token_stream());
    let shape = shape_type(plan);
    let body = crate::body::typed_body(output, block);
    let loader = checked_loader(plan, output, quote!(async move { #body }));
    // A key borrowed from an owned argument: the loader copies it when a load starts.
    let (capture, copy) = match crate::expand_cache::borrowed_owned_key(plan) {
        Some(ident) => (
            None,
            Some({
                let allow = crate::expand_cache::recloning();
                quote!(#allow let #ident = ::core::clone::Clone::clone(&#ident);)
            }),
        ),
        None => (Some(quote!(move)), None),
    };
    quote! {
        __stratacache_cache
            .#method::<#shape, _, _, _>(#key, __stratacache_share, #capture || {
                #copy
                (#tags, #loader)
            })
    }
}

/// The body as the loader: typed by the return type, then, with `validate`,
/// checked by the user's function (an error on its path if the types differ).
pub(crate) fn checked_loader(plan: &Plan, output: &Type, body: TokenStream) -> TokenStream {
    let rt = runtime();
    let loader = quote!(#rt::typed_loader::<#output, _>(#body));
    match &plan.validate {
        None => loader,
        Some(check) => {
            let shape = shape_type(plan);
            let check = quote_spanned!(check.span()=> #check as fn(&_) -> bool);
            quote!(#rt::validated::<#shape, _>(#loader, #check))
        }
    }
}

/// `#[cfg]` attributes of the function, so its siblings exist exactly when it does.
pub(crate) fn cfg_attrs(item: &ItemFn) -> impl Iterator<Item = &syn::Attribute> {
    item.attrs
        .iter()
        .filter(|a| a.path().is_ident("cfg") || a.path().is_ident("cfg_attr"))
}

fn entry_sibling(plan: &Plan, item: &ItemFn, lookup: &TokenStream) -> TokenStream {
    let (krate, rt) = (&plan.krate, runtime());
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
    let shape = shape_type_in(plan, quote!(#krate::__private));
    quote! {
        #(#cfgs)*
        #[doc(hidden)]
        #[allow(non_snake_case, unused_variables, unused_mut)]
        #[allow(clippy::too_many_arguments)]
        #vis fn #ident #generics (#(#inputs),*) -> #krate::__private::EntryOf<#key_ty, #shape>
            #where_clause
        {
            #lookup
            #rt::EntryRef::new(__stratacache_cache, #key, #tags)
        }
    }
}

fn clear_sibling(plan: &Plan, item: &ItemFn, lookup: &TokenStream) -> TokenStream {
    let krate = &plan.krate;
    let (vis, ident) = (&item.vis, clear_ident(&item.sig.ident));
    let cfgs = cfg_attrs(item);
    // The function's bounds (`where B: Labelled`) may be what gives its types meaning.
    let generics = &item.sig.generics;
    let mut where_clause = generics.where_clause.clone();
    if plan.receiver.is_some() {
        // A method's sibling may be a default method of a trait: with no `self`, it
        // must not take the trait's `dyn` use away.
        let bounds = &mut where_clause
            .get_or_insert_with(|| syn::parse_quote!(where))
            .predicates;
        bounds.push(syn::parse_quote!(Self: ::core::marker::Sized));
    }
    quote! {
        #(#cfgs)*
        #[doc(hidden)]
        #[allow(non_snake_case)]
        #vis fn #ident #generics () -> impl #krate::__private::CacheOps #where_clause {
            #lookup
            __stratacache_cache
        }
    }
}
