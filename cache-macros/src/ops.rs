//! `invalidate!(f(args))` and `clear!(f)`: rewrite the call or path to the hidden
//! sibling that `#[cached]` generated next to `f`, so a typo or a function that is not
//! cached is a compile error, never a call of `f` itself.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Expr, ExprPath, Path};

use crate::expand::{clear_ident, entry_ident};

const ENTRY_USAGE: &str =
    "expected a call of a `#[cached]` function with the arguments of the entry, \
     such as `invalidate!(get_user(7))` or `invalidate!(repo.get_user(7))`";

pub(crate) fn invalidate(input: TokenStream) -> syn::Result<TokenStream> {
    let target = match syn::parse2::<Expr>(input)? {
        Expr::Call(mut call) => {
            let Expr::Path(ExprPath { path, .. }) = &mut *call.func else {
                return Err(syn::Error::new_spanned(&call.func, ENTRY_USAGE));
            };
            rename_last(path, entry_ident)?;
            Expr::Call(call)
        }
        Expr::MethodCall(mut call) => {
            call.method = entry_ident(&call.method);
            Expr::MethodCall(call)
        }
        other => return Err(syn::Error::new_spanned(other, ENTRY_USAGE)),
    };
    Ok(quote!(::stratacache::__private::EntryOps::invalidate(#target)))
}

pub(crate) fn clear(input: TokenStream) -> syn::Result<TokenStream> {
    let mut path: Path = syn::parse2(input).map_err(|error| {
        syn::Error::new(error.span(), "expected the path of a `#[cached]` function, such as `clear!(get_user)` or `clear!(Repo::get)`")
    })?;
    rename_last(&mut path, clear_ident)?;
    Ok(quote!(::stratacache::__private::CacheOps::clear(#path())))
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
