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
use crate::expand_cache::{return_span, tags_expr};
use crate::validate::{BatchPlan, KeyList, Plan};

/// The key and cached value types of the cache, from the return type: a map's key,
/// and its value (or `Option` of it with `cache_none`).
pub(crate) fn cache_types(
    plan: &Plan,
    batch: &BatchPlan,
    item: &ItemFn,
) -> (TokenStream, TokenStream) {
    let krate = &plan.krate;
    let output = output_type(item);
    let absence = absence_type(plan, batch);
    (
        quote!(<#output as #krate::__private::BatchOutput>::Key),
        quote!(<#absence as #krate::__private::Absence<<#output as #krate::__private::BatchOutput>::Item>>::Value),
    )
}

fn absence_type(plan: &Plan, batch: &BatchPlan) -> TokenStream {
    let krate = &plan.krate;
    if batch.cache_none {
        quote!(#krate::__private::CacheMissing)
    } else {
        quote!(#krate::__private::SkipMissing)
    }
}

pub(crate) fn main_fn(
    plan: &Plan,
    batch: &BatchPlan,
    item: &ItemFn,
    lookup: &TokenStream,
) -> TokenStream {
    let krate = &plan.krate;
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = item;
    let output = output_type(item);
    let key_ty = quote!(<#output as #krate::__private::BatchOutput>::Key);
    let absence = absence_type(plan, batch);
    let keys_arg = &plan.args[batch.keys].ident;

    let checks = type_checks(plan, item, &key_ty);

    // In a tag template, the key argument stands for one key.
    let tags = tags_expr(plan, |name| name.to_token_stream());
    let tags_of = quote! {
        |__stratacache_key: &#key_ty| -> #krate::__private::Tags {
            #[allow(unused_variables)]
            let #keys_arg = __stratacache_key;
            #tags
        }
    };

    let clones = plan.args.iter().filter(|a| !a.in_key).map(|arg| {
        let ident = &arg.ident;
        let mutability = arg.mutable.then(|| quote!(mut));
        quote_spanned!(arg.ty.span()=> let #mutability #ident = #krate::__private::batch_arg(&#ident);)
    });
    let missing = quote!(__stratacache_missing);
    let rebind = rebind_keys(plan, batch, &missing);
    quote! {
        #(#attrs)*
        #vis #sig {
            #checks
            #lookup
            let __stratacache_keys: ::std::vec::Vec<#key_ty> = ::core::iter::Iterator::collect(
                ::core::iter::Iterator::map(::core::iter::IntoIterator::into_iter(#keys_arg), #krate::__private::owned_key::<#key_ty, _>),
            );
            __stratacache_cache
                .get_many::<#output, #absence, _, _, _>(
                    __stratacache_keys,
                    #tags_of,
                    move |#missing: ::std::vec::Vec<#key_ty>| {
                        #(#clones)*
                        #krate::__private::typed_loader::<#output, _>(async move {
                            #rebind
                            #block
                        })
                    },
                )
                .await
        }
    }
}

/// The checks of the output, key and item types, at the return type.
fn type_checks(plan: &Plan, item: &ItemFn, key_ty: &TokenStream) -> TokenStream {
    let krate = &plan.krate;
    let output = output_type(item);
    let span = return_span(item);
    let item_ty = quote!(<#output as #krate::__private::BatchOutput>::Item);
    let shared = (!plan.local).then(|| {
        quote_spanned! {span=>
            #krate::__private::assert_shared_value::<#item_ty>();
            #krate::__private::assert_shared_key::<#key_ty>();
        }
    });
    quote_spanned! {span=>
        #krate::__private::assert_batch_output::<#output>();
        #krate::__private::assert_cacheable::<#item_ty>();
        #shared
    }
}

/// The key argument, rebound in the loader to the keys still missing, in its own form.
fn rebind_keys(plan: &Plan, batch: &BatchPlan, missing: &TokenStream) -> TokenStream {
    let keys_arg = &plan.args[batch.keys].ident;
    let mutability = plan.args[batch.keys].mutable.then(|| quote!(mut));
    match &batch.list {
        KeyList::Slice => quote!(let #keys_arg: &[_] = &#missing[..];),
        KeyList::Borrowed(ty) => {
            let ty = erase_lifetimes(ty.to_token_stream());
            quote! {
                let __stratacache_owned: #ty = ::core::iter::Iterator::collect(::core::iter::IntoIterator::into_iter(#missing));
                let #keys_arg = &__stratacache_owned;
            }
        }
        KeyList::Owned(ty) => {
            let ty = erase_lifetimes(ty.to_token_stream());
            quote!(let #mutability #keys_arg: #ty = ::core::iter::Iterator::collect(::core::iter::IntoIterator::into_iter(#missing));)
        }
        KeyList::Iterator => {
            quote!(let #mutability #keys_arg = ::core::iter::IntoIterator::into_iter(#missing);)
        }
    }
}
