#!/usr/bin/env bash
# cross.sh TARGET... - the suite on other platforms, under emulation. Targets:
#   i686 armhf aarch64 s390x   cross-built (static, C11 threads), run with qemu-user: the suite,
#                              then STRESS_ITERATIONS (500) of tests/stress.c
#   baremetal                  tests/baremetal on a Cortex-M4 (newlib, BATCH_NO_THREADS), run with
#                              qemu-system-arm -M mps2-an386 and semihosting
# Each target first checks that every part compiles alone with -Wconversion -Wsign-conversion
# (32-bit size_t finds narrowings a 64-bit build cannot). Missing Debian packages are installed
# when running as root (or with password-less sudo). BATCH_TEST_SCALE (default 4) shrinks the
# suite's loops under emulation. Run from the top of the tree: make platforms.
set -euo pipefail
STB_INCLUDE=${STB_INCLUDE:-/usr/include/stb}
SCALE=${BATCH_TEST_SCALE:-4}
STRESS=${STRESS_ITERATIONS:-500}   # random graphs and maps (tests/stress.c) after the suite
WARN="-std=c11 -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Werror"
CONV="-Wconversion -Wsign-conversion"
PARTS=${PARTS:-$(sed -n 's/^PARTS := //p' Makefile | tr ' ' '\n' | grep '\.c$' | tr '\n' ' ')}   # the Makefile's list

have() { command -v "$1" >/dev/null || [ -x "$1" ]; }
need() {   # need COMMAND PACKAGE...: installs the packages when COMMAND (a name or a path) is missing
    local cmd=$1; shift
    have "$cmd" && return 0
    local sudo=""
    if [ "$(id -u)" != 0 ]; then
        if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo -n"
        else echo "cross.sh: $cmd is missing: apt-get install $*" >&2; exit 1; fi
    fi
    echo "installing $*"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "$@" >/dev/null 2>&1 ||
        { $sudo apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "$@" >/dev/null; }
    have "$cmd"
}

parts() {   # parts CC [FLAGS...]: each part alone, conversion warnings on
    local cc=$1; shift
    for p in $PARTS; do $cc $WARN $CONV "$@" -I"$STB_INCLUDE" -DBATCH_IMPLEMENTATION -fsyntax-only -x c "$p"; done
}

linux_target() {   # linux_target NAME TRIPLE DEBARCH QEMU
    local name=$1 triple=$2 debarch=$3 qemu=$4
    need "$triple-gcc" "gcc-$triple" "libc6-dev-$debarch-cross"
    need "$qemu" qemu-user-static
    echo "== $name: $triple-gcc, run with $qemu"
    parts "$triple-gcc"
    mkdir -p "build/$name"
    "$triple-gcc" $WARN -I"$STB_INCLUDE" -O2 -g -static -o "build/$name/run" tests/main.c -pthread -lm
    BATCH_TEST_SCALE=$SCALE BATCH_TEST_TIMEOUT=600 "$qemu" "build/$name/run" | tee "build/$name/log" | grep -v '^ok ' || true
    tail -n 1 "build/$name/log" | grep -q ' 0 failed$'
    "$triple-gcc" $WARN -I"$STB_INCLUDE" -O2 -g -static -o "build/$name/stress" tests/stress.c -pthread -lm
    timeout 600 "$qemu" "build/$name/stress" --iterations "$STRESS" | tail -n 1
}

baremetal() {
    need arm-none-eabi-gcc gcc-arm-none-eabi libnewlib-arm-none-eabi
    need qemu-system-arm qemu-system-arm
    local flags="-mcpu=cortex-m4 -mthumb -mfloat-abi=soft -Os"
    echo "== baremetal: arm-none-eabi-gcc $flags, newlib, run with qemu-system-arm -M mps2-an386"
    parts arm-none-eabi-gcc $flags -DBATCH_NO_THREADS "-DBATCH_CLOCK_NS()=0"
    mkdir -p build/baremetal
    arm-none-eabi-gcc $WARN $flags -g -ffunction-sections -fdata-sections -I"$STB_INCLUDE" \
        -specs=rdimon.specs -nostartfiles -T tests/baremetal/mps2.ld -Wl,--gc-sections \
        -o build/baremetal/test.elf tests/baremetal/main.c tests/baremetal/startup.c
    arm-none-eabi-size build/baremetal/test.elf
    timeout 300 qemu-system-arm -M mps2-an386 -nographic -monitor none -serial none \
        -semihosting-config enable=on,target=native -kernel build/baremetal/test.elf | tee build/baremetal/log
    tail -n 1 build/baremetal/log | grep -q ' 0 failed$'
}

[ $# -gt 0 ] || set -- i686 armhf aarch64 s390x baremetal
for t in "$@"; do
    case $t in
        i686)      linux_target i686 i686-linux-gnu i386 qemu-i386-static ;;
        armhf)     linux_target armhf arm-linux-gnueabihf armhf qemu-arm-static ;;
        aarch64)   linux_target aarch64 aarch64-linux-gnu arm64 qemu-aarch64-static ;;
        s390x)     linux_target s390x s390x-linux-gnu s390x qemu-s390x-static ;;
        baremetal) baremetal ;;
        deps-win64)   # what make win64 needs (wine64 lives off PATH on Debian)
            need x86_64-w64-mingw32-gcc mingw-w64
            have wine64 || need /usr/lib/wine/wine64 wine64 ;;
        *) echo "cross.sh: unknown target $t (i686 armhf aarch64 s390x baremetal)" >&2; exit 2 ;;
    esac
done
echo "cross.sh: $* passed"
