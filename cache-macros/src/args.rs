//! The attribute's grammar: `#[cached(ttl = "15m", tags = ["users"], skip(db), local)]`
//! parsed into [`CachedArgs`]. Only syntax is checked here; meaning is checked in
//! `validate.rs`. Errors are collected, not stopped at the first.

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{bracketed, parenthesized, Expr, ExprLit, Ident, Lit, LitBool, LitInt, LitStr, Token};

/// Every argument `#[cached]` accepts, in the order the error message lists them.
pub(crate) const KNOWN: &[&str] = &[
    "ttl",
    "tags",
    "stale_while_revalidate",
    "stale_if_error",
    "retry_after",
    "refresh_ahead",
    "timeout",
    "capacity",
    "name",
    "skip",
    "key",
    "local",
    "version",
    "cache_none",
    "cache_err",
    "lock",
    "hard_timeout",
    "batch",
    "max_loads",
    "sliding",
    "compress",
    "encrypt",
    "validate",
    "crate",
];

/// An argument as written, with the identifier that names it (for spans).
pub(crate) struct Given<T> {
    pub(crate) keyword: Ident,
    pub(crate) value: T,
}

#[derive(Default)]
pub(crate) struct CachedArgs {
    pub(crate) ttl: Option<Given<LitStr>>,
    pub(crate) tags: Option<Given<Vec<LitStr>>>,
    /// `stale_while_revalidate` alone (window = ttl) or `= "1h"`.
    pub(crate) stale_while_revalidate: Option<Given<Option<LitStr>>>,
    pub(crate) stale_if_error: Option<Given<LitStr>>,
    pub(crate) retry_after: Option<Given<LitStr>>,
    /// A fraction of the ttl (`0.8`), or `"xfetch"` / `"xfetch(2.0)"`.
    pub(crate) refresh_ahead: Option<Given<Lit>>,
    pub(crate) timeout: Option<Given<LitStr>>,
    pub(crate) capacity: Option<Given<LitInt>>,
    pub(crate) name: Option<Given<LitStr>>,
    pub(crate) skip: Option<Given<Vec<Ident>>>,
    pub(crate) key: Option<Given<LitStr>>,
    pub(crate) local: Option<Given<()>>,
    pub(crate) version: Option<Given<LitInt>>,
    pub(crate) cache_none: Option<Given<()>>,
    pub(crate) cache_err: Option<Given<()>>,
    pub(crate) lock: Option<Given<()>>,
    pub(crate) hard_timeout: Option<Given<()>>,
    pub(crate) batch: Option<Given<()>>,
    pub(crate) max_loads: Option<Given<LitInt>>,
    pub(crate) sliding: Option<Given<()>>,
    pub(crate) compress: Option<Given<LitBool>>,
    pub(crate) encrypt: Option<Given<LitBool>>,
    pub(crate) validate: Option<Given<syn::Path>>,
    pub(crate) krate: Option<Given<LitStr>>,
    /// Mistakes in individual arguments. Kept here rather than failing the parse, so
    /// validation still checks the rest and one compile shows every mistake.
    pub(crate) errors: Errors,
}

/// The value part of one argument: nothing, `= expr`, or `(a, b)`.
enum RawValue {
    Flag,
    Assigned(Expr),
    List(Punctuated<Ident, Token![,]>),
}

struct RawArg {
    keyword: Ident,
    value: RawValue,
}

impl Parse for RawArg {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        // `Ident::parse_any` so that `crate = "..."` parses like any other name.
        let keyword = Ident::parse_any(input)?;
        let value = if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            if input.peek(syn::token::Bracket) {
                let content;
                let bracket = bracketed!(content in input);
                let elems = Punctuated::<Expr, Token![,]>::parse_terminated(&content)?;
                RawValue::Assigned(Expr::Array(syn::ExprArray {
                    attrs: Vec::new(),
                    bracket_token: bracket,
                    elems,
                }))
            } else {
                RawValue::Assigned(input.parse()?)
            }
        } else if input.peek(syn::token::Paren) {
            let content;
            parenthesized!(content in input);
            RawValue::List(Punctuated::parse_terminated_with(
                &content,
                Ident::parse_any,
            )?)
        } else {
            RawValue::Flag
        };
        Ok(Self { keyword, value })
    }
}

