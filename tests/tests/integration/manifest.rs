//! Manifest errors name the file, the line and the column, and say what to change.

use wasmrpc::manifest::{self, InstanceMode, ManifestError, Role};
use wasmrpc_tests::ManifestDir;

fn problems(dir: &ManifestDir, text: &str) -> Vec<String> {
    let path = dir.write("broken", text);
    match manifest::load_file(&path) {
        Err(ManifestError::Invalid { problems, .. }) => problems
            .iter()
            .map(|p| format!("{}:{}: {} | {}", p.at.line, p.at.column, p.message, p.help.clone().unwrap_or_default()))
            .collect(),
        other => panic!("expected problems, got {other:?}"),
    }
}

#[test]
fn a_typo_in_a_field_name_is_located_and_corrected() {
    let dir = ManifestDir::new();
    let p = problems(
        &dir,
        "name = \"calc\"\nmodul = \"{plugin:calculator}\"\n[target]\ntopic = \"t\"\nversion = \"1.0\"\n",
    );
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].starts_with("2:1: unknown field `modul`") && p[0].contains("did you mean `module`?"), "{p:?}");

    let p = problems(
        &dir,
        "name = \"calc\"\nmodule = \"{plugin:calculator}\"\n[target]\ntopic = \"t\"\nverison = \"1.0\"\n",
    );
    assert!(p[0].starts_with("5:1:") && p[0].contains("did you mean `version`?"), "{p:?}");
}

#[test]
fn a_wrong_version_string_is_located_with_an_example() {
    let dir = ManifestDir::new();
    let p =
        problems(&dir, "name = \"calc\"\nmodule = \"{plugin:calculator}\"\n[target]\ntopic = \"t\"\nversion = \"1\"\n");
    assert_eq!(p.len(), 1, "{p:?}");
    // The value's position, what is wrong with it, and an example to copy.
    assert!(p[0].starts_with("5:11: invalid version \"1\""), "{p:?}");
    assert!(p[0].ends_with("| write the endpoint's API version, e.g. `version = \"1.0\"`"), "{p:?}");
}

#[test]
fn a_missing_module_names_the_resolved_path() {
    let dir = ManifestDir::new();
    let p =
        problems(&dir, "name = \"calc\"\nmodule = \"nowhere/calc.wasm\"\n[target]\ntopic = \"t\"\nversion = \"1.0\"\n");
    let expected = dir.path().join("nowhere/calc.wasm");
    assert!(p[0].starts_with("2:10: module file not found") && p[0].contains(&expected.display().to_string()), "{p:?}");
    assert!(p[0].contains("relative to the manifest"), "{p:?}");
}

#[test]
fn every_problem_is_reported_at_once_in_file_order() {
    let dir = ManifestDir::new();
    let text = "name = \"bad name!\"\nmodule = \"missing.wasm\"\n[target]\ntopic = \"a*b\"\nversion = \"x.y\"\n\
                [instance]\nmode = \"lukewarm\"\n[limits]\nmemory = \"64 megs\"\ndeadline = \"soon\"\n";
    let p = problems(&dir, text);
    let lines: Vec<&str> = p.iter().map(|s| s.split(':').next().unwrap()).collect();
    assert_eq!(lines, ["1", "2", "4", "5", "7", "9", "10"], "{p:#?}");
}

#[test]
fn defaults_are_filled_and_paths_resolved() {
    let dir = ManifestDir::new();
    let path = dir.write(
        "calc",
        "name = \"calc\"\nmodule = \"{plugin:calculator}\"\n[target]\ntopic = \"calculator\"\nversion = \"1.0\"\n",
    );
    let spec = manifest::load_file(&path).unwrap();
    assert_eq!(spec.instance, InstanceMode::Fresh);
    assert_eq!(spec.limits.memory, 64 << 20);
    assert_eq!(spec.limits.deadline, std::time::Duration::from_secs(30));
    assert_eq!(spec.limits.fuel, None);
    assert!(spec.module_path.is_absolute());
    let Role::Rpc(target) = &spec.role else { panic!() };
    assert_eq!((target.topic.as_str(), target.version.to_string().as_str()), ("calculator", "1.0"));
    assert!(spec.sandbox.env.is_empty() && spec.sandbox.dirs.is_empty() && spec.sandbox.inherit_env.is_empty());
}

