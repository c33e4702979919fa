#!/usr/bin/env bash
# Go 1.24 and the Go sources of grpc-go 1.64 (the first Debian release with grpc.NewClient)
# and its dependencies, from Debian 13's packages, unpacked into DEST (default .go-tools)
# and installed nowhere else: no Go module proxy is reachable on these machines, and
# Debian 12's own grpc-go (1.33) predates grpc.NewClient and credentials/insecure.
# apt-get downloads them with a private package list, from the Debian mirror this machine
# is configured with. tests/clients/test_go_client.py builds and tests with DEST.
set -euo pipefail
DEST=${1:-.go-tools}
SUITE=trixie
PACKAGES=(golang-1.24-go golang-1.24-src golang-google-grpc-dev golang-google-protobuf-dev
  golang-google-genproto-dev golang-golang-x-net-dev golang-golang-x-sys-dev
  golang-golang-x-text-dev golang-github-golang-protobuf-1-5-dev)
stamp="$DEST/.fetched-$(echo "$SUITE ${PACKAGES[*]}" | md5sum | cut -c1-12)"
[ -e "$stamp" ] && exit 0
configured_mirror() {
  apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 'Identifier: Packages' 2>/dev/null \
    | awk '$2 !~ /-/ && $1 !~ /security/ {print $1; exit}'
}
mirror=$(configured_mirror)
if [ -z "$mirror" ]; then
  apt-get update -qq && mirror=$(configured_mirror)
fi
if [ -z "$mirror" ]; then
  echo "no Debian mirror configured (run apt-get update first?)" >&2
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $SUITE main" \
  >"$work/sources.list"
apt=(-o Dir::Etc::SourceList="$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o Dir::State::Lists="$work/lists" -o Dir::Cache="$work/cache"
  -o Dir::State::status=/dev/null -o APT::Sandbox::User=root)
apt-get "${apt[@]}" -qq update
(cd "$work/debs" && apt-get "${apt[@]}" -qq download "${PACKAGES[@]}")
rm -rf "$DEST"
mkdir -p "$DEST"
for deb in "$work"/debs/*.deb; do
  dpkg-deb -x "$deb" "$DEST"
done
touch "$stamp"
