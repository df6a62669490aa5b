#!/usr/bin/env bash
# CI check of the Debian package (.ci/run runs it after the tests): builds it
# with packaging/build-deb.sh, then checks its files, conffiles, control
# fields, maintainer scripts and the stripped binary. As root with CI=true it
# also installs it with apt-get, runs the installed forewarn, reinstalls it
# over an edited conffile, removes and purges it. Any missing piece exits 1.
# FOREWARN_DEB_NO_BUILD=1 with FOREWARN_DEB_PROFILE=release (as .ci/run sets
# them) packs the binary already built.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "test-deb: FAIL: $*" >&2; exit 1; }
ok() { echo "test-deb: ok: $*"; }

deb=$(bash packaging/build-deb.sh | tail -n 1)
[ -f "$deb" ] || fail "packaging/build-deb.sh printed no .deb path (got: $deb)"
ok "built $deb ($(du -k "$deb" | cut -f1) KiB)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Fields.
[ "$(dpkg-deb -f "$deb" Package)" = forewarn ] || fail "Package is not forewarn"
[ "$(dpkg-deb -f "$deb" Architecture)" = "$(dpkg --print-architecture)" ] || fail "Architecture is not $(dpkg --print-architecture)"
dpkg-deb -f "$deb" Depends | grep -q 'libc6' || fail "Depends lacks libc6: $(dpkg-deb -f "$deb" Depends)"
ok "control: $(dpkg-deb -f "$deb" Package Version Architecture Depends Installed-Size | tr '\n' ' ')"

