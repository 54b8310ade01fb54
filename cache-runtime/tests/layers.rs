//! The runtime's top-level modules form layers: no module reaches, through the
//! modules it imports, back to itself (ARCHITECTURE.md, "The runtime's layers").
//! Read from the sources: every `crate::module` a module's non-test code names.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

/// Modules outside the layering: the crate root that wires them, and the model
/// checks that test several at once.
const WIRING: [&str; 2] = ["lib", "loom_tests"];

fn imports_of(source: &str) -> BTreeSet<String> {
    let code = source.split("#[cfg(test)]").next().unwrap_or_default();
    let mut names = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            names.extend(group_heads(group));
        } else {
            names.insert(path_head(rest));
        }
    }
    names.retain(|name| !name.is_empty());
    names
}

/// The first segment of each path in a `{..}` group (the text after its `{`).
fn group_heads(group: &str) -> Vec<String> {
    let mut heads = vec![path_head(group.trim_start())];
    let mut depth = 0;
    for (at, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => heads.push(path_head(group[at + 1..].trim_start())),
            _ => {}
        }
    }
    heads
}

fn path_head(path: &str) -> String {
    path.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

fn collect(dir: &Path, top: Option<&str>, graph: &mut Graph) {
    for entry in std::fs::read_dir(dir).expect("the runtime's sources") {
        let path = entry.expect("a directory entry").path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let module = top.map_or(name.clone(), str::to_owned);
        if path.is_dir() {
            collect(&path, Some(&module), graph);
        } else if path.extension().is_some_and(|e| e == "rs") && !WIRING.contains(&&*module) {
            let source = std::fs::read_to_string(&path).unwrap();
            let imports = graph.entry(module.clone()).or_default();
            imports.extend(imports_of(&source).into_iter().filter(|m| *m != module));
        }
    }
}

/// A path of imports from `from` back to `from`, if there is one.
fn cycle_through(graph: &Graph, from: &str) -> Option<Vec<String>> {
    let mut stack = vec![vec![from.to_owned()]];
    let mut seen = BTreeSet::new();
    while let Some(path) = stack.pop() {
        let last = path.last().unwrap();
        for next in graph.get(last).into_iter().flatten() {
            if next == from {
                return Some([path.clone(), vec![next.clone()]].concat());
            }
            if graph.contains_key(next) && seen.insert(next.clone()) {
                stack.push([path.clone(), vec![next.clone()]].concat());
            }
        }
    }
    None
}

#[test]
fn no_runtime_module_imports_itself_through_others() {
    let mut graph = Graph::new();
    collect(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        None,
        &mut graph,
    );
    assert!(graph.len() > 20, "read {} modules", graph.len());
    assert!(
        graph["engine"].contains("l2") && graph["l2"].contains("tags"),
        "imports read: {graph:?}"
    );
    let cycles: Vec<String> = graph
        .keys()
        .filter_map(|module| cycle_through(&graph, module))
        .map(|cycle| cycle.join(" -> "))
        .collect();
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_reader_finds_grouped_and_nested_imports() {
    let source = "use crate::{l2::{keys, L2}, tags};\nfn f() { crate::clock::now(); }\n#[cfg(test)]\nuse crate::engine;";
    let found: Vec<String> = imports_of(source).into_iter().collect();
    assert_eq!(found, ["clock", "l2", "tags"]);
}
