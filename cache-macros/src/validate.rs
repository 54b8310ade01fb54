//! Semantic checks of the attribute against the function, each a spanned error on the
//! offending token, all reported together. The result is a [`Plan`] for `expand.rs`.

use std::collections::BTreeSet;

use syn::{FnArg, GenericParam, Ident, ItemFn, LitStr, Pat, Type};

use crate::args::{CachedArgs, Errors};
use crate::template::{list, template, Template};
use crate::validate_batch::batch_plan;
pub(crate) use crate::validate_batch::{BatchPlan, KeyList};
use crate::validate_policies::{at_least_one, policies};
pub(crate) use crate::validate_shape::ShapeKind;
use crate::validate_shape::{check_hard_timeout, first_impl_trait, shape};
use crate::validate_times::times;
pub(crate) use crate::validate_times::Times;

/// Everything the expansion needs, already checked.
pub(crate) struct Plan {
    pub(crate) krate: syn::Path,
    pub(crate) name: Option<LitStr>,
    /// `ttl` and the windows and bounds measured against it.
    pub(crate) times: Times,
    /// `refresh_ahead = "xfetch"`: its beta.
    pub(crate) xfetch: Option<f64>,
    pub(crate) lock: bool,
    pub(crate) hard_timeout: bool,
    /// `None`: the runtime's default capacity.
    pub(crate) capacity: Option<u64>,
    pub(crate) local: bool,
    /// A plain `fn`: its call blocks on the (in-process) pipeline.
    pub(crate) sync: bool,
    pub(crate) version: u32,
    pub(crate) shape: ShapeKind,
    pub(crate) receiver: Option<ReceiverKind>,
    pub(crate) args: Vec<Arg>,
    pub(crate) key: KeyPlan,
    pub(crate) tags: Vec<Template>,
    /// Stale-while-revalidate and refresh-ahead refresh in a spawned task, so the
    /// loader must own everything it uses.
    pub(crate) background: bool,
    /// `batch`: which argument holds the keys, and how.
    pub(crate) batch: Option<BatchPlan>,
    /// `sliding`: a hit extends the value's freshness.
    pub(crate) sliding: bool,
    /// `max_loads = n`: `None` follows the `Config`.
    pub(crate) max_loads: Option<usize>,
    /// `compress = ..` and `encrypt = ..`: `None` follows the `Config`.
    pub(crate) compress: Option<bool>,
    pub(crate) encrypt: Option<bool>,
    /// `validate = path`: checked on each loaded value before it is cached.
    pub(crate) validate: Option<syn::Path>,
}

pub(crate) enum ReceiverKind {
    /// `&self` or `self: &Arc<Self>`: the `self` token for error spans, and what it
    /// borrows (`Self`, `Arc<Self>`), which a background load clones.
    Shared(syn::Token![self], Box<Type>),
    /// `&mut self`
    Exclusive,
    /// `self`, `mut self`, `self: Arc<Self>` ...
    Owned,
}

pub(crate) struct Arg {
    pub(crate) ident: Ident,
    pub(crate) ty: Type,
    pub(crate) mutable: bool,
    pub(crate) in_key: bool,
}

pub(crate) enum KeyPlan {
    /// The tuple of the arguments marked `in_key`.
    Args,
    Template(Template),
}

/// `#[async_trait]` expands an impl before the attributes of its methods, turning each
/// `async fn` into a `fn` returning a boxed future, with a lifetime `'async_trait`.
/// Cached as it is, that would be a sync function caching a future, with siblings a
/// trait impl cannot hold: one error says what to write instead.
fn reject_async_trait_desugaring(sig: &syn::Signature) -> syn::Result<()> {
    let desugared = sig.generics.params.iter().any(
        |param| matches!(param, GenericParam::Lifetime(def) if def.lifetime.ident == "async_trait"),
    );
    if desugared {
        return Err(syn::Error::new(
            sig.ident.span(),
            "`#[cached]` in an `#[async_trait]` impl: `#[async_trait]` has already turned this `async fn` into a boxed future; put `#[cached_impl]` on the impl block, above `#[async_trait]`",
        ));
    }
    Ok(())
}

