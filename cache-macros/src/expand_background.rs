//! The call of a function whose loads may run in the background (stale-while-
//! revalidate, refresh-ahead, timeouts): its loader owns copies of the arguments and
//! of the receiver, made only when a load starts.

use proc_macro2::{Group, Ident, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::Type;

use crate::body::typed_body;
use crate::expand::checked_loader;
use crate::expand_cache::{borrowed_owned_key, runtime, shape_type, tags_expr};
use crate::validate::{Plan, ReceiverKind};

pub(crate) fn owned_ident(arg: &Ident) -> Ident {
    format_ident!("__stratacache_arg_{}", arg)
}

/// The loader owns everything (arguments by `ToOwned`, `&self` by `Clone`), so a
/// stale-while-revalidate refresh can run in a spawned task.
pub(crate) fn background_call(
    plan: &Plan,
    output: &Type,
    block: &syn::Block,
    key: &TokenStream,
) -> TokenStream {
    let rt = runtime();
    let shape = shape_type(plan);
    let (take, rebind) = owned_arguments(plan);
    let self_ident = format_ident!("__stratacache_self");
    let (take_self, rebind_self) = owned_receiver(plan, &self_ident);
    let typed = typed_body(output, block);
    let typed = if plan.receiver.is_some() {
        replace_self(typed, &self_ident)
    } else {
        typed
    };
    let tags = tags_expr(plan, |name| owned_ident(name).to_token_stream());
    // With `hard_timeout`, how a timed-out call becomes the function's `Err`.
    let timed_out = if plan.hard_timeout {
        quote!(::core::option::Option::Some(|__stratacache_timed_out: #rt::TimedOut| -> #output {
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
            #typed
        }),
    );
    // The loader's copies are made only when a load or refresh starts, not on a hit.
    crate::expand::awaited(quote! {
        __stratacache_cache
            .get_or_load_refreshing::<#shape, _, _>(#key, __stratacache_share, || {
                #(#take)*
                #take_self
                move || {
                    let __stratacache_tags = #tags;
                    (__stratacache_tags, #loader)
                }
            }, #timed_out)
    })
}

/// Each argument's owned copy (`take`, made by the call) and its binding inside the
/// loader (`rebind`, borrowed back from the copy for a reference argument).
fn owned_arguments(plan: &Plan) -> (Vec<TokenStream>, Vec<TokenStream>) {
    let borrowed_key = borrowed_owned_key(plan);
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
                // The key borrows it for the whole call.
                _ if borrowed_key == Some(ident) => {
                    quote!(let #owned = ::core::clone::Clone::clone(&#ident);)
                }
                _ => quote!(#touch let #owned = #ident;),
            }
        })
        .collect();
    let allow = crate::expand_cache::rebinding();
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
                    quote!(#allow let #mutability #ident: #ty = ::core::borrow::Borrow::borrow(&#owned);)
                }
                _ => quote!(#allow let #mutability #ident = #owned;),
            }
        })
        .collect();
    (take, rebind)
}

/// The receiver's owned copy (`&self` by `Clone`) and its binding inside the loader,
/// where `self` is renamed `self_ident`.
fn owned_receiver(plan: &Plan, self_ident: &Ident) -> (Option<TokenStream>, Option<TokenStream>) {
    let rt = runtime();
    match &plan.receiver {
        None => (None, None),
        Some(ReceiverKind::Shared(self_token, referent)) => {
            let referent = erase_lifetimes(referent.to_token_stream());
            (
                Some(
                    quote_spanned!(self_token.span=> let __stratacache_self_owned = #rt::clone_receiver(self);),
                ),
                Some(quote!(let #self_ident: &#referent = &__stratacache_self_owned;)),
            )
        }
        Some(ReceiverKind::Owned | ReceiverKind::Exclusive) => (
            Some(quote!(let __stratacache_self_owned = self;)),
            Some(quote!(#[allow(unused_mut)] let mut #self_ident = __stratacache_self_owned;)),
        ),
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
pub(crate) fn replace_self(tokens: TokenStream, with: &Ident) -> TokenStream {
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
