#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod constructor;
mod method;

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::quote;
use syn::{ImplItem, ItemImpl, LitStr, Type, Visibility};

/// Turns an inherent `impl` block into a wasmrpc endpoint: its public methods become RPC
/// methods that oslo.messaging callers reach by name.
///
/// ```
/// use wasmrpc_guest::{Context, RemoteError, endpoint};
///
/// pub struct Greeter {
///     greeting: String,
/// }
///
/// #[endpoint(version = "1.1", namespace = "greetings")] // both optional
/// impl Greeter {
///     /// The constructor the macro calls (see "The endpoint value" below).
///     fn new() -> Self {
///         Greeter { greeting: "Hello".to_owned() }
///     }
///
///     /// `greet(name="Ada")` returns "Hello, Ada!".
///     pub fn greet(&self, name: String) -> String {
///         format!("{}, {name}!", self.greeting)
///     }
///
///     /// Reads the caller's request context; `excited` may be left out.
///     pub fn whoami(&self, ctx: &Context, excited: Option<bool>) -> Result<String, RemoteError> {
///         let user = ctx.user().ok_or_else(|| RemoteError::new("NotAuthenticated", "no user in the context"))?;
///         Ok(if excited == Some(true) { format!("{user}!") } else { user.to_owned() })
///     }
///
///     /// `pub`, but not callable: its name starts with `_`.
///     pub fn _internal(&mut self) {}
/// }
///
/// // The methods stay ordinary Rust methods, for a plugin's own tests.
/// assert_eq!(Greeter::new().greet("Ada".into()), "Hello, Ada!");
/// ```
///
/// # Options
///
/// - `version = "X.Y"` (or `"X.Y.Z"`): the API version the module implements. A manifest's
///   `[target] version` must be one it can serve.
/// - `namespace = "…"`: oslo's endpoint namespace; a manifest's `[target] namespace` must equal it.
///
/// # Methods
///
/// - Every `pub fn` with a receiver whose name does not start with `_` is callable; other
///   functions are ordinary Rust (oslo's default access policy refuses `_private` names too).
/// - A method takes `&self` or `&mut self`; then, if it wants it, the request context as
///   `ctx: &Context` (right after `self`, nowhere else); then its arguments. Callers pass
///   arguments by keyword, named as the parameters are, and each is decoded with serde into
///   its parameter's owned type. An `Option<T>` parameter may be omitted.
/// - It returns nothing, a serializable value, or `Result<T, E>` where `E` is a
///   `std::error::Error` or a `wasmrpc_guest::RemoteError`; the caller gets `Err` as an oslo
///   remote error named after `E`.
///
/// # The endpoint value
///
/// The macro chooses how to make the value the methods run on:
///
/// 1. an associated function of the block named `new` or `init` that takes no arguments and
///    returns `Self` or `Result<Self, E>` (any visibility; one of the two names, not both);
/// 2. otherwise `Default::default()`: the type must implement `Default`.
///
/// It runs when an instance of the module handles its first call, never at load time (the host
/// reads the description without making one). That is once per instance: with the manifest's
/// default `[instance] mode = "fresh"` every call gets a new instance, so the constructor runs
/// before every call; with `mode = "warm"` it runs once per warm instance, and the value (with
/// whatever the methods changed in it) serves that instance's calls until the host replaces it.
/// If a fallible constructor returns `Err`, the call fails with that error and the next call
/// tries again.
///
/// # One per module
///
/// A module has exactly one `#[endpoint]` block: the block defines the module's exports
/// (`wasmrpc_call`, `wasmrpc_describe`, …; see `docs/abi.md`).
///
/// # Compile errors
///
/// Each rule above is checked while expanding, and its error points at the tokens to change:
/// an `async` or generic method, a missing receiver, a context that is not `&Context` or not
/// right after `self`, a pattern or a reference as an argument, a constructor with arguments, an
/// unknown option or a malformed version. An argument type that is not `Deserialize`, a return
/// type that is not `Serialize`, and a type without `Default` or a constructor are reported by
/// the compiler at that type.
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
            && !constructor::is_constructor(f)
        {
            methods.push(method::parse(f)?);
        }
    }
    let create = constructor::create(&block)?;

    let describe = methods.iter().map(|m| {
        let name = m.name();
        let params = m.param_names();
        quote! {
            ::wasmrpc_guest::__private::MethodDescription {
                name: ::std::string::String::from(#name),
                params: ::std::vec![#(::std::string::String::from(#params)),*],
            }
        }
    });
    let arms = methods.iter().map(method::dispatch_arm);
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

            fn create() -> ::std::result::Result<Self, ::wasmrpc_guest::RemoteError> {
                #create
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

/// Whether `ty` is a path whose last segment is `name` (`Option`, `std::option::Option`, …).
fn last_segment_is(ty: &Type, name: &str) -> bool {
    matches!(ty, Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == name))
}

fn option_tokens(lit: Option<&LitStr>) -> TokenStream2 {
    match lit {
        Some(lit) => quote! { ::std::option::Option::Some(::std::string::String::from(#lit)) },
        None => quote! { ::std::option::Option::None },
    }
}
