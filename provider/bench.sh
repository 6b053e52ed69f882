#!/usr/bin/env bash
# Median wall time of `init + apply + destroy` of 3 sandbox_file resources, in a fresh directory per run.
# Usage: provider/bench.sh [TERRAFORM_BINARY] [RUNS]   (defaults: terraform on PATH, 5 runs)
# Builds the provider in release mode first, unless PROVIDER_BINARY names a binary to measure instead.
# Measures only; asserts nothing.
set -euo pipefail
terraform_bin=$(command -v "${1:-terraform}")
runs=${2:-5}
here=$(cd "$(dirname "$0")" && pwd)
binary=${PROVIDER_BINARY:-}
if [ -z "$binary" ]; then
  cargo build --quiet --release -p terraform-provider-sandbox --manifest-path "$here/Cargo.toml"
  binary="$here/../target/release/terraform-provider-sandbox"
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
plugin_dir="$scratch/mirror/servicecatalog.local/demo/sandbox/0.1.0/linux_amd64"
mkdir -p "$plugin_dir"
cp "$binary" "$plugin_dir/terraform-provider-sandbox_v0.1.0"
export TF_IN_AUTOMATION=1 TF_FORK=0 CHECKPOINT_DISABLE=1 TF_CLI_CONFIG_FILE=/dev/null

times=()
for run in $(seq "$runs"); do
  work="$scratch/run$run"
  mkdir -p "$work"
  cat > "$work/main.tf" <<HCL
terraform {
  required_providers {
    sandbox = { source = "servicecatalog.local/demo/sandbox", version = "0.1.0" }
  }
}
provider "sandbox" { root = "$work/root" }
resource "sandbox_file" "a" {
  path    = "a.txt"
  content = "a"
}
resource "sandbox_file" "b" {
  path    = "dir/b.txt"
  content = "b"
}
resource "sandbox_file" "c" {
  path    = "c.txt"
  content = "c"
}
HCL
  start=$(date +%s%N)
  (
    cd "$work"
    "$terraform_bin" init -no-color -input=false -plugin-dir="$scratch/mirror" >/dev/null
    "$terraform_bin" apply -no-color -input=false -auto-approve >/dev/null
    "$terraform_bin" destroy -no-color -input=false -auto-approve >/dev/null
  )
  times+=($(( ($(date +%s%N) - start) / 1000000 )))
done
sorted=($(printf '%s\n' "${times[@]}" | sort -n))
echo "$("$terraform_bin" version | head -1): init+apply+destroy of 3 resources, runs (ms): ${times[*]}; median: ${sorted[$(( runs / 2 ))]} ms"
