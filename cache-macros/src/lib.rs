//! The `#[cached]` attribute of [stratacache](https://docs.rs/stratacache), and the
//! entry and cache macros (`invalidate!`, `put!`, `refresh!`, `peek!`, `contains!`,
//! `clear!`). Use them through the `stratacache` crate, which documents them; this
//! crate only wires the macros to their parts: `args.rs` (grammar), `validate.rs`
//! (meaning), `expand.rs` (code), `ops.rs` (the entry and cache macros).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod args;
mod body;
mod expand;
mod expand_background;
mod expand_batch;
mod expand_cache;
mod impl_block;
mod ops;
mod template;
mod ungroup;
mod validate;
mod validate_batch;
mod validate_policies;
mod validate_shape;
mod validate_times;

use proc_macro::TokenStream;
use quote::ToTokens;

/// Caches an `async fn` in stratacache's multi-level cache. See the `stratacache`
/// crate documentation for the arguments and the rules.
#[proc_macro_attribute]
pub fn cached(args: TokenStream, item: TokenStream) -> TokenStream {
    let function = match syn::parse::<syn::ItemFn>(item.clone()) {
        Ok(function) => syn::ItemFn {
            sig: ungroup::ungrouped(function.sig),
            ..function
        },
        // A function whose body does not parse: rustc's own error says what is wrong.
        Err(_) if is_a_function(&item) => return item,
        Err(error) => {
            let message = "`#[cached]` goes on a function (`async fn` or `fn`: free, inherent, or in a `#[cached_impl]` block)";
            return with_item(syn::Error::new(error.span(), message), item);
        }
    };
    let (args, args_error) = match syn::parse::<args::CachedArgs>(args) {
        Ok(args) => (args, None),
        // Malformed tokens: still check the function, so one compile shows every mistake.
        Err(error) => (args::CachedArgs::default(), Some(error)),
    };
    let planned = validate::validate(args, &function);
    match (planned, args_error) {
        (Ok(plan), None) => expand::expand(&plan, &function).into(),
        (Ok(_), Some(error)) => with_item(error, item),
        (Err(error), None) => with_item(error, item),
        (Err(error), Some(mut all)) => {
            all.combine(error);
            with_item(all, item)
        }
    }
}

/// On an `impl` block whose methods are `#[cached]`: required for a trait impl (native
/// `async fn` in the trait, or `#[async_trait]`, written below this attribute). See the
/// `stratacache` crate documentation.
#[proc_macro_attribute]
pub fn cached_impl(args: TokenStream, item: TokenStream) -> TokenStream {
    if !args.is_empty() {
        let args = proc_macro2::TokenStream::from(args);
        let error = syn::Error::new_spanned(
            args,
            "`#[cached_impl]` takes no arguments: put them on each method's `#[cached(...)]`",
        );
        return with_item(error, item);
    }
    match impl_block::cached_impl(item.clone().into()) {
        Ok(expanded) => expanded.into(),
        Err(error) => with_item(error, item),
    }
}

/// Invalidates one entry of a cached function, named by a call with its arguments:
/// `invalidate!(get_user(7)).await?`, `invalidate!(repo.get_user(7)).await?`.
#[proc_macro]
pub fn invalidate(input: TokenStream) -> TokenStream {
    ops::invalidate(input.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Write-through: stores a value for one entry, here and in Redis, and tells the
/// other processes: `put!(get_user(7), user).await?`.
#[proc_macro]
pub fn put(input: TokenStream) -> TokenStream {
    ops::put(input.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Makes the call, loading now whatever is cached: `refresh!(get_user(7)).await`.
#[proc_macro]
pub fn refresh(input: TokenStream) -> TokenStream {
    ops::refresh(input.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// The cached value of one entry, never loading: `peek!(get_user(7)).await`.
#[proc_macro]
pub fn peek(input: TokenStream) -> TokenStream {
    ops::peek(input.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Whether any level holds a fresh value for one entry: `contains!(get_user(7)).await`.
#[proc_macro]
pub fn contains(input: TokenStream) -> TokenStream {
    ops::contains(input.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Loads entries ahead of traffic, with bounded concurrency, and reports what it did:
/// `warm_up!(ids, |id| get_user(id)).await`, `warm_up!(get_users(&ids)).await`.
#[proc_macro]
pub fn warm_up(input: TokenStream) -> TokenStream {
    ops::warm_up(input.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Invalidates every entry of one cached function: `clear!(get_user).await?`,
/// `clear!(Repo::get).await?`.
#[proc_macro]
pub fn clear(input: TokenStream) -> TokenStream {
    ops::clear(input.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// `fn` among the item's top-level tokens (before its body): a function, even if its
/// body does not parse.
fn is_a_function(item: &TokenStream) -> bool {
    item.clone().into_iter().any(
        |token| matches!(token, proc_macro::TokenTree::Ident(ident) if ident.to_string() == "fn"),
    )
}

/// On error, the function is emitted unchanged beside the error, so only the real
/// mistake shows and IDEs keep resolving the function.
fn with_item(error: syn::Error, item: TokenStream) -> TokenStream {
    let mut out = error.into_compile_error();
    out.extend(proc_macro2::TokenStream::from(item).into_token_stream());
    out.into()
}
