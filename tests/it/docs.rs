//! The docs cannot drift: docs/configuration.md carries the reference generated from
//! the registry (`VITALS_BLESS=1 cargo test docs` rewrites it after a change), and every
//! claim README.md and docs/**.md make that a program can check is checked — each repo
//! path exists, each `file:line` is in its file, each link and anchor leads somewhere,
//! and each `vitals …` and `cargo …` command line parses.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::Parser;
use vitals::cli::Cli;
use vitals::reference::configuration_reference;

use crate::support::shipped_registry;

const BEGIN: &str = "<!-- BEGIN GENERATED REFERENCE: edit the config structs' /// comments, then run `VITALS_BLESS=1 cargo test docs` -->\n";
const END: &str = "<!-- END GENERATED REFERENCE -->";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn configuration_reference_matches_the_registry() {
    let path = root().join("docs/configuration.md");
    let doc = std::fs::read_to_string(&path).expect("docs/configuration.md");
    let (head, rest) = doc.split_once(BEGIN).expect("the BEGIN marker");
    let (current, tail) = rest.split_once(END).expect("the END marker");
    let generated = configuration_reference(&shipped_registry());
    if std::env::var_os("VITALS_BLESS").is_some() {
        std::fs::write(&path, format!("{head}{BEGIN}{generated}{END}{tail}")).unwrap();
        return;
    }
    assert!(
        current == generated,
        "docs/configuration.md is out of date: run `VITALS_BLESS=1 cargo test docs` and commit it"
    );
}

/// README.md and every file under docs/ that is Markdown.
fn doc_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    let mut files = vec![root().join("README.md")];
    walk(&root().join("docs"), &mut files);
    files.sort();
    files
}

/// The top folders of the repository a path in the docs may start with.
const TOP: [&str; 9] = [
    "src/", "checks/", "tests/", "docs/", "config/", "scripts/", "benches/", "dist/", ".ci/",
];

/// GitHub's anchor of a heading: lowercase, spaces to `-`, punctuation dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a Markdown file's headings.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut fenced = false;
    text.lines()
        .filter(|l| {
            if l.starts_with("```") {
                fenced = !fenced;
            }
            !fenced
        })
        .filter_map(|l| l.strip_prefix('#'))
        .map(|h| slug(h.trim_start_matches('#')))
        .collect()
}

/// Splits a command line into words (double and single quotes group).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut started = false;
    for c in line.chars() {
        match (quote, c) {
            (None, '"' | '\'') => {
                quote = Some(c);
                started = true;
            }
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if started {
                    out.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            (_, c) => {
                word.push(c);
                started = true;
            }
        }
    }
    if started {
        out.push(word);
    }
    out
}

/// What is wrong with one `vitals …` command line (words after `vitals`). A synopsis
/// (`vitals run [-c FILE]`) is read with its optional parts given and placeholders for
/// values; a command named alone (`vitals replay`) must exist.
fn vitals_line(args: &[String]) -> Option<String> {
    use clap::CommandFactory;
    use clap::error::ErrorKind;
    if let [sub] = args
        && !sub.starts_with('-')
    {
        return Cli::command()
            .find_subcommand(sub)
            .is_none()
            .then(|| format!("there is no command `vitals {sub}`"));
    }
    let synopsis = args.iter().any(|a| a.contains('['));
    let args = args.iter().map(|a| {
        let a = a.replace(['[', ']'], "");
        // `text\|json`: the first of the alternatives.
        a.split('|')
            .next()
            .unwrap_or_default()
            .trim_end_matches('\\')
            .to_owned()
    });
    let argv = std::iter::once("vitals".to_owned()).chain(args.filter(|a| !a.is_empty()));
    match Cli::try_parse_from(argv) {
        Ok(_) => None,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => None,
        Err(e) if synopsis && e.kind() == ErrorKind::ValueValidation => None,
        Err(e) => Some(e.to_string().lines().next().unwrap_or_default().to_owned()),
    }
}

/// A shell line cut at what is not the command's own: redirections, pipes, `&&`.
fn command_part(line: &str) -> &str {
    let mut end = line.len();
    for cut in [" > ", " >> ", " | ", " && ", " 2>", " <"] {
        if let Some(i) = line.find(cut) {
            end = end.min(i);
        }
    }
    &line[..end]
}

