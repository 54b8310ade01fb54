//! The entry and cache macros: `invalidate!`, `put!`, `refresh!`, `peek!`,
//! `contains!` (an entry, named by a call with its arguments) and `clear!` (a whole
//! function). Each rewrites the call or path to a hidden sibling that `#[cached]`
//! generated next to `f`, so a typo or a function that is not cached is a compile
//! error, never a silent call of `f` itself.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Expr, ExprPath, Path, Token};

use crate::args::ungrouped;
use crate::expand::{clear_ident, entry_ident};

fn usage(name: &str) -> String {
    format!(
        "expected a call of a `#[cached]` function with the arguments of the entry, \
         such as `{name}!(get_user(7))` or `{name}!(repo.get_user(7))`"
    )
}

/// `f(args)` -> `__stratacache_entry_f(args)`, `recv.m(args)` ->
/// `recv.__stratacache_entry_m(args)`.
fn entry_call(call: Expr, name: &str) -> syn::Result<Expr> {
    match ungrouped(call) {
        Expr::Call(mut call) => {
            let Expr::Path(ExprPath { path, .. }) = &mut *call.func else {
                return Err(syn::Error::new_spanned(&call.func, usage(name)));
            };
            rename_last(path, entry_ident)?;
            Ok(Expr::Call(call))
        }
        Expr::MethodCall(mut call) => {
            call.method = entry_ident(&call.method);
            Ok(Expr::MethodCall(call))
        }
        other => Err(syn::Error::new_spanned(other, usage(name))),
    }
}