pub(crate) fn validate(mut args: CachedArgs, item: &ItemFn) -> syn::Result<Plan> {
    let sig = &item.sig;
    reject_async_trait_desugaring(sig)?;
    let mut errors = std::mem::take(&mut args.errors);

    let sync = check_signature(&args, sig, &mut errors);
    let times = times(&args, &mut errors);
    let policies = policies(&args, &mut errors);
    if let (Some(lock), Some(_)) = (&args.lock, &args.local) {
        errors.spanned(&lock.keyword, "`lock` coordinates loads through Redis, and a `local` cache never uses Redis: remove one of them");
    }

    let capacity = at_least_one::<u64>(&args.capacity, &mut errors);
    let (krate, version) = identity(&args, &mut errors);

    // Both refresh in a spawned task, so the loader must own what it uses.
    let background = times.stale_window.is_some()
        || times.refresh_ahead.is_some()
        || policies.xfetch.is_some()
        || times.timeout.is_some();
    let (receiver, mut params) = signature_args(item, background, &mut errors);
    let names: BTreeSet<String> = params.iter().map(|a| a.ident.to_string()).collect();

    let key = key_plan(&args, &mut params, &names, &mut errors);
    let tags = args
        .tags
        .as_ref()
        .map(|given| {
            given
                .value
                .iter()
                .map(|lit| template(lit, &names, "tag", &mut errors))
                .collect()
        })
        .unwrap_or_default();

    let batch = args
        .batch
        .as_ref()
        .map(|given| batch_plan(given, &args, &params, &receiver, &mut errors));
    let shape = match batch {
        // A batch function's output is checked by the `BatchOutput` trait instead.
        Some(_) => ShapeKind::Whole(syn::parse_quote!(())),
        None => shape(&sig.output, &args, &mut errors),
    };
    check_hard_timeout(&args, &shape, &mut errors);
    errors.finish()?;
    Ok(Plan {
        krate,
        name: args.name.map(|g| g.value),
        times,
        xfetch: policies.xfetch,
        lock: args.lock.is_some(),
        hard_timeout: args.hard_timeout.is_some(),
        capacity,
        // A sync function's cache never reaches Redis (whose client needs a runtime).
        local: args.local.is_some() || sync,
        sync,
        version,
        shape,
        receiver,
        args: params,
        key,
        tags,
        background,
        batch,
        max_loads: policies.max_loads,
        sliding: policies.sliding,
        compress: policies.compress,
        encrypt: policies.encrypt,
        validate: policies.validate,
    })
}

/// The `sync`-ness of the function, after checking what a signature rules out: a
/// `const` or generic function, and arguments a sync function cannot have.
fn check_signature(args: &CachedArgs, sig: &syn::Signature, errors: &mut Errors) -> bool {
    let sync = sig.asyncness.is_none();
    if sync {
        for keyword in sync_incompatible(args) {
            errors.spanned(keyword, format!("`{keyword}` needs an `async fn`: a sync function's cache is in-process only and its loads run on the caller's thread; remove `{keyword}` or make the function `async fn`"));
        }
    }
    if let Some(constness) = &sig.constness {
        errors.spanned(constness, "a cached function cannot be `const`: its cache is looked up at run time; remove `const`");
    }
    for param in &sig.generics.params {
        if !matches!(param, GenericParam::Lifetime(_)) {
            errors.spanned(param, "`#[cached]` functions cannot be generic: each function has one cache with one key and value type; write a cached function per concrete type");
        }
    }

    sync
}

