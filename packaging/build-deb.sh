#!/usr/bin/env bash
# Builds the Debian package (README "Install"):
#
#   packaging/build-deb.sh            # -> target/debian/forewarn_<version>-1_<arch>.deb
#   packaging/build-deb.sh --dbgsym   # also forewarn-dbgsym_*.ddeb with the symbol table
#
# Builds the binary with Cargo.toml's `dist` profile (whole-program LTO:
# smaller and a little faster than `release`, a ~10 minute build), generates
# the man pages (one per subcommand, gzipped) and the bash/zsh/fish
# completions from it into <target dir>/<profile>/packaging/, then packs
# everything Cargo.toml's [package.metadata.deb] lists with cargo-deb
# (installed at the pinned version when missing; it reads the assets'
# `target/release/` as the profile's directory). Arguments go to `cargo deb`.
# The last line on stdout is the path of the .deb.
# FOREWARN_DEB_PROFILE=release packs the `release` build instead;
# FOREWARN_DEB_NO_BUILD=1 packs the profile's binary as it is (CI sets both,
# right after `cargo test --release`).
set -euo pipefail
cd "$(dirname "$0")/.."

# Pinned: the flags and the maintainer scripts below are cargo-deb 3's.
CARGO_DEB_VERSION=3.8.0

if [ "$(cargo deb --version 2>/dev/null)" != "cargo-deb $CARGO_DEB_VERSION" ]; then
  echo "build-deb: installing cargo-deb $CARGO_DEB_VERSION" >&2
  cargo install cargo-deb --version "$CARGO_DEB_VERSION" --locked >&2
fi
for tool in dpkg-shlibdeps strip gzip; do
  command -v "$tool" >/dev/null || { echo "build-deb: error: $tool is missing (apt-get install dpkg-dev binutils gzip)" >&2; exit 1; }
done

profile=${FOREWARN_DEB_PROFILE:-dist}
if [ -n "${FOREWARN_DEB_NO_BUILD:-}" ]; then
  # .ci/run packs the binary `cargo test --release` just built: a plain
  # `cargo build` after it would recompile forewarn and ~20 dependencies
  # (dev-dependencies unify other features into them) for the same code.
  echo "build-deb: FOREWARN_DEB_NO_BUILD set: packing the $profile binary already built" >&2
else
  cargo build --profile "$profile" --locked --bin forewarn >&2
fi

# CARGO_TARGET_DIR, .cargo/config and workspaces all move it; cargo knows where.
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
[ -n "$target_dir" ] || { echo "build-deb: error: no target_directory in cargo metadata" >&2; exit 1; }
bin="$target_dir/$profile/forewarn"
[ -x "$bin" ] || { echo "build-deb: error: no $bin (unset FOREWARN_DEB_NO_BUILD to build it)" >&2; exit 1; }
# Cargo.toml's assets name these paths as target/release/packaging/...
out="$target_dir/$profile/packaging"
rm -rf "$out"
mkdir -p "$out/completions"
"$bin" man --out-dir "$out/man" >/dev/null
# -n: no name or time in the header, so the same pages give the same bytes.
gzip -9nf "$out"/man/*.1
"$bin" completions bash >"$out/completions/forewarn.bash"
"$bin" completions zsh >"$out/completions/_forewarn"
"$bin" completions fish >"$out/completions/forewarn.fish"

# --strip: the symbol table goes too (release keeps it for perf); --dbgsym
# keeps it in a separate package instead.
# cargo deb prints the package's path (its name follows --deb-version,
# --deb-revision and the target, so it is not rebuilt here).
deb=$(cargo deb --no-build --locked --strip --profile "$profile" "$@" | grep '\.deb$' | tail -n 1)
[ -f "$deb" ] || { echo "build-deb: error: cargo deb did not say where it wrote the package" >&2; exit 1; }
echo "$deb"