/// `EntryOps::op(sibling(args))` for the macros that only need the entry.
fn entry_op(input: TokenStream, op: &str) -> syn::Result<TokenStream> {
    let (krate, input) = split_crate(input);
    let entry = entry_call(syn::parse2::<Expr>(input)?, op)?;
    let op = syn::Ident::new(op, Span::call_site());
    Ok(quote!(#krate::__private::EntryOps::#op(#entry)))
}

/// The facade's `macro_rules!` wrappers call these macros as `$crate; input`, so the
/// expansion names the runtime through whatever name the user gave the crate.
fn split_crate(input: TokenStream) -> (TokenStream, TokenStream) {
    let mut tokens = input.into_iter();
    let krate = tokens
        .by_ref()
        .take_while(|token| !matches!(token, TokenTree::Punct(p) if p.as_char() == ';'))
        .collect();
    (krate, tokens.collect())
}

pub(crate) fn invalidate(input: TokenStream) -> syn::Result<TokenStream> {
    entry_op(input, "invalidate")
}

pub(crate) fn peek(input: TokenStream) -> syn::Result<TokenStream> {
    entry_op(input, "peek")
}

pub(crate) fn contains(input: TokenStream) -> syn::Result<TokenStream> {
    entry_op(input, "contains")
}

/// `put!(f(args), value)`.
struct PutInput {
    call: Expr,
    value: Expr,
}

impl Parse for PutInput {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let call: Expr = input.parse()?;
        if input.is_empty() {
            return Err(syn::Error::new_spanned(
                &call,
                "`put!` takes the call and the value to store: `put!(get_user(7), user)`",
            ));
        }
        input.parse::<Token![,]>()?;
        let value = input.parse()?;
        input.parse::<Option<Token![,]>>()?;
        Ok(Self { call, value })
    }
}

pub(crate) fn put(input: TokenStream) -> syn::Result<TokenStream> {
    let (krate, input) = split_crate(input);
    let PutInput { call, value } = syn::parse2(input)?;
    let entry = entry_call(call, "put")?;
    Ok(quote!(#krate::__private::EntryOps::put(#entry, #value)))
}

/// `refresh!(f(args))` makes the call itself, flagged to load now: a sync function's
/// at once, an `async fn`'s in its future's first poll (see `AsFuture`). The sibling is
/// named in code that never runs (its arguments are `unreachable!()`, of type `!`), so a
/// call of a function that is not cached is still a compile error.
pub(crate) fn refresh(input: TokenStream) -> syn::Result<TokenStream> {
    let (krate, input) = split_crate(input);
    let call = syn::parse2::<Expr>(input)?;
    let never = |args: &syn::punctuated::Punctuated<Expr, Token![,]>| {
        args.iter()
            .map(|arg| quote_spanned!(arg.span()=> ::core::unreachable!()))
            .collect::<Vec<_>>()
    };
    let check = match entry_call(call.clone(), "refresh")? {
        Expr::Call(mut sibling) => {
            let args = never(&sibling.args);
            sibling.args = syn::parse_quote!(#(#args),*);
            quote!(#sibling)
        }
        Expr::MethodCall(mut sibling) => {
            let args = never(&sibling.args);
            sibling.args = syn::parse_quote!(#(#args),*);
            let receiver = &sibling.receiver;
            *sibling.receiver = syn::parse_quote!((&#receiver));
            quote!(#sibling)
        }
        _ => unreachable!("entry_call returns a call"),
    };
    Ok(quote! {
        {
            #[allow(unreachable_code, unused_must_use, clippy::diverging_sub_expression)]
            if false {
                ::core::mem::drop(#check);
            }
            use #krate::__private::probes::*;
            #krate::__private::reloading(
                #krate::__private::ReloadRequest::new(),
                #krate::__private::AsFuture::new(#call).into_future_call(),
            )
        }
    })
}

/// `warm_up!(items, |item| f(item))`, `warm_up!(items, |item| f(item), concurrency = 8)`,
/// or `warm_up!(batch_fn(&keys))`.
enum WarmUpInput {
    Each {
        items: Expr,
        closure: Box<syn::ExprClosure>,
        concurrency: Option<Expr>,
    },
    Batch(Expr),
}

const WARM_UP_USAGE: &str = "expected `warm_up!(ids, |id| get_user(id))` (add `, concurrency = 8` to bound it differently) or, for a batch function, `warm_up!(get_users(&ids))`";

impl Parse for WarmUpInput {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let first: Expr = input.parse()?;
        if input.is_empty() {
            return Ok(WarmUpInput::Batch(first));
        }
        input.parse::<Token![,]>()?;
        let closure: Box<syn::ExprClosure> = input
            .parse()
            .map(Box::new)
            .map_err(|error| syn::Error::new(error.span(), WARM_UP_USAGE))?;
        let mut concurrency = None;
        if input.parse::<Option<Token![,]>>()?.is_some() && !input.is_empty() {
            let keyword: syn::Ident = input.parse()?;
            if keyword != "concurrency" {
                return Err(syn::Error::new_spanned(
                    keyword,
                    "the only option of `warm_up!` is `concurrency = N`",
                ));
            }
            input.parse::<Token![=]>()?;
            concurrency = Some(input.parse()?);
            input.parse::<Option<Token![,]>>()?;
        }
        Ok(WarmUpInput::Each {
            items: first,
            closure,
            concurrency,
        })
    }
}

pub(crate) fn warm_up(input: TokenStream) -> syn::Result<TokenStream> {
    let (krate, input) = split_crate(input);
    match syn::parse2(input)? {
        WarmUpInput::Batch(call) => Ok(quote!(#krate::__private::warm_up_batch(#call))),
        WarmUpInput::Each {
            items,
            closure,
            concurrency,
        } => {
            if closure.inputs.len() != 1 {
                return Err(syn::Error::new_spanned(
                    &closure.inputs,
                    "the closure of `warm_up!` takes one item: `|id| get_user(id)`",
                ));
            }
            let pattern = &closure.inputs[0];
            let call = match &*closure.body {
                Expr::Paren(inner) => (*inner.expr).clone(),
                body => body.clone(),
            };
            let entry = entry_call(call.clone(), "warm_up")?;
            let concurrency = concurrency.map_or_else(|| quote!(16), |n| quote!(#n));
            Ok(quote! {
                {
                    use #krate::__private::probes::*;
                    #krate::__private::warm_up(#items, #concurrency, |#pattern| #entry, |#pattern| {
                        #krate::__private::AsFuture::new(#call).into_future_call()
                    })
                }
            })
        }
    }
}

pub(crate) fn clear(input: TokenStream) -> syn::Result<TokenStream> {
    let (krate, input) = split_crate(input);
    let mut path: Path = syn::parse2(input).map_err(|error| {
        syn::Error::new(error.span(), "expected the path of a `#[cached]` function, such as `clear!(get_user)` or `clear!(Repo::get)`")
    })?;
    rename_last(&mut path, clear_ident)?;
    Ok(quote!(#krate::__private::CacheOps::clear(#path())))
}

fn rename_last(path: &mut Path, rename: fn(&syn::Ident) -> syn::Ident) -> syn::Result<()> {
    let last = path
        .segments
        .last_mut()
        .expect("a parsed path has a segment");
    if !last.arguments.is_none() {
        return Err(syn::Error::new_spanned(
            &last.arguments,
            "`#[cached]` functions are not generic: remove the generic arguments",
        ));
    }
    last.ident = rename(&last.ident);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A user who renamed the dependency reaches the runtime through the facade's
    /// `$crate`, never through a hard-coded `::stratacache`.
    #[test]
    fn every_entry_macro_names_the_runtime_through_the_crate_it_is_given() {
        let expansions = [
            invalidate(quote!(renamed; get_user(7))),
            put(quote!(renamed; get_user(7), user)),
            refresh(quote!(renamed; repo.get_user(7))),
            peek(quote!(renamed; get_user(7))),
            contains(quote!(renamed; get_user(7))),
            warm_up(quote!(renamed; ids, |id| get_user(id))),
            warm_up(quote!(renamed; get_users(&ids))),
            clear(quote!(renamed; Repo::get_user)),
        ];
        for expansion in expansions {
            let expansion = expansion.unwrap().to_string();
            assert!(expansion.contains("renamed :: __private"), "{expansion}");
            assert!(!expansion.contains("stratacache ::"), "{expansion}");
        }
    }
}
