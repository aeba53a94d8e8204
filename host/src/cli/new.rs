//! `wasmrpc new NAME [--lang rust] [--dir DIR] [--sdk PATH]`: writes a plugin project from a
//! template in `templates/` at the top of the repository.
//!
//! The templates are compiled into the binary, so an installed `wasmrpc` works away from the
//! checkout. Until `wasmrpc-guest` is on crates.io a generated crate depends on it by path: by
//! default the `guest-sdk/` of the checkout this binary was built from.

use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The project's name: the directory, the crate, the endpoint and its topic. Lowercase
    /// letters, digits, `-` and `_`, starting with a letter.
    name: String,
    /// The language of the endpoint.
    #[arg(long, value_enum, default_value_t = Lang::Rust)]
    lang: Lang,
    /// Where to create the project directory NAME.
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// The SDK to depend on: a wasmrpc checkout's `guest-sdk/` directory. Default: the one
    /// this binary was built from.
    #[arg(long)]
    sdk: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Lang {
    Rust,
    Python,
}

/// One file of a template: its path in the template, its path in the project (`{{name}}`
/// expanded), and its text.
struct TemplateFile {
    path: &'static str,
    target: &'static str,
    text: &'static str,
}

macro_rules! template_file {
    ($lang:literal, $path:literal => $target:literal) => {
        TemplateFile {
            path: $path,
            target: $target,
            text: include_str!(concat!("../../../templates/", $lang, "/", $path)),
        }
    };
}

/// `templates/rust/`, every file of it (a unit test checks that against the directory).
const RUST: &[TemplateFile] = &[
    template_file!("rust", "Cargo.toml" => "Cargo.toml"),
    template_file!("rust", "README.md" => "README.md"),
    template_file!("rust", ".gitignore" => ".gitignore"),
    template_file!("rust", "src/lib.rs" => "src/lib.rs"),
    template_file!("rust", "manifests/endpoint.toml" => "manifests/{{name}}.toml"),
];

/// `templates/python/`, every file of it.
const PYTHON: &[TemplateFile] = &[
    template_file!("python", "README.md" => "README.md"),
    template_file!("python", ".gitignore" => ".gitignore"),
    template_file!("python", "endpoint.py" => "endpoint.py"),
    template_file!("python", "manifests/endpoint.toml" => "manifests/{{name}}.toml"),
];

/// The `guest-sdk/` next to the `host/` crate this binary was compiled from.
const BUILT_FROM_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../guest-sdk");

/// Names the generated code already uses as types, so an endpoint type of that name would not
/// compile (`ok` would make `struct Ok`).
const TAKEN_TYPE_NAMES: &[&str] =
    &["Context", "RemoteError", "Serialize", "Stats", "String", "Option", "Result", "Ok", "Err", "Some", "None"];

/// Crate names cargo or the template's dependencies already use.
const TAKEN_CRATE_NAMES: &[&str] =
    &["std", "core", "alloc", "proc_macro", "test", "serde", "wasmrpc_guest", "wasmrpc_abi", "wasmrpc_macros"];

/// Rust's keywords (strict and reserved), which cargo refuses as crate names.
const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern", "false", "fn",
    "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "self",
    "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where", "while", "abstract", "become",
    "box", "do", "final", "macro", "override", "priv", "try", "typeof", "unsized", "virtual", "yield",
];

pub async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let names = Names::new(&a.name)?;
    let template = match a.lang {
        Lang::Rust => RUST,
        Lang::Python => PYTHON,
    };
    // `hello`, not `./hello`, in what is printed.
    let project = if a.dir == Path::new(".") { PathBuf::from(&names.name) } else { a.dir.join(&names.name) };
    let sdk = a.sdk.clone().unwrap_or_else(|| PathBuf::from(BUILT_FROM_SDK));
    let sdk = find_sdk(&sdk, a.sdk.is_none())?;
    std::fs::create_dir_all(&a.dir).with_context(|| format!("cannot create {}", a.dir.display()))?;
    match std::fs::create_dir(&project) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => bail!(
            "{} already exists; `wasmrpc new` never overwrites: choose another name or --dir, or remove it",
            project.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", project.display())),
    }
    let dependency = sdk_dependency(&sdk, &project)?;
    let checkout = sdk.parent().unwrap_or(&sdk);
    let paths = Paths {
        dependency,
        build_python: checkout.join("scripts/build-python").display().to_string(),
        sdk_python: sdk.join("python").display().to_string(),
    };
    if let Err(e) = write_project(template, &names, &paths, &project) {
        // Leave nothing half-written behind: the directory did not exist before.
        let _ = std::fs::remove_dir_all(&project);
        return Err(e);
    }
    print!("{}", next_steps(&names, &project, a.lang));
    Ok(ExitCode::SUCCESS)
}

