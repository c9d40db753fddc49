//! Password hashes against independent implementations: hashes made by Python's passlib
//! and argon2-cffi must verify with `portcullis crypto hash validate`, and hashes made by
//! `portcullis crypto hash generate` must verify in passlib/argon2-cffi.
//!
//! The Python packages are pinned in integration/requirements.txt; when they are missing
//! these tests fail (they never skip) and say to run integration/install-deps.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use common::run;

const PASSWORD: &str = "correct horse ☃ battery";
const WRONG: &str = "correct horse";

/// Fails the test, with the fix, when python3 or a package the tests need is missing.
fn require_python_packages() {
    static CHECK: OnceLock<Result<(), String>> = OnceLock::new();
    let outcome = CHECK.get_or_init(|| {
        let probe = "import passlib.hash, bcrypt, argon2; from passlib.hash import bcrypt as b; b.hash('x', rounds=4)";
        match Command::new("python3").args(["-c", probe]).output() {
            Ok(out) if out.status.success() => Ok(()),
            Ok(out) => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
            Err(e) => Err(format!("python3 cannot run: {e}")),
        }
    });
    if let Err(why) = outcome {
        panic!("passlib, bcrypt or argon2-cffi is missing or broken; run integration/install-deps:\n{why}");
    }
}

/// Runs `import sys; <code>` with `args` as sys.argv[1..]; returns stdout, trimmed.
fn python(code: &str, args: &[&str]) -> String {
    require_python_packages();
    let out = Command::new("python3")
        .arg("-c")
        .arg(format!("import sys; {code}"))
        .args(args)
        .output()
        .expect("python3 (run integration/install-deps)");
    assert!(out.status.success(), "python failed on {code}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Python statements printing a hash of `sys.argv[1]`, by format; cheap parameters.
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
    (
        "sha512crypt short salt",
        "from passlib.hash import sha512_crypt as h; print(h.using(rounds=5000, salt_size=5).hash(sys.argv[1]))",
    ),
    ("sha256crypt", "from passlib.hash import sha256_crypt as h; print(h.using(rounds=6000).hash(sys.argv[1]))"),
    ("pbkdf2-sha1", "from passlib.hash import pbkdf2_sha1 as h; print(h.using(rounds=2000).hash(sys.argv[1]))"),
    ("pbkdf2-sha256", "from passlib.hash import pbkdf2_sha256 as h; print(h.using(rounds=2000).hash(sys.argv[1]))"),
    ("pbkdf2-sha512", "from passlib.hash import pbkdf2_sha512 as h; print(h.using(rounds=2000).hash(sys.argv[1]))"),
    ("bcrypt 2b", "from passlib.hash import bcrypt as h; print(h.using(rounds=5, ident='2b').hash(sys.argv[1]))"),
    ("bcrypt 2a", "from passlib.hash import bcrypt as h; print(h.using(rounds=5, ident='2a').hash(sys.argv[1]))"),
    ("bcrypt 2y", "from passlib.hash import bcrypt as h; print(h.using(rounds=5, ident='2y').hash(sys.argv[1]))"),
    ("bcrypt-sha256 v2", "from passlib.hash import bcrypt_sha256 as h; print(h.using(rounds=5).hash(sys.argv[1]))"),
    (
        "bcrypt-sha256 v1 2b",
        "from passlib.hash import bcrypt_sha256 as h; print(h.using(rounds=5, version=1).hash(sys.argv[1]))",
    ),
    (
        "bcrypt-sha256 v1 2a",
        "from passlib.hash import bcrypt_sha256 as h; print(h.using(rounds=5, version=1, ident='2a').hash(sys.argv[1]))",
    ),
    (
        "scrypt",
        "from passlib.hash import scrypt as h; print(h.using(rounds=6, block_size=8, parallelism=1).hash(sys.argv[1]))",
    ),
    (
        "scrypt p=2",
        "from passlib.hash import scrypt as h; print(h.using(rounds=5, block_size=4, parallelism=2).hash(sys.argv[1]))",
    ),
];

fn validate(password: &str, digest: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    run(&["crypto", "hash", "validate", "--password", password, "--", digest], dir.path(), &[])
}

fn validate_code(password: &str, digest: &str) -> Option<i32> {
    validate(password, digest).status.code()
}

/// Runs the binary with `input` on its standard input.
fn run_with_stdin(args: &[&str], input: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(common::binary())
        .args(args)
        .current_dir(dir.path())
        .env_remove("PORTCULLIS_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run portcullis");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// The hash from `Digest: <hash>` in a `generate` output.
fn digest_of(out: &Output) -> String {
    assert!(out.status.success(), "generate failed: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    stdout.lines().find_map(|l| l.strip_prefix("Digest: ")).unwrap_or_else(|| panic!("no Digest line: {stdout}")).into()
}

#[test]
fn foreign_hashes_verify() {
    for (name, code) in FOREIGN {
        let digest = python(code, &[PASSWORD]);
        let out = validate(PASSWORD, &digest);
        assert_eq!(out.status.code(), Some(0), "{name}: {digest} should match: {out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "The password matches the digest.");
        let out = validate(WRONG, &digest);
        assert_eq!(out.status.code(), Some(1), "{name}: a wrong password must not match: {digest}");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "The password does not match the digest.");
    }
}

#[test]
fn foreign_bcrypt_sha256_checks_past_72_bytes() {
    let long = format!("{}é", "x".repeat(80));
    let other = format!("{}e", "x".repeat(80));
    let digest =
        python("from passlib.hash import bcrypt_sha256 as h; print(h.using(rounds=4).hash(sys.argv[1]))", &[&long]);
    assert_eq!(validate_code(&long, &digest), Some(0), "{digest}");
    assert_eq!(validate_code(&other, &digest), Some(1), "{digest}");
}

/// Python statements printing whether `sys.argv[1]` and then `sys.argv[2]` match the hash
/// `sys.argv[3]`.
const ARGON2_CHECK: &str = "from argon2 import PasswordHasher as H
def ok(p):
    try: return H().verify(sys.argv[3], p)
    except Exception: return False
print(ok(sys.argv[1]), ok(sys.argv[2]))";

const HASHLIB_SCRYPT_CHECK: &str = "import base64, hashlib, hmac
_, _, settings, salt, digest = sys.argv[3].split('$')
kv = dict(pair.split('=') for pair in settings.split(','))
b64 = lambda text: base64.b64decode(text + '=' * (-len(text) % 4))
def ok(p):
    out = hashlib.scrypt(p.encode(), salt=b64(salt), n=2 ** int(kv['ln']), r=int(kv['r']), p=int(kv['p']), maxmem=2 ** 28, dklen=len(b64(digest)))
    return hmac.compare_digest(out, b64(digest))
print(ok(sys.argv[1]), ok(sys.argv[2]))";

fn passlib_check(handler: &str) -> String {
    format!(
        "from passlib.hash import {handler} as h; print(h.verify(sys.argv[1], sys.argv[3]), h.verify(sys.argv[2], sys.argv[3]))"
    )
}

#[test]
fn our_default_hashes_verify_elsewhere() {
    // (algorithm, expected prefix, check): the defaults of `PasswordHashing::default()`.
    let cases = [
        ("argon2", "$argon2id$v=19$m=65536,t=3,p=4$", ARGON2_CHECK.to_string()),
        ("sha2crypt", "$6$rounds=50000$", passlib_check("sha512_crypt")),
        ("pbkdf2", "$pbkdf2-sha512$310000$", passlib_check("pbkdf2_sha512")),
        ("bcrypt", "$2b$12$", passlib_check("bcrypt")),
        ("scrypt", "$scrypt$ln=16,r=8,p=1$", passlib_check("scrypt")),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (algorithm, prefix, check) in cases {
        let digest =
            digest_of(&run(&["crypto", "hash", "generate", algorithm, "--password", PASSWORD], dir.path(), &[]));
        assert!(digest.starts_with(prefix), "{algorithm}: {digest}");
        assert_eq!(python(&check, &[PASSWORD, WRONG, &digest]), "True False", "{algorithm}: {digest}");
        assert_eq!(validate_code(PASSWORD, &digest), Some(0));
    }
    // Without an algorithm, argon2id.
    let digest = digest_of(&run(&["crypto", "hash", "generate", "--password", PASSWORD], dir.path(), &[]));
    assert!(digest.starts_with("$argon2id$"), "{digest}");
}

#[test]
fn variants_can_be_chosen_on_the_command_line() {
    let cases = [
        ("bcrypt", "sha256", "$bcrypt-sha256$v=2,t=2b,r=12$", passlib_check("bcrypt_sha256")),
        ("pbkdf2", "sha256", "$pbkdf2-sha256$310000$", passlib_check("pbkdf2_sha256")),
        ("sha2crypt", "sha256", "$5$rounds=50000$", passlib_check("sha256_crypt")),
        ("argon2", "argon2i", "$argon2i$v=19$m=65536,t=3,p=4$", ARGON2_CHECK.to_string()),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (algorithm, variant, prefix, check) in cases {
        let args = ["crypto", "hash", "generate", algorithm, "--variant", variant, "--password", PASSWORD];
        let digest = digest_of(&run(&args, dir.path(), &[]));
        assert!(digest.starts_with(prefix), "{algorithm} {variant}: {digest}");
        assert_eq!(python(&check, &[PASSWORD, WRONG, &digest]), "True False", "{digest}");
    }
    let out =
        run(&["crypto", "hash", "generate", "argon2", "--variant", "argon2x", "--password", "x"], dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown variant 'argon2x'"), "{out:?}");
}

#[test]
fn configured_hashes_verify_elsewhere() {
    // (authentication_backend.file.password in YAML flow style, expected prefix,
    // (salt, digest) lengths in characters, check)
    let cases = [
        (
            "{algorithm: argon2, argon2: {variant: argon2i, iterations: 2, memory: 4096, parallelism: 2}}",
            "$argon2i$v=19$m=4096,t=2,p=2$",
            (22, 43),
            ARGON2_CHECK.to_string(),
        ),
        (
            "{algorithm: argon2, argon2: {variant: argon2d, iterations: 1, memory: 2048, parallelism: 1, key_length: 64, salt_length: 32}}",
            "$argon2d$v=19$m=2048,t=1,p=1$",
            (43, 86),
            ARGON2_CHECK.to_string(),
        ),
        (
            "{algorithm: sha2crypt, sha2crypt: {variant: sha256, iterations: 2000, salt_length: 10}}",
            "$5$rounds=2000$",
            (10, 43),
            passlib_check("sha256_crypt"),
        ),
        (
            "{algorithm: pbkdf2, pbkdf2: {variant: sha1, iterations: 100000}}",
            "$pbkdf2$100000$",
            (22, 27),
            passlib_check("pbkdf2_sha1"),
        ),
        (
            "{algorithm: pbkdf2, pbkdf2: {variant: sha256, iterations: 100000, salt_length: 24}}",
            "$pbkdf2-sha256$100000$",
            (32, 43),
            passlib_check("pbkdf2_sha256"),
        ),
        (
            "{algorithm: bcrypt, bcrypt: {variant: sha256, cost: 10}}",
            "$bcrypt-sha256$v=2,t=2b,r=10$",
            (22, 31),
            passlib_check("bcrypt_sha256"),
        ),
        (
            "{algorithm: scrypt, scrypt: {iterations: 10, block_size: 4, parallelism: 2, key_length: 48}}",
            "$scrypt$ln=10,r=4,p=2$",
            (22, 64),
            // passlib reads only 32-byte scrypt keys; Python's hashlib (OpenSSL) reads any.
            HASHLIB_SCRYPT_CHECK.to_string(),
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.yml");
    std::fs::write(&base, common::config_yaml(common::free_port(), dir.path(), "")).unwrap();
    for (i, (password_yaml, prefix, (salt_chars, digest_chars), check)) in cases.iter().enumerate() {
        let overlay = dir.path().join(format!("hashing-{i}.yml"));
        std::fs::write(&overlay, format!("authentication_backend:\n  file:\n    password: {password_yaml}\n")).unwrap();
        let config = format!("{},{}", base.display(), overlay.display());
        let out = run(&["crypto", "hash", "generate", "--config", &config, "--password", PASSWORD], dir.path(), &[]);
        let digest = digest_of(&out);
        assert!(digest.starts_with(prefix), "{password_yaml}: {digest}");
        let tail: Vec<&str> = digest.rsplit('$').take(2).collect();
        assert_eq!((tail[1].len(), tail[0].len()), (*salt_chars, *digest_chars), "{password_yaml}: {digest}");
        assert_eq!(python(check, &[PASSWORD, WRONG, &digest]), "True False", "{password_yaml}: {digest}");
        assert_eq!(validate_code(PASSWORD, &digest), Some(0), "{digest}");
        assert_eq!(validate_code(WRONG, &digest), Some(1), "{digest}");
    }
}

#[test]
fn passwords_can_come_from_stdin() {
    let digest = digest_of(&run_with_stdin(&["crypto", "hash", "generate", "sha2crypt"], &format!("{PASSWORD}\n")));
    assert_eq!(
        run_with_stdin(&["crypto", "hash", "validate", "--", &digest], &format!("{PASSWORD}\r\n")).status.code(),
        Some(0)
    );
    assert_eq!(run_with_stdin(&["crypto", "hash", "validate", "--", &digest], "nope\n").status.code(), Some(1));
    let empty = run_with_stdin(&["crypto", "hash", "generate", "sha2crypt"], "");
    assert!(!empty.status.success(), "an empty password is refused");
    assert!(String::from_utf8_lossy(&empty.stderr).contains("no password"), "{empty:?}");
}

#[test]
fn malformed_digests_exit_two() {
    for bad in [
        "not-a-hash",
        "$argon2id$v=19$m=1",
        "$pbkdf2-sha512$x$y$z",
        "$2b$04$short",
        "$bcrypt-sha256$v=2,t=2b,r=4$short$short",
        "$scrypt$ln=4$c2FsdA$aGFzaA",
    ] {
        let out = validate(PASSWORD, bad);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(out.stdout.is_empty(), "{bad}: nothing on stdout");
        assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: "), "{bad}: {out:?}");
    }
}

#[test]
fn random_passwords_are_printed_and_hashed() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["crypto", "hash", "generate", "--random"], dir.path(), &[]);
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    let password = stdout.lines().find_map(|l| l.strip_prefix("Random Password: ")).unwrap().to_string();
    assert_eq!(password.len(), 32);
    assert!(password.chars().all(|c| c.is_ascii_alphanumeric()), "{password}");
    assert_eq!(validate_code(&password, &digest_of(&out)), Some(0));
}
