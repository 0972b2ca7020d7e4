# Source this file: puts Confluent's librdkafka first on the library path and
# the local broker and Redis binaries on PATH. Written by scripts/setup.sh.
_freshet_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export LD_LIBRARY_PATH="$_freshet_root/.freshet/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PATH="$_freshet_root/.freshet/bin:$PATH"
export FRESHET_TANSU="$_freshet_root/.freshet/bin/tansu"
unset _freshet_root
