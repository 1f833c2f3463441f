//! The boundary's source tree is layered: a module uses only modules of its own folder or of
//! the folders below it ([`LAYERS`]), and no two modules use each other, directly or through
//! others. This test reads the sources, resolves every `crate::`, `super::`, `self::` and
//! child-module path outside test code to the module it names, and checks both rules.
//!
//! `cargo modules dependencies --acyclic` would check the second rule too, but it builds
//! rust-analyzer: far too heavy for CI here. The resolution below is purely textual: it
//! follows paths as written (`use` declarations and inline paths, with one level of braces),
//! which is how this crate writes them (no glob imports outside tests).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, top to bottom: the first segment of a module path (`""` is `lib.rs`).
const LAYERS: &[&[&str]] = &[
    &[""],
    &["fuzzing"],
    &["testing"],
    &["pipeline"],
    &["http"],
    &["ws"],
    &["stream"],
    &["dns"],
    &["conn"],
    &["state"],
    &["config"],
    &["tls"],
    &["ocsf"],
    &["events"],
    &["io"],
    &["capture"],
];

/// Test-only modules, not part of the layering.
const TEST_ONLY: &[&str] = &["test_secrets"];

type Module = String;

#[derive(Debug)]
struct Source {
    file: PathBuf,
    code: String,
    children: BTreeSet<String>,
}

fn modules(src: &Path) -> BTreeMap<Module, Source> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap();
            let mut segs: Vec<String> = rel
                .iter()
                .map(|s| s.to_string_lossy().into_owned())
                .collect();
            let last = segs.pop().unwrap();
            match last.as_str() {
                "lib.rs" | "mod.rs" => {}
                other => segs.push(other.trim_end_matches(".rs").to_owned()),
            }
            let name = segs.join("::");
            if TEST_ONLY.contains(&name.as_str()) {
                continue;
            }
            let code = strip(&std::fs::read_to_string(&path).unwrap());
            let children = declared_children(&code);
            out.insert(
                name,
                Source {
                    file: path,
                    code,
                    children,
                },
            );
        }
    }
    out
}

/// The code without comments and without its `mod tests`.
fn strip(text: &str) -> String {
    let mut code = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        if t == "#[cfg(test)]"
            && lines.peek().is_some_and(|next| {
                let n = next.trim_start();
                n.starts_with("mod tests") || n.starts_with("pub(crate) mod tests")
            })
        {
            break;
        }
        let without_comment = match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        };
        code.push_str(without_comment);
        code.push('\n');
    }
    code
}

fn declared_children(code: &str) -> BTreeSet<String> {
    code.lines()
        .filter_map(|l| {
            let l = l.trim();
            let rest = l
                .strip_prefix("pub(crate) mod ")
                .or_else(|| l.strip_prefix("pub mod "))
                .or_else(|| l.strip_prefix("mod "))?;
            rest.strip_suffix(';').map(str::to_owned)
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Sep,
    Open,
    Close,
    Comma,
    Other,
}

fn tokens(code: &str) -> Vec<Tok> {
    let b = code.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(Tok::Ident(code[start..i].to_owned()));
            continue;
        }
        if c == b':' && b.get(i + 1) == Some(&b':') {
            out.push(Tok::Sep);
            i += 2;
            continue;
        }
        out.push(match c {
            b'{' => Tok::Open,
            b'}' => Tok::Close,
            b',' => Tok::Comma,
            c if c.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            _ => Tok::Other,
        });
        i += 1;
    }
    out
}

/// Every path `a::b::c` (and `a::{b, c::d}`), as segments.
fn paths(toks: &[Tok]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let starts = matches!(&toks[i], Tok::Ident(_))
            && toks.get(i + 1) == Some(&Tok::Sep)
            && (i == 0 || toks[i - 1] != Tok::Sep);
        if starts {
            collect(toks, &mut i, Vec::new(), &mut out);
        } else {
            i += 1;
        }
    }
    out
}

fn collect(toks: &[Tok], i: &mut usize, mut prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    while let Some(Tok::Ident(name)) = toks.get(*i) {
        prefix.push(name.clone());
        *i += 1;
        if toks.get(*i) != Some(&Tok::Sep) {
            out.push(prefix);
            return;
        }
        *i += 1;
        if toks.get(*i) == Some(&Tok::Open) {
            *i += 1;
            loop {
                match toks.get(*i) {
                    Some(Tok::Ident(_)) => collect(toks, i, prefix.clone(), out),
                    Some(Tok::Comma) => *i += 1,
                    Some(Tok::Close) | None => {
                        *i += 1;
                        return;
                    }
                    Some(_) => *i += 1,
                }
            }
        }
    }
    out.push(prefix);
}

fn parent(module: &str) -> String {
    module
        .rsplit_once("::")
        .map_or(String::new(), |(p, _)| p.to_owned())
}

