//! Tag and key templates (`"user:{id}"`): their placeholders checked against the
//! function's arguments, and the template rewritten for `format_args!`.

use std::collections::BTreeSet;

use proc_macro2::Ident;
use syn::LitStr;

use crate::args::Errors;

/// A format string whose `{name}` placeholders are arguments.
pub(crate) struct Template {
    pub(crate) literal: LitStr,
    pub(crate) names: Vec<Ident>,
}

/// Checks `{name}` placeholders against the arguments. `{{` and `}}` are literal
/// braces; a format spec (`{id:04}`) is allowed. The template is rewritten with
/// positional placeholders (`{0:04}`), so an argument with a raw name (`r#type`) can
/// be named `{type}` or `{r#type}`, which `format_args!` would refuse.
pub(crate) fn template(
    lit: &LitStr,
    args: &BTreeSet<String>,
    what: &str,
    errors: &mut Errors,
) -> Template {
    let text = lit.value();
    let mut names: Vec<Ident> = Vec::new();
    let mut positional = String::with_capacity(text.len());
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        positional.push(c);
        match c {
            '{' | '}' if chars.peek().map(|(_, next)| *next) == Some(c) => {
                positional.push(c);
                chars.next();
            }
            '{' => {
                let Some(end) = text[start..].find('}').map(|i| start + i) else {
                    errors.spanned(
                        lit,
                        format!(
                            "unclosed `{{` in {what} template; write `{{{{` for a literal brace"
                        ),
                    );
                    break;
                };
                let inner = &text[start + 1..end];
                let (name, spec) = inner.split_at(inner.find(':').unwrap_or(inner.len()));
                let index = placeholder(name.trim(), args, &mut names).unwrap_or_else(|| {
                    errors.spanned(
                        lit,
                        format!("{what} template `{text}` names `{{{}}}`, which is not an argument of this function; arguments: {}", name.trim(), list(args)),
                    );
                    0
                });
                positional.push_str(&format!("{index}{spec}}}"));
                while chars.peek().is_some_and(|(i, _)| *i <= end) {
                    chars.next();
                }
            }
            '}' => errors.spanned(
                lit,
                format!("unmatched `}}` in {what} template; write `}}}}` for a literal brace"),
            ),
            _ => {}
        }
    }
    Template {
        literal: LitStr::new(&positional, lit.span()),
        names,
    }
}

/// The position of the argument `name` names among `names`, added if new. `{type}`
/// and `{r#type}` both name the argument `r#type`.
fn placeholder(name: &str, args: &BTreeSet<String>, names: &mut Vec<Ident>) -> Option<usize> {
    let unraw = |name: &str| name.trim_start_matches("r#").to_owned();
    let arg = args
        .iter()
        .find(|arg| name != "self" && !name.is_empty() && unraw(arg) == unraw(name))?;
    let position = names.iter().position(|known| known == arg);
    Some(position.unwrap_or_else(|| {
        names.push(syn::parse_str(arg).expect("an argument's name is an identifier"));
        names.len() - 1
    }))
}

/// The arguments, for an error that names one that is not there.
pub(crate) fn list(names: &BTreeSet<String>) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_positions_and_a_raw_name_matches_either_spelling() {
        let args: BTreeSet<String> = ["r#type", "id"].map(String::from).into();
        let mut errors = Errors::default();
        let literal: LitStr = syn::parse_quote!("{type}/{id:04}/{r#type}/{{x}}");
        let template = template(&literal, &args, "key", &mut errors);
        assert!(errors.finish().is_ok());
        assert_eq!(template.literal.value(), "{0}/{1:04}/{0}/{{x}}");
        let names: Vec<String> = template.names.iter().map(ToString::to_string).collect();
        assert_eq!(names, ["r#type", "id"]);
    }
}