# Files: every page the packaged binary generates, and the fixed paths.
dpkg-deb -x "$deb" "$tmp/root"
dpkg-deb -c "$deb" | awk '{ print $NF }' | sed 's|^\./|/|' >"$tmp/contents"
"$tmp/root/usr/bin/forewarn" man --out-dir "$tmp/man" >/dev/null
[ -f "$tmp/man/forewarn-silence-add.1" ] || fail "forewarn man --out-dir wrote no forewarn-silence-add.1"
expected=(
  /usr/bin/forewarn
  /etc/forewarn/forewarn.yml
  /etc/forewarn/rules/forewarn.yml
  /usr/lib/systemd/system/forewarn.service
  /usr/share/forewarn/forewarn.example.yml
  /usr/share/bash-completion/completions/forewarn
  /usr/share/zsh/vendor-completions/_forewarn
  /usr/share/fish/vendor_completions.d/forewarn.fish
  /usr/share/doc/forewarn/README.md
  /usr/share/doc/forewarn/ARCHITECTURE.md
  /usr/share/doc/forewarn/copyright
)
for rule in rules/*.yml rules/tests/*.yml; do expected+=("/usr/share/forewarn/$rule"); done
for page in "$tmp"/man/*.1; do expected+=("/usr/share/man/man1/$(basename "$page").gz"); done
for path in "${expected[@]}"; do
  grep -qxF "$path" "$tmp/contents" || fail "$path is not in the package"
done
ok "${#expected[@]} expected paths, $(ls "$tmp"/man/*.1 | wc -l) of them man pages"
for page in "$tmp"/man/*.1; do
  packed="$tmp/root/usr/share/man/man1/$(basename "$page").gz"
  gzip -dc "$packed" | cmp -s - "$page" || fail "$packed is not the gzipped page the binary generates"
done
"$tmp/root/usr/bin/forewarn" completions bash | cmp -s - "$tmp/root/usr/share/bash-completion/completions/forewarn" \
  || fail "the bash completion is not the binary's"

# The binary: stripped (no symbol table, no debug info), and it runs.
if readelf -S "$tmp/root/usr/bin/forewarn" | grep -qE '\.symtab|\.debug_'; then
  fail "usr/bin/forewarn is not stripped: $(readelf -S "$tmp/root/usr/bin/forewarn" | grep -oE '\.symtab|\.debug_[a-z]+' | tr '\n' ' ')"
fi
if command -v file >/dev/null; then
  file -b "$tmp/root/usr/bin/forewarn" | grep -q ', stripped' || fail "file: $(file -b "$tmp/root/usr/bin/forewarn")"
fi
ok "usr/bin/forewarn stripped, $(du -k "$tmp/root/usr/bin/forewarn" | cut -f1) KiB: $("$tmp/root/usr/bin/forewarn" --version)"
# The shipped configs are valid where they land (rule_files resolve beside them).
"$tmp/root/usr/bin/forewarn" check "$tmp/root/etc/forewarn/forewarn.yml" || fail "the packaged /etc/forewarn/forewarn.yml fails forewarn check"
"$tmp/root/usr/bin/forewarn" check "$tmp/root/usr/share/forewarn/forewarn.example.yml" \
  || fail "/usr/share/forewarn/forewarn.example.yml fails forewarn check"
unit="$tmp/root/usr/lib/systemd/system/forewarn.service"
grep -qx 'ExecStart=/usr/bin/forewarn --log.format=logfmt --log.level=info run --config /etc/forewarn/forewarn.yml' "$unit" || fail "the unit's ExecStart is not /usr/bin/forewarn"
grep -qx 'ProtectSystem=strict' "$unit" || fail "the unit lost its hardening (ProtectSystem=strict)"

# Conffiles and maintainer scripts (cargo-deb's systemd handling).
dpkg-deb -e "$deb" "$tmp/control"
for conf in /etc/forewarn/forewarn.yml /etc/forewarn/rules/forewarn.yml; do
  grep -qxF "$conf" "$tmp/control/conffiles" || fail "$conf is not a conffile: $(cat "$tmp/control/conffiles")"
done
need() { # script, fixed string it must contain
  [ -x "$tmp/control/$1" ] || fail "no executable $1 in the package"
  grep -qF -- "$2" "$tmp/control/$1" || fail "$1 lacks: $2"
}
need postinst 'deb-systemd-helper enable forewarn.service'
need postinst 'deb-systemd-invoke $_dh_action forewarn.service'
need postinst 'if [ -d /run/systemd/system ]; then'
need prerm 'deb-systemd-invoke stop forewarn.service'
need postrm 'deb-systemd-helper purge forewarn.service'
need postrm 'systemctl --system daemon-reload'
need postrm 'rm -rf /var/lib/forewarn /var/lib/private/forewarn'
for script in postinst prerm postrm; do
  sh -n "$tmp/control/$script" || fail "$script is not valid sh"
  # Each cargo-deb section once, none of it inside a comment.
  [ "$(grep -c '^# Automatically added by cargo-deb$' "$tmp/control/$script")" = \
    "$(grep -c '^# End automatically added section$' "$tmp/control/$script")" ] || fail "$script has a broken cargo-deb section"
  grep -q '#DEBHELPER#' "$tmp/control/$script" && fail "$script still holds #DEBHELPER#"
done
[ "$(grep -c 'deb-systemd-helper purge forewarn.service' "$tmp/control/postrm")" = 1 ] || fail "postrm purges forewarn.service more than once"
ok "conffiles: $(tr '\n' ' ' <"$tmp/control/conffiles"); postinst/prerm/postrm enable, start, stop and purge forewarn.service"

if [ "$(id -u)" != 0 ] || [ "${CI:-}" != true ]; then
  echo "test-deb: not root with CI=true: the install, remove and purge checks are skipped"
  exit 0
fi

# Install, as a user would; without systemd as PID 1 the scripts enable the
# unit (a symlink) and skip starting it.
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq "$deb" >"$tmp/apt.log" 2>&1 || { cat "$tmp/apt.log" >&2; fail "apt-get install $deb"; }
[ "$(dpkg-query -W -f '${Status}' forewarn)" = "install ok installed" ] || fail "dpkg says: $(dpkg-query -W -f '${Status}' forewarn)"
[ "$(command -v forewarn)" = /usr/bin/forewarn ] || fail "forewarn on PATH is $(command -v forewarn)"
forewarn --version || fail "forewarn --version"
forewarn check /etc/forewarn/forewarn.yml || fail "forewarn check /etc/forewarn/forewarn.yml"
[ -L /etc/systemd/system/multi-user.target.wants/forewarn.service ] || fail "the unit is not enabled (no multi-user.target.wants link)"
if command -v man >/dev/null; then
  [ "$(man -w forewarn)" = /usr/share/man/man1/forewarn.1.gz ] || fail "man -w forewarn: $(man -w forewarn 2>&1)"
  man -w forewarn-silence-add >/dev/null || fail "man -w forewarn-silence-add"
fi
ok "installed: forewarn check passes on /etc/forewarn/forewarn.yml, the unit is enabled"

# Upgrade path (same version: prerm upgrade, postinst configure with the old
# version): an edited conffile is kept.
echo "# edited by test-deb" >>/etc/forewarn/forewarn.yml
dpkg -i "$deb" >"$tmp/dpkg.log" 2>&1 </dev/null || { cat "$tmp/dpkg.log" >&2; fail "dpkg -i over the installed package"; }
tail -n 1 /etc/forewarn/forewarn.yml | grep -qx '# edited by test-deb' || fail "reinstalling lost the edit to /etc/forewarn/forewarn.yml"
ok "reinstalled over an edited conffile, the edit kept"

# Remove keeps the conffiles and the state; purge deletes both.
mkdir -p /var/lib/forewarn && touch /var/lib/forewarn/test-deb-marker
apt-get remove -y -qq forewarn >"$tmp/apt.log" 2>&1 || { cat "$tmp/apt.log" >&2; fail "apt-get remove forewarn"; }
[ ! -e /usr/bin/forewarn ] || fail "remove left /usr/bin/forewarn"
[ -f /etc/forewarn/forewarn.yml ] || fail "remove deleted the conffile /etc/forewarn/forewarn.yml"
[ -f /var/lib/forewarn/test-deb-marker ] || fail "remove deleted /var/lib/forewarn"
apt-get purge -y -qq forewarn >"$tmp/apt.log" 2>&1 || { cat "$tmp/apt.log" >&2; fail "apt-get purge forewarn"; }
[ ! -e /etc/forewarn ] || fail "purge left /etc/forewarn: $(find /etc/forewarn)"
[ ! -e /var/lib/forewarn ] || fail "purge left /var/lib/forewarn"
[ ! -e /etc/systemd/system/multi-user.target.wants/forewarn.service ] || fail "purge left the unit enabled"
status=$(dpkg-query -W -f '${db:Status-Status}' forewarn 2>/dev/null || true)
case "$status" in "" | not-installed) ;; *) fail "dpkg says forewarn is $status after purge" ;; esac
ok "removed (conffiles and state kept) and purged (nothing left)"
