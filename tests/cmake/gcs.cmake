# gcp-storage tests that need the Cloud Storage emulator (firebase-tools, pinned and installed
# into the tools cache by scripts/deps.d/gcs-emulator.sh): tests/services/gcs-emulator.sh starts
# a private emulator on a free loopback port, runs the command against it, and stops it.
#  - unit.test_stor_gcs_emulator: the storage contract suite + GCS checks (test_stor_gcs.c,
#    "emulator" group; without it the same binary runs the fake-server tests, unit.test_stor_gcs);
#  - e2e.test_gcs (globbed; it starts the emulator itself): backup -> list -> restore.
add_test(NAME unit.test_stor_gcs_emulator
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/services/gcs-emulator.sh
                 $<TARGET_FILE:test_stor_gcs> emulator)
set_tests_properties(unit.test_stor_gcs_emulator PROPERTIES TIMEOUT 600 LABELS "gcs;emulator")
if(TEST e2e.test_gcs)
  set_tests_properties(e2e.test_gcs PROPERTIES TIMEOUT 600 LABELS "gcs;emulator")
endif()
