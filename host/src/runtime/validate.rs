//! What a module must be before it serves: the ABI's exports with their types, the ABI version
//! it was built for, a readable description, and a description that agrees with its manifest.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use wasmrpc_abi::{ABI_VERSION, Description, REQUIRED_EXPORTS};
use wasmtime::{ExternType, Module, ValType};

use super::component::ComponentInstance;
use super::error::{Disagreement, LoadError, ModuleProblem};
use super::guest::Prepared;
use super::instance::{Exports, Failure, GuestInstance, deadline_failure};
use crate::manifest::{EndpointSpec, Role};
use crate::protocol::Version;

/// Checks that every export the ABI requires exists with the right type.
pub(super) fn check_exports(module: &Module) -> Result<Exports, ModuleProblem> {
    let mut missing = Vec::new();
    for (name, signature) in REQUIRED_EXPORTS {
        let found = module.get_export(name);
        let ok = match (&found, *name) {
            (Some(ExternType::Memory(_)), wasmrpc_abi::MEMORY) => true,
            (Some(ExternType::Func(f)), _) => {
                let params: Vec<String> = f.params().map(|p| val_name(&p)).collect();
                let results: Vec<String> = f.results().map(|r| val_name(&r)).collect();
                let actual = match results.as_slice() {
                    [] => format!("func ({})", params.join(", ")),
                    _ => format!("func ({}) -> {}", params.join(", "), results.join(", ")),
                };
                actual == *signature
            }
            _ => false,
        };
        if !ok {
            missing.push(format!("`{name}` ({signature})"));
        }
    }
    if !missing.is_empty() {
        return Err(ModuleProblem::MissingExports(missing));
    }
    // Every export was found above, so each index exists; a miss still reports, never panics.
    let index = |name: &str| {
        module.get_export_index(name).ok_or_else(|| ModuleProblem::MissingExports(vec![format!("`{name}`")]))
    };
    Ok(Exports {
        memory: index(wasmrpc_abi::MEMORY)?,
        abi_version: index(wasmrpc_abi::ABI_VERSION_EXPORT)?,
        alloc: index(wasmrpc_abi::ALLOC_EXPORT)?,
        dealloc: index(wasmrpc_abi::DEALLOC_EXPORT)?,
        describe: index(wasmrpc_abi::DESCRIBE_EXPORT)?,
        call: index(wasmrpc_abi::CALL_EXPORT)?,
    })
}

/// A value type as the ABI's signatures spell it.
fn val_name(v: &ValType) -> String {
    match v {
        ValType::I32 => "i32".into(),
        ValType::I64 => "i64".into(),
        ValType::F32 => "f32".into(),
        ValType::F64 => "f64".into(),
        other => format!("{other}"),
    }
}

/// Instantiates once to ask the ABI version (core modules; a component's is its world) and the
/// description, under the endpoint's deadline (at most 10 s), whatever the guest waits on: a
/// hostile `describe` cannot hang a load or a reload.
pub(super) async fn probe(prepared: &Prepared, deadline: Duration) -> Result<Description, ModuleProblem> {
    let budget = deadline.min(Duration::from_secs(10));
    let stop_at = Instant::now() + budget;
    let explain = |f: Failure| match f {
        Failure::Trap(trap) => ModuleProblem::ProbeTrapped(trap),
        Failure::Abi(m) => ModuleProblem::ProbeAbi(m),
        Failure::Setup(e) => ModuleProblem::Instantiate(e),
    };
    let ask = async {
        match prepared {
            Prepared::Module(module) => {
                let mut instance = GuestInstance::new(module, stop_at, budget).await?;
                let version = instance.abi_version(&module.exports).await?;
                if version != ABI_VERSION as i32 {
                    return Ok(Err(ModuleProblem::AbiVersion(version)));
                }
                Ok(Ok(instance.describe(&module.exports).await?))
            }
            Prepared::Component(component) => {
                let mut instance = ComponentInstance::new(component, stop_at, budget).await?;
                Ok(Ok(instance.describe().await?.into_bytes()))
            }
        }
    };
    let raw = match tokio::time::timeout_at((stop_at + prepared.tick()).into(), ask).await {
        Ok(Ok(Ok(raw))) => raw,
        Ok(Ok(Err(problem))) => return Err(problem),
        Ok(Err(failure)) => return Err(explain(failure)),
        Err(_) => return Err(explain(deadline_failure(budget))),
    };
    let description: Description = serde_json::from_slice(&raw).map_err(ModuleProblem::Description)?;
    if description.abi_version != ABI_VERSION {
        return Err(ModuleProblem::DescribedAbiVersion(description.abi_version));
    }
    Ok(description)
}

/// The description must agree with the manifest: methods it lists, version, namespace.
pub(super) fn check_description(spec: &EndpointSpec, d: &Description) -> Result<(), LoadError> {
    let inconsistent =
        |at, disagreement| LoadError::Inconsistent { manifest: spec.manifest_path.clone(), at, disagreement };
    let exported: BTreeSet<&str> = d.methods.iter().map(|m| m.name.as_str()).collect();
    let available = || exported.iter().map(|m| (*m).to_owned()).collect::<Vec<_>>();
    let not_exported = |wanted: &[String]| -> Vec<String> {
        wanted.iter().filter(|m| !exported.contains(m.as_str())).cloned().collect()
    };
    if let Some(declared) = &spec.declared_methods {
        let missing = not_exported(declared);
        if !missing.is_empty() {
            let available = available();
            return Err(inconsistent(spec.locations.methods, Disagreement::MissingMethods { missing, available }));
        }
    }
    match &spec.role {
        Role::Rpc(target) => {
            if let Some(v) = &d.version {
                let module: Version =
                    v.parse().map_err(|e| inconsistent(spec.locations.version, Disagreement::UnreadableVersion(e)))?;
                if !module.can_serve(&target.version) {
                    let manifest = target.version;
                    return Err(inconsistent(spec.locations.version, Disagreement::Version { manifest, module }));
                }
            }
            if let Some(ns) = &d.namespace
                && target.namespace.as_deref() != Some(ns.as_str())
            {
                let disagreement = Disagreement::Namespace { manifest: target.namespace.clone(), module: ns.clone() };
                return Err(inconsistent(spec.locations.namespace, disagreement));
            }
        }
        Role::Listener(listener) => {
            if !crate::protocol::PRIORITIES.iter().any(|p| exported.contains(p)) {
                let disagreement = Disagreement::NoPriorityMethod { available: available() };
                return Err(inconsistent(spec.locations.listener, disagreement));
            }
            if let Some(wanted) = &listener.priorities {
                let missing = not_exported(wanted);
                if !missing.is_empty() {
                    let disagreement = Disagreement::MissingPriorities { missing, available: available() };
                    return Err(inconsistent(spec.locations.listener, disagreement));
                }
            }
        }
    }
    Ok(())
}
