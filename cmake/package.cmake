# SPDX-License-Identifier: MIT
# Debian packages, one per install component (cmake/install.cmake):
#   cmake -S . -B build-deb -DCMAKE_INSTALL_PREFIX=/usr -DVOLLEY_TESTS=OFF
#   cmake --build build-deb -j && (cd build-deb && cpack -G DEB)
# Configured for /usr, GNUInstallDirs gives Debian's multiarch library
# directory; from another prefix the packages still work, from /usr/lib.

# Debian wants "Name <address>". volley has no mailing address of its own
# yet, so the default is a reserved .invalid one that says so rather than
# one that would bounce; whoever builds packages to hand out sets theirs.
set(VOLLEY_DEB_MAINTAINER "volley maintainers <maintainers@volley.invalid>" CACHE STRING
    "Maintainer field of the .debs and their changelog, \"Name <address>\"")
if(VOLLEY_DEB_MAINTAINER STREQUAL "volley maintainers") # an older default, without an address
  set_property(CACHE VOLLEY_DEB_MAINTAINER PROPERTY VALUE
               "volley maintainers <maintainers@volley.invalid>")
endif()
if(NOT VOLLEY_DEB_MAINTAINER MATCHES "^[^<>]+ <[^<>@ ]+@[^<>@ ]+>$")
  message(FATAL_ERROR "VOLLEY_DEB_MAINTAINER must be \"Name <address>\", not \"${VOLLEY_DEB_MAINTAINER}\"")
endif()
get_target_property(VOLLEY_SOVERSION volley SOVERSION) # 0: libvolley0

# Each package's documentation directory (share/doc/PACKAGE) holds the
# licence, in Debian's machine-readable copyright format, and the
# changelog: the packages are native (version X.Y.Z, no Debian revision),
# so changelog.gz is CHANGELOG.md's releases in Debian's changelog format
# (cmake/deb/changelog.awk), gzipped -9n as lintian wants it and without a
# time stamp so that the same input gives the same bytes. The maintainer
# goes through a file so that changing it remakes the changelog.
file(CONFIGURE OUTPUT ${PROJECT_BINARY_DIR}/deb/maintainer CONTENT "${VOLLEY_DEB_MAINTAINER}\n")
set(VOLLEY_DEB_CHANGELOG ${PROJECT_BINARY_DIR}/deb/changelog.gz)
add_custom_command(OUTPUT ${VOLLEY_DEB_CHANGELOG} VERBATIM
  DEPENDS ${PROJECT_SOURCE_DIR}/cmake/deb/changelog.awk ${PROJECT_SOURCE_DIR}/CHANGELOG.md
          ${PROJECT_BINARY_DIR}/deb/maintainer
  COMMAND sh -c "set -e; awk -v maint=\"$(cat \"$1\")\" -f \"$2\" \"$3\" >\"$4.txt\"; gzip -9nc \"$4.txt\" >\"$4\""
          sh ${PROJECT_BINARY_DIR}/deb/maintainer ${PROJECT_SOURCE_DIR}/cmake/deb/changelog.awk
          ${PROJECT_SOURCE_DIR}/CHANGELOG.md ${VOLLEY_DEB_CHANGELOG})
add_custom_target(volley_deb_changelog ALL DEPENDS ${VOLLEY_DEB_CHANGELOG})
foreach(pair "runtime:libvolley${VOLLEY_SOVERSION}" "dev:libvolley-dev" "tools:volley-tools")
  string(REPLACE ":" ";" pair ${pair})
  list(GET pair 0 component)
  list(GET pair 1 package)
  install(FILES cmake/deb/copyright ${VOLLEY_DEB_CHANGELOG}
    DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/${package} COMPONENT ${component})
endforeach()

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
set(VOLLEY_DESC_TAIL "Datagrams: many per system call (sendmmsg/recvmmsg), UDP GSO and GRO,
io_uring, and per-datagram metadata (local address, ECN, timestamps, ICMP
errors) behind one small non-blocking API that allocates nothing per packet.
Streams: a TCP loop per thread, on io_uring (or epoll), that drives many
listeners and connections with buffered or zero-copy reads, coalesced
vectored sends and per-operation deadlines.")

set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME ${VOLLEY_DEB_LIB})
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION libs)
# dpkg runs ldconfig once per install or removal, as Debian's libraries do.
# CPack (3.25) also writes postinst and postrm scripts that call ldconfig
# for any library under /usr/lib, and cannot be told not to; replacing them
# with empty ones only trades lintian's maintscript-calls-ldconfig warning
# for maintainer-script-empty, so that warning stays: the calls are
# redundant with the trigger, and harmless.
set(CPACK_DEBIAN_RUNTIME_PACKAGE_CONTROL_EXTRA ${PROJECT_SOURCE_DIR}/cmake/deb/triggers)
set(CPACK_DEBIAN_RUNTIME_DESCRIPTION
    "batched UDP datagram and io_uring TCP stream I/O for Linux\n${VOLLEY_DESC_TAIL}\n\nThis package holds the shared library.")

set(CPACK_DEBIAN_DEV_PACKAGE_NAME libvolley-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS ${VOLLEY_DEB_EXACT})
if(VOLLEY_HAVE_URING) # the static library and volley.pc's Libs.private need it
  string(APPEND CPACK_DEBIAN_DEV_PACKAGE_DEPENDS ", liburing-dev")
endif()
set(CPACK_DEBIAN_DEV_DESCRIPTION
    "batched UDP datagram and io_uring TCP stream I/O - development files\n${VOLLEY_DESC_TAIL}\n\nThis package holds the header, the static library, pkg-config and CMake\npackage files, and the manual pages of the API.")

set(CPACK_DEBIAN_TOOLS_PACKAGE_NAME volley-tools)
set(CPACK_DEBIAN_TOOLS_PACKAGE_SECTION net)
set(CPACK_DEBIAN_TOOLS_PACKAGE_DEPENDS ${VOLLEY_DEB_EXACT})
set(CPACK_DEBIAN_TOOLS_DESCRIPTION
    "UDP and TCP echo servers, load generators and benchmark built on volley\n${VOLLEY_DESC_TAIL}\n\nThis package holds the volley command: probe (what the kernel offers),\nrecv, send, echo and ping for UDP datagrams, tcp-echo (a TCP echo server\non the stream loop) and tcp-load (a TCP load generator), and bench, which\nruns every path side by side against plain-C baselines.")

include(CPack)