/// Collects errors so one compile shows every mistake in the attribute.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub(crate) fn spanned(
        &mut self,
        tokens: impl quote::ToTokens,
        message: impl std::fmt::Display,
    ) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    pub(crate) fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

impl Parse for CachedArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let raw = Punctuated::<RawArg, Token![,]>::parse_terminated(input)?;
        let mut args = CachedArgs::default();
        let mut errors = Errors::default();
        for arg in raw {
            args.take(arg, &mut errors);
        }
        args.errors = errors;
        Ok(args)
    }
}

impl CachedArgs {
    fn take(&mut self, arg: RawArg, errors: &mut Errors) {
        let RawArg { keyword, value } = arg;
        let name = keyword.unraw().to_string();
        if let Some((slot, expected)) = self.string_slot(&name) {
            return set(slot, keyword, string(value, expected), errors);
        }
        if let Some((slot, expected)) = self.integer_slot(&name) {
            return set(slot, keyword, integer(value, expected), errors);
        }
        if let Some(slot) = self.flag_slot(&name) {
            return set(slot, keyword, flag(value), errors);
        }
        match name.as_str() {
            "tags" => set(&mut self.tags, keyword, tag_list(value), errors),
            "stale_while_revalidate" => {
                let window = match value {
                    RawValue::Flag => Ok(None),
                    other => string(other, "a duration such as \"1h\", or nothing").map(Some),
                };
                set(&mut self.stale_while_revalidate, keyword, window, errors)
            }
            "refresh_ahead" => set(&mut self.refresh_ahead, keyword, float(value), errors),
            "skip" => set(&mut self.skip, keyword, ident_list(value), errors),
            "compress" => set(&mut self.compress, keyword, boolean(value), errors),
            "encrypt" => set(&mut self.encrypt, keyword, boolean(value), errors),
            "validate" => set(&mut self.validate, keyword, path(value), errors),
            _ => errors.spanned(&keyword, unknown_message(&name)),
        }
    }

    /// The arguments given as a string, with what the string should look like.
    fn string_slot(&mut self, name: &str) -> Option<(&mut Option<Given<LitStr>>, &'static str)> {
        Some(match name {
            "ttl" => (&mut self.ttl, "a duration such as \"15m\""),
            "stale_if_error" => (&mut self.stale_if_error, "a duration such as \"1h\""),
            "retry_after" => (&mut self.retry_after, "a duration such as \"5s\""),
            "timeout" => (&mut self.timeout, "a duration such as \"2s\""),
            "name" => (&mut self.name, "a cache name such as \"users.get\""),
            "key" => (&mut self.key, "a key template such as \"{id}\""),
            "crate" => (
                &mut self.krate,
                "a path such as \"::my_facade::stratacache\"",
            ),
            _ => return None,
        })
    }

    /// The arguments given as an integer, with what it counts.
    fn integer_slot(&mut self, name: &str) -> Option<(&mut Option<Given<LitInt>>, &'static str)> {
        Some(match name {
            "capacity" => (&mut self.capacity, "an entry count such as 10_000"),
            "version" => (&mut self.version, "a version number such as 2"),
            "max_loads" => (
                &mut self.max_loads,
                "a number of concurrent loads such as 8",
            ),
            _ => return None,
        })
    }

    /// The arguments given by their name alone.
    fn flag_slot(&mut self, name: &str) -> Option<&mut Option<Given<()>>> {
        Some(match name {
            "local" => &mut self.local,
            "cache_none" => &mut self.cache_none,
            "cache_err" => &mut self.cache_err,
            "lock" => &mut self.lock,
            "hard_timeout" => &mut self.hard_timeout,
            "batch" => &mut self.batch,
            "sliding" => &mut self.sliding,
            _ => return None,
        })
    }
}

