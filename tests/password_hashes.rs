//! Password hashes against independent implementations: hashes made by Python's passlib
//! and argon2-cffi must verify with `portcullis crypto hash validate`, and hashes made by
//! `portcullis crypto hash generate` must verify in passlib/argon2-cffi.

mod common;

use std::process::Command;

use common::run;

const PASSWORD: &str = "correct horse ☃ battery";

fn python(code: &str, args: &[&str]) -> String {
    let out = Command::new("python3").arg("-c").arg(code).args(args).output().expect("python3");
    assert!(
        out.status.success(),
        "python failed (run integration/install-deps for passlib, bcrypt, argon2-cffi): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Python expressions that hash `sys.argv[1]`, by format.
const FOREIGN: &[(&str, &str)] = &[
    (
        "argon2id",
        "from argon2 import PasswordHasher as H; print(H(time_cost=2, memory_cost=4096, parallelism=2).hash(sys.argv[1]))",
    ),
    (
        "argon2i",
        "from argon2.low_level import hash_secret, Type; import os; print(hash_secret(sys.argv[1].encode(), os.urandom(16), 2, 4096, 1, 32, Type.I).decode())",
    ),
    (
        "argon2d",
        "from argon2.low_level import hash_secret, Type; import os; print(hash_secret(sys.argv[1].encode(), os.urandom(16), 2, 4096, 1, 32, Type.D).decode())",
    ),
    ("sha512crypt", "from passlib.hash import sha512_crypt as h; print(h.using(rounds=5000).hash(sys.argv[1]))"),
    (
        "sha512crypt rounds",
        "from passlib.hash import sha512_crypt as h; print(h.using(rounds=12345).hash(sys.argv[1]))",
    ),
    ("sha256crypt", "from passlib.hash import sha256_crypt as h; print(h.using(rounds=6000).hash(sys.argv[1]))"),
    ("pbkdf2-sha1", "from passlib.hash import pbkdf2_sha1 as h; print(h.using(rounds=2000).hash(sys.argv[1]))"),
    ("pbkdf2-sha256", "from passlib.hash import pbkdf2_sha256 as h; print(h.using(rounds=2000).hash(sys.argv[1]))"),
    ("pbkdf2-sha512", "from passlib.hash import pbkdf2_sha512 as h; print(h.using(rounds=2000).hash(sys.argv[1]))"),
    ("bcrypt 2b", "from passlib.hash import bcrypt as h; print(h.using(rounds=5, ident='2b').hash(sys.argv[1]))"),
    ("bcrypt 2a", "from passlib.hash import bcrypt as h; print(h.using(rounds=5, ident='2a').hash(sys.argv[1]))"),
    ("bcrypt 2y", "from passlib.hash import bcrypt as h; print(h.using(rounds=5, ident='2y').hash(sys.argv[1]))"),
    (
        "scrypt",
        "from passlib.hash import scrypt as h; print(h.using(rounds=6, block_size=8, parallelism=1).hash(sys.argv[1]))",
    ),
];

fn validate(password: &str, digest: &str) -> Option<i32> {
    let dir = tempfile::tempdir().unwrap();
    run(&["crypto", "hash", "validate", "--password", password, "--", digest], dir.path(), &[]).status.code()
}

#[test]
fn foreign_hashes_verify() {
    for (name, code) in FOREIGN {
        let digest = python(&format!("import sys; {code}"), &[PASSWORD]);
        assert_eq!(validate(PASSWORD, &digest), Some(0), "{name}: {digest} should match");
        assert_eq!(validate("correct horse", &digest), Some(1), "{name}: a wrong password must not match");
    }
}

#[test]
fn our_hashes_verify_elsewhere() {
    // (algorithm, passlib/argon2-cffi check of sys.argv[1] against sys.argv[2])
    let cases: &[(&str, &str)] = &[
        ("argon2", "from argon2 import PasswordHasher as H; print(H().verify(sys.argv[2], sys.argv[1]))"),
        ("sha2crypt", "from passlib.hash import sha512_crypt as h; print(h.verify(sys.argv[1], sys.argv[2]))"),
        ("pbkdf2", "from passlib.hash import pbkdf2_sha512 as h; print(h.verify(sys.argv[1], sys.argv[2]))"),
        ("bcrypt", "from passlib.hash import bcrypt as h; print(h.verify(sys.argv[1], sys.argv[2]))"),
        ("scrypt", "from passlib.hash import scrypt as h; print(h.verify(sys.argv[1], sys.argv[2]))"),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (algorithm, check) in cases {
        let out = run(&["crypto", "hash", "generate", algorithm, "--password", PASSWORD], dir.path(), &[]);
        assert!(out.status.success(), "{algorithm}: {}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8(out.stdout).unwrap();
        let digest = stdout.trim().strip_prefix("Digest: ").unwrap_or_else(|| panic!("{stdout}")).to_string();
        assert_eq!(python(&format!("import sys; {check}"), &[PASSWORD, &digest]), "True", "{algorithm}: {digest}");
        assert_eq!(validate(PASSWORD, &digest), Some(0));
    }
}

#[test]
fn malformed_digests_exit_two() {
    for bad in ["not-a-hash", "$argon2id$v=19$m=1", "$pbkdf2-sha512$x$y$z"] {
        assert_eq!(validate(PASSWORD, bad), Some(2), "{bad}");
    }
}

#[test]
fn random_passwords_are_printed_and_hashed() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["crypto", "hash", "generate", "--random"], dir.path(), &[]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let password = stdout.lines().find_map(|l| l.strip_prefix("Random Password: ")).unwrap().to_string();
    let digest = stdout.lines().find_map(|l| l.strip_prefix("Digest: ")).unwrap().to_string();
    assert_eq!(password.len(), 32);
    assert_eq!(validate(&password, &digest), Some(0));
}
