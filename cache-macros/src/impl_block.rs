//! `#[cached_impl]` on an `impl` block, for `#[cached]` methods of a trait impl: a
//! trait impl may hold only the trait's items, so the methods' hidden siblings (what
//! the entry macros and `clear!` call) go into an inherent impl of the same type,
//! emitted beside it. The attribute runs before `#[async_trait]` when it is written
//! above it, so the methods are still `async fn` when they are expanded.

use proc_macro2::TokenStream;
use quote::{quote, ToTokens};
use syn::visit_mut::VisitMut;
use syn::{Ident, ImplItem, ItemFn, ItemImpl, Meta, Visibility};

use crate::{args, expand, validate};

pub(crate) fn cached_impl(item: TokenStream) -> syn::Result<TokenStream> {
    let mut block: ItemImpl = syn::parse2(item)?;
    let in_trait = block.trait_.is_some();
    let mut qualify = QualifySelf::of(&block);
    let mut siblings = Vec::new();
    let mut attribute_paths = Vec::new();
    let mut errors: Option<syn::Error> = None;
    for impl_item in &mut block.items {
        let ImplItem::Fn(method) = impl_item else {
            continue;
        };
        let Some(index) = method.attrs.iter().position(is_cached) else {
            continue;
        };
        let attribute = method.attrs.remove(index);
        attribute_paths.push(attribute.path().clone());
        let function = ItemFn {
            attrs: method.attrs.clone(),
            // A trait method has no visibility of its own; its siblings are reachable
            // from the whole crate, like the trait's method through the trait.
            vis: match (&method.vis, in_trait) {
                (Visibility::Inherited, true) => syn::parse_quote!(pub(crate)),
                (vis, _) => vis.clone(),
            },
            sig: crate::ungroup::ungrouped(method.sig.clone()),
            block: Box::new(method.block.clone()),
        };
        match expand_method(&attribute, &function, qualify.as_mut()) {
            Ok((main, method_siblings)) => {
                let mut main: syn::ImplItemFn = syn::parse2(main)?;
                main.vis = method.vis.clone();
                *method = main;
                siblings.push(method_siblings);
            }
            Err(error) => match &mut errors {
                Some(all) => all.combine(error),
                None => errors = Some(error),
            },
        }
    }
    if let Some(errors) = errors {
        let mut out = errors.into_compile_error();
        out.extend(block.into_token_stream());
        return Ok(out);
    }
    let (impl_generics, _, where_clause) = block.generics.split_for_impl();
    let self_ty = &block.self_ty;
    let inherent = (!siblings.is_empty()).then(|| {
        quote! {
            impl #impl_generics #self_ty #where_clause {
                #(#siblings)*
            }
            // The `#[cached]` attributes were expanded here, not by `cached` itself:
            // name it once so the user's `use stratacache::cached` is not unused.
            const _: () = {
                #(#[allow(unused_imports)] use #attribute_paths as _;)*
            };
        }
    });
    Ok(quote!(#block #inherent))
}

/// `#[cached]`, `#[stratacache::cached]`, ...
fn is_cached(attribute: &syn::Attribute) -> bool {
    attribute
        .path()
        .segments
        .last()
        .is_some_and(|segment| segment.ident == "cached")
}

/// The method, and its siblings: from the method as written, or, in a trait impl
/// whose signature names `Self::Assoc`, from the method with those types qualified.
fn expand_method(
    attribute: &syn::Attribute,
    function: &ItemFn,
    qualify: Option<&mut QualifySelf>,
) -> syn::Result<(TokenStream, TokenStream)> {
    let tokens = match &attribute.meta {
        Meta::Path(_) => TokenStream::new(),
        Meta::List(list) => list.tokens.clone(),
        Meta::NameValue(value) => {
            return Err(syn::Error::new_spanned(
                value,
                "write `#[cached(ttl = \"1m\", ...)]`, with the arguments in parentheses",
            ))
        }
    };
    let args: args::CachedArgs = syn::parse2(tokens.clone())?;
    let plan = validate::validate(args, function)?;
    let (main, siblings) = expand::expand_parts(&plan, function);
    let Some(qualify) = qualify else {
        return Ok((main, siblings));
    };
    let mut qualified = function.clone();
    qualify.rewritten = false;
    qualify.visit_signature_mut(&mut qualified.sig);
    if !qualify.rewritten {
        return Ok((main, siblings));
    }
    let plan = validate::validate(syn::parse2(tokens)?, &qualified)?;
    Ok((main, expand::expand_parts(&plan, &qualified).1))
}

/// In a trait impl, `Self::Id` names the trait's associated type; in the inherent impl
/// that holds the siblings it is ambiguous (E0223), so their signatures spell it
/// `<Pg as Repo>::Id`.
struct QualifySelf {
    qualified: TokenStream,
    associated_types: Vec<Ident>,
    rewritten: bool,
}

impl QualifySelf {
    fn of(block: &ItemImpl) -> Option<Self> {
        let (_, trait_path, _) = block.trait_.as_ref()?;
        let self_ty = &block.self_ty;
        let associated_types = block
            .items
            .iter()
            .filter_map(|item| match item {
                ImplItem::Type(ty) => Some(ty.ident.clone()),
                _ => None,
            })
            .collect::<Vec<_>>();
        (!associated_types.is_empty()).then(|| Self {
            qualified: quote!(<#self_ty as #trait_path>),
            associated_types,
            rewritten: false,
        })
    }
}

impl VisitMut for QualifySelf {
    fn visit_type_path_mut(&mut self, ty: &mut syn::TypePath) {
        syn::visit_mut::visit_type_path_mut(self, ty);
        let mut segments = ty.path.segments.iter();
        let names_associated = ty.qself.is_none()
            && segments.next().is_some_and(|first| first.ident == "Self")
            && segments
                .next()
                .is_some_and(|second| self.associated_types.contains(&second.ident));
        if names_associated {
            let (qualified, rest) = (&self.qualified, ty.path.segments.iter().skip(1));
            *ty = syn::parse_quote!(#qualified::#(#rest)::*);
            self.rewritten = true;
        }
    }
}
