# Run by `cmake --install` (install(CODE) in CMakeLists.txt): writes and installs
# shmkit.pc (and shmkit-bridge.pc where the bridge is built) with the prefix of this installation, absolute, so that
# `cmake --install --prefix DIR` gets DIR and an install under /usr gives
# includedir=/usr/include, which pkg-config (pkgconf) leaves out of --cflags as a
# system directory, as it does the system libdir in --libs. $DESTDIR is a staging
# area, not the prefix: it is never written into the file.
# In: SHMKIT_PC_IN (its name less ".in" is the installed file's), SHMKIT_PC_DIR (a directory of the build tree), PROJECT_VERSION,
# SHMKIT_LIBDIR and SHMKIT_INCLUDEDIR (GNUInstallDirs' values, relative to the prefix
# unless absolute), and CMAKE_INSTALL_PREFIX as the install sets it. The file is
# written under a name of this installation's own, so that installs from one build
# tree at once (cpack, a test's) never install each other's; file(INSTALL) adds
# $DESTDIR and lists the file in install_manifest.txt, as install(FILES) would.
set(SHMKIT_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
string(REGEX REPLACE "(.)/+$" "\\1" SHMKIT_PC_PREFIX "${SHMKIT_PC_PREFIX}")
foreach(v LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${SHMKIT_${v}}")
    set(SHMKIT_PC_${v} "${SHMKIT_${v}}")
  else()
    set(SHMKIT_PC_${v} "\${prefix}/${SHMKIT_${v}}")
  endif()
endforeach()
string(MD5 tag "$ENV{DESTDIR}|${SHMKIT_PC_PREFIX}")
get_filename_component(name "${SHMKIT_PC_IN}" NAME)
string(REGEX REPLACE "[.]in$" "" name "${name}")
set(out "${SHMKIT_PC_DIR}/${tag}/${name}")
configure_file("${SHMKIT_PC_IN}" "${out}" @ONLY)
if(IS_ABSOLUTE "${SHMKIT_LIBDIR}")
  set(dest "${SHMKIT_LIBDIR}/pkgconfig")
else()
  set(dest "${CMAKE_INSTALL_PREFIX}/${SHMKIT_LIBDIR}/pkgconfig")
endif()
file(INSTALL DESTINATION "${dest}" TYPE FILE FILES "${out}")
file(REMOVE_RECURSE "${SHMKIT_PC_DIR}/${tag}")