/// The runtime's path (`crate = ".."`) and the value's `version`; checks `name`.
fn identity(args: &CachedArgs, errors: &mut Errors) -> (syn::Path, u32) {
    let version = match &args.version {
        None => 0,
        Some(given) => given.value.base10_parse::<u32>().unwrap_or_else(|error| {
            errors.push(error);
            0
        }),
    };
    if let Some(given) = &args.name {
        if given.value.value().trim().is_empty() {
            errors.spanned(&given.value, "`name` must not be empty");
        }
    }
    let krate = match &args.krate {
        None => syn::parse_quote!(::stratacache),
        Some(given) => given.value.parse::<syn::Path>().unwrap_or_else(|error| {
            errors.spanned(
                &given.value,
                format!("`crate` must be a path such as \"::my_app::stratacache\": {error}"),
            );
            syn::parse_quote!(::stratacache)
        }),
    };

    (krate, version)
}

/// The key: a template, or the arguments not skipped (each checked as a key type).
fn key_plan(
    args: &CachedArgs,
    params: &mut [Arg],
    names: &BTreeSet<String>,
    errors: &mut Errors,
) -> KeyPlan {
    let mut skipped = BTreeSet::new();
    if let Some(skip) = &args.skip {
        if let Some(key) = &args.key {
            errors.spanned(
                &skip.keyword,
                format!(
                    "`skip` has no effect with `key`: the key template `{}` alone is the key",
                    key.value.value()
                ),
            );
        }
        for ident in &skip.value {
            let name = ident.to_string();
            if name != "self" && !names.contains(&name) {
                errors.spanned(
                    ident,
                    format!(
                        "`skip({name})` names no argument of this function; arguments: {}",
                        list(names)
                    ),
                );
            }
            skipped.insert(name);
        }
    }

    match &args.key {
        Some(given) => {
            let template = template(&given.value, names, "key", errors);
            params.iter_mut().for_each(|a| a.in_key = false);
            KeyPlan::Template(template)
        }
        None => {
            for arg in params.iter_mut() {
                arg.in_key = !skipped.contains(&arg.ident.to_string());
                // A batch function's key argument is a list; each element is a key.
                if arg.in_key && args.batch.is_none() {
                    check_key_type(arg, errors);
                }
            }
            KeyPlan::Args
        }
    }
}