fn set<T>(slot: &mut Option<Given<T>>, keyword: Ident, value: syn::Result<T>, errors: &mut Errors) {
    if slot.is_some() {
        errors.spanned(
            &keyword,
            format!("duplicate argument `{keyword}`; give it once"),
        );
        return;
    }
    match value {
        Ok(value) => *slot = Some(Given { keyword, value }),
        Err(error) => {
            let message = format!("`{keyword}` expects {error}");
            errors.push(syn::Error::new(error.span(), message));
        }
    }
}

fn unknown_message(name: &str) -> String {
    let mut message = format!("unknown argument `{name}`");
    if let Some(close) = KNOWN.iter().find(|known| edit_distance(known, name) <= 2) {
        message.push_str(&format!("; did you mean `{close}`?"));
    }
    message.push_str(&format!(" Valid arguments: {}", KNOWN.join(", ")));
    message
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(above + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

/// `expr` without the invisible group a `macro_rules!` fragment (`$ttl:literal`,
/// `$call:expr`) arrives in, so a value written through the user's macro reads as one
/// written in place.
pub(crate) fn ungrouped(mut expr: Expr) -> Expr {
    while let Expr::Group(group) = expr {
        expr = *group.expr;
    }
    expr
}

/// The error for a value of the wrong form; `set` prefixes "`name` expects".
fn wrong(span: Span, expected: &str) -> syn::Error {
    syn::Error::new(span, expected)
}

fn assigned(value: RawValue, expected: &str, span_if_missing: Span) -> syn::Result<Expr> {
    match value {
        RawValue::Assigned(expr) => Ok(ungrouped(expr)),
        RawValue::Flag => Err(wrong(
            span_if_missing,
            &format!("{expected}, written `= ...`"),
        )),
        RawValue::List(list) => Err(wrong(list.span(), &format!("{expected}, written `= ...`"))),
    }
}

fn string(value: RawValue, expected: &str) -> syn::Result<LitStr> {
    match assigned(value, expected, Span::call_site())? {
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => Ok(lit),
        other => Err(wrong(
            other.span(),
            &format!("{expected} (a string literal)"),
        )),
    }
}

fn integer(value: RawValue, expected: &str) -> syn::Result<LitInt> {
    match assigned(value, expected, Span::call_site())? {
        Expr::Lit(ExprLit {
            lit: Lit::Int(lit), ..
        }) => Ok(lit),
        other => Err(wrong(
            other.span(),
            &format!("{expected} (an integer literal)"),
        )),
    }
}

fn float(value: RawValue) -> syn::Result<Lit> {
    const EXPECTED: &str = "a fraction of the ttl such as 0.8, or \"xfetch\"";
    match assigned(value, EXPECTED, Span::call_site())? {
        Expr::Lit(ExprLit {
            lit: lit @ (Lit::Float(_) | Lit::Str(_)),
            ..
        }) => Ok(lit),
        other => Err(wrong(other.span(), EXPECTED)),
    }
}

fn boolean(value: RawValue) -> syn::Result<LitBool> {
    const EXPECTED: &str = "`true` or `false`";
    match assigned(value, EXPECTED, Span::call_site())? {
        Expr::Lit(ExprLit {
            lit: Lit::Bool(lit),
            ..
        }) => Ok(lit),
        other => Err(wrong(other.span(), EXPECTED)),
    }
}

fn path(value: RawValue) -> syn::Result<syn::Path> {
    const EXPECTED: &str = "the path of a `fn(&Value) -> bool`, such as `User::is_complete`";
    match assigned(value, EXPECTED, Span::call_site())? {
        Expr::Path(expr) if expr.qself.is_none() => Ok(expr.path),
        other => Err(wrong(other.span(), EXPECTED)),
    }
}

fn tag_list(value: RawValue) -> syn::Result<Vec<LitStr>> {
    const EXPECTED: &str = "a list of tag templates such as [\"users\", \"user:{id}\"]";
    match assigned(value, EXPECTED, Span::call_site())? {
        Expr::Array(array) => array
            .elems
            .into_iter()
            .map(|elem| match ungrouped(elem) {
                Expr::Lit(ExprLit {
                    lit: Lit::Str(lit), ..
                }) => Ok(lit),
                other => Err(wrong(other.span(), EXPECTED)),
            })
            .collect(),
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => Ok(vec![lit]),
        other => Err(wrong(other.span(), EXPECTED)),
    }
}

fn ident_list(value: RawValue) -> syn::Result<Vec<Ident>> {
    match value {
        RawValue::List(list) => Ok(list.into_iter().collect()),
        RawValue::Flag => Err(wrong(
            Span::call_site(),
            "argument names, written `skip(db, client)`",
        )),
        RawValue::Assigned(expr) => Err(wrong(
            expr.span(),
            "argument names, written `skip(db, client)`",
        )),
    }
}

fn flag(value: RawValue) -> syn::Result<()> {
    match value {
        RawValue::Flag => Ok(()),
        RawValue::Assigned(expr) => {
            Err(wrong(expr.span(), "no value: it is a flag, written alone"))
        }
        RawValue::List(list) => Err(wrong(list.span(), "no value: it is a flag, written alone")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(tokens: &str) -> syn::Result<CachedArgs> {
        let mut args: CachedArgs = syn::parse_str(tokens)?;
        std::mem::take(&mut args.errors).finish()?;
        Ok(args)
    }

    #[test]
    fn parses_every_form() {
        let args = parse(
            r#"ttl = "15m", tags = ["users", "user:{id}"], stale_while_revalidate, skip(db, self),
               capacity = 10_000, name = "users.get", local, version = 2, crate = "::x""#,
        )
        .unwrap();
        assert_eq!(args.ttl.unwrap().value.value(), "15m");
        assert_eq!(args.tags.unwrap().value.len(), 2);
        assert!(args.stale_while_revalidate.unwrap().value.is_none());
        assert_eq!(args.skip.unwrap().value.len(), 2);
        assert!(args.local.is_some());
        assert_eq!(args.krate.unwrap().value.value(), "::x");
    }

    /// What a `macro_rules!` fragment looks like to the attribute: its tokens in an
    /// invisible group.
    #[test]
    fn values_passed_through_a_macro_rules_fragment_parse_as_written() {
        use proc_macro2::{Delimiter, Group, TokenStream, TokenTree};
        let fragment = |tokens: &str| -> TokenTree {
            Group::new(Delimiter::None, tokens.parse::<TokenStream>().unwrap()).into()
        };
        let (ttl, tag) = (fragment(r#""15m""#), fragment(r#""user:{id}""#));
        let args: CachedArgs =
            syn::parse2(quote::quote!(ttl = #ttl, tags = ["users", #tag], capacity = 10)).unwrap();
        args.errors.finish().unwrap();
        assert_eq!(args.ttl.unwrap().value.value(), "15m");
        let tags = args.tags.unwrap().value;
        assert_eq!(tags[1].value(), "user:{id}");
    }

    #[test]
    fn collects_every_error() {
        let error = parse(r#"ttl = 15, capacity = 1, capacity = 2, ttll = "1m", local = true"#)
            .err()
            .unwrap();
        let messages: Vec<String> = error.into_iter().map(|e| e.to_string()).collect();
        assert_eq!(messages.len(), 4, "{messages:?}");
        assert!(messages[0].contains("`ttl` expects a duration"));
        assert!(messages[1].contains("duplicate argument `capacity`"));
        assert!(messages[2].contains("did you mean `ttl`?"));
        assert!(messages[3].contains("it is a flag"));
    }
}
