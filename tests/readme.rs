//! One source for each fact: the README carries copies of the documentation fragments in
//! `limit-runtime/docs/`, which the crate documentation includes with `include_str!`. This
//! test checks that every copy in the README is the fragment, byte for byte, and that every
//! fragment is included by the crate's source, so neither text can drift from the other.
//!
//! After editing a fragment, `UPDATE_README=1 cargo test --test readme` rewrites the copies.

use std::fs;
use std::path::{Path, PathBuf};

const BEGIN: &str = "<!-- include ";
const BEGIN_END: &str = " -->\n";
const END: &str = "<!-- end include -->\n";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Each included region of `readme`: the fragment's path, and the byte range of its copy.
fn regions(readme: &str) -> Vec<(String, std::ops::Range<usize>)> {
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(start) = readme[at..].find(BEGIN).map(|i| at + i) {
        let name_start = start + BEGIN.len();
        let name_end = name_start
            + readme[name_start..]
                .find(BEGIN_END)
                .unwrap_or_else(|| panic!("an unterminated include marker at byte {start}"));
        let body_start = name_end + BEGIN_END.len();
        let body_end = body_start
            + readme[body_start..].find(END).unwrap_or_else(|| {
                panic!(
                    "the include of {} has no `{}`",
                    &readme[name_start..name_end],
                    END.trim()
                )
            });
        let nested = &readme[body_start..body_end];
        assert!(
            !nested.contains(BEGIN),
            "an include inside an include at byte {start}"
        );
        found.push((
            readme[name_start..name_end].to_owned(),
            body_start..body_end,
        ));
        at = body_end + END.len();
    }
    found
}

fn fragments() -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = fs::read_dir(root().join("limit-runtime/docs"))
        .expect("limit-runtime/docs")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| {
            path.extension().is_some_and(|ext| ext == "md")
                && path.file_name().is_some_and(|name| name != "README.md")
        })
        .collect();
    paths.sort();
    paths
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root())
        .expect("under the workspace")
        .display()
        .to_string()
}

#[test]
fn readme_copies_are_the_fragments() {
    let readme_path = root().join("README.md");
    let readme = fs::read_to_string(&readme_path).expect("the README");
    let regions = regions(&readme);
    assert!(!regions.is_empty(), "the README includes no fragment");

    let mut updated = String::new();
    let mut copied_up_to = 0;
    let mut stale = Vec::new();
    for (name, range) in &regions {
        let fragment = fs::read_to_string(root().join(name)).unwrap_or_else(|error| {
            panic!("the README includes {name}, which is missing: {error}")
        });
        if readme[range.clone()] != fragment {
            stale.push(name.clone());
        }
        updated.push_str(&readme[copied_up_to..range.start]);
        updated.push_str(&fragment);
        copied_up_to = range.end;
    }
    updated.push_str(&readme[copied_up_to..]);

    if stale.is_empty() {
        return;
    }
    if std::env::var_os("UPDATE_README").is_some() {
        fs::write(&readme_path, updated).expect("a writable README");
        return;
    }
    panic!(
        "the README's copies of {stale:?} differ from the fragments; edit the fragment, not \
         the README, then run `UPDATE_README=1 cargo test --test readme`"
    );
}

#[test]
fn every_fragment_is_in_the_crate_documentation() {
    let mut sources = String::new();
    for entry in fs::read_dir(root().join("limit-runtime/src")).expect("limit-runtime/src") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_some_and(|ext| ext == "rs") {
            sources.push_str(&fs::read_to_string(&path).expect("a source file"));
        }
    }
    let fragments = fragments();
    assert!(!fragments.is_empty(), "no fragment in limit-runtime/docs");
    for fragment in fragments {
        let file = fragment.file_name().expect("a file name").to_string_lossy();
        let include = format!("include_str!(\"../docs/{file}\")");
        assert!(
            sources.contains(&include),
            "{} is not included by the crate documentation (`{include}`)",
            relative(&fragment)
        );
    }
}

#[test]
fn fragments_render_outside_rustdoc() {
    // GitHub renders the README's copies: no intra-doc links, and no hidden doctest lines.
    for fragment in fragments() {
        let text = fs::read_to_string(&fragment).expect("a fragment");
        let mut in_code = false;
        for (number, line) in text.lines().enumerate() {
            let at = format!("{}:{}", relative(&fragment), number + 1);
            if line.trim_start().starts_with("```") {
                in_code = !in_code;
                continue;
            }
            if in_code {
                assert!(
                    !line.trim_start().starts_with("# "),
                    "{at}: a hidden doctest line"
                );
            } else {
                assert!(
                    !line.starts_with('#'),
                    "{at}: a heading; the host document owns headings"
                );
                assert!(
                    !line.contains("[`"),
                    "{at}: an intra-doc link, which GitHub cannot render"
                );
            }
        }
        assert!(
            !in_code,
            "{}: an unterminated code block",
            relative(&fragment)
        );
    }
}

#[test]
fn regions_are_found() {
    let text = "a\n<!-- include x.md -->\nbody\n<!-- end include -->\nb\n";
    let found = regions(text);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].0, "x.md");
    assert_eq!(&text[found[0].1.clone()], "body\n");
}
