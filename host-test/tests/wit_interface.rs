//! The built component exports exactly the interface of wit/writer.wit, and
//! every item of that interface is documented.

use std::path::Path;

use wit_component::WitPrinter;
use wit_parser::decoding::DecodedWasm;
use wit_parser::{Docs, InterfaceId, Resolve, TypeDefKind, WorldItem, WorldKey};

fn source() -> Resolve {
    let mut resolve = Resolve::default();
    resolve.push_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit")).unwrap();
    resolve
}

/// The `h2fw:writer/<name>` interface in `resolve`.
fn interface(resolve: &Resolve, name: &str) -> InterfaceId {
    let (id, _) = resolve
        .interfaces
        .iter()
        .find(|(_, interface)| {
            interface.name.as_deref() == Some(name)
                && interface
                    .package
                    .is_some_and(|package| resolve.packages[package].name.to_string() == "h2fw:writer@0.1.0")
        })
        .unwrap_or_else(|| panic!("no h2fw:writer/{name}@0.1.0 interface"));
    id
}

/// The interface as `wasm-tools component wit` prints it, without docs (a
/// component does not carry them).
fn printed(resolve: &Resolve, id: InterfaceId) -> String {
    let mut printer = WitPrinter::default();
    printer.emit_docs(false);
    printer.print_interface(resolve, id).unwrap();
    printer.output.into()
}

/// Checks that the component at `path` exports exactly the interfaces
/// `names` of `wit/`, each as the source defines it.
fn exports_exactly(path: &str, names: &[&str]) {
    let bytes = std::fs::read(path).unwrap();
    let DecodedWasm::Component(component, world) = wit_parser::decoding::decode(&bytes).unwrap() else {
        panic!("not a component");
    };
    let expected: Vec<_> = names.iter().map(|name| WorldKey::Interface(interface(&component, name))).collect();
    let exports: Vec<_> = component.worlds[world].exports.keys().cloned().collect();
    assert_eq!(exports, expected, "the exports of {path}");
    let source = source();
    for name in names {
        let text = printed(&source, interface(&source, name));
        assert_eq!(printed(&component, interface(&component, name)), text, "{path}: interface {name}");
    }
}

#[test]
fn the_component_exports_the_wit_interface_and_nothing_else() {
    exports_exactly(env!("H2FW_COMPONENT"), &["conn"]);
    let source = source();
    let text = printed(&source, interface(&source, "conn"));
    assert!(text.contains("resource pool") && text.contains("resource connection"), "{text}");
    assert!(!text.contains("go7") && !text.contains("single"), "no Go model in the production interface: {text}");
}

#[test]
fn the_baselines_component_adds_the_go_models() {
    exports_exactly(env!("H2FW_BASELINES_COMPONENT"), &["conn", "baselines"]);
}

#[test]
fn every_item_of_the_wit_has_a_doc_comment() {
    let resolve = source();
    let mut undocumented = Vec::new();
    let mut check = |what: String, docs: &Docs| {
        if docs.contents.as_deref().is_none_or(|text| text.trim().is_empty()) {
            undocumented.push(what);
        }
    };
    for (_, package) in resolve.packages.iter().filter(|(_, p)| p.name.namespace == "h2fw") {
        check(format!("package {}", package.name), &package.docs);
        for (name, &world) in &package.worlds {
            check(format!("world {name}"), &resolve.worlds[world].docs);
            for (key, item) in &resolve.worlds[world].exports {
                if let WorldItem::Function(function) = item {
                    check(format!("world {name} export {key:?}"), &function.docs);
                }
            }
        }
        for (name, &id) in &package.interfaces {
            let interface = &resolve.interfaces[id];
            check(format!("interface {name}"), &interface.docs);
            for (function, item) in &interface.functions {
                check(format!("{name}: function {function}"), &item.docs);
            }
            for (type_name, &ty) in &interface.types {
                let ty = &resolve.types[ty];
                if !matches!(ty.kind, TypeDefKind::Type(_)) {
                    check(format!("{name}: type {type_name}"), &ty.docs);
                }
                match &ty.kind {
                    // A `use` of another interface's type: documented there.
                    TypeDefKind::Type(_) => continue,
                    TypeDefKind::Record(record) => {
                        for field in &record.fields {
                            check(format!("{type_name}.{}", field.name), &field.docs);
                        }
                    }
                    TypeDefKind::Variant(variant) => {
                        for case in &variant.cases {
                            check(format!("{type_name}.{}", case.name), &case.docs);
                        }
                    }
                    TypeDefKind::Enum(enumeration) => {
                        for case in &enumeration.cases {
                            check(format!("{type_name}.{}", case.name), &case.docs);
                        }
                    }
                    TypeDefKind::Flags(flags) => {
                        for flag in &flags.flags {
                            check(format!("{type_name}.{}", flag.name), &flag.docs);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    assert!(undocumented.is_empty(), "undocumented WIT items: {undocumented:?}");
}
