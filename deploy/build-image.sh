#!/bin/sh
# build-image.sh BINARY [TAG]: builds the skein image (deploy/Dockerfile,
# FROM scratch) from a static skein binary, tagged TAG (default skein:dev).
# The build context is a temporary directory holding only the binary, the
# Dockerfile and an empty `data` directory, so nothing else of the working
# tree is sent to the Docker daemon.
set -eu

bin=${1:?usage: deploy/build-image.sh BINARY [TAG]}
tag=${2:-skein:dev}
here=$(cd "$(dirname "$0")" && pwd)

if [ ! -x "$bin" ]; then
	echo "build-image.sh: $bin is not an executable (run make build)" >&2
	exit 1
fi
# FROM scratch has no dynamic loader: the binary must be static.
if command -v file >/dev/null 2>&1; then
	case $(file -L "$bin") in
	*"statically linked"*) ;;
	*)
		echo "build-image.sh: $bin is not statically linked; build it with CGO_ENABLED=0" >&2
		exit 1
		;;
	esac
fi

ctx=$(mktemp -d "${TMPDIR:-/tmp}/skein-image.XXXXXX")
trap 'rm -rf "$ctx"' EXIT INT TERM
cp "$bin" "$ctx/skein"
cp "$here/Dockerfile" "$ctx/Dockerfile"
mkdir "$ctx/data"
# The engine's legacy builder does this (FROM scratch needs no BuildKit);
# its output is shown only when the build fails.
if ! out=$(docker build --tag "$tag" "$ctx" 2>&1); then
	echo "$out" >&2
	exit 1
fi
echo "built image $tag from $bin"
