# Cross-build for 64-bit ARM Linux with Debian's cross toolchain, and run what was
# built under user-mode QEMU (ctest and test discovery go through the emulator):
#
#   sudo apt-get install g++-aarch64-linux-gnu qemu-user
#   cmake -S . -B build-aarch64 -G Ninja \
#     -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake \
#     -DGORO_WITH_LIBDW=OFF -DGORO_DEBUG_SERVER=OFF -DGORO_BUILD_BENCHMARKS=OFF
#
# GoogleTest is built from Debian's sources (/usr/src/googletest, libgtest-dev) for
# the target, since the packaged libraries are for the build machine.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(GORO_CROSS_TRIPLE aarch64-linux-gnu)
set(CMAKE_C_COMPILER ${GORO_CROSS_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${GORO_CROSS_TRIPLE}-g++)
set(CMAKE_ASM_COMPILER ${GORO_CROSS_TRIPLE}-gcc)

set(CMAKE_FIND_ROOT_PATH /usr/${GORO_CROSS_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# Through a small script, so that tests which execute themselves again work too.
set(CMAKE_CROSSCOMPILING_EMULATOR ${CMAKE_CURRENT_LIST_DIR}/qemu-run)