/// The spellings of a project's name that the template uses.
#[derive(Debug, PartialEq)]
struct Names {
    /// As given: the directory, the package, the endpoint, its topic and manifest.
    name: String,
    /// With `-` as `_`: the Rust crate, and the `.wasm` file cargo writes.
    crate_name: String,
    /// CamelCase: the endpoint type.
    type_name: String,
}

impl Names {
    /// Checks that `name` is a crate name cargo accepts and an endpoint name a manifest accepts
    /// (the stricter rules of both), then derives the other spellings.
    fn new(name: &str) -> anyhow::Result<Names> {
        let valid_chars = name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !valid_chars || !name.starts_with(|c: char| c.is_ascii_lowercase()) || name.len() > 64 {
            bail!(
                "invalid project name {name:?}: it names the crate, the endpoint and its topic, so it is 1 to 64 \
                 lowercase letters, digits, `-` and `_`, starting with a letter (e.g. `hello` or `image-resizer`){}",
                if name.contains(['/', '\\']) { "; to create it elsewhere, pass --dir" } else { "" }
            );
        }
        let crate_name = name.replace('-', "_");
        if KEYWORDS.contains(&crate_name.as_str()) || TAKEN_CRATE_NAMES.contains(&crate_name.as_str()) {
            bail!("invalid project name {name:?}: `{crate_name}` is a Rust keyword or a crate the project uses");
        }
        let type_name: String = name
            .split(['-', '_'])
            .flat_map(|part| {
                let mut chars = part.chars();
                chars.next().map(|first| first.to_ascii_uppercase()).into_iter().chain(chars)
            })
            .collect();
        if TAKEN_TYPE_NAMES.contains(&type_name.as_str()) {
            bail!(
                "invalid project name {name:?}: its endpoint type would be `{type_name}`, a name the generated code \
                 already uses; choose another"
            );
        }
        Ok(Names { name: name.to_owned(), crate_name, type_name })
    }
}

/// The SDK directory, checked: a `Cargo.toml` declaring `wasmrpc-guest`.
fn find_sdk(sdk: &Path, built_in: bool) -> anyhow::Result<PathBuf> {
    let manifest = sdk.join("Cargo.toml");
    let declares_sdk = std::fs::read_to_string(&manifest).is_ok_and(|t| t.contains("name = \"wasmrpc-guest\""));
    if !declares_sdk {
        if built_in {
            bail!(
                "wasmrpc-guest is not on crates.io yet, and the checkout this wasmrpc was built from no longer has \
                 it at {}: pass --sdk PATH with the guest-sdk/ directory of a wasmrpc checkout",
                sdk.display()
            );
        }
        bail!(
            "--sdk {}: no wasmrpc-guest crate there (expected the guest-sdk/ directory of a wasmrpc checkout)",
            sdk.display()
        );
    }
    sdk.canonicalize().with_context(|| format!("cannot resolve {}", sdk.display()))
}

/// `{ path = "…" }` for the SDK: relative when the project is inside the SDK's checkout (so the
/// checkout can move), absolute otherwise.
fn sdk_dependency(sdk: &Path, project: &Path) -> anyhow::Result<String> {
    let project = project.canonicalize().with_context(|| format!("cannot resolve {}", project.display()))?;
    let checkout = sdk.parent().unwrap_or(sdk);
    let path = match project.strip_prefix(checkout) {
        Ok(inside) => {
            let mut relative = PathBuf::new();
            for _ in inside.components().filter(|c| matches!(c, Component::Normal(_))) {
                relative.push("..");
            }
            relative.join(sdk.file_name().unwrap_or_default())
        }
        Err(_) => sdk.to_owned(),
    };
    let Some(path) = path.to_str() else {
        bail!("the SDK's path {} is not UTF-8, which Cargo.toml cannot hold", path.display());
    };
    // A JSON string is a valid TOML basic string: the same quotes and escapes.
    Ok(format!("{{ path = {} }}", serde_json::Value::from(path)))
}

/// Where the project finds the wasmrpc checkout's parts: the Rust SDK as a Cargo dependency,
/// the Python build script and the Python SDK (absolute paths).
struct Paths {
    dependency: String,
    build_python: String,
    sdk_python: String,
}

fn write_project(template: &[TemplateFile], names: &Names, paths: &Paths, project: &Path) -> anyhow::Result<()> {
    for file in template {
        let target = project.join(expand(file.target, names, paths));
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&target, expand(file.text, names, paths))
            .with_context(|| format!("cannot write {} (from the template's {})", target.display(), file.path))?;
    }
    Ok(())
}