/// What is wrong with one `cargo …` command line (words after `cargo`).
fn cargo_line(args: &[String], manifest: &str) -> Option<String> {
    const SUBCOMMANDS: [&str; 10] = [
        "run", "build", "test", "bench", "install", "clippy", "fmt", "doc", "nextest", "tree",
    ];
    let sub = args.first()?;
    if !SUBCOMMANDS.contains(&sub.as_str()) {
        return Some(format!("`cargo {sub}` is not a cargo command this project uses"));
    }
    let defined = |section: &str, name: &str| {
        manifest.contains(&format!("[{section}.{name}]"))
            || (section == "[bench]" && manifest.contains(&format!("name = \"{name}\"")))
    };
    let mut i = 1;
    while i < args.len() {
        let (flag, value) = (args[i].as_str(), args.get(i + 1).map(String::as_str));
        match (flag, value) {
            ("--", _) => {
                // What follows goes to the program: vitals itself for `cargo run`.
                if sub == "run" {
                    return vitals_line(&args[i + 1..]);
                }
                return None;
            }
            ("--bench", Some(name)) => {
                if !manifest.contains(&format!("name = \"{name}\"")) {
                    return Some(format!("no bench `{name}` in Cargo.toml"));
                }
                i += 1;
            }
            ("--test", Some(name)) => {
                if !manifest.contains(&format!("name = \"{name}\"")) {
                    return Some(format!("no test binary `{name}` in Cargo.toml"));
                }
                i += 1;
            }
            ("--features", Some(list)) => {
                for f in list.split(',') {
                    if !manifest.contains(&format!("\n{f} = [")) {
                        return Some(format!("no feature `{f}` in Cargo.toml"));
                    }
                }
                i += 1;
            }
            ("--profile", Some(name)) => {
                if !matches!(name, "dev" | "release" | "test" | "bench") && !defined("profile", name) {
                    return Some(format!("no profile `{name}` in Cargo.toml"));
                }
                i += 1;
            }
            ("--path", Some(p)) => {
                if !root().join(p).exists() {
                    return Some(format!("--path {p} does not exist"));
                }
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Every problem of one Markdown file, as `file:line: what`.
fn check_doc(file: &Path, text: &str) -> Vec<String> {
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let dir = file.parent().unwrap();
    let own_anchors = anchors(text);
    let name = file.strip_prefix(root()).unwrap_or(file).display().to_string();
    let mut problems = Vec::new();
    let mut fenced = false;
    // A command continued on the next line (`\` at the end), joined.
    let mut continued = String::new();
    for (n, line) in text.lines().enumerate() {
        let at = |what: String| format!("{name}:{}: {what}", n + 1);
        if line.starts_with("```") {
            fenced = !fenced;
            continue;
        }
        // Repo paths, with an optional `:line`.
        for top in TOP {
            let mut rest = line;
            while let Some(i) = rest.find(top) {
                let before = rest[..i].chars().last();
                let tail = &rest[i..];
                rest = &rest[i + top.len()..];
                // Only a path that starts a word (not `ib/src/…` of another repo, not a URL).
                if before.is_some_and(|c| c.is_alphanumeric() || matches!(c, '/' | '.' | '-' | '_' | '~')) {
                    continue;
                }
                let path: String = tail
                    .chars()
                    .take_while(|c| {
                        c.is_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '*' | ':' | '<')
                    })
                    .collect();
                let path = path.trim_end_matches(['.', ':', ',']);
                if path.contains(['*', '<']) {
                    continue; // a pattern, not a path
                }
                let (file_part, line_part) = match path.split_once(':') {
                    Some((f, l)) => (
                        f,
                        l.split(['-', ':']).next().and_then(|l| l.parse::<usize>().ok()),
                    ),
                    None => (path, None),
                };
                let target = root().join(file_part);
                if !target.exists() {
                    problems.push(at(format!("`{file_part}` does not exist")));
                    continue;
                }
                if let Some(l) = line_part {
                    let lines = std::fs::read_to_string(&target)
                        .map(|t| t.lines().count())
                        .unwrap_or(0);
                    if l == 0 || l > lines {
                        problems.push(at(format!("`{file_part}` has no line {l} (it has {lines})")));
                    }
                }
            }
        }
        // Links: [text](target) with a relative path and/or an anchor.
        let mut rest = line;
        while let Some(i) = rest.find("](") {
            rest = &rest[i + 2..];
            let Some(end) = rest.find(')') else { break };
            let target = &rest[..end];
            if target.contains("://") || target.starts_with("mailto:") || target.is_empty() {
                continue;
            }
            let (path, anchor) = match target.split_once('#') {
                Some((p, a)) => (p, Some(a)),
                None => (target, None),
            };
            let linked = if path.is_empty() {
                file.to_owned()
            } else {
                dir.join(path)
            };
            if !linked.exists() {
                problems.push(at(format!("the link to `{path}` leads nowhere")));
                continue;
            }
            if let Some(anchor) = anchor {
                let known = if path.is_empty() {
                    own_anchors.clone()
                } else {
                    anchors(&std::fs::read_to_string(&linked).unwrap_or_default())
                };
                if !known.contains(anchor) {
                    problems.push(at(format!("`{target}`: no heading has the anchor `#{anchor}`")));
                }
            }
        }
        // Command lines: in code blocks (`$ ` prompts too) and in backticks.
        let mut commands: Vec<String> = Vec::new();
        if fenced {
            let l = line.trim_start().trim_start_matches("$ ");
            let l = l.split(" #").next().unwrap_or(l);
            if let Some(head) = l.strip_suffix('\\') {
                continued.push_str(head);
                continue;
            }
            let whole = std::mem::take(&mut continued) + l;
            commands.push(command_part(&whole).to_owned());
        } else {
            let mut parts = line.split('`');
            while let (Some(_), Some(code)) = (parts.next(), parts.next()) {
                commands.push(command_part(code).to_owned());
            }
        }
        for command in commands {
            let w = words(&command);
            let problem = match w.first().map(String::as_str) {
                Some("vitals") if w.len() > 1 && !command.contains("...") && !command.contains('…') => {
                    vitals_line(&w[1..])
                }
                Some("cargo") if w.len() > 1 => cargo_line(&w[1..], &manifest),
                _ => None,
            };
            if let Some(p) = problem {
                problems.push(at(format!("`{command}`: {p}")));
            }
        }
    }
    problems
}

#[test]
fn every_path_link_anchor_and_command_in_the_docs_is_real() {
    let files = doc_files();
    assert!(files.len() >= 10, "{files:?}");
    let mut problems = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        problems.extend(check_doc(file, &text));
    }
    assert!(
        problems.is_empty(),
        "the docs say what is not so:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_docs_check_finds_what_is_planted() {
    let file = root().join("docs/planted.md");
    let text = "See `src/nowhere.rs` and src/daemon.rs:99999.\n\
                Read [the guide](writing-a-check.md#no-such-heading) and [this](missing.md).\n\
                Run `vitals chek` or `cargo run --release -- vitals` or `cargo bench --bench nope`.\n\
                Also `vitals check --format yaml`.\n\
                ```\n$ vitals validate --frobnicate\n```\n\
                Fine: `src/daemon.rs`, [guide](writing-a-check.md), `vitals check --format json disk`,\n\
                `vitals replay`, `vitals run [-c FILE]`, `vitals replay -c v.toml week.jsonl > out.jsonl`.\n\
                ```\nvitals replay -c v.toml --history /t \\\n    --from 2026-11-01T00:00:00Z\n```\n";
    let found = check_doc(&file, text);
    let expect = [
        "`src/nowhere.rs` does not exist",
        "`src/daemon.rs` has no line 99999",
        "no heading has the anchor `#no-such-heading`",
        "the link to `missing.md` leads nowhere",
        "there is no command `vitals chek`",
        "`vitals check --format yaml`",
        "`cargo run --release -- vitals`",
        "no bench `nope`",
        "`vitals validate --frobnicate`",
    ];
    for e in expect {
        assert!(
            found.iter().any(|f| f.contains(e)),
            "not found: {e}\nin {found:#?}"
        );
    }
    assert_eq!(found.len(), expect.len(), "{found:#?}");
}
