//! `#[endpoint]`: turns an inherent `impl` block into a wasmrpc endpoint.
//!
//! The expansion implements `wasmrpc_guest::__private::Endpoint` for the type (a description of
//! the methods and a dispatcher that decodes keyword arguments) and emits the six exports of the
//! wasmrpc ABI. Mistakes are reported as compile errors pointing at the offending tokens.

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ImplItem, ImplItemFn, ItemImpl, LitStr, Pat, ReturnType, Type, Visibility};

/// Marks an `impl` block whose public methods are RPC methods.
///
/// ```ignore
/// #[endpoint(version = "1.0", namespace = "calc")]   // both optional
/// impl Calculator {
///     pub fn add(&self, ctx: &Context, a: f64, b: f64) -> f64 { a + b }
/// }
/// ```
///
/// - Every `pub fn` whose name does not start with `_` is callable; other methods are ordinary
///   Rust methods (oslo's default access policy refuses `_private` names too).
/// - A method takes `&self` or `&mut self`, then the request context (`&Context`), then its
///   arguments. Callers pass arguments by keyword, named as the parameters are; an `Option<T>`
///   parameter may be omitted.
/// - It returns a serializable value, or `Result<T, E>` where `E` is a `std::error::Error` or a
///   `wasmrpc_guest::RemoteError`.
/// - The type must implement `Default`: the host creates it on the first call of an instance.
/// - One `#[endpoint]` per module: the block defines the module's exports.
#[proc_macro_attribute]
pub fn endpoint(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item = TokenStream2::from(item);
    match expand(attr.into(), item.clone()) {
        Ok(tokens) => tokens.into(),
        // Keep the block as written, so the one error is not followed by a cascade of others
        // (unused imports, missing methods).
        Err(error) => {
            let error = error.to_compile_error();
            quote! { #item #error }.into()
        }
    }
}

struct Options {
    version: Option<LitStr>,
    namespace: Option<LitStr>,
}

struct Method {
    ident: syn::Ident,
    params: Vec<Param>,
    fallible: bool,
}

struct Param {
    name: syn::Ident,
    ty: Type,
    optional: bool,
}

fn expand(attr: TokenStream2, item: TokenStream2) -> syn::Result<TokenStream2> {
    let options = parse_options(attr)?;
    let block: ItemImpl = syn::parse2(item)?;
    if let Some((_, path, _)) = &block.trait_ {
        return Err(syn::Error::new_spanned(
            path,
            "#[endpoint] goes on an inherent `impl Type { … }` block, not a trait impl",
        ));
    }
    if !block.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &block.generics,
            "an endpoint type cannot be generic: the host instantiates one concrete type",
        ));
    }
    let ty = &block.self_ty;
    let ty_name = match ty.as_ref() {
        Type::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()).unwrap_or_default(),
        other => {
            return Err(syn::Error::new_spanned(other, "#[endpoint] needs a named type, e.g. `impl Calculator`"));
        }
    };

    let mut methods = Vec::new();
    for item in &block.items {
        if let ImplItem::Fn(f) = item
            && matches!(f.vis, Visibility::Public(_))
            && !f.sig.ident.to_string().starts_with('_')
        {
            methods.push(parse_method(f)?);
        }
    }

    let describe = methods.iter().map(|m| {
        let name = m.ident.to_string();
        let params = m.params.iter().map(|p| p.name.to_string());
        quote! {
            ::wasmrpc_guest::__private::MethodDescription {
                name: ::std::string::String::from(#name),
                params: ::std::vec![#(::std::string::String::from(#params)),*],
            }
        }
    });
    let arms = methods.iter().map(dispatch_arm);
    let version = option_tokens(options.version.as_ref());
    let namespace = option_tokens(options.namespace.as_ref());

    Ok(quote! {
        #block

        impl ::wasmrpc_guest::__private::Endpoint for #ty {
            fn description() -> ::wasmrpc_guest::__private::Description {
                ::wasmrpc_guest::__private::Description {
                    abi_version: ::wasmrpc_guest::__private::abi_version() as u32,
                    endpoint: ::std::string::String::from(#ty_name),
                    version: #version,
                    namespace: #namespace,
                    methods: ::std::vec![#(#describe),*],
                }
            }

            fn dispatch(
                &mut self,
                method: &str,
                args: ::wasmrpc_guest::__private::Kwargs<'_>,
                ctx: &::wasmrpc_guest::Context,
            ) -> ::std::result::Result<::wasmrpc_guest::__private::Reply, ::wasmrpc_guest::RemoteError> {
                let _ = (&args, ctx);
                match method {
                    #(#arms)*
                    _ => ::std::result::Result::Err(::wasmrpc_guest::__private::no_such_method(method)),
                }
            }
        }

        #[doc(hidden)]
        #[unsafe(no_mangle)]
        pub extern "C" fn wasmrpc_abi_version() -> i32 {
            ::wasmrpc_guest::__private::abi_version()
        }

        #[doc(hidden)]
        #[unsafe(no_mangle)]
        pub extern "C" fn wasmrpc_alloc(len: i32) -> i32 {
            ::wasmrpc_guest::__private::alloc(len)
        }

        #[doc(hidden)]
        #[allow(unsafe_code)]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn wasmrpc_dealloc(ptr: i32, len: i32) {
            // SAFETY: the host passes back buffers this module handed out.
            unsafe { ::wasmrpc_guest::__private::dealloc(ptr, len) }
        }

        #[doc(hidden)]
        #[unsafe(no_mangle)]
        pub extern "C" fn wasmrpc_describe() -> i64 {
            ::wasmrpc_guest::__private::describe::<#ty>()
        }

        #[doc(hidden)]
        #[allow(unsafe_code)]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn wasmrpc_call(ptr: i32, len: i32) -> i64 {
            // SAFETY: the host passes a buffer from `wasmrpc_alloc` holding the request.
            unsafe { ::wasmrpc_guest::__private::call::<#ty>(ptr, len) }
        }
    })
}

fn parse_options(attr: TokenStream2) -> syn::Result<Options> {
    let mut options = Options { version: None, namespace: None };
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("version") {
            let lit: LitStr = meta.value()?.parse()?;
            if !is_version(&lit.value()) {
                return Err(syn::Error::new(
                    lit.span(),
                    "an RPC version is \"MAJOR.MINOR\" (or \"MAJOR.MINOR.REVISION\"), e.g. \"1.0\"",
                ));
            }
            options.version = Some(lit);
            Ok(())
        } else if meta.path.is_ident("namespace") {
            options.namespace = Some(meta.value()?.parse()?);
            Ok(())
        } else {
            Err(meta.error("unknown #[endpoint] option: expected `version = \"X.Y\"` or `namespace = \"…\"`"))
        }
    });
    syn::parse::Parser::parse2(parser, attr)?;
    Ok(options)
}