/// Replaces the template's placeholders: `{{name}}`, `{{crate_name}}`, `{{type_name}}`,
/// `{{sdk_dependency}}`, `{{sdk_note}}`, `{{build_python}}` and `{{sdk_python}}`.
fn expand(text: &str, names: &Names, paths: &Paths) -> String {
    const SDK_NOTE: &str = "Not on crates.io yet: a path to the SDK in a wasmrpc checkout (see README.md).";
    text.replace("{{name}}", &names.name)
        .replace("{{crate_name}}", &names.crate_name)
        .replace("{{type_name}}", &names.type_name)
        .replace("{{sdk_dependency}}", &paths.dependency)
        .replace("{{sdk_note}}", SDK_NOTE)
        .replace("{{build_python}}", &paths.build_python)
        .replace("{{sdk_python}}", &paths.sdk_python)
}

/// What to type next. `wasmrpc` is spelled as this binary when it is not the one on `PATH`.
fn next_steps(names: &Names, project: &Path, lang: Lang) -> String {
    let program = this_program();
    let mut out = String::new();
    let what = match lang {
        Lang::Rust => "a Rust endpoint",
        Lang::Python => "a Python endpoint class",
    };
    let _ = writeln!(out, "Created {}: {what}, its manifest and a README.", project.display());
    let _ = writeln!(out, "Next:");
    let _ = writeln!(out, "  cd {}", project.display());
    let _ = writeln!(out, "  {program} dev");
    let _ = writeln!(
        out,
        "  curl -s -X POST http://127.0.0.1:8080/v1/call/{}/greet -d '{{\"name\": \"world\"}}'   (in another shell; \
         `dev` prints its address)",
        names.name
    );
    out
}

fn this_program() -> String {
    let Ok(exe) = std::env::current_exe() else { return "wasmrpc".to_owned() };
    let on_path = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| dir.join("wasmrpc").canonicalize().ok() == exe.canonicalize().ok())
    });
    if on_path { "wasmrpc".to_owned() } else { exe.display().to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_spelled_for_each_use() {
        let n = Names::new("image-resizer_2").unwrap();
        assert_eq!((n.crate_name.as_str(), n.type_name.as_str()), ("image_resizer_2", "ImageResizer2"));
        assert_eq!(Names::new("hello").unwrap().type_name, "Hello");
    }

    #[test]
    fn bad_names_are_refused_with_the_rule() {
        for (name, says) in [
            ("Hello", "lowercase letters"),
            ("9lives", "starting with a letter"),
            ("a b", "lowercase letters"),
            ("", "starting with a letter"),
            ("plugins/x", "pass --dir"),
            ("fn", "Rust keyword"),
            ("serde", "a crate the project uses"),
            ("ok", "`Ok`"),
            ("remote-error", "`RemoteError`"),
        ] {
            let e = Names::new(name).unwrap_err().to_string();
            assert!(e.contains(says), "{name:?}: {e}");
        }
        assert!(Names::new(&"a".repeat(65)).is_err());
        assert!(Names::new(&"a".repeat(64)).is_ok());
    }

    #[test]
    fn the_embedded_templates_are_the_whole_directories() {
        for (lang, files) in [("rust", RUST), ("python", PYTHON)] {
            assert_template_is_directory(lang, files);
        }
    }

    fn assert_template_is_directory(lang: &str, files: &[TemplateFile]) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates").join(lang);
        let mut on_disk = Vec::new();
        let mut pending = vec![dir.clone()];
        while let Some(d) = pending.pop() {
            for entry in std::fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                } else {
                    on_disk.push(path.strip_prefix(&dir).unwrap().to_str().unwrap().replace('\\', "/"));
                }
            }
        }
        on_disk.sort();
        let mut embedded: Vec<String> = files.iter().map(|f| f.path.to_owned()).collect();
        embedded.sort();
        assert_eq!(embedded, on_disk, "list every file of templates/{lang} in its list");
    }

    #[test]
    fn every_placeholder_is_expanded() {
        let names = Names::new("zz-top").unwrap();
        let paths = Paths {
            dependency: "{ path = \"/sdk\" }".into(),
            build_python: "/w/scripts/build-python".into(),
            sdk_python: "/w/guest-sdk/python".into(),
        };
        for file in RUST.iter().chain(PYTHON) {
            let text = expand(file.text, &names, &paths);
            assert!(!text.contains("{{"), "{} keeps a placeholder:\n{text}", file.path);
        }
    }

    #[test]
    fn the_sdk_path_is_relative_inside_its_checkout_and_absolute_outside() {
        let checkout = tempfile::tempdir().unwrap();
        let sdk = checkout.path().join("guest-sdk");
        let inside = checkout.path().join("plugins/mine");
        std::fs::create_dir_all(&sdk).unwrap();
        std::fs::create_dir_all(&inside).unwrap();
        let sdk = sdk.canonicalize().unwrap();
        assert_eq!(sdk_dependency(&sdk, &inside).unwrap(), r#"{ path = "../../guest-sdk" }"#);
        let elsewhere = tempfile::tempdir().unwrap();
        let expected = format!("{{ path = {} }}", serde_json::Value::from(sdk.to_str().unwrap()));
        assert_eq!(sdk_dependency(&sdk, elsewhere.path()).unwrap(), expected);
    }
}
