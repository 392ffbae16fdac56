//! Which files make up a program: hidden files (editor lock files, `.git`) are not
//! part of it, and a `.wd` name that is not a regular file is an error naming it,
//! never a hang. Every run here is killed if it takes too long.

#![cfg(unix)]

mod common;

use common::{cleanup, demo_with_timeout, scratch};
use std::path::Path;
use std::process::Command;

fn program(name: &str) -> std::path::PathBuf {
    let dir = scratch(name);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    std::fs::write(dir.join("main.wd"), "fn main() -> i64 {\n    5\n}\n").expect("written");
    dir
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn hidden_files_and_directories_are_not_modules() {
    let dir = program("hidden");
    std::fs::write(dir.join(".x.wd"), "this is not a program").expect("written");
    std::fs::create_dir_all(dir.join(".cache")).expect("dir");
    std::fs::write(dir.join(".cache/y.wd"), "nor is this").expect("written");
    let r = demo_with_timeout(&["run", &dir.to_string_lossy()], 20);
    assert_eq!(r.status.code(), Some(0), "{}", text(&r.stderr));
    assert_eq!(text(&r.stdout), "5\n");
    cleanup(&dir);
}

#[test]
fn an_editor_lock_file_is_ignored() {
    let dir = program("lockfile");
    // Emacs's lock file: a dangling symlink named `.#FILE`.
    std::os::unix::fs::symlink("user@host.1234:1700000000", dir.join(".#main.wd"))
        .expect("symlink");
    let r = demo_with_timeout(&["check", &dir.to_string_lossy()], 20);
    assert_eq!(r.status.code(), Some(0), "{}", text(&r.stderr));
    cleanup(&dir);
}

#[test]
fn a_fifo_named_like_a_module_is_an_error_not_a_hang() {
    let dir = program("fifo");
    let fifo = dir.join("x.wd");
    let made = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success(), "mkfifo failed");
    let r = demo_with_timeout(&["check", &dir.to_string_lossy()], 20);
    assert_eq!(r.status.code(), Some(2), "{}", text(&r.stderr));
    let stderr = text(&r.stderr);
    assert!(stderr.contains(&*fifo.to_string_lossy()), "{stderr}");
    assert!(stderr.contains("not a regular file"), "{stderr}");
    cleanup(&dir);
}

#[test]
fn a_dangling_module_symlink_is_an_error_naming_it() {
    let dir = program("dangling");
    let link = dir.join("gone.wd");
    std::os::unix::fs::symlink(Path::new("nowhere.wd"), &link).expect("symlink");
    // Not a `.wd` name: not part of the program, whatever it points to.
    std::os::unix::fs::symlink(Path::new("nowhere"), dir.join("notes")).expect("symlink");
    let r = demo_with_timeout(&["check", &dir.to_string_lossy()], 20);
    assert_eq!(r.status.code(), Some(2), "{}", text(&r.stderr));
    assert!(text(&r.stderr).contains(&*link.to_string_lossy()));
    cleanup(&dir);
}
