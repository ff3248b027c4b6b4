# cmake -DMANIFEST=BUILD/install_manifest.txt -P cmake/uninstall.cmake: removes every
# file an install from that build put in place, as its manifest lists them (with
# $DESTDIR in front when it is set, as `cmake --install` used it), then the directories
# of shmkit's own (include/shmkit, lib/cmake/shmkit, share/doc/shmkit) once empty.
# Shared directories (lib, share/man/man3) stay, even when empty. Fails if a listed
# file cannot be removed; a file already gone is said and skipped.
if(NOT MANIFEST)
  message(FATAL_ERROR "uninstall: say which manifest: -DMANIFEST=BUILD/install_manifest.txt")
endif()
if(NOT EXISTS "${MANIFEST}")
  message(FATAL_ERROR "uninstall: ${MANIFEST} does not exist: nothing was installed from this build")
endif()
file(STRINGS "${MANIFEST}" files)
set(dirs "")
set(removed 0)
foreach(f IN LISTS files)
  set(p "$ENV{DESTDIR}${f}")
  # A link is removed as a link; EXISTS alone would miss one whose target went first.
  if(IS_SYMLINK "${p}" OR EXISTS "${p}")
    file(REMOVE "${p}")
    if(IS_SYMLINK "${p}" OR EXISTS "${p}")
      message(FATAL_ERROR "uninstall: could not remove ${p}")
    endif()
    math(EXPR removed "${removed} + 1")
  else()
    message(STATUS "uninstall: already gone: ${p}")
  endif()
  get_filename_component(d "${p}" DIRECTORY)
  list(APPEND dirs "${d}")
endforeach()
list(REMOVE_DUPLICATES dirs)
foreach(d IN LISTS dirs)
  get_filename_component(n "${d}" NAME)
  if(n STREQUAL "shmkit" AND IS_DIRECTORY "${d}")
    file(GLOB left "${d}/*")
    if(NOT left)
      file(REMOVE_RECURSE "${d}") # empty: nothing but the directory goes
    endif()
  endif()
endforeach()
list(LENGTH files n)
message(STATUS "uninstall: removed ${removed} of the ${n} files in ${MANIFEST}")
