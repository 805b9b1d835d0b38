# SPDX-License-Identifier: MIT
# Debian packages, one per install component (cmake/install.cmake):
#   cmake -S . -B build-deb -DCMAKE_INSTALL_PREFIX=/usr -DVOLLEY_TESTS=OFF
#   cmake --build build-deb -j && (cd build-deb && cpack -G DEB)
# Configured for /usr, GNUInstallDirs gives Debian's multiarch library
# directory; from another prefix the packages still work, from /usr/lib.
set(VOLLEY_DEB_MAINTAINER "volley maintainers" CACHE STRING
    "Maintainer field of the .debs, \"Name <address>\"")
# VOLLEY_SOVERSION (0: libvolley0) comes from cmake/install.cmake.
set(CPACK_PACKAGE_NAME volley)
set(CPACK_PACKAGE_VENDOR volley)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_COMPONENTS_ALL runtime dev tools)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT) # name_version_arch.deb
set(CPACK_DEBIAN_PACKAGE_MAINTAINER ${VOLLEY_DEB_MAINTAINER})
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_STRIP_FILES ON)
# Runtime dependencies (libc6, liburing2 when built with io_uring) come from
# dpkg-shlibdeps reading the binaries, so they match what was linked.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS ${PROJECT_BINARY_DIR})

set(VOLLEY_DEB_LIB libvolley${VOLLEY_SOVERSION})
set(VOLLEY_DEB_EXACT "${VOLLEY_DEB_LIB} (= ${PROJECT_VERSION})")
set(VOLLEY_DESC_TAIL "Many datagrams per system call (sendmmsg/recvmmsg), UDP GSO and GRO,
io_uring, and per-datagram metadata (local address, ECN, timestamps, ICMP
errors) behind one small non-blocking API that allocates nothing per packet.")

set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME ${VOLLEY_DEB_LIB})
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION libs)
# dpkg runs ldconfig once per install or removal, as Debian's libraries do.
set(CPACK_DEBIAN_RUNTIME_PACKAGE_CONTROL_EXTRA ${PROJECT_SOURCE_DIR}/cmake/deb/triggers)
set(CPACK_DEBIAN_RUNTIME_DESCRIPTION
    "batched, offloaded UDP datagram I/O for Linux\n${VOLLEY_DESC_TAIL}\n\nThis package holds the shared library.")

set(CPACK_DEBIAN_DEV_PACKAGE_NAME libvolley-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS ${VOLLEY_DEB_EXACT})
if(VOLLEY_HAVE_URING) # the static library and volley.pc's Libs.private need it
  string(APPEND CPACK_DEBIAN_DEV_PACKAGE_DEPENDS ", liburing-dev")
endif()
set(CPACK_DEBIAN_DEV_DESCRIPTION
    "batched, offloaded UDP datagram I/O for Linux - development files\n${VOLLEY_DESC_TAIL}\n\nThis package holds the header, the static library, pkg-config and CMake\npackage files, and the manual pages of the API.")

set(CPACK_DEBIAN_TOOLS_PACKAGE_NAME volley-tools)
set(CPACK_DEBIAN_TOOLS_PACKAGE_SECTION net)
set(CPACK_DEBIAN_TOOLS_PACKAGE_DEPENDS ${VOLLEY_DEB_EXACT})
set(CPACK_DEBIAN_TOOLS_DESCRIPTION
    "UDP sink, blaster, echo server, pinger and benchmark built on volley\n${VOLLEY_DESC_TAIL}\n\nThis package holds the volley command: probe, recv, send, echo, ping\nand bench.")

include(CPack)
