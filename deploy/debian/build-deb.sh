#!/usr/bin/env bash
# Build the gonogo Debian package: the release binary, then the man pages and shell completions generated
# from its CLI definition (into <target dir>/release/assets/, where [package.metadata.deb] in
# agent/Cargo.toml expects them), then `cargo deb`. Prints the path of the .deb as its last line.
#
# Needs cargo-deb (`cargo install cargo-deb --locked`). Usage: bash deploy/debian/build-deb.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v cargo-deb >/dev/null 2>&1; then
  echo "error: cargo-deb is not installed; install it with: cargo install cargo-deb --locked" >&2
  exit 1
fi

cargo build --release --locked -p gonogo
target_dir=$(cargo metadata --format-version 1 --no-deps --locked | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
bin="$target_dir/release/gonogo"

assets="$target_dir/release/assets"
rm -rf "$assets"
mkdir -p "$assets/man" "$assets/completions"
"$bin" man --out-dir "$assets/man"
gzip -9n "$assets"/man/*.1   # Debian policy: compressed man pages (cargo-deb leaves built files as they are)
"$bin" completions bash >"$assets/completions/gonogo.bash"
"$bin" completions zsh >"$assets/completions/_gonogo"
"$bin" completions fish >"$assets/completions/gonogo.fish"

mkdir -p target/debian
deb=target/debian/gonogo.deb
cargo deb -p gonogo --no-build --locked --output "$deb" >&2
echo "$deb"