#[test]
fn the_example_manifests_are_valid() {
    let found = manifest::discover(&wasmrpc_tests::root().join("manifests")).unwrap();
    assert!(found.len() >= 7, "{found:?}");
    for path in found {
        manifest::load_file(&path).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn outbound_grants_and_config_values_are_checked_where_written() {
    let dir = ManifestDir::new();
    let head = "name = \"gw\"\nmodule = \"{plugin:gateway}\"\n[target]\ntopic = \"t\"\nversion = \"1.0\"\n";
    let p = problems(
        &dir,
        &format!(
            "{head}[outbound]\ncall = [\"conductor\", \"\"]\ncast = [\"compute #1\"]\n[config]\nboth = {{ env = \"A\", file = \"b\" }}\n"
        ),
    );
    assert_eq!(p.len(), 3, "{p:?}");
    assert!(p[0].starts_with("7:22: an empty `[outbound] call` pattern"), "{p:?}");
    assert!(p[1].starts_with("8:9: `[outbound] cast` pattern \"compute #1\""), "{p:?}");
    assert!(p[2].starts_with("10:8: `[config] both` needs exactly one of `env`, `file` or `value`"), "{p:?}");

    let path = dir.write(
        "gw",
        &format!("{head}[outbound]\ncall = [\"compute.*\"]\n[config]\nregion = \"eu\"\nretries = 3\ntoken = {{ value = \"hunter2\", secret = true }}\n"),
    );
    let spec = manifest::load_file(&path).unwrap();
    assert!(spec.outbound.allows(false, "compute.host-1") && !spec.outbound.allows(true, "compute.host-1"));
    assert!(!spec.outbound.allows(false, "conductor"));
    assert_eq!(spec.config.iter().map(|c| c.key.as_str()).collect::<Vec<_>>(), ["region", "retries", "token"]);
    assert!(!format!("{spec:?}").contains("hunter2"), "a secret literal never prints: {spec:?}");
}

/// Issue 17 item 11, for listeners: a topic, exchange or pool name too long for the AMQP names
/// made of it is refused where it is written, not by the broker after the endpoint is listed.
#[test]
fn listener_names_too_long_for_amqp_are_refused_where_written() {
    let dir = ManifestDir::new();
    let head = "name = \"l\"\nmodule = \"{plugin:recorder}\"\n[listener]\n";
    let (topic, exchange, pool) = ("t".repeat(247), "e".repeat(256), "p".repeat(256));
    let p = problems(
        &dir,
        &format!(
            "{head}targets = [{{ topic = \"{topic}\" }}, {{ topic = \"ok\", exchange = \"{exchange}\" }}]\npool = \"{pool}\"\n"
        ),
    );
    assert_eq!(p.len(), 3, "{p:?}");
    assert!(p[0].starts_with("4:22: `[listener] targets: topic` is 247 bytes long; at most 246 bytes"), "{p:?}");
    assert!(p[1].starts_with("4:302: `[listener] targets: exchange` is 256 bytes"), "{p:?}");
    assert!(p[2].starts_with("5:8: `[listener] pool` is 256 bytes long; at most 255 bytes"), "{p:?}");
    // The longest names that fit are accepted.
    let path = dir.write(
        "fits",
        &format!(
            "{head}targets = [{{ topic = \"{}\", exchange = \"{}\" }}]\npool = \"{}\"\n",
            "t".repeat(246),
            "e".repeat(255),
            "p".repeat(255)
        ),
    );
    let spec = manifest::load_file(&path).unwrap_or_else(|e| panic!("{e}"));
    let Role::Listener(l) = spec.role else { panic!("a listener") };
    assert_eq!((l.targets[0].1.len(), l.pool.map(|p| p.len())), (246, Some(255)));
}

#[test]
fn a_build_section_is_resolved_against_the_manifest_and_checked_where_written() {
    let dir = ManifestDir::new();
    std::fs::create_dir(dir.path().join("crate")).unwrap();
    let head = "name = \"calc\"\nmodule = \"{plugin:calculator}\"\n[target]\ntopic = \"t\"\nversion = \"1.0\"\n";
    let path = dir.write(
        "built",
        &format!(
            "{head}[build]\ncommand = \"cargo build\"\nworkdir = \"crate\"\nwatch = [\"src/**/*.rs\", \"Cargo.toml\"]\n"
        ),
    );
    let build = manifest::load_file(&path).unwrap().build.expect("[build]");
    let workdir = dir.path().join("crate");
    assert_eq!((build.command.as_str(), &build.workdir), ("cargo build", &workdir));
    assert_eq!(build.watch_patterns().collect::<Vec<_>>(), ["src/**/*.rs", "Cargo.toml"]);
    assert!(build.watches(&workdir.join("src/deep/er/lib.rs")));
    assert!(build.watches(&workdir.join("Cargo.toml")));
    assert!(!build.watches(&workdir.join("target/release/build/x.rs")));
    assert!(!build.watches(&dir.path().join("Cargo.toml")), "globs are relative to the workdir");

    // Without `workdir`: the manifest's directory.
    let path = dir.write("default", &format!("{head}[build]\ncommand = \"make\"\n"));
    assert_eq!(manifest::load_file(&path).unwrap().build.unwrap().workdir, dir.path());

    // Its own problems, each where it is written; an unknown key too.
    let p = problems(
        &dir,
        &format!("{head}[build]\ncommand = \" \"\nworkdir = \"nowhere\"\nwatch = [\"src/[.rs\"]\nwatches = []\n"),
    );
    assert_eq!(p.len(), 1, "a TOML error comes alone: {p:?}");
    assert!(p[0].starts_with("10:1: unknown field `watches`") && p[0].contains("did you mean `watch`?"), "{p:?}");
    let p = problems(&dir, &format!("{head}[build]\ncommand = \" \"\nworkdir = \"nowhere\"\nwatch = [\"src/[.rs\"]\n"));
    assert!(p[0].starts_with("7:11: `[build] command` is empty"), "{p:?}");
    assert!(p[1].starts_with("8:11: `[build] workdir` is not a directory"), "{p:?}");
    assert!(p[2].starts_with("9:10: invalid `[build] watch` pattern \"src/[.rs\""), "{p:?}");
    assert_eq!(p.len(), 3, "{p:?}");

    // `wasmrpc build` reads a manifest whose module is not built yet.
    let path = dir.write("unbuilt", "name = \"u\"\nmodule = \"target/u.wasm\"\n[build]\ncommand = \"make\"\n");
    assert!(manifest::load_file(&path).is_err());
    let target = manifest::build_target(&path).unwrap();
    assert_eq!((target.name.as_str(), target.module_path.clone()), ("u", dir.path().join("target/u.wasm")));
    assert_eq!(target.build.unwrap().command, "make");
}
