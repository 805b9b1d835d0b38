# SPDX-License-Identifier: MIT
# What `cmake --install` puts where. Every file belongs to one component, so
# that CPack can cut the tree into the Debian packages of cmake/package.cmake:
#   runtime  the shared library and its soname link (libvolley0)
#   dev      header, .so link, static library, volley.pc, the CMake package,
#            man pages of sections 3 and 7 (libvolley-dev)
#   tools    the volley command and volley(1) (volley-tools)
# A plain `cmake --install build` installs all three.
install(TARGETS volley EXPORT volleyTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime NAMELINK_COMPONENT dev)
install(TARGETS volley_static EXPORT volleyTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev)
if(TARGET volley_cli)
  install(TARGETS volley_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT tools)
endif()
install(FILES include/volley.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev)
install(FILES ${PROJECT_BINARY_DIR}/volley.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)

# find_package(volley CONFIG): volley::volley and volley::volley_static.
set(VOLLEY_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/volley)
install(EXPORT volleyTargets NAMESPACE volley:: DESTINATION ${VOLLEY_CMAKE_DIR}
  COMPONENT dev)
include(CMakePackageConfigHelpers)
configure_package_config_file(cmake/volleyConfig.cmake.in
  ${PROJECT_BINARY_DIR}/volleyConfig.cmake INSTALL_DESTINATION ${VOLLEY_CMAKE_DIR})
# While the major version is 0 a minor release may break the API (see
# CHANGELOG.md), so a request for 0.1 accepts 0.1.x only; from 1.0 on, the
# usual rule: any later release of the same major version.
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(VOLLEY_COMPAT SameMinorVersion)
else()
  set(VOLLEY_COMPAT SameMajorVersion)
endif()
write_basic_package_version_file(${PROJECT_BINARY_DIR}/volleyConfigVersion.cmake
  COMPATIBILITY ${VOLLEY_COMPAT})
install(FILES ${PROJECT_BINARY_DIR}/volleyConfig.cmake
  ${PROJECT_BINARY_DIR}/volleyConfigVersion.cmake
  DESTINATION ${VOLLEY_CMAKE_DIR} COMPONENT dev)

# Man pages gzipped, as Debian ships them (man reads them either way); -n
# leaves the time stamp out so the same page gives the same bytes.
file(GLOB VOLLEY_MAN_PAGES ${PROJECT_SOURCE_DIR}/man/*.[137])
foreach(page ${VOLLEY_MAN_PAGES})
  get_filename_component(name ${page} NAME)
  string(REGEX REPLACE ".*\\." "" sect ${name})
  set(gz ${PROJECT_BINARY_DIR}/man/${name}.gz)
  add_custom_command(OUTPUT ${gz} DEPENDS ${page} VERBATIM
    COMMAND sh -c "mkdir -p \"$(dirname \"$2\")\" && gzip -9nc \"$1\" >\"$2\"" sh ${page} ${gz})
  list(APPEND VOLLEY_MAN_GZ ${gz})
  if(sect STREQUAL "1")
    install(FILES ${gz} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT tools)
  else()
    install(FILES ${gz} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${sect} COMPONENT dev)
  endif()
endforeach()
add_custom_target(volley_man ALL DEPENDS ${VOLLEY_MAN_GZ})
