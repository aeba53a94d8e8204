//! One RPC method: what its signature may be, and the dispatch arm that decodes its keyword
//! arguments and encodes its result.

use proc_macro2::TokenStream as TokenStream2;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ImplItemFn, Pat, PatType, ReturnType, Type};

use crate::last_segment_is;

pub(crate) struct Method {
    ident: syn::Ident,
    takes_context: bool,
    params: Vec<Param>,
    output: Output,
}

struct Param {
    name: syn::Ident,
    ty: Type,
    optional: bool,
}

/// What the method returns; a return type's span is where a "not serializable" error points.
enum Output {
    Unit,
    Value(Type),
    Fallible(Type),
}

impl Method {
    pub(crate) fn name(&self) -> String {
        self.ident.to_string()
    }

    pub(crate) fn param_names(&self) -> impl Iterator<Item = String> + '_ {
        self.params.iter().map(|p| p.name.to_string())
    }
}

/// Checks a public method's signature: `&self` or `&mut self`, then `&Context` if the method
/// wants it, then named arguments of owned types.
pub(crate) fn parse(f: &ImplItemFn) -> syn::Result<Method> {
    let sig = &f.sig;
    if let Some(token) = &sig.asyncness {
        return Err(syn::Error::new_spanned(
            token,
            "RPC methods cannot be `async`: the host calls into the module synchronously",
        ));
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &sig.generics,
            "RPC methods cannot be generic: arguments are decoded into concrete types",
        ));
    }
    let mut inputs = sig.inputs.iter().peekable();
    match inputs.next() {
        Some(FnArg::Receiver(r)) if r.reference.is_some() => {}
        Some(other) => {
            return Err(syn::Error::new_spanned(other, "RPC methods take `&self` or `&mut self` first"));
        }
        None => {
            return Err(syn::Error::new(sig.paren_token.span.join(), "RPC methods take `&self` or `&mut self` first"));
        }
    }
    let takes_context =
        matches!(inputs.peek(), Some(FnArg::Typed(pt)) if context_kind(&pt.ty) == Some(ContextKind::Shared));
    if takes_context {
        inputs.next();
    }
    let mut params = Vec::new();
    for input in inputs {
        let FnArg::Typed(pt) = input else { unreachable!("receivers only come first") };
        params.push(parse_param(pt)?);
    }
    let output = match &sig.output {
        ReturnType::Default => Output::Unit,
        ReturnType::Type(_, ty) if last_segment_is(ty, "Result") => Output::Fallible((**ty).clone()),
        ReturnType::Type(_, ty) => Output::Value((**ty).clone()),
    };
    Ok(Method { ident: sig.ident.clone(), takes_context, params, output })
}

fn parse_param(pt: &PatType) -> syn::Result<Param> {
    match context_kind(&pt.ty) {
        Some(ContextKind::Shared) => {
            return Err(syn::Error::new_spanned(
                pt,
                "the request context comes right after `self`: move `ctx: &Context` there, or leave it out",
            ));
        }
        Some(ContextKind::Mutable) => {
            return Err(syn::Error::new_spanned(
                &pt.ty,
                "the request context is read-only: take it as `&Context`, right after `self`",
            ));
        }
        Some(ContextKind::Owned) => {
            return Err(syn::Error::new_spanned(
                &pt.ty,
                "the request context is lent to the method: take it as `&Context`, right after `self`",
            ));
        }
        None => {}
    }
    let Pat::Ident(pat) = pt.pat.as_ref() else {
        return Err(syn::Error::new_spanned(
            &pt.pat,
            "RPC arguments are keyword arguments named after the parameter: use a plain name such as `a: f64`",
        ));
    };
    if let Type::Reference(r) = pt.ty.as_ref() {
        return Err(syn::Error::new_spanned(
            r,
            "RPC arguments are decoded into owned values: use an owned type (`String`, `Vec<T>`, …) instead of a reference",
        ));
    }
    Ok(Param { name: pat.ident.clone(), ty: (*pt.ty).clone(), optional: last_segment_is(&pt.ty, "Option") })
}

#[derive(PartialEq)]
enum ContextKind {
    Shared,
    Mutable,
    Owned,
}

/// A parameter whose type is named `Context` is the request context, by any path
/// (`Context`, `wasmrpc_guest::Context`): the macro sees tokens, not resolved types.
fn context_kind(ty: &Type) -> Option<ContextKind> {
    match ty {
        Type::Reference(r) if last_segment_is(&r.elem, "Context") => {
            Some(if r.mutability.is_some() { ContextKind::Mutable } else { ContextKind::Shared })
        }
        _ if last_segment_is(ty, "Context") => Some(ContextKind::Owned),
        _ => None,
    }
}

/// `"name" => { check the arguments; decode each; call; encode the result }`.
pub(crate) fn dispatch_arm(m: &Method) -> TokenStream2 {
    let ident = &m.ident;
    let name = ident.to_string();
    let all: Vec<String> = m.param_names().collect();
    let required: Vec<String> = m.params.iter().filter(|p| !p.optional).map(|p| p.name.to_string()).collect();
    // Each decode is spanned at its parameter's type, so "not Deserialize" points there.
    let decode = m.params.iter().map(|p| {
        let (var, ty, key) = (&p.name, &p.ty, p.name.to_string());
        quote_spanned! {ty.span()=> let #var: #ty = __args.take(#key)?; }
    });
    let vars = m.params.iter().map(|p| &p.name);
    let ctx = m.takes_context.then(|| quote! { ctx, });
    // Spanned at the return type, so "not Serialize" and "not an error" point at it.
    let finish = match &m.output {
        Output::Unit => quote! { ::wasmrpc_guest::__private::ok(__ret) },
        Output::Value(ty) => quote_spanned! {ty.span()=> ::wasmrpc_guest::__private::ok(__ret) },
        Output::Fallible(ty) => quote_spanned! {ty.span()=>
            match __ret {
                ::std::result::Result::Ok(v) => ::wasmrpc_guest::__private::ok(v),
                ::std::result::Result::Err(e) => ::std::result::Result::Err(::wasmrpc_guest::IntoRemoteError::into_remote_error(e)),
            }
        },
    };
    quote! {
        #name => {
            #[allow(unused_mut)]
            let mut __args = ::wasmrpc_guest::__private::Args::new(#name, args, &[#(#all),*], &[#(#required),*])?;
            #(#decode)*
            let __ret = self.#ident(#ctx #(#vars),*);
            #finish
        }
    }
}
