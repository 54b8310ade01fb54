//! A type passed through a `macro_rules!` fragment (`$t:ty`) reaches the attribute
//! wrapped in an invisible group. The checks read types by their syntax (`Option<T>`,
//! `&str`, `Result<T, E>`), so the signature's groups are taken off first: the tokens,
//! and so the signature as written, stay the same.

use syn::visit_mut::{self, VisitMut};
use syn::{Signature, Type};

/// The signature with its types' invisible groups taken off.
pub(crate) fn ungrouped(mut sig: Signature) -> Signature {
    Ungroup.visit_signature_mut(&mut sig);
    sig
}

struct Ungroup;

impl VisitMut for Ungroup {
    fn visit_type_mut(&mut self, ty: &mut Type) {
        if let Type::Group(group) = ty {
            // `&$t` with `$t` = `dyn A + Send` needs its group as parentheses would.
            if !matches!(*group.elem, Type::TraitObject(_) | Type::ImplTrait(_)) {
                *ty = (*group.elem).clone();
                return self.visit_type_mut(ty);
            }
        }
        visit_mut::visit_type_mut(self, ty);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proc_macro2::{Delimiter, Group, TokenStream};
    use quote::quote;

    /// `fn f(id: $t) -> $u`, as `macro_rules!` hands it over.
    fn with_groups(arg: TokenStream, output: TokenStream) -> Signature {
        let arg = Group::new(Delimiter::None, arg);
        let output = Group::new(Delimiter::None, output);
        syn::parse2(quote!(async fn f(id: #arg) -> #output)).unwrap()
    }

    #[test]
    fn types_from_macro_fragments_are_read_as_written() {
        let sig = with_groups(quote!(&str), quote!(Option<u64>));
        let syn::FnArg::Typed(arg) = &sig.inputs[0] else {
            unreachable!()
        };
        assert!(matches!(*arg.ty, Type::Group(_)));
        let sig = ungrouped(sig);
        let syn::FnArg::Typed(arg) = &sig.inputs[0] else {
            unreachable!()
        };
        assert!(matches!(*arg.ty, Type::Reference(_)));
        let syn::ReturnType::Type(_, output) = &sig.output else {
            unreachable!()
        };
        assert!(matches!(**output, Type::Path(_)));
        assert_eq!(
            quote!(#sig).to_string(),
            quote!(async fn f(id: &str) -> Option<u64>).to_string()
        );
    }
}
