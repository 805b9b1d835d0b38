# SPDX-License-Identifier: MIT
# The example programs, each run by a test (tests/test_example*.sh). They
# get the warning flags of everything else (add_compile_options above), and
# link the shared library as a user's program does.
add_executable(example_echo examples/echo.c)
target_link_libraries(example_echo PRIVATE volley)
add_executable(example_quic_like_server examples/quic_like_server.c)
target_link_libraries(example_quic_like_server PRIVATE volley)
# These use epoll and the stream loop: Linux's.
if(VOLLEY_LINUX_BACKENDS)
  add_executable(example_epoll_many examples/epoll_many.c)
  target_link_libraries(example_epoll_many PRIVATE volley)
  add_executable(example_tcp_echo examples/tcp_echo.c)
  target_link_libraries(example_tcp_echo PRIVATE volley)
  add_executable(example_server examples/server.c)
  target_link_libraries(example_server PRIVATE volley Threads::Threads)
endif()

# libuv's is built only where libuv is (Debian: libuv1-dev); its test skips
# when the program is missing.
find_package(PkgConfig QUIET)
if(PKG_CONFIG_FOUND)
  pkg_check_modules(LIBUV QUIET IMPORTED_TARGET libuv)
endif()
if(LIBUV_FOUND)
  add_executable(example_libuv_udp examples/libuv_udp.c)
  target_link_libraries(example_libuv_udp PRIVATE volley PkgConfig::LIBUV)
else()
  message(STATUS "libuv not found: examples/libuv_udp.c is not built")
endif()

# ---- examples/quic: a QUIC server and client (ngtcp2 + GnuTLS) over volley ----
# Built only where Debian's libngtcp2-dev, libngtcp2-crypto-gnutls-dev and
# libgnutls28-dev are (pkg-config); tests/test_quic.sh skips without them.
if(PKG_CONFIG_FOUND AND VOLLEY_LINUX_BACKENDS)
  pkg_check_modules(QUIC QUIET IMPORTED_TARGET libngtcp2 libngtcp2_crypto_gnutls gnutls)
endif()
if(QUIC_FOUND)
  foreach(role server client)
    add_executable(example_quic_${role} examples/quic/${role}.c examples/quic/quic.c)
    target_link_libraries(example_quic_${role} PRIVATE volley PkgConfig::QUIC)
  endforeach()
else()
  message(STATUS "ngtcp2/GnuTLS not found: examples/quic is not built")
endif()
