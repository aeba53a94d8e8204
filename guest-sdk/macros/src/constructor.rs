//! How the endpoint value is made: `new()` or `init()` in the block, or `Default`.

use proc_macro2::TokenStream as TokenStream2;
use quote::quote_spanned;
use syn::spanned::Spanned;
use syn::{FnArg, ImplItem, ImplItemFn, ItemImpl, ReturnType, Type};

use crate::last_segment_is;

/// The names a constructor may have.
const NAMES: [&str; 2] = ["new", "init"];

/// Whether `f` is the block's constructor: an associated function (no receiver) named `new` or
/// `init`.
pub(crate) fn is_constructor(f: &ImplItemFn) -> bool {
    NAMES.iter().any(|n| f.sig.ident == n) && !matches!(f.sig.inputs.first(), Some(FnArg::Receiver(_)))
}

/// The body of `Endpoint::create`: a call of the block's constructor, or of `Default`.
pub(crate) fn create(block: &ItemImpl) -> syn::Result<TokenStream2> {
    let mut found: Option<&ImplItemFn> = None;
    for item in &block.items {
        let ImplItem::Fn(f) = item else { continue };
        if !is_constructor(f) {
            continue;
        }
        if let Some(first) = found {
            return Err(syn::Error::new_spanned(
                &f.sig.ident,
                format!(
                    "an endpoint has one constructor, and `{}` is already it: rename or remove this `{}`",
                    first.sig.ident, f.sig.ident
                ),
            ));
        }
        check(f)?;
        found = Some(f);
    }
    let Some(f) = found else {
        // Spanned at the type, so the "no constructor" error points at `impl Type`.
        let ty = &block.self_ty;
        return Ok(quote_spanned! {ty.span()=>
            ::std::result::Result::Ok(<#ty as ::wasmrpc_guest::__private::ByDefault>::by_default())
        });
    };
    let ReturnType::Type(_, ty) = &f.sig.output else { unreachable!("check() refuses a missing return type") };
    let ident = syn::Ident::new(&f.sig.ident.to_string(), ty.span());
    // Typed lets spanned at the return type, so a constructor returning something else is a
    // "mismatched types" error pointing there.
    Ok(if last_segment_is(ty, "Result") {
        quote_spanned! {ty.span()=>
            let made: ::std::result::Result<Self, _> = Self::#ident();
            made.map_err(::wasmrpc_guest::IntoRemoteError::into_remote_error)
        }
    } else {
        quote_spanned! {ty.span()=>
            let made: Self = Self::#ident();
            ::std::result::Result::Ok(made)
        }
    })
}

/// The host calls the constructor with nothing, synchronously, and keeps what it returns.
fn check(f: &ImplItemFn) -> syn::Result<()> {
    let sig = &f.sig;
    let name = &sig.ident;
    if let Some(token) = &sig.asyncness {
        return Err(syn::Error::new_spanned(
            token,
            format!("the endpoint's constructor `{name}` cannot be `async`: the host calls it synchronously"),
        ));
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &sig.generics,
            format!("the endpoint's constructor `{name}` cannot be generic: it makes the one endpoint type"),
        ));
    }
    if !sig.inputs.is_empty() {
        return Err(syn::Error::new_spanned(
            &sig.inputs,
            format!(
                "the endpoint's constructor `{name}` takes no arguments: the host has nothing to pass it \
                 (a constructor with arguments belongs in another `impl` block)"
            ),
        ));
    }
    match &sig.output {
        ReturnType::Type(_, ty) if !matches!(**ty, Type::ImplTrait(_)) => Ok(()),
        ReturnType::Type(_, ty) => Err(syn::Error::new_spanned(
            ty,
            format!("the endpoint's constructor `{name}` returns `Self` or `Result<Self, E>`"),
        )),
        ReturnType::Default => Err(syn::Error::new(
            sig.paren_token.span.join(),
            format!("the endpoint's constructor `{name}` returns `Self` or `Result<Self, E>`: add `-> Self`"),
        )),
    }
}
