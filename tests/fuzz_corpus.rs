//! Replays the fuzz targets' seeds (generated ones and the hand-written `fuzz/seeds/<target>/`) and
//! every crash the fuzzer ever found (`fuzz/regressions/`) through the same entry points, on stable
//! Rust, as part of the normal test run.

use std::path::Path;

use servicecatalog::fuzzing;

fn files(dir: &Path) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect();
    paths.sort();
    paths.iter().map(|p| std::fs::read(p).expect("readable")).collect()
}

/// A template body around each sample's `main.tf`, as `scripts/fuzz` seeds the template target.
fn sample_templates(root: &Path) -> Vec<Vec<u8>> {
    let mut bodies = Vec::new();
    for sample in std::fs::read_dir(root.join("samples")).expect("samples").filter_map(Result::ok) {
        if let Ok(main_tf) = std::fs::read_to_string(sample.path().join("main.tf")) {
            let body = serde_json::json!({
                "ROSTemplateFormatVersion": "2015-09-01",
                "Transform": "Aliyun::Terraform-v1.0",
                "Workspace": {"main.tf": main_tf},
            });
            bodies.push(body.to_string().into_bytes());
        }
    }
    bodies
}

#[test]
fn seeds_and_regressions_run_through_every_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let captures = files(&root.join("src/protocol/testdata"));
    assert!(!captures.is_empty(), "the captured SDK requests seed the request targets");
    let templates = sample_templates(root);
    assert!(!templates.is_empty());
    /// (name, target, seed inputs)
    type Target<'a> = (&'a str, fn(&[u8]), &'a Vec<Vec<u8>>);
    let targets: [Target<'_>; 3] = [
        ("params", fuzzing::params, &captures),
        ("signatures", fuzzing::signatures, &captures),
        ("template", fuzzing::template, &templates),
    ];
    for (name, target, seeds) in targets {
        let kept = [files(&root.join("fuzz/seeds").join(name)), files(&root.join("fuzz/regressions").join(name))].concat();
        for input in seeds.iter().chain(&kept) {
            target(input);
            // Every prefix too: truncated input is the commonest malformed input.
            for cut in (0..input.len()).step_by(input.len() / 16 + 1) {
                target(&input[..cut]);
            }
        }
    }
}
