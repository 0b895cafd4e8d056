#!/usr/bin/env bash
# Install a private Mesa lavapipe (CPU Vulkan driver) new enough for SAPIEN 3.
#
# SAPIEN needs descriptorBindingPartiallyBound, which Debian 12's Mesa 22.3
# lavapipe lacks ("failed to find a rendering device"). Mesa 25 from
# bookworm-backports has it and runs on bookworm's own LLVM 15. The driver is
# unpacked with `dpkg-deb -x` into a private directory: the system Mesa is not
# upgraded. Only stock bookworm runtime libraries (libvulkan1, libllvm15, ...)
# are installed system-wide, and only if missing.
#
# Usage:  eval "$(bash tests/vulkan/setup-lavapipe.sh [DEST])"   # DEST defaults to /opt/lavapipe
# Progress goes to stderr; the last line on stdout is
#   export VK_ICD_FILENAMES=DEST/lvp_icd.json
# VK_ICD_FILENAMES must be set BEFORE `import sapien`.
# Env overrides: MESA_VK_VERSION (default 25.0.7-2~bpo12+1; falls back to the
# bookworm-backports candidate if that exact version is gone).
set -euo pipefail

DEST="${1:-/opt/lavapipe}"
MESA_VK_VERSION="${MESA_VK_VERSION:-25.0.7-2~bpo12+1}"
ICD="$DEST/lvp_icd.json"
LIB="$DEST/libvulkan_lvp.so"

log() { echo "setup-lavapipe: $*" >&2; }
die() { echo "setup-lavapipe: error: $*" >&2; exit 1; }

# Runtime libraries libvulkan_lvp.so links against (all from bookworm main),
# plus the Vulkan loader (SAPIEN also bundles one, but warns without this).
RUNTIME_PKGS=(libvulkan1 libllvm15 libdrm2 libelf1 libexpat1 libwayland-client0
  libx11-xcb1 libxcb1 libxcb-dri3-0 libxcb-present0 libxcb-randr0 libxcb-shm0
  libxcb-sync1 libxcb-xfixes0 libxshmfence1 libzstd1 zlib1g)

missing_pkgs() {
  local p
  for p in "${RUNTIME_PKGS[@]}"; do
    [[ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" == installed ]] || echo "$p"
  done
}

is_set_up() {
  [[ -f "$ICD" && -f "$LIB" ]] || return 1
  grep -qF "\"$LIB\"" "$ICD" || return 1
  [[ -z "$(missing_pkgs)" ]] || return 1
  local deps
  deps="$(ldd "$LIB" 2>&1 || true)"
  [[ "$deps" != *"not found"* ]]
}

# Fast path: nothing to do (works without root too).
if is_set_up; then
  log "already set up in $DEST"
  echo "export VK_ICD_FILENAMES=$ICD"
  exit 0
fi

[[ "$(id -u)" -eq 0 ]] || die "must run as root (needs apt-get and write access to $DEST)"
command -v apt-get >/dev/null 2>&1 && command -v dpkg-deb >/dev/null 2>&1 \
  || die "apt-get/dpkg-deb not available (Debian/Ubuntu only)"

APT=(apt-get -q -o DPkg::Lock::Timeout=120 -o APT::Sandbox::User=root)
export DEBIAN_FRONTEND=noninteractive

# shellcheck disable=SC1091
CODENAME="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
need_update=0
[[ -n "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v -e '^lock$' -e '^partial$' || true)" ]] || need_update=1

if [[ "$CODENAME" == bookworm ]]; then
  # Add bookworm-backports, reusing the mirror apt already uses for bookworm.
  if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    MIRROR="$(grep -rhs -E '^\s*URIs:\s*\S+/debian/?\s*$' /etc/apt/sources.list.d/*.sources \
                | head -n1 | awk '{print $2}' || true)"
    [[ -n "$MIRROR" ]] || MIRROR="$(grep -rhs -E '^\s*deb\s+(\[[^]]*\]\s+)?\S+/debian/?\s+bookworm\s' \
                /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
                | head -n1 | sed -E 's/^\s*deb\s+(\[[^]]*\]\s+)?(\S+).*/\2/' || true)"
    MIRROR="${MIRROR:-http://deb.debian.org/debian}"
    log "adding bookworm-backports from $MIRROR"
    cat > /etc/apt/sources.list.d/bookworm-backports.sources <<EOF
Types: deb
URIs: ${MIRROR%/}
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    need_update=1
  elif [[ "$(apt-cache policy mesa-vulkan-drivers 2>/dev/null || true)" != *bookworm-backports* ]]; then
    need_update=1
  fi
fi

if [[ "$need_update" -eq 1 ]]; then
  log "apt-get update"
  "${APT[@]}" update >&2 || die "apt-get update failed"
fi

mapfile -t MISSING < <(missing_pkgs)
if [[ ${#MISSING[@]} -gt 0 ]]; then
  log "installing ${MISSING[*]}"
  "${APT[@]}" install -y --no-install-recommends "${MISSING[@]}" >&2 \
    || die "apt-get install ${MISSING[*]} failed"
fi

# Choose the mesa-vulkan-drivers version to fetch.
AVAILABLE="$(apt-cache madison mesa-vulkan-drivers 2>/dev/null | awk -F'|' '{gsub(/ /,"",$2); print $2}' || true)"
if grep -qxF -- "$MESA_VK_VERSION" <<<"$AVAILABLE"; then
  SPEC="mesa-vulkan-drivers=$MESA_VK_VERSION"
elif [[ "$CODENAME" == bookworm ]]; then
  SPEC="mesa-vulkan-drivers/bookworm-backports"
else
  SPEC="mesa-vulkan-drivers"   # newer releases ship Mesa >= 25 in main
fi

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
log "downloading $SPEC"
( cd "$TMP" && "${APT[@]}" download "$SPEC" >&2 ) || die "apt-get download $SPEC failed"
DEB="$(ls "$TMP"/mesa-vulkan-drivers_*.deb)"
VER="$(dpkg-deb -f "$DEB" Version)"
[[ "${VER%%.*}" =~ ^[0-9]+$ && "${VER%%.*}" -ge 24 ]] \
  || die "mesa-vulkan-drivers $VER is too old for SAPIEN (need >= 24; on bookworm use backports)"

dpkg-deb -x "$DEB" "$TMP/x"
SRC="$(find "$TMP/x" -name libvulkan_lvp.so -print -quit)"
[[ -n "$SRC" ]] || die "libvulkan_lvp.so not found in $DEB"

mkdir -p "$DEST"
install -m 0644 "$SRC" "$LIB.tmp" && mv -f "$LIB.tmp" "$LIB"
DEPS="$(ldd "$LIB" 2>&1 || true)"
if [[ "$DEPS" == *"not found"* ]]; then
  grep 'not found' <<<"$DEPS" >&2
  die "libvulkan_lvp.so has unresolved libraries"
fi
API="$(sed -nE 's/.*"api_version"\s*:\s*"([^"]+)".*/\1/p' "$TMP"/x/usr/share/vulkan/icd.d/lvp_icd.json)"
cat > "$ICD.tmp" <<EOF
{
    "ICD": {
        "api_version": "${API:-1.3.0}",
        "library_path": "$LIB"
    },
    "file_format_version": "1.0.0"
}
EOF
mv -f "$ICD.tmp" "$ICD"
echo "$VER" > "$DEST/VERSION"
log "lavapipe (Mesa $VER) ready in $DEST"
echo "export VK_ICD_FILENAMES=$ICD"