/// The arguments given that need an async runtime or Redis.
fn sync_incompatible(args: &CachedArgs) -> Vec<&syn::Ident> {
    [
        args.stale_while_revalidate.as_ref().map(|g| &g.keyword),
        args.refresh_ahead.as_ref().map(|g| &g.keyword),
        args.timeout.as_ref().map(|g| &g.keyword),
        args.hard_timeout.as_ref().map(|g| &g.keyword),
        args.lock.as_ref().map(|g| &g.keyword),
        args.batch.as_ref().map(|g| &g.keyword),
        args.version.as_ref().map(|g| &g.keyword),
        args.compress.as_ref().map(|g| &g.keyword),
        args.encrypt.as_ref().map(|g| &g.keyword),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn signature_args(
    item: &ItemFn,
    background: bool,
    errors: &mut Errors,
) -> (Option<ReceiverKind>, Vec<Arg>) {
    let mut receiver = None;
    let mut args = Vec::new();
    for input in &item.sig.inputs {
        match input {
            FnArg::Receiver(r) => {
                // `r.ty` is the receiver's type written out: `&Self` for `&self`.
                let kind = match &*r.ty {
                    Type::Reference(borrowed) if borrowed.mutability.is_none() => {
                        ReceiverKind::Shared(r.self_token, borrowed.elem.clone())
                    }
                    Type::Reference(_) => ReceiverKind::Exclusive,
                    _ => ReceiverKind::Owned,
                };
                if background && matches!(kind, ReceiverKind::Exclusive) {
                    errors.spanned(r, "`stale_while_revalidate` refreshes in the background, which cannot hold `&mut self`; take `&self`");
                } else if background && matches!(kind, ReceiverKind::Owned) && borrows(&r.ty) {
                    errors.spanned(r, "`stale_while_revalidate` refreshes in the background, which cannot hold a borrowed `self` (`Pin<&mut Self>`); take `&self` or an owned `self`");
                }
                receiver = Some(kind);
            }
            FnArg::Typed(typed) => match &*typed.pat {
                Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none() => {
                    if background && matches!(&*typed.ty, Type::Reference(r) if r.mutability.is_some()) {
                        errors.spanned(&typed.ty, "`stale_while_revalidate` refreshes in the background, which cannot hold a `&mut` argument");
                    }
                    args.push(Arg {
                        ident: pat.ident.clone(),
                        ty: (*typed.ty).clone(),
                        mutable: pat.mutability.is_some(),
                        in_key: true,
                    });
                }
                other => errors.spanned(other, "arguments of a cached function need a plain name (the key is built from it); bind a name and destructure in the body"),
            },
        }
    }
    (receiver, args)
}

fn check_key_type(arg: &Arg, errors: &mut Errors) {
    match &arg.ty {
        Type::Reference(r) if r.mutability.is_some() => errors.spanned(
            &arg.ty,
            format!("a `&mut` argument cannot be part of the cache key; add `skip({})`", arg.ident),
        ),
        // However deep: `impl Display`, `&impl Display`, `Vec<impl Into<u64>>`.
        ty if first_impl_trait(ty).is_some() => errors.spanned(
            &arg.ty,
            format!("an `impl Trait` argument cannot be part of the cache key; add `skip({})` or give an explicit `key = \"...\"`", arg.ident),
        ),
        ty if names_trait_object(ty) => errors.spanned(
            &arg.ty,
            format!("a `dyn Trait` argument cannot be part of the cache key: the key is kept, hashed and compared, which a trait object cannot be; add `skip({})` or give an explicit `key = \"...\"`", arg.ident),
        ),
        // `&str` is looked up as it is and owned on a miss; a borrow inside the type
        // (`Option<&str>`, `Cow<'_, str>`) has no owned form to keep.
        Type::Reference(r) if borrows(&r.elem) => borrowed_key(&r.elem, arg, errors),
        Type::Reference(_) => {}
        ty if borrows(ty) => borrowed_key(ty, arg, errors),
        _ => {}
    }
}

/// Whether `ty` is or holds a trait object (`&dyn Display`, `Box<dyn Fn()>`).
fn names_trait_object(ty: &Type) -> bool {
    fn scan(tokens: proc_macro2::TokenStream) -> bool {
        tokens.into_iter().any(|token| match token {
            proc_macro2::TokenTree::Ident(ident) => ident == "dyn",
            proc_macro2::TokenTree::Group(group) => scan(group.stream()),
            _ => false,
        })
    }
    scan(quote::ToTokens::to_token_stream(ty))
}

/// Whether `ty` holds a reference or a lifetime other than `'static`.
fn borrows(ty: &Type) -> bool {
    use proc_macro2::{TokenStream, TokenTree};
    fn scan(tokens: TokenStream) -> bool {
        let mut tokens = tokens.into_iter().peekable();
        while let Some(token) = tokens.next() {
            let borrowed = match token {
                TokenTree::Punct(p) if p.as_char() == '&' => true,
                TokenTree::Punct(p) if p.as_char() == '\'' => {
                    !matches!(tokens.peek(), Some(TokenTree::Ident(i)) if i == "static")
                }
                TokenTree::Group(g) => scan(g.stream()),
                _ => false,
            };
            if borrowed {
                return true;
            }
        }
        false
    }
    scan(quote::ToTokens::to_token_stream(ty))
}

fn borrowed_key(ty: &Type, arg: &Arg, errors: &mut Errors) {
    errors.spanned(
        ty,
        format!(
            "a key argument cannot borrow inside its type: the cache keeps the key after the call; take an owned type or a plain reference (`&str`, owned only on a miss), or add `skip({})` or an explicit `key = \"...\"`",
            arg.ident
        ),
    );
}
