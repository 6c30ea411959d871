# cpack-prebuild.cmake - CPack pre-build script (CPACK_PRE_BUILD_SCRIPTS, see cmake/packaging.cmake):
# runs once per generator on the staged files. The install rules put the systemd unit in
# /lib/systemd/system, where a Debian 12 .deb ships it; an .rpm ships it in /usr/lib/systemd/system.
if(CPACK_GENERATOR STREQUAL "RPM")
  set(stage "${CPACK_TEMPORARY_INSTALL_DIRECTORY}")
  file(GLOB units "${stage}/lib/systemd/system/*")
  file(MAKE_DIRECTORY "${stage}/usr/lib/systemd/system")
  foreach(unit IN LISTS units)
    get_filename_component(name "${unit}" NAME)
    file(RENAME "${unit}" "${stage}/usr/lib/systemd/system/${name}")
  endforeach()
  file(REMOVE_RECURSE "${stage}/lib")
  # CPackRPM lists files installed to absolute paths as %config: keep that for /etc only (the
  # configuration, %config(noreplace) by CPACK_RPM_USER_FILELIST), not for the moved unit.
  list(FILTER CPACK_ABSOLUTE_DESTINATION_FILES EXCLUDE REGEX "^/lib/")
endif()
