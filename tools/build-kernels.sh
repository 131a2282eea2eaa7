#!/usr/bin/env bash
# Build the reference's WebAssembly kernels from their C sources (Debian: apt-get install clang lld wabt).
#   tools/build-kernels.sh            rebuild reference/nn/kernels/*.wasm in place
#   tools/build-kernels.sh OUT_DIR    build into OUT_DIR instead (the property that checks the committed binary does this)
# A kernel module imports the tfjs-backend-wasm heap as its memory, so it must own no memory there: the build
# fails if a module has a data section or touches the stack pointer (checked with wasm-objdump when present).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-reference/nn/kernels}
mkdir -p "$out"
for src in reference/nn/kernels/*.c; do
  name=$(basename "$src" .c)
  exports=$(grep -oE '^(int|void) [a-z_0-9]+\(' "$src" | sed -E 's/^(int|void) //; s/\($//' | sed 's/^/-Wl,--export=/' | tr '\n' ' ')
  tmp="$out/.$name.wasm.tmp"
  # shellcheck disable=SC2086
  clang --target=wasm32 -O3 -msimd128 -nostdlib -ffreestanding -fno-builtin \
    -Wl,--no-entry -Wl,--import-memory -Wl,--strip-all $exports -o "$tmp" "$src"
  if command -v wasm-objdump >/dev/null 2>&1; then
    if wasm-objdump -h "$tmp" | grep -q ' Data '; then echo "build-kernels: $name has static data, which would be written into the tfjs heap" >&2; exit 1; fi
    if wasm-objdump -d "$tmp" | grep -qE 'global\.(get|set)'; then echo "build-kernels: $name uses the stack pointer, which would write into the tfjs heap" >&2; exit 1; fi
  fi
  mv "$tmp" "$out/$name.wasm"
  echo "built $out/$name.wasm"
done
