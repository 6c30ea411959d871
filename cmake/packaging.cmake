# packaging.cmake - what `cmake --install` and the packages put where, and the CPack settings
# of the .deb and .rpm (`make packages`). Layout (as the ABS packages):
#   /usr/bin/aerospike-backup-service                                the service
#   /etc/aerospike-backup-service/aerospike-backup-service.yml       default configuration (conffile)
#   /lib/systemd/system/aerospike-backup-service.service             unit (.deb; /usr/lib/... in the .rpm,
#                                                                    moved by packaging/cpack-prebuild.cmake)
#   /usr/share/man/man1/aerospike-backup-service.1.gz                man page
#   /usr/share/doc/aerospike-backup-service/                         OpenAPI spec, configuration reference
# The maintainer scripts (packaging/scripts) create the `aerospike-backup-service` system user
# and /var/lib/aerospike-backup-service (backups) and /var/log/aerospike-backup-service.
# Package versions come from the VERSION file through PROJECT_VERSION.

set(ABS_PKG_NAME aerospike-backup-service)
set(ABS_PKG_SRC ${CMAKE_SOURCE_DIR}/packaging)
set(ABS_PKG_DOCDIR share/doc/${ABS_PKG_NAME})

# ---- man page, gzipped (-n: no name or time stamp inside, so packages are reproducible) ----
find_program(ABS_GZIP gzip REQUIRED)
set(ABS_MANPAGE_GZ ${CMAKE_BINARY_DIR}/packaging/${ABS_PKG_NAME}.1.gz)
add_custom_command(OUTPUT ${ABS_MANPAGE_GZ}
                   COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/packaging
                   COMMAND sh -c "\"$1\" -9 -n -c \"$2\" > \"$3\"" sh ${ABS_GZIP}
                           ${ABS_PKG_SRC}/${ABS_PKG_NAME}.1 ${ABS_MANPAGE_GZ}
                   DEPENDS ${ABS_PKG_SRC}/${ABS_PKG_NAME}.1
                   COMMENT "Compressing the man page"
                   VERBATIM)
add_custom_target(abs_manpage ALL DEPENDS ${ABS_MANPAGE_GZ})

# ---- install rules ----
install(TARGETS aerospike-backup-service RUNTIME DESTINATION bin)
# the cloud module (src/storage/cloud_module.h): found at ../lib/aerospike-backup-service from bin
install(TARGETS abs_cloud LIBRARY DESTINATION lib/${ABS_PKG_NAME})
install(FILES ${ABS_PKG_SRC}/${ABS_PKG_NAME}.yml
        DESTINATION /etc/${ABS_PKG_NAME}
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ)
install(FILES ${ABS_MANPAGE_GZ} DESTINATION share/man/man1)
install(FILES ${CMAKE_SOURCE_DIR}/docs/openapi.yaml ${CMAKE_SOURCE_DIR}/docs/configuration.md
        DESTINATION ${ABS_PKG_DOCDIR})
install(FILES ${ABS_PKG_SRC}/${ABS_PKG_NAME}.service DESTINATION /lib/systemd/system)
# ---- CPack: common ----
set(CPACK_PACKAGE_NAME ${ABS_PKG_NAME})
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "aerospike-backup-service (C) maintainers")
set(CPACK_PACKAGE_CONTACT "aerospike-backup-service maintainers <maintainers@aerospike-backup-service.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Aerospike Backup Service: scheduled backups and restores of Aerospike clusters")
set(CPACK_PACKAGE_DESCRIPTION
    "A drop-in replacement for Aerospike Backup Service 3.1, written in C: full and incremental\n"
    "backups of Aerospike clusters on cron schedules in the ABS storage layout (.asb files),\n"
    "restores, and the ABS REST API. Runs as a systemd service.")
string(REPLACE ";" "" CPACK_PACKAGE_DESCRIPTION "${CPACK_PACKAGE_DESCRIPTION}")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGE_DIRECTORY ${CMAKE_BINARY_DIR}/cpack)
set(CPACK_GENERATOR DEB RPM)
# The unit's place differs between the formats: /lib/systemd/system (.deb), /usr/lib/... (.rpm).
set(CPACK_PRE_BUILD_SCRIPTS ${ABS_PKG_SRC}/cpack-prebuild.cmake)
# Only the service's own install rules (not the tests' or benchmarks').
set(CPACK_INSTALL_CMAKE_PROJECTS "${CMAKE_BINARY_DIR};${PROJECT_NAME};ALL;/")

# ---- CPack: .deb ----
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)            # <name>_<version>-<release>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SECTION database)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)               # libmicrohttpd12, libjansson4, libssl3, ...
set(CPACK_DEBIAN_PACKAGE_DEPENDS "passwd")           # useradd/groupadd in postinst
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(ABS_DEB_CONFFILES ${CMAKE_BINARY_DIR}/packaging/conffiles)
file(WRITE ${ABS_DEB_CONFFILES} "/etc/${ABS_PKG_NAME}/${ABS_PKG_NAME}.yml\n")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${ABS_DEB_CONFFILES}
    ${ABS_PKG_SRC}/scripts/postinst
    ${ABS_PKG_SRC}/scripts/prerm
    ${ABS_PKG_SRC}/scripts/postrm)

# ---- CPack: .rpm ----
set(CPACK_RPM_FILE_NAME RPM-DEFAULT)               # <name>-<version>-<release>.<arch>.rpm
set(CPACK_RPM_PACKAGE_RELEASE 1)
set(CPACK_RPM_PACKAGE_GROUP "Applications/Databases")
set(CPACK_RPM_PACKAGE_LICENSE "Unspecified")
set(CPACK_RPM_PACKAGE_AUTOREQ ON)                    # shared-library requirements from the binary
set(CPACK_RPM_PACKAGE_REQUIRES_POST "shadow-utils")
set(CPACK_RPM_POST_INSTALL_SCRIPT_FILE ${ABS_PKG_SRC}/scripts/postinst)
set(CPACK_RPM_PRE_UNINSTALL_SCRIPT_FILE ${ABS_PKG_SRC}/scripts/prerm)
set(CPACK_RPM_POST_UNINSTALL_SCRIPT_FILE ${ABS_PKG_SRC}/scripts/postrm)
set(CPACK_PACKAGE_RELOCATABLE OFF)                # fixed paths: /etc, /usr/lib/systemd
set(CPACK_RPM_USER_FILELIST "%config(noreplace) /etc/${ABS_PKG_NAME}/${ABS_PKG_NAME}.yml")
set(CPACK_RPM_EXCLUDE_FROM_AUTO_FILELIST_ADDITION
    /etc /usr/lib/systemd /usr/lib/systemd/system /usr/share/man /usr/share/man/man1
    /usr/share/doc)
set(CPACK_RPM_SPEC_MORE_DEFINE "%define _build_id_links none")

include(CPack)
