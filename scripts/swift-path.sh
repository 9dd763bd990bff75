# Sourced by the scripts: puts a Swift toolchain from a usual place on PATH when none is.
if ! command -v swift >/dev/null 2>&1; then
    for d in /opt/swift/usr/bin /usr/share/swift/usr/bin; do
        if [ -x "$d/swift" ]; then PATH="$d:$PATH"; export PATH; break; fi
    done
fi
command -v swift >/dev/null 2>&1 || { echo "berth: Swift 6 is needed: install it and put it on PATH" >&2; exit 1; }