fn is_version(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    (2..=3).contains(&parts.len()) && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

fn parse_method(f: &ImplItemFn) -> syn::Result<Method> {
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
    let mut inputs = sig.inputs.iter();
    match inputs.next() {
        Some(FnArg::Receiver(r)) if r.reference.is_some() => {}
        Some(other) => {
            return Err(syn::Error::new_spanned(other, "RPC methods take `&self` or `&mut self` first"));
        }
        None => {
            return Err(syn::Error::new_spanned(sig, "RPC methods take `&self` or `&mut self` first"));
        }
    }
    match inputs.next() {
        Some(FnArg::Typed(pt)) if is_context_ref(&pt.ty) => {}
        Some(other) => {
            return Err(syn::Error::new_spanned(
                other,
                "the request context comes right after `self`: add `ctx: &Context` (oslo passes it to every method)",
            ));
        }
        None => {
            return Err(syn::Error::new(
                sig.paren_token.span.join(),
                "RPC methods take the request context after `self`: add `ctx: &Context`",
            ));
        }
    }
    let mut params = Vec::new();
    for input in inputs {
        let FnArg::Typed(pt) = input else { unreachable!("receivers only come first") };
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
        params.push(Param {
            name: pat.ident.clone(),
            ty: (*pt.ty).clone(),
            optional: last_segment_is(&pt.ty, "Option"),
        });
    }
    let fallible = match &sig.output {
        ReturnType::Default => false,
        ReturnType::Type(_, ty) => last_segment_is(ty, "Result"),
    };
    Ok(Method { ident: sig.ident.clone(), params, fallible })
}

fn dispatch_arm(m: &Method) -> TokenStream2 {
    let ident = &m.ident;
    let name = ident.to_string();
    let all: Vec<String> = m.params.iter().map(|p| p.name.to_string()).collect();
    let required: Vec<String> = m.params.iter().filter(|p| !p.optional).map(|p| p.name.to_string()).collect();
    let decode = m.params.iter().map(|p| {
        let (var, ty, key) = (&p.name, &p.ty, p.name.to_string());
        quote_spanned! {ty.span()=> let #var: #ty = __args.take(#key)?; }
    });
    let vars = m.params.iter().map(|p| &p.name);
    let finish = if m.fallible {
        quote! {
            match __ret {
                ::std::result::Result::Ok(v) => ::wasmrpc_guest::__private::ok(v),
                ::std::result::Result::Err(e) => ::std::result::Result::Err(::wasmrpc_guest::IntoRemoteError::into_remote_error(e)),
            }
        }
    } else {
        quote! { ::wasmrpc_guest::__private::ok(__ret) }
    };
    quote! {
        #name => {
            #[allow(unused_mut)]
            let mut __args = ::wasmrpc_guest::__private::Args::new(#name, args, &[#(#all),*], &[#(#required),*])?;
            #(#decode)*
            let __ret = self.#ident(ctx, #(#vars),*);
            #finish
        }
    }
}

fn is_context_ref(ty: &Type) -> bool {
    matches!(ty, Type::Reference(r) if last_segment_is(&r.elem, "Context"))
}

fn last_segment_is(ty: &Type, name: &str) -> bool {
    matches!(ty, Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == name))
}

fn option_tokens(lit: Option<&LitStr>) -> TokenStream2 {
    match lit {
        Some(lit) => quote! { ::std::option::Option::Some(::std::string::String::from(#lit)) },
        None => quote! { ::std::option::Option::None },
    }
}
