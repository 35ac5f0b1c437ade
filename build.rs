//! Embeds the plugin templates of `templates/` in the binary: writes
//! `$OUT_DIR/templates.rs`, a sorted list of `(path, include_bytes!(…), executable)`
//! for every file below `templates/`, used by `mfenv plugin bootstrap`.
//!
//! Deterministic: the walk is sorted by path, and only the executable bit of each file
//! is recorded (a test compares the embedded list with the files on disk).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn walk(dir: &Path, root: &Path, out: &mut Vec<(String, PathBuf, bool)>) {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .expect("templates/ is readable")
        .map(|entry| entry.expect("templates/ entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let meta = fs::symlink_metadata(&path).expect("template file metadata");
        if meta.is_dir() {
            walk(&path, root, out);
        } else if meta.is_file() {
            let relative = path
                .strip_prefix(root)
                .expect("below templates/")
                .to_str()
                .expect("template paths are UTF-8")
                .to_owned();
            let executable = meta.permissions().mode() & 0o111 != 0;
            out.push((relative, path, executable));
        } else {
            panic!(
                "{}: templates hold only files and directories",
                path.display()
            );
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let root = manifest.join("templates");
    println!("cargo::rerun-if-changed=templates");
    let mut files = Vec::new();
    walk(&root, &root, &mut files);
    files.sort();
    let mut code = String::from("&[\n");
    for (relative, path, executable) in &files {
        println!("cargo::rerun-if-changed={}", path.display());
        code.push_str(&format!(
            "    ({relative:?}, include_bytes!({:?}), {executable}),\n",
            path.to_str().expect("template paths are UTF-8")
        ));
    }
    code.push_str("]\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it"));
    fs::write(out.join("templates.rs"), code).expect("write templates.rs");
}
