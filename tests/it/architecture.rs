//! The shape of the tree, checked: no import cycle between the modules of `src/`, no
//! check kind named in the web server, one registration type for every family.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::support::shipped_registry;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules each top-level module of the library uses (`crate::x` paths
/// in code; comments and doc links are not dependencies): those of `src/`, and
/// `checks` (the top-level `checks/`, compiled in as the module `checks`).
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = root.join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    rust_files(&root.join("checks"), &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let module = match file.strip_prefix(&src) {
            Ok(rel) => {
                let first = rel.components().next().unwrap().as_os_str().to_string_lossy();
                first.trim_end_matches(".rs").to_owned()
            }
            Err(_) => "checks".to_owned(),
        };
        if module == "lib" || module == "main" {
            continue;
        }
        let code: String = std::fs::read_to_string(file)
            .unwrap()
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let deps = graph.entry(module.clone()).or_default();
        let mut rest = code.as_str();
        while let Some(at) = rest.find("crate::") {
            let before = rest[..at].chars().last();
            rest = &rest[at + "crate::".len()..];
            if before == Some('$') {
                continue; // `$crate::` in a macro: the module the macro names
            }
            let names: Vec<&str> = if let Some(group) = rest.strip_prefix('{') {
                // `crate::{a, b::c}`: every first segment.
                let inner = &group[..group.find('}').unwrap_or(group.len())];
                inner
                    .split(',')
                    .map(|p| p.trim().split("::").next().unwrap_or(""))
                    .collect()
            } else {
                vec![
                    rest.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .next()
                        .unwrap_or(""),
                ]
            };
            for name in names {
                if !name.is_empty() && name != module {
                    deps.insert(name.to_owned());
                }
            }
        }
    }
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for deps in graph.values_mut() {
        deps.retain(|d| modules.contains(d));
    }
    graph
}

/// A cycle through `start`, if there is one.
fn cycle_from(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    fn walk(
        graph: &BTreeMap<String, BTreeSet<String>>,
        start: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        let last = path.last().unwrap().clone();
        for next in graph.get(&last).into_iter().flatten() {
            if next == start {
                let mut c = path.clone();
                c.push(next.clone());
                return Some(c);
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if let Some(c) = walk(graph, start, path, seen) {
                    return Some(c);
                }
                path.pop();
            }
        }
        None
    }
    walk(graph, start, &mut vec![start.to_owned()], &mut BTreeSet::new())
}

#[test]
fn no_module_of_src_imports_itself_back() {
    let graph = module_graph();
    assert!(graph.len() > 20, "the walk found the modules: {graph:?}");
    assert!(graph["daemon"].contains("runner"), "the walk found the imports");
    assert!(graph["checks"].contains("check"), "the walk found checks/");
    // The framework never reaches into the plugins: only the registry sees them,
    // through `inventory`.
    let users: Vec<&String> = graph
        .iter()
        .filter(|(m, deps)| *m != "checks" && deps.contains("checks"))
        .map(|(m, _)| m)
        .collect();
    assert!(users.is_empty(), "{users:?} import checks/");
    let cycles: Vec<String> = graph
        .keys()
        .filter_map(|m| cycle_from(&graph, m))
        .map(|c| c.join(" -> "))
        .collect();
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec!["a"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
    .collect();
    assert_eq!(cycle_from(&graph, "a").unwrap(), ["a", "b", "c", "a"]);
    assert_eq!(cycle_from(&graph, "d"), None);
}

/// Files of one concern: none of the framework or the kinds is over 500 lines before
/// its tests.
#[test]
fn no_file_is_over_500_lines_before_its_tests() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    rust_files(&root.join("checks"), &mut files);
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            let n = code.lines().count();
            (n > 500).then(|| format!("{} ({n} lines)", f.strip_prefix(root).unwrap().display()))
        })
        .collect();
    assert!(files.len() > 60, "{}", files.len());
    assert!(long.is_empty(), "over 500 lines before their tests: {long:?}");
}

#[test]
fn the_web_server_names_no_check_kind() {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/web");
    let mut files = Vec::new();
    // Its own files (vendor/ holds third-party code, uPlot).
    for entry in std::fs::read_dir(&web).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            files.push(path);
        }
    }
    assert!(files.len() >= 5, "{files:?}");
    let registry = shipped_registry();
    let names = registry.checks.names();
    assert!(names.contains(&"ib_connection") && names.contains(&"cpu"));
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for name in &names {
            // A kind named in code or a template: compared with, matched on, or given as
            // a kind. (A short name like `host` is also an ordinary word — a query
            // parameter, a JSON field — so only these uses count.)
            let found = if name.contains('_') {
                text.contains(name)
            } else {
                [
                    format!("== \"{name}\""),
                    format!("== '{name}'"),
                    format!("!= \"{name}\""),
                    format!("!= '{name}'"),
                    format!("\"{name}\" =>"),
                    format!("kind: \"{name}\""),
                    format!("kind = \"{name}\""),
                ]
                .iter()
                .any(|pattern| text.contains(pattern.as_str()))
            };
            assert!(!found, "{} names the check kind `{name}`", file.display());
        }
    }
}
