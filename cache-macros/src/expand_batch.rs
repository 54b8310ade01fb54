//! Code generation for `#[cached(batch)]`: the body becomes one call of the engine's
//! `get_many`, whose loader is the original body run with the key argument rebound
//! to the keys still missing (in the argument's own form: a slice, the collection,
//! or an iterator). The loader may run more than once in one call (when a concurrent
//! leader of some keys gives up), so the other arguments are cloned into each run.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::ItemFn;

use crate::expand::output_type;
use crate::expand_background::erase_lifetimes;
use crate::expand_cache::{probe_mode, return_span, runtime, runtime_import, tags_expr};
use crate::validate::{BatchPlan, KeyList, Plan};

fn absence_type(batch: &BatchPlan) -> TokenStream {
    let rt = runtime();
    if batch.cache_none {
        quote!(#rt::CacheMissing)
    } else {
        quote!(#rt::SkipMissing)
    }
}

pub(crate) fn main_fn(
    plan: &Plan,
    batch: &BatchPlan,
    item: &ItemFn,
    lookup: &TokenStream,
) -> TokenStream {
    let rt = runtime();
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = item;
    let output = output_type(item);
    let absence = absence_type(batch);
    let keys_arg = &plan.args[batch.keys].ident;

    // In a tag template, the key argument stands for one key.
    let tags = tags_expr(plan, |name| name.to_token_stream());
    let (allow, recloning) = (
        crate::expand_cache::rebinding(),
        crate::expand_cache::recloning(),
    );
    let tags_of = quote! {
        |__stratacache_key: &_| -> #rt::Tags {
            #allow
            let #keys_arg = __stratacache_key;
            #tags
        }
    };

    let clones = plan.args.iter().filter(|a| !a.in_key).map(|arg| {
        let ident = &arg.ident;
        let mutability = arg.mutable.then(|| quote!(mut));
        quote_spanned!(arg.ty.span()=> #recloning let #mutability #ident = #rt::batch_arg(&#ident);)
    });
    let missing = quote!(__stratacache_missing);
    let rebind = rebind_keys(plan, batch, &missing);
    let body = crate::body::typed_body(&output, block);
    // The loader's copies are the ones mutated; touching the caller's bindings mutably
    // keeps `mut` in the signature from being reported as unneeded.
    let touch = plan
        .args
        .iter()
        .filter(|arg| arg.mutable)
        .map(|arg| &arg.ident);
    quote! {
        #(#attrs)*
        #vis #sig {
            #lookup
            #(let _ = &mut #touch;)*
            let __stratacache_keys: ::std::vec::Vec<_> = ::core::iter::Iterator::collect(
                ::core::iter::Iterator::map(::core::iter::IntoIterator::into_iter(#keys_arg), #rt::owned_key),
            );
            __stratacache_cache
                .get_many::<#output, #absence, _, _, _>(
                    __stratacache_keys,
                    #tags_of,
                    move |#missing: ::std::vec::Vec<_>| {
                        #(#clones)*
                        #rt::typed_loader::<#output, _>(async move {
                            #rebind
                            #body
                        })
                    },
                )
                .await
        }
    }
}

/// The checks of the output (a map), its key and its item, at the return type (see
/// the runtime's `checks`): each mistake is one error. The function and its `clear!`
/// sibling emit them with the same spans, so rustc prints an error once.
pub(crate) fn type_checks(plan: &Plan, batch: &BatchPlan, item: &ItemFn) -> TokenStream {
    let (rt, import) = (runtime(), runtime_import(plan));
    let (output, absence) = (output_type(item), absence_type(batch));
    let mode = probe_mode(plan);
    let span = return_span(item);
    let types = quote_spanned!(span=>
        (&&&#rt::BatchProbe::<#output, #absence>::new()).types());
    let key = quote_spanned!(span=>
        (&&&&__stratacache_types.key_probe::<#mode>()).checked());
    let value = quote_spanned!(span=>
        __stratacache_types.value((&&&&__stratacache_types.item_probe::<#mode>()).checked()));
    quote! {
        #import
        #[allow(clippy::needless_borrow)]
        let __stratacache_types = #types;
        #[allow(clippy::needless_borrow)]
        let __stratacache_checked = #key.with(#value);
    }
}

/// The key argument, rebound in the loader to the keys still missing, in its own form.
fn rebind_keys(plan: &Plan, batch: &BatchPlan, missing: &TokenStream) -> TokenStream {
    let keys_arg = &plan.args[batch.keys].ident;
    let mutability = plan.args[batch.keys].mutable.then(|| quote!(mut));
    let allow = crate::expand_cache::rebinding();
    match &batch.list {
        KeyList::Slice => quote!(#allow let #keys_arg: &[_] = &#missing[..];),
        KeyList::Borrowed(ty) => {
            let ty = erase_lifetimes(ty.to_token_stream());
            quote! {
                let __stratacache_owned: #ty = ::core::iter::Iterator::collect(::core::iter::IntoIterator::into_iter(#missing));
                #allow let #keys_arg = &__stratacache_owned;
            }
        }
        KeyList::Owned(ty) => {
            let ty = erase_lifetimes(ty.to_token_stream());
            quote!(#allow let #mutability #keys_arg: #ty = ::core::iter::Iterator::collect(::core::iter::IntoIterator::into_iter(#missing));)
        }
        KeyList::Iterator => {
            quote!(#allow let #mutability #keys_arg = ::core::iter::IntoIterator::into_iter(#missing);)
        }
    }
}
