//! Rule evaluation with 10, 1,000 and 10,000 rules: the domain index should make the cost
//! nearly independent of the rule count.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use portcullis::access_control::{AccessControl, Object, Subject};
use portcullis::config::Configuration;

fn engine(rules: usize) -> AccessControl {
    let mut yaml = String::from("access_control:\n  default_policy: deny\n  rules:\n");
    for i in 0..rules.saturating_sub(2) {
        yaml.push_str(&format!(
            "    - {{domain: 'app{i}.example.com', resources: ['^/api/v{}/'], policy: one_factor}}\n",
            i % 7
        ));
    }
    yaml.push_str(
        "    - {domain: '*.example.com', subject: 'group:admins', resources: ['^/admin'], policy: two_factor}\n",
    );
    yaml.push_str("    - {domain: '*.example.com', policy: one_factor}\n");
    let config: Configuration = serde_yaml::from_str(&yaml).unwrap();
    AccessControl::compile(&config).unwrap()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("access_control");
    let groups = vec!["dev".to_string(), "admins".to_string()];
    let subject =
        Subject { username: "john", groups: &groups, client_id: "", ip: "10.0.0.1".parse().ok(), token: None };
    for rules in [10, 1_000, 10_000] {
        let e = engine(rules);
        // A host in the middle of the list and a path that falls through to a wildcard rule.
        let host = format!("app{}.example.com", rules / 2);
        let object = Object::from_parts(&host, "/admin/users", Some("page=2"), "GET");
        group.bench_with_input(BenchmarkId::new("evaluate", rules), &rules, |b, _| {
            b.iter(|| e.evaluate(&subject, &object))
        });
        group.bench_with_input(BenchmarkId::new("object_and_evaluate", rules), &rules, |b, _| {
            b.iter(|| {
                let object = Object::from_parts(&host, "/admin/../admin/users", Some("page=2"), "GET");
                e.evaluate(&subject, &object)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
