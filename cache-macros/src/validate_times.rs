//! Checks of the arguments that are times: `ttl`, `stale_while_revalidate`,
//! `stale_if_error`, `retry_after`, `timeout`, and `refresh_ahead` as a fraction of
//! the ttl; each needs what gives it a meaning.

use std::time::Duration;

use syn::LitStr;

use crate::args::{CachedArgs, Errors, Given};

/// Those arguments, checked.
pub(crate) struct Times {
    pub(crate) ttl: Option<Duration>,
    pub(crate) stale_window: Option<Duration>,
    pub(crate) fail_safe: Option<Duration>,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) refresh_ahead: Option<f64>,
}

pub(crate) fn times(args: &CachedArgs, errors: &mut Errors) -> Times {
    let ttl = args
        .ttl
        .as_ref()
        .and_then(|g| parse_duration(&g.value, "ttl", errors));
    let stale_window = match &args.stale_while_revalidate {
        None => None,
        Some(given) if args.ttl.is_none() => {
            errors.spanned(&given.keyword, "`stale_while_revalidate` needs a `ttl`: add for example `ttl = \"5m\"` (a value without a ttl never goes stale)");
            None
        }
        Some(Given {
            value: Some(window),
            ..
        }) => parse_duration(window, "stale_while_revalidate", errors),
        Some(Given { value: None, .. }) => ttl,
    };
    let fail_safe = args.stale_if_error.as_ref().and_then(|given| {
        if args.ttl.is_none() {
            errors.spanned(&given.keyword, "`stale_if_error` needs a `ttl`: add for example `ttl = \"5m\"` (a value without a ttl never needs a fallback)");
        }
        parse_duration(&given.value, "stale_if_error", errors)
    });
    let retry_after = args.retry_after.as_ref().and_then(|given| {
        if args.stale_if_error.is_none() {
            errors.spanned(&given.keyword, "`retry_after` is the back-off of `stale_if_error`: add `stale_if_error = \"1h\"` or remove it");
        }
        parse_duration(&given.value, "retry_after", errors)
    });
    let timeout = args.timeout.as_ref().and_then(|given| {
        if args.stale_while_revalidate.is_none() && args.stale_if_error.is_none() && args.hard_timeout.is_none() {
            errors.spanned(&given.keyword, "`timeout` answers a slow load with a kept value: add `stale_while_revalidate` or `stale_if_error = \"1h\"` to keep one, or `hard_timeout` to fail the call");
        }
        parse_duration(&given.value, "timeout", errors)
    });
    let refresh_ahead = args.refresh_ahead.as_ref().and_then(|given| {
        if args.ttl.is_none() {
            errors.spanned(
                &given.keyword,
                "`refresh_ahead` needs a `ttl`: it is a fraction of it",
            );
        }
        match &given.value {
            syn::Lit::Float(lit) => match lit.base10_parse::<f64>() {
                Ok(fraction) if fraction > 0.0 && fraction < 1.0 => Some(fraction),
                _ => {
                    errors.spanned(
                        lit,
                        "`refresh_ahead` must be a fraction of the ttl between 0 and 1, such as 0.8",
                    );
                    None
                }
            },
            _ => None,
        }
    });
    Times {
        ttl,
        stale_window,
        fail_safe,
        retry_after,
        timeout,
        refresh_ahead,
    }
}

pub(crate) fn parse_duration(lit: &LitStr, what: &str, errors: &mut Errors) -> Option<Duration> {
    match humantime::parse_duration(&lit.value()) {
        Ok(duration) if duration.is_zero() => {
            errors.spanned(lit, format!("`{what}` must be longer than zero"));
            None
        }
        Ok(duration) => Some(duration),
        Err(error) => {
            errors.spanned(lit, format!("invalid duration for `{what}`: {error}; write for example \"30s\", \"15m\", \"1h 30m\""));
            None
        }
    }
}
