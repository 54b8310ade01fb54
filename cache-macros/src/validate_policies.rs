//! Checks of the arguments about how loads run and what Redis stores: `max_loads`,
//! `sliding`, `refresh_ahead = "xfetch"`, `compress`, `encrypt`, `validate`.

use syn::{LitInt, LitStr};

use crate::args::{CachedArgs, Errors, Given};

/// Those arguments, checked.
pub(crate) struct Policies {
    pub(crate) xfetch: Option<f64>,
    pub(crate) sliding: bool,
    pub(crate) max_loads: Option<usize>,
    pub(crate) compress: Option<bool>,
    pub(crate) encrypt: Option<bool>,
    pub(crate) validate: Option<syn::Path>,
}

pub(crate) fn policies(args: &CachedArgs, errors: &mut Errors) -> Policies {
    let xfetch = match args.refresh_ahead.as_ref().map(|g| &g.value) {
        Some(syn::Lit::Str(lit)) => xfetch_beta(lit).or_else(|| {
            errors.spanned(lit, "`refresh_ahead` takes \"xfetch\" or \"xfetch(beta)\" with a beta above 0, such as \"xfetch(2.0)\"");
            None
        }),
        _ => None,
    };
    for redis_only in [&args.compress, &args.encrypt].into_iter().flatten() {
        if args.local.is_some() {
            let keyword = &redis_only.keyword;
            errors.spanned(keyword, format!("`{keyword}` is about what is written to Redis, and a `local` cache never writes there: remove one of them"));
        }
    }
    if let (Some(validate), Some(_)) = (&args.validate, &args.batch) {
        errors.spanned(&validate.keyword, "`validate` is not supported with `batch` yet: check the values in the loader and leave out the invalid ones");
    }
    if let Some(sliding) = &args.sliding {
        if args.ttl.is_none() {
            errors.spanned(
                &sliding.keyword,
                "`sliding` extends the ttl on each hit: add `ttl = \"20m\"`",
            );
        }
        if let Some(ahead) = &args.refresh_ahead {
            errors.spanned(&ahead.keyword, "`refresh_ahead` refreshes before an expiry that `sliding` keeps moving while the value is read: remove one of them");
        }
    }
    Policies {
        xfetch,
        sliding: args.sliding.is_some(),
        max_loads: at_least_one(&args.max_loads, errors),
        compress: args.compress.as_ref().map(|g| g.value.value),
        encrypt: args.encrypt.as_ref().map(|g| g.value.value),
        validate: args.validate.as_ref().map(|g| g.value.clone()),
    }
}

/// A count that must be at least 1 (`capacity`, `max_loads`).
pub(crate) fn at_least_one<T>(given: &Option<Given<LitInt>>, errors: &mut Errors) -> Option<T>
where
    T: std::str::FromStr + PartialEq + From<u8>,
    T::Err: std::fmt::Display,
{
    let given = given.as_ref()?;
    match given.value.base10_parse::<T>() {
        Ok(n) if n == T::from(0) => {
            let keyword = &given.keyword;
            errors.spanned(&given.value, format!("`{keyword}` must be at least 1"));
            None
        }
        Ok(n) => Some(n),
        Err(error) => {
            errors.push(error);
            None
        }
    }
}

/// `"xfetch"` is beta 1; `"xfetch(2.5)"` gives it.
fn xfetch_beta(lit: &LitStr) -> Option<f64> {
    let text = lit.value();
    let text = text.trim();
    if text == "xfetch" {
        return Some(1.0);
    }
    let beta = text.strip_prefix("xfetch(")?.strip_suffix(')')?;
    beta.trim()
        .parse::<f64>()
        .ok()
        .filter(|b| b.is_finite() && *b > 0.0)
}
