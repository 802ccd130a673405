//! Expansion snapshots: each `snapshots/NAME.rs` holds one item under `#[concurrency_limit]`,
//! and `snapshots/NAME.expanded.rs` what the attribute turns it into, pretty-printed. A change
//! to the generated code shows up as a diff of these files in review.
//!
//! After a deliberate change, regenerate them with
//! `UPDATE_SNAPSHOTS=1 cargo test -p limit-macro snapshots` and review the diff.

use std::fs;
use std::path::{Path, PathBuf};

use quote::ToTokens;

fn expand_file(input: &str) -> String {
    let file = syn::parse_file(input).expect("snapshot input parses as a file");
    let mut expanded = proc_macro2::TokenStream::new();
    for mut item in file.items {
        let attrs = match &mut item {
            syn::Item::Fn(function) => &mut function.attrs,
            other => panic!(
                "snapshot inputs hold functions, found `{}`",
                other.into_token_stream()
            ),
        };
        let position = attrs
            .iter()
            .position(|attr| attr.path().is_ident("concurrency_limit"))
            .expect("each function has #[concurrency_limit]");
        let attr = attrs.remove(position);
        let args = match attr.meta {
            syn::Meta::List(list) => list.tokens,
            _ => proc_macro2::TokenStream::new(),
        };
        expanded.extend(crate::expand_attribute(args, item.into_token_stream()));
    }
    let file: syn::File = syn::parse2(expanded).expect("the expansion parses as items");
    prettyplease::unparse(&file)
}

fn inputs() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("snapshots");
    let mut inputs: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("snapshots directory")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| {
            path.extension().is_some_and(|ext| ext == "rs")
                && !path.to_string_lossy().ends_with(".expanded.rs")
        })
        .collect();
    inputs.sort();
    inputs
}

#[test]
fn expansions_match_their_snapshots() {
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
    let inputs = inputs();
    assert!(!inputs.is_empty(), "no snapshot inputs found");
    let mut mismatched = Vec::new();
    for input in inputs {
        let actual = expand_file(&fs::read_to_string(&input).expect("readable input"));
        let snapshot = input.with_extension("expanded.rs");
        let expected = fs::read_to_string(&snapshot).unwrap_or_default();
        if actual != expected {
            if update {
                fs::write(&snapshot, &actual).expect("writable snapshot");
            } else {
                mismatched.push(format!(
                    "{}:\n--- expected\n{expected}\n--- actual\n{actual}",
                    snapshot.display()
                ));
            }
        }
    }
    assert!(
        mismatched.is_empty(),
        "expansions changed (UPDATE_SNAPSHOTS=1 to accept):\n{}",
        mismatched.join("\n")
    );
}

/// The README's "What it expands to" shows the expansion of `snapshots/readme_example.rs`
/// exactly. `UPDATE_SNAPSHOTS=1` rewrites it from the snapshot.
#[test]
fn the_readme_shows_the_current_expansion() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme_path = root.join("../README.md");
    let readme = fs::read_to_string(&readme_path).expect("the README");
    let expansion = expand_file(
        &fs::read_to_string(root.join("snapshots/readme_example.rs")).expect("the example"),
    );
    let section = readme
        .find("## What it expands to")
        .expect("the README has a \"What it expands to\" section");
    let start = section
        + readme[section..]
            .find("```rust\n")
            .expect("a rust block in the section")
        + "```rust\n".len();
    let end = start + readme[start..].find("```\n").expect("the block ends");
    if readme[start..end] == expansion {
        return;
    }
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        let updated = format!("{}{expansion}{}", &readme[..start], &readme[end..]);
        fs::write(&readme_path, updated).expect("a writable README");
        return;
    }
    panic!(
        "the README's \"What it expands to\" differs from the expansion \
         (UPDATE_SNAPSHOTS=1 to rewrite it):\n--- README\n{}\n--- expansion\n{expansion}",
        &readme[start..end]
    );
}