fn join(base: &str, rest: &[String]) -> Vec<String> {
    let mut segs: Vec<String> = if base.is_empty() {
        Vec::new()
    } else {
        base.split("::").map(str::to_owned).collect()
    };
    segs.extend(rest.iter().cloned());
    segs
}

/// The module a path names, if it names one of this crate's.
fn resolve(
    path: &[String],
    from: &str,
    src: &Source,
    known: &BTreeMap<Module, Source>,
) -> Option<Module> {
    let mut base = from.to_owned();
    let mut rest = path;
    let absolute = match rest.first()?.as_str() {
        "crate" => join("", &rest[1..]),
        "self" => join(from, &rest[1..]),
        "super" => {
            while rest.first().is_some_and(|s| s == "super") {
                base = parent(&base);
                rest = &rest[1..];
            }
            join(&base, rest)
        }
        child if src.children.contains(child) => join(from, rest),
        _ => return None,
    };
    (0..=absolute.len())
        .rev()
        .map(|n| absolute[..n].join("::"))
        .find(|m| known.contains_key(m) && !TEST_ONLY.contains(&m.as_str()))
}

fn layer_of(module: &str) -> usize {
    let top = module.split("::").next().unwrap_or("");
    LAYERS
        .iter()
        .position(|l| l.contains(&top))
        .unwrap_or_else(|| panic!("module {module} is in no layer: add its folder to LAYERS"))
}

fn graph() -> BTreeMap<Module, BTreeMap<Module, PathBuf>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let known = modules(&src);
    let mut edges: BTreeMap<Module, BTreeMap<Module, PathBuf>> = BTreeMap::new();
    for (name, source) in &known {
        let to = edges.entry(name.clone()).or_default();
        for path in paths(&tokens(&source.code)) {
            if let Some(target) = resolve(&path, name, source, &known)
                && target != *name
            {
                to.insert(target, source.file.clone());
            }
        }
    }
    edges
}

#[test]
fn no_module_uses_a_layer_above_its_own() {
    let edges = graph();
    let mut bad = Vec::new();
    for (from, targets) in &edges {
        for (to, file) in targets {
            if layer_of(to) < layer_of(from) {
                bad.push(format!("{from} ({}) uses {to}", file.display()));
            }
        }
    }
    assert!(bad.is_empty(), "upward uses:\n{}", bad.join("\n"));
    // The check sees the tree: the pipeline's path runs through these.
    assert!(edges["pipeline"].contains_key("pipeline::inspect"));
    assert!(edges["pipeline::inspect"].contains_key("pipeline::tunnel"));
    assert!(edges["http::serve"].contains_key("conn"));
}

#[test]
fn no_import_cycles_between_modules() {
    let edges = graph();
    // Depth-first search with colours; a grey target is a cycle.
    #[derive(Clone, Copy, PartialEq)]
    enum Colour {
        White,
        Grey,
        Black,
    }
    fn visit(
        m: &str,
        edges: &BTreeMap<Module, BTreeMap<Module, PathBuf>>,
        colour: &mut BTreeMap<Module, Colour>,
        stack: &mut Vec<Module>,
    ) -> Option<Vec<Module>> {
        colour.insert(m.to_owned(), Colour::Grey);
        stack.push(m.to_owned());
        for next in edges.get(m).into_iter().flat_map(|t| t.keys()) {
            match colour.get(next).copied().unwrap_or(Colour::White) {
                Colour::Grey => {
                    let start = stack.iter().position(|s| s == next).unwrap_or(0);
                    let mut cycle = stack[start..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                Colour::White => {
                    if let Some(c) = visit(next, edges, colour, stack) {
                        return Some(c);
                    }
                }
                Colour::Black => {}
            }
        }
        stack.pop();
        colour.insert(m.to_owned(), Colour::Black);
        None
    }
    let mut colour = BTreeMap::new();
    for m in edges.keys() {
        if colour.get(m).copied().unwrap_or(Colour::White) == Colour::White
            && let Some(cycle) = visit(m, &edges, &mut colour, &mut Vec::new())
        {
            panic!("import cycle: {}", cycle.join(" -> "));
        }
    }
    let count: usize = edges.values().map(BTreeMap::len).sum();
    assert!(count > 50, "only {count} edges found: the scan is broken");
}

#[test]
fn the_scanner_resolves_paths_as_written() {
    let toks = tokens("use super::{WsError, frame};\nuse crate::io::{Abort, reset};\nx::y(1);");
    let p = paths(&toks);
    assert!(p.contains(&vec!["super".into(), "frame".into()]));
    assert!(p.contains(&vec!["crate".into(), "io".into(), "reset".into()]));
    assert!(p.contains(&vec!["x".into(), "y".into()]));
    let cut = strip("fn a() {}\n// crate::x\n#[cfg(test)]\nmod tests {\n use crate::y;\n}\n");
    assert!(!cut.contains("crate::"), "{cut}");
}
