//! The function's body as the loader's value. An `async fn` coerces its value to its
//! return type, at the tail and at each `return` (`Arc::new(handler)` for an
//! `Arc<dyn Handler>`, `Err(Box::new(e))` for a `Box<dyn Error>`); the `async` block
//! the loader runs the body in does neither, its output being inferred. So the tail
//! goes through a typed `let`, and each `return` of the body's own through the same.

use proc_macro2::TokenStream;
use quote::{quote, ToTokens};
use syn::visit_mut::VisitMut;
use syn::{Block, Expr, Type};

/// The body's statements, its value typed by `output`.
pub(crate) fn typed_body(output: &Type, block: &Block) -> TokenStream {
    let mut block = block.clone();
    TypedReturns { output }.visit_block_mut(&mut block);
    typed(output, &block)
}

/// `value` as a `let` of type `output`: a coercion site. A value that diverges
/// (`todo!()`) makes the read after it unreachable, which is not the user's to hear.
fn typed(output: &Type, value: &impl ToTokens) -> TokenStream {
    quote! {
        let __stratacache_out: #output = #value;
        #[allow(unreachable_code)]
        __stratacache_out
    }
}

/// Types the body's own `return`s, not those of the closures, `async` blocks and
/// items inside it, which return from themselves.
struct TypedReturns<'a> {
    output: &'a Type,
}

impl VisitMut for TypedReturns<'_> {
    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        match expr {
            Expr::Closure(_) | Expr::Async(_) => {}
            Expr::Return(ret) => {
                if let Some(value) = &mut ret.expr {
                    self.visit_expr_mut(value);
                    let typed = typed(self.output, value);
                    **value = syn::parse_quote!({ #typed });
                }
            }
            _ => syn::visit_mut::visit_expr_mut(self, expr),
        }
    }

    fn visit_item_mut(&mut self, _: &mut syn::Item) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bodys_own_returns_are_typed_and_nested_ones_left() {
        let output: Type = syn::parse_quote!(Box<dyn Error>);
        let block: Block = syn::parse_quote!({
            if a {
                return Err(Box::new(e));
            }
            let f = || {
                return 1;
            };
            let g = async {
                return 2;
            };
            fn h() -> u8 {
                return 3;
            }
            Ok(())
        });
        let body = typed_body(&output, &block).to_string();
        assert_eq!(
            body.matches("let __stratacache_out : Box < dyn Error >")
                .count(),
            2,
            "{body}"
        );
        for nested in ["return 1", "return 2", "return 3"] {
            assert!(body.contains(nested), "{nested} left as written: {body}");
        }
    }
}
